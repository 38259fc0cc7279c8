"""Findability over HTTP, on both engines: organisational boxes by service and city (beside the
people the same words find), the structure of the city the query names first, typo'd words of
a structure's name corrected, and no suggestion that finds nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, update

from annuaire.store import contains
from annuaire.store.keys import search_key
from annuaire.store.schema import mailbox, structure
from annuaire.web import plan, words
from tests.web import world
from tests.web.pagetools import people, read, structures

BENEDICTE, HOSPITAL = world.PEOPLE[0][0], world.STRUCTURES[0][0]
CARDIO = "secretariat.cardio@ch-exempleville.mssante.fr"


def test_a_service_and_a_city_find_the_box_beside_the_people(site) -> None:  # type: ignore[no-untyped-def]
    """'cardiologie lyon' reads as the cardiologists of Lyon, and the cardiology secretariat of
    the hospital of Lyon is shown beside them (it used to be missing: beside people, service
    words were not looked for in the boxes)."""
    html = site.get("/", q="cardiologie lyon").text
    assert people(html) == [BENEDICTE]
    assert HOSPITAL in structures(html)
    assert f'href="mailto:{CARDIO}"' in html
    assert "direction.confidentielle" not in html  # liste rouge, whatever the words


def test_beside_people_the_box_of_the_city_comes_before_names_holding_the_city(site) -> None:  # type: ignore[no-untyped-def]
    """"orl courort" listed the hospitals named after Courort elsewhere beside the ORL doctors of
    Courort, above the ORL boxes of Courort. Here: a hospital named after Lyon in another town, with
    a cardiology box, comes after the cardiology box of Lyon (3e arrondissement: "lyon" names it)."""
    with site.store.write() as conn:
        named_elsewhere = _hospital(conn, 1, "CENTRE HOSPITALIER DE LYON", "Quinois", "Cardiologie")
    words.SERVICES.clear()
    html = site.get("/", q="cardiologie lyon").text
    assert people(html) == [BENEDICTE]
    side = html[html.index('<section class="side"') :]  # (the people's places are links too)
    beside = re.findall(r'<h3><a href="/structure/([^"?]+)"', side[: side.index("</section>")])
    assert beside.index(HOSPITAL) < beside.index(named_elsewhere), beside


def _hospital(conn, n: int, name: str, city: str, service: str) -> str:  # type: ignore[no-untyped-def]
    """A structure of `city` publishing one ORG box of `service` (none when empty); its tech id."""
    tech, idnat = f"F99000010{n}", f"199000010{n}"
    common = {"version": 1, "last_updated": world.NOW, "digest": 0, "active": True}
    conn.execute(insert(structure), {
        **common, "id": 100 + n, "tech_id": tech, "idnat": idnat, "finess": idnat[1:], "name": name,
        "name_key": search_key(name), "commune_label": city, "city_key": search_key(city), "postcode": "44000",
        "dept_code": "44", "dept_label": "Loire-Atlantique",
    })
    if not service:
        return tech
    address = box_address(service, n)
    conn.execute(insert(mailbox), {
        **common, "address": address, "domain": "ch-norval.mssante.fr", "type": "ORG", "structure_idnat": idnat,
        "structure_type": "1", "structure": idnat[1:], "service": service, "liste_rouge": False, "source": "operator",
    })
    return tech


def box_address(service: str, n: int) -> str:
    return f"secretariat.{search_key(service).replace(' ', '-')}.{n}@ch-norval.mssante.fr"


def test_the_structure_of_the_city_named_comes_first(site) -> None:  # type: ignore[no-untyped-def]
    with site.store.write() as conn:
        elsewhere = _hospital(conn, 1, "CENTRE HOSPITALIER DE NORVAL-SUR-MER", "Norval-sur-Mer", "Pédiatrie")
        named = _hospital(conn, 2, "CENTRE HOSPITALIER DE NORVAL - SITE NORD", "Norval", "Pédiatrie")
    words.SERVICES.clear()  # the boxes' vocabulary is read once an hour per store URL (the same on PostgreSQL)
    for q in ("pediatrie norval", "Pédiatrie Norval"):
        found = structures(site.get("/", q=q).text)
        assert found.index(named) < found.index(elsewhere), (q, found)
    found = structures(site.get("/", q="pediatrie norval sur mer").text)
    assert found[0] == elsewhere and named not in found, found  # ("mer": not in the other)


def test_a_typo_in_a_structure_name_is_corrected(site) -> None:  # type: ignore[no-untyped-def]
    # Two letters swapped in the middle of a short word ("cetnre": neither its first three
    # letters nor its last three are those of "centre").
    for typed, meant in (("cetnre hospitalier exempleville", "centre hospitalier exempleville"),
                         ("centre hospitalier exempelville", "centre hospitalier exempleville")):
        html = site.get("/", q=typed).text
        assert structures(html)[0] == HOSPITAL, typed
        assert f"Aucun résultat pour « {typed} »" in read(html).text
        assert f"Résultats pour « {meant} »" in read(html).text


def test_a_long_structure_name_with_a_typo_is_corrected(site) -> None:  # type: ignore[no-untyped-def]
    """Seven words (a name and its city typed whole) are corrected too (six were the limit)."""
    typed = "centre hospitalier exempelville lyon 3e arrondissement"
    html = site.get("/", q=typed).text
    assert structures(html)[0] == HOSPITAL
    assert "Résultats pour « centre hospitalier exempleville lyon 3e arrondissement »" in read(html).text


def test_corrections_that_find_nothing_are_not_offered(site) -> None:  # type: ignore[no-untyped-def]
    # DUPOND's only bearer is inactive: "dupomd" is one letter from it, and finds nothing.
    html = site.get("/", q="dupomd").text
    assert "Vouliez-vous dire" not in read(html).text
    assert "Aucun résultat" in read(html).text


def test_a_city_that_is_also_a_family_name_shows_the_people_so_named_first(site) -> None:  # type: ignore[no-untyped-def]
    """"camille laval": Camille LAVAL (who works in Bordeaux) first, then the Camilles of Laval."""
    from annuaire.store.schema import activity, person

    common = {"version": 1, "last_updated": world.NOW, "digest": 0, "active": True}
    camille_laval = "810000000097"
    with site.store.write() as conn:
        conn.execute(insert(person), {
            **common, "id": 50, "id_nat": camille_laval, "id_type": "8", "id_pp": camille_laval[1:],
            "first_name": "CAMILLE", "last_name": "LAVAL", "first_name_key": "camille", "last_name_key": "laval",
            "profession_code": "60", "profession_label": "Infirmier", "category_code": "C", "category_label": "Civil",
        })
        conn.execute(insert(activity), {
            **common, "id": 50, "key": f"{camille_laval}|{world.STRUCTURES[1][0]}|1", "person_id": 50,
            "structure_id": 2, "profession_code": "60", "profession_label": "Infirmier", "mode_label": "Salarié",
        })
    html = site.get("/", q="camille laval").text
    assert people(html) == [camille_laval, world.PEOPLE[3][0]]  # Camille LAVAL, then Camille MARTIN of Laval
    assert "« Laval » est aussi un nom" in read(html).text
    assert "Camille LAVAL" in read(html).text  # stored in capitals, shown as written
    # "martin laval" is Camille MARTIN of Laval: nobody is named Martin LAVAL
    html = site.get("/", q="martin laval").text
    assert people(html) == [world.PEOPLE[3][0]]
    assert "aussi un nom" not in read(html).text


def test_a_box_of_the_service_in_the_city_comes_before_names_holding_the_city(site) -> None:  # type: ignore[no-untyped-def]
    """"radiologie norval": the city word reads as a city. The radiology box of a clinic of Norval
    comes before a hospital named after Norval elsewhere (with such a box too), and before a
    radiology practice of Norval publishing none; Norval before La Norval, unless "la" is typed."""
    with site.store.write() as conn:
        named_elsewhere = _hospital(conn, 1, "CENTRE HOSPITALIER DE NORVAL", "Quinois", "Radiologie")
        clinic = _hospital(conn, 2, "CLINIQUE DU PARC", "Norval", "Radiologie")
        practice = _hospital(conn, 3, "CABINET DE RADIOLOGIE DU LAC", "Norval", "")
        la_norval = _hospital(conn, 4, "CLINIQUE DES LILAS", "La Norval", "Radiologie")
    words.SERVICES.clear()
    html = site.get("/", q="radiologie norval").text
    found = structures(html)
    assert found[:2] == [clinic, la_norval], found
    assert found.index(clinic) < found.index(named_elsewhere) and found.index(clinic) < found.index(practice), found
    assert f'href="mailto:{box_address("Radiologie", 2)}"' in html  # the box asked, shown
    found = structures(site.get("/", q="radiologie la norval").text)
    assert found[:2] == [la_norval, clinic], found


def test_a_name_the_words_say_entirely_comes_before_a_box_of_the_city(site) -> None:  # type: ignore[no-untyped-def]
    """"centre dentaire norval": CENTRE DENTAIRE DE NORVAL (no box) is what the words name; the
    health centre of Norval with a "Centre dentaire" box follows it, before a dental centre of
    Norval named otherwise, publishing none."""
    with site.store.write() as conn:
        health_centre = _hospital(conn, 1, "CENTRE DE SANTE MUNICIPAL", "Norval", "Centre dentaire")
        dental = _hospital(conn, 2, "CENTRE DENTAIRE DE NORVAL", "Norval", "")
        other = _hospital(conn, 3, "CENTRE DENTAIRE DU PORT", "Norval", "")
    words.SERVICES.clear()
    found = structures(site.get("/", q="centre dentaire norval").text)
    assert found == [dental, health_centre, other], found


def test_a_word_held_nowhere_has_its_corrections_searched_first(site) -> None:  # type: ignore[no-untyped-def]
    """A typo'd word held nowhere, not even inside a name, is corrected before the box is searched
    (which would find nothing); an unknown word that ends a family name of two words, a trade in
    the plural, a piece of a structure's name are held somewhere: the box is searched as typed."""
    from annuaire.store.schema import activity, person
    from annuaire.web import suggest

    common = {"version": 1, "last_updated": world.NOW, "digest": 0, "active": True}
    anne = "810000000103"
    with site.store.write() as conn:
        conn.execute(insert(person), {
            **common, "id": 51, "id_nat": anne, "id_type": "8", "id_pp": anne[1:], "first_name": "ANNE",
            "last_name": "TESNIOL-VEROTOY", "first_name_key": "anne", "last_name_key": "tesniol verotoy",
            "profession_code": "60", "profession_label": "Infirmier", "category_code": "C", "category_label": "Civil",
        })
        conn.execute(insert(activity), {
            **common, "id": 51, "key": f"{anne}|{world.STRUCTURES[2][0]}|1", "person_id": 51,
            "structure_id": 3, "profession_code": "60", "profession_label": "Infirmier", "mode_label": "Salarié",
        })
    with site.store.read() as conn:
        assert not suggest.absent(conn, ["anne", "tesniol", "verotoy"], 2)  # ("verotoy" begins no name)
        assert not suggest.absent(conn, ["cardiologues"], 0)
        assert not suggest.absent(conn, ["exemple"], 0)  # CENTRE HOSPITALIER D'EXEMPLEVILLE
        assert suggest.absent(conn, ["anne", "tesniol", "verotoz"], 2)
    html = site.get("/", q="anne tesniol verotoy").text
    assert people(html) == [anne] and "Aucun résultat" not in read(html).text
    html = site.get("/", q="anne tesniol verotoz").text
    assert people(html) == [anne]
    assert "Aucun résultat pour « anne tesniol verotoz »" in read(html).text


def test_a_typo_in_a_family_name_is_corrected_to_the_one_borne_with_the_first_name(site) -> None:  # type: ignore[no-untyped-def]
    """"helene duponr": DUPOND and DUPONT are both one letter away and borne once each (DUPOND
    sorts first), but only DUPONT is borne by a Hélène: it is the first correction, its
    page is shown; a city typed with it is read from the store in the same answer."""
    from annuaire.web import memo, search, suggest

    helene = world.PEOPLE[1][0]
    with site.store.read() as conn:
        assert suggest.corrections(conn, "helene duponr")[:2] == ["helene dupont", "helene dupond"]
        with memo.answering():
            search.read_cities(conn, ["lyon", "laval", "nulle part"])
            assert [search.city_label(conn, k) for k in ("lyon", "laval", "nulle part")] == ["Lyon", "Laval", None]
    html = site.get("/", q="helene duponr").text
    assert people(html)[0] == helene
    assert "Résultats pour « helene dupont »" in read(html).text
    html = site.get("/", q="helene duponr lyon").text
    assert people(html) == [helene]


def test_a_box_published_after_a_search_is_found_by_the_next(site) -> None:  # type: ignore[no-untyped-def]
    """The structures showing ORG/APP boxes are read with the boxes' vocabulary (once an hour),
    and again as soon as a structure or a box is added: a new clinic's box is found at once."""
    with site.store.write() as conn:
        first = _hospital(conn, 1, "CENTRE HOSPITALIER DU PORT", "Norval", "Pédiatrie")
    words.SERVICES.clear()
    assert first in structures(site.get("/", q="pediatrie norval").text)
    with site.store.write() as conn:
        second = _hospital(conn, 2, "CLINIQUE DES PINS", "Norval", "Pédiatrie")
    found = structures(site.get("/", q="pediatrie norval").text)
    assert first in found and second in found, found


def test_a_structure_moved_after_a_search_is_found_in_its_new_town(site) -> None:  # type: ignore[no-untyped-def]
    """The names and cities searched with a service word are kept in memory with the boxes'
    vocabulary, and read again as soon as a structure changes: never a town it has left."""
    with site.store.write() as conn:
        moved = _hospital(conn, 1, "CENTRE HOSPITALIER DU PORT", "Norval", "Pédiatrie")
    words.SERVICES.clear()
    assert moved in structures(site.get("/", q="pediatrie norval").text)
    with site.store.write() as conn:
        conn.execute(update(structure).where(structure.c.tech_id == moved).values(
            commune_label="Quintel", city_key="quintel", version=2, last_updated="2026-02-01T00:00:00.000000Z",
        ))
    assert moved in structures(site.get("/", q="pediatrie quintel").text)
    assert moved not in structures(site.get("/", q="pediatrie norval").text)


def test_the_structures_showing_boxes_are_named_in_memory_as_the_trigram_index_names_them(site) -> None:  # type: ignore[no-untyped-def]
    """Service + town questions search the names and cities of the structures showing ORG/APP
    boxes in memory (`words.SERVICES.named`): the same structures as the trigram index finds,
    for whole words, pieces inside words, several terms, a structure showing no box left out."""
    with site.store.write() as conn:
        _hospital(conn, 1, "CENTRE HOSPITALIER DU PORT", "Norval", "Pédiatrie")
        _hospital(conn, 2, "CLINIQUE DES PINS", "Norval", "Cardiologie")
        _hospital(conn, 3, "CLINIQUE DU PORT", "Quintel", "Radiologie")
        _hospital(conn, 4, "CENTRE HOSPITALIER DE NORVAL", "Quintel", "")
    words.SERVICES.clear()
    with site.store.read() as conn:
        showing = words.SERVICES._boxes(conn).showing
        for question in (["norval"], ["orva"], ["port"], ["hospit", "norval"], ["clinique", "quintel"],
                         ["pins", "port"], ["exempleville"], ["nulle", "part"]):
            query = words.terms(question)
            in_memory = words.SERVICES.named(conn, query)
            indexed = words._named(conn, query, [], words.NAME_OR_CITY) or []
            assert in_memory is not None, question
            assert sorted(in_memory) == sorted(c.id for c in indexed if c.id in showing), question


# typed -> found by name or city, found by name only
COMMON_CASES = {"cabinet parc": (True, True), "cabinet parc laval": (True, False), "cabinet bordeaux": (True, False),
                "cabinet lyon": (False, False), "cabinet exempleville": (False, False)}


@pytest.mark.parametrize("typed", list(COMMON_CASES))
@pytest.mark.parametrize("where", [words.NAME_OR_CITY, words.NAME_ONLY])
def test_words_common_in_names_are_checked_on_the_rows_the_other_words_find(store, monkeypatch, typed, where) -> None:  # type: ignore[no-untyped-def]
    """A word in many names ("cabinet": here in two, with COMMON lowered to two) is left out of
    the trigram index's query and checked on the rows the other words find: the same structures."""
    world.build(store)
    query = words.terms(search_key(typed).split())
    with store.read() as conn:
        monkeypatch.setattr(words, "COMMON", 10**9)
        whole = words._named(conn, query, [], where)
        monkeypatch.setattr(words, "COMMON", 2)
        split = words._named(conn, query, [], where)
        if contains.fts_tables(conn):
            assert words._split_common(conn, query)[1] == ["cabinet"]
    assert whole is not None and split is not None
    assert sorted(c.id for c in split) == sorted(c.id for c in whole)
    assert bool(whole) == COMMON_CASES[typed][where == words.NAME_ONLY]


def test_a_common_word_stays_in_the_index_when_no_rare_word_would_narrow_it(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """"kine gramont" (a town of many structures): "kine" stands for "kinesitherapie", in as many names;
    checking "gramont" on all their rows cost 670 ms at national scale. No plain rare word: no split."""
    world.build(store)
    monkeypatch.setattr(words, "COMMON", 2)
    with store.read() as conn:
        if not contains.fts_tables(conn):
            pytest.skip("the trigram index's query (SQLite's FTS5)")
        assert words._split_common(conn, words.terms(["cabinet", "kine"])) == (words.terms(["cabinet", "kine"]), [])
        assert words._split_common(conn, words.terms(["cabinet", "parc"]))[1] == ["cabinet"]


def test_when_every_word_is_common_the_most_common_are_checked_on_the_rows_a_narrower_one_finds(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """"cabinet infirmier centre orve" (every word in thousands of names): "cabinet" and "infirmier", in
    tens of thousands, are checked on the rows the others find (26 -> 3 ms at national scale); the
    same structures. Not when none of the others is narrow, nor for two words."""
    world.build(store)
    query = words.terms(["cabinet", "parc", "laval"])
    with store.read() as conn:
        if not contains.fts_tables(conn):
            pytest.skip("the trigram index's query (SQLite's FTS5)")
        whole = words._named(conn, query, [], words.NAME_OR_CITY)
        counts = {t.word: words._frequency(conn, t.word, words.VERY_COMMON) for t in query}
        assert counts["cabinet"] > max(counts["parc"], counts["laval"]) >= 1
        monkeypatch.setattr(words, "COMMON", 1)  # every word common
        monkeypatch.setattr(words, "VERY_COMMON", counts["cabinet"])
        monkeypatch.setattr(plan, "COUNTS", plan.CountCache())
        monkeypatch.setattr(words, "NARROW", min(counts.values()) + 1)
        assert words._split_common(conn, query)[1] == ["cabinet"]
        split = words._named(conn, query, [], words.NAME_OR_CITY)
        assert words._split_common(conn, query[:2]) == (query[:2], [])  # two words: found together
        monkeypatch.setattr(words, "NARROW", min(counts.values()))
        assert words._split_common(conn, query) == (query, [])  # no narrow word: found together
    assert whole is not None and split is not None
    assert sorted(c.id for c in split) == sorted(c.id for c in whole)
