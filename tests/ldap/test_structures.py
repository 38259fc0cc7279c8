"""Mail-client autocomplete reaches organisational boxes (issue 22, item 4), first names as written (item 5).

Typing the first words of a structure's name ("chu beauval", "jalmont") in Thunderbird, Outlook or
Apple Contacts returns that structure's ORG/APP boxes, after the people whose names match, named so
that the box is recognisable ("Secrétariat de cardiologie - CHU DE BEAUVAL"); a word of thousands of
structures' names ("centre") counts its boxes against the bar of selective filters, and the daily allowance counts these answers
like any other. In process (index, planner, matcher, selectivity judge against a brute force) and
through the real server with ldapsearch and ldap3, with the exact filters of spec/ldap.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from ldap_data import TOWN_BOXES, TOWNS, add_named_structures, populate
from ldap_support import HAVE_LDAPSEARCH, SUFFIX, LdapServer, ldapsearch, start_server, stop_server

from annuaire.ldap import messages as m
from annuaire.ldap.directory import MAILBOX_OCS, Directory
from annuaire.ldap.entries import display_values
from annuaire.ldap.filters import compile_filter, parse
from annuaire.ldap.index import DirectoryIndex
from annuaire.ldap.selective import Selectivity

ldap3 = pytest.importorskip("ldap3")

# The filters of spec/ldap.md, for what a user types.
THUNDERBIRD = "(|(cn={v1}*{v2}*)(mail={v1}*{v2}*)(sn={v1}*{v2}*))"  # (|(cn=%v1*%v2-*)(mail=%v1*%v2-*)(sn=%v1*%v2-*))
THUNDERBIRD_ONE = "(|(cn={v}*)(mail={v}*)(sn={v}*))"
THUNDERBIRD_BOOK = "(|(mail=*{v}*)(cn=*{v}*)(givenName=*{v}*)(sn=*{v}*))"
OUTLOOK = "(&(mail=*)(|(mail={v}*)(cn={v}*)(sn={v}*)(givenName={v}*)))"
APPLE = "(|(givenName={v}*)(sn={v}*)(cn={v}*)(mail={v}*))"
APPLE_WORDS = "(&" + APPLE.format(v="{v1}") + APPLE.format(v="{v2}") + ")"  # one group per word typed

SUFFIX_IP = "ou=mailboxes,o=x"
BEAUVAL = {"secretariat.cardio@chu-beauval.fr", "urgences@chu-beauval.fr", "resultats@chu-beauval.fr"}
JALMONT = {"accueil@ch-jalmont.fr", "pediatrie@ch-jalmont.fr"}


def _records() -> list[dict]:
    recs = [
        {"address": "secretariat.cardio@chu-beauval.fr", "type": "ORG", "service": "Cardiologie",
         "description": "Secrétariat de cardiologie", "structure_name": "CHU DE BEAUVAL"},
        {"address": "urgences@chu-beauval.fr", "type": "ORG", "service": "Urgences", "structure_name": "CHU DE BEAUVAL"},
        {"address": "resultats@chu-beauval.fr", "type": "APP", "description": "Résultats de laboratoire",
         "structure_name": "CHU DE BEAUVAL"},
        {"address": "accueil@ch-jalmont.fr", "type": "ORG", "service": "Accueil",
         "structure_name": "CENTRE HOSPITALIER DE JALMONT"},
        {"address": "pediatrie@ch-jalmont.fr", "type": "ORG", "service": "Pédiatrie",
         "structure_name": "CENTRE HOSPITALIER DE JALMONT"},
        # People attached to those structures are found by their names only.
        {"address": "benedicte.marchand@chu-beauval.fr", "type": "PER", "first_name": "BÉNÉDICTE",
         "last_name": "MARCHAND", "structure_name": "CHU DE BEAUVAL", "civilite_exercice_code": "DR"},
        {"address": "jp.jalmont@medecin.fr", "type": "PER", "first_name": "JEAN-PIERRE", "last_name": "JALMONT"},
        {"address": "chuck.beauvallon@medecin.fr", "type": "PER", "first_name": "Chuck", "last_name": "BEAUVALLON"},
        {"address": "cab.dupont@medecin.fr", "type": "CAB", "first_name": "Jean", "last_name": "DUPONT",
         "structure_name": "CHU DE BEAUVAL"},
    ]
    for town in TOWNS:
        recs += [{"address": f"c{i}@cds-{town.lower()}.fr", "type": "ORG", "service": f"Consultation {i}",
                  "structure_name": f"CENTRE DE SANTE MUNICIPAL DE {town}"} for i in range(TOWN_BOXES)]
    return recs


@pytest.fixture(scope="module")
def index() -> DirectoryIndex:
    return DirectoryIndex.build(_records(), SUFFIX_IP)


def _answer(index: DirectoryIndex, text: str, *, threshold: int = 10**6) -> list[str] | Exception:
    """The addresses answered, in order (the planner's walk, verified) and checked against the brute force."""
    f = parse(text)
    broad = Selectivity(index, threshold, 3).broad(f)
    if broad is not None:
        return ValueError(broad)
    plan = index.plan(f, 3)
    assert plan is not None and plan.restricting, text
    matcher = compile_filter(f, MAILBOX_OCS)
    got = [index.entries[e][0][1] for e in index.candidates(plan) if matcher(index.entries[e][0]) is True]
    brute = {e[0][1] for e in index.entries if e is not None and matcher(e[0]) is True}
    assert set(got) == brute and len(got) == len(brute), text  # complete, each once
    return got


# --- display values -----------------------------------------------------------------------------------


def test_boxes_are_named_by_service_and_structure() -> None:
    recs = {r["address"]: r for r in _records()}
    v = display_values(recs["secretariat.cardio@chu-beauval.fr"])
    assert v["cn"] == v["sn"] == "Secrétariat de cardiologie - CHU DE BEAUVAL"
    assert v["displayName"] == "Cardiologie - CHU DE BEAUVAL"  # (spec/ldap.md: service - structure)
    assert v["o"] == "CHU DE BEAUVAL" and v["ou"] == "Cardiologie" and v["description"] == "Secrétariat de cardiologie"
    assert display_values(recs["urgences@chu-beauval.fr"])["displayName"] == "Urgences - CHU DE BEAUVAL"
    alone = display_values({"address": "contact@x.fr", "type": "ORG", "service": "Accueil"})
    assert alone["cn"] == alone["displayName"] == "Accueil"
    nameless = display_values({"address": "contact@x.fr", "type": "ORG", "structure_name": "EHPAD LES MIMOSAS"})
    assert nameless["cn"] == "EHPAD LES MIMOSAS"
    assert display_values({"address": "contact@x.fr", "type": "APP"})["cn"] == "contact"
    # A label that already names the structure (a local contact's display name) is not repeated.
    for label in ("CH DE LYON", "Cardiologie - CH de Lyon"):
        v = display_values({"address": "c@x.fr", "type": "ORG", "description": label, "structure_name": "CH DE LYON"})
        assert v["cn"] == label
    assert display_values({"address": "c@x.fr", "type": "ORG", "service": "Chirurgie", "structure_name": "CH"})["cn"] \
        == "Chirurgie - CH"


def test_first_names_are_shown_as_written_and_stored_as_received() -> None:
    rec = {"address": "jp@x.fr", "type": "PER", "first_name": "JEAN-PIERRE", "last_name": "Jalmont",
           "civilite_exercice_code": "DR", "profession_label": "Médecin"}
    v = display_values(rec)
    assert v["givenName"] == "Jean-Pierre" and v["cn"] == "Jean-Pierre JALMONT" and v["sn"] == "Jalmont"
    assert v["displayName"] == "Dr Jean-Pierre JALMONT (Médecin)"
    assert rec["first_name"] == "JEAN-PIERRE"  # the record (the store's values) is not changed
    assert display_values({**rec, "first_name": "BÉNÉDICTE"})["givenName"] == "Bénédicte"
    assert display_values({**rec, "first_name": "McKenzie"})["givenName"] == "McKenzie"  # mixed case: as written
    # Matching ignores case: the capitals typed, or not, find the same entry.
    index = DirectoryIndex.build([rec], SUFFIX_IP)
    for text in ("(givenName=JEAN-PIERRE)", "(givenName=jean-pierre)", "(cn=jean-pierre jal*)"):
        assert _answer(index, text) == ["jp@x.fr"], text


# --- in process: every client's filter, complete and ordered ----------------------------------------------


@pytest.mark.parametrize("text", [
    THUNDERBIRD.format(v1="chu", v2="beauval"), OUTLOOK.format(v="chu beauval"), OUTLOOK.format(v="chu de beauval"),
    APPLE.format(v="chu beauval"), APPLE_WORDS.format(v1="chu", v2="beauval"), THUNDERBIRD.format(v1="beauval", v2=""),
    THUNDERBIRD_ONE.format(v="beauval"), THUNDERBIRD_ONE.format(v="CHU de Beauval"),
])
def test_a_structures_words_find_its_boxes(index: DirectoryIndex, text: str) -> None:
    got = _answer(index, text)
    assert isinstance(got, list)
    boxes = [a for a in got if a in BEAUVAL]
    assert set(boxes) == BEAUVAL, text
    # Never the people of the structure; people are there only when their own names match.
    assert "benedicte.marchand@chu-beauval.fr" not in got and "cab.dupont@medecin.fr" not in got
    assert set(got) - BEAUVAL <= {"chuck.beauvallon@medecin.fr"}


def test_people_whose_names_match_come_first(index: DirectoryIndex) -> None:
    for text in (THUNDERBIRD_ONE.format(v="jalmont"), APPLE.format(v="jalmont"), OUTLOOK.format(v="jalmont")):
        got = _answer(index, text)
        assert isinstance(got, list) and got[0] == "jp.jalmont@medecin.fr" and set(got[1:]) == JALMONT, text
    # "beauval": the person named BEAUVALLON before the boxes of the CHU DE BEAUVAL.
    got = _answer(index, THUNDERBIRD_ONE.format(v="beauval"))
    assert got[0] == "chuck.beauvallon@medecin.fr" and set(got[1:]) == BEAUVAL


@pytest.mark.parametrize(("text", "want"), [
    ("(cn=hospitalier de jalmont*)", JALMONT),  # from a middle word, articles left out
    ("(cn=hospitalier jalmont*)", JALMONT),
    ("(cn=jalmont*pedia*)", {"pediatrie@ch-jalmont.fr"}),  # structure, then service
    ("(cn=pediatrie*jalmont*)", {"pediatrie@ch-jalmont.fr"}),  # service, then structure
    ("(sn=secretariat*cardio*)", {"secretariat.cardio@chu-beauval.fr"}),
    ("(cn=cardiologie chu*)", {"secretariat.cardio@chu-beauval.fr"}),
    ("(cn=*beauval*)", BEAUVAL | {"chuck.beauvallon@medecin.fr"}),  # contains: as before
    ("(cn=chu beauval)", set()),  # equality compares the whole name
    ("(cn=chu*lyon*)", set()),
    ("(cn=mont*)", set()),  # a word's start, not its middle (jalMONT)
    ("(o=chu*)", None),  # o alone does not let a search through (unchanged)
])
def test_name_word_matching_rules(index: DirectoryIndex, text: str, want: set[str] | None) -> None:
    if want is None:
        assert index.plan(parse(text), 3) is None or not index.plan(parse(text), 3).restricting  # type: ignore[union-attr]
        return
    got = _answer(index, text)
    assert isinstance(got, list) and set(got) == want, (text, got)


def test_changes_reach_the_name_words(index: DirectoryIndex) -> None:
    local = DirectoryIndex.build(_records(), SUFFIX_IP)
    local.upsert({"address": "maternite@ch-jalmont.fr", "type": "ORG", "service": "Maternité",
                  "structure_name": "CENTRE HOSPITALIER DE JALMONT"}, SUFFIX_IP)
    assert "maternite@ch-jalmont.fr" in _answer(local, THUNDERBIRD_ONE.format(v="jalmont"))  # type: ignore[operator]
    local.upsert({"address": "accueil@ch-jalmont.fr", "type": "ORG", "service": "Accueil",
                  "structure_name": "HOPITAL DE VERNEUIL"}, SUFFIX_IP)  # moved
    local.remove("pediatrie@ch-jalmont.fr")
    assert _answer(local, THUNDERBIRD_ONE.format(v="jalmont")) == ["jp.jalmont@medecin.fr", "maternite@ch-jalmont.fr"]
    assert _answer(local, THUNDERBIRD_ONE.format(v="verneuil")) == ["accueil@ch-jalmont.fr"]


# --- selectivity: a structure word is selective only when specific ---------------------------------------


def test_a_word_of_many_structures_is_unselective(index: DirectoryIndex) -> None:
    limit = TOWN_BOXES * 3  # the bar: a component reaching more entries than this is not selective
    for v in ("centre", "sante", "municipal", "cen"):
        broad = _answer(index, THUNDERBIRD_ONE.format(v=v), threshold=limit)
        assert isinstance(broad, ValueError), v
        assert broad.args[0].boxes and broad.args[0].count >= len(TOWNS) * TOWN_BOXES, v
    # One town's word, or the generic words narrowed by another one, are.
    for text in (THUNDERBIRD_ONE.format(v="aubrac"), THUNDERBIRD.format(v1="centre", v2="aubrac"),
                 OUTLOOK.format(v="centre de sante municipal de falicon"), APPLE_WORDS.format(v1="sante", v2="dormelles"),
                 THUNDERBIRD.format(v1="chu", v2="beauval"), THUNDERBIRD_ONE.format(v="jalmont")):
        got = _answer(index, text, threshold=limit)
        assert isinstance(got, list) and got, text
    assert len(_answer(index, THUNDERBIRD.format(v1="centre", v2="aubrac"))) == TOWN_BOXES  # type: ignore[arg-type]
    # The judge counts boxes, not keys (a box has several keys starting with a word of both its names).
    all_boxes = len(TOWNS) * TOWN_BOXES
    exact = _answer(index, THUNDERBIRD_ONE.format(v="municipal"), threshold=all_boxes)
    assert isinstance(exact, list) and len(exact) == all_boxes
    assert isinstance(_answer(index, THUNDERBIRD_ONE.format(v="municipal"), threshold=all_boxes - 1), ValueError)
    # People and boxes count together: "jalmont" reaches one person and two boxes.
    assert isinstance(_answer(index, APPLE.format(v="jalmont"), threshold=3), list)
    assert isinstance(_answer(index, APPLE.format(v="jalmont"), threshold=2), ValueError)
    # The rules that were there still hold, whatever the structure words.
    for text in ("(|(cn=chu*beauval*)(mail=*.mssante.fr))", "(mail=*@chu-beauval.fr)"):
        assert isinstance(_answer(index, text), ValueError), text


def test_the_configured_bar_and_the_refusal_message(index: DirectoryIndex) -> None:
    req = m.SearchRequest(SUFFIX_IP, 2, 0, 0, 0, False, parse(THUNDERBIRD_ONE.format(v="centre")), ["mail"])
    # A small directory's default bar (1,000 entries) lets 212 boxes through, cut by the size limit.
    found = Directory(index, "o=x").collect(req, 100, time.monotonic() + 10)
    assert found.error is None and len(found.refs) == 100 and found.more
    directory = Directory(index, "o=x", unselective_share=0.5, unselective_floor=0)  # 109 entries here
    found = directory.collect(req, 100, time.monotonic() + 10)
    assert found.error is not None and found.error.code == m.UNWILLING_TO_PERFORM and not found.refs
    text = found.error.message
    assert f"début d'un mot du nom de {len(TOWNS) * TOWN_BOXES + 2} boîtes organisationnelles" in text
    assert f"the start of a word of {len(TOWNS) * TOWN_BOXES + 2} organisational boxes' names" in text
    req = m.SearchRequest(SUFFIX_IP, 2, 0, 0, 0, False, parse(THUNDERBIRD_ONE.format(v="jalmont")), ["mail"])
    found = directory.collect(req, 100, time.monotonic() + 10)
    assert found.error is None and len(found.refs) == 3


# --- through the real server, with ldapsearch and ldap3 ---------------------------------------------------

ALLOWANCE = 100  # distinct entries per network and day on this server


@pytest.fixture(scope="module")
def named_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LdapServer, dict[str, set[str]]]]:
    from annuaire.store import open_store

    tmp = tmp_path_factory.mktemp("ldap-structures")
    url = f"sqlite:///{tmp / 'world.sqlite'}"
    store = open_store(url)
    world = populate(store)
    groups = add_named_structures(store, world)
    store.dispose()
    server = start_server(url, tmp, world, tls=False, workers=2, limits={
        "daily_share": 0, "daily_floor": ALLOWANCE, "unselective_share": 0.3, "unselective_floor": 0})
    try:
        yield server, groups
    finally:
        stop_server(server)


needs_ldapsearch = pytest.mark.skipif(not HAVE_LDAPSEARCH, reason="ldap-utils not installed")


@needs_ldapsearch
@pytest.mark.parametrize("text", [
    THUNDERBIRD.format(v1="chu", v2="beauval"), OUTLOOK.format(v="chu beauval"), APPLE.format(v="chu de beauval"),
    APPLE_WORDS.format(v1="chu", v2="beauval"),
])
def test_clients_find_a_hospitals_boxes(named_server, text: str) -> None:  # type: ignore[no-untyped-def]
    server, groups = named_server
    r = ldapsearch(server.uri, text, "cn", "displayName", "sn", "givenName", "o", "mail")
    assert r.rc == 0, r.stderr
    assert set(r.mails) == groups["beauval"]  # the published boxes: not the liste rouge one, not the doctor
    shown = {e["mail"][0]: (e["cn"], e["displayName"], e["sn"], e.get("givenName")) for e in r.entries}
    name = ["Secrétariat de cardiologie - CHU DE BEAUVAL"]
    assert shown["secretariat.cardio@chu-beauval.mssante.fr"] == (name, ["Cardiologie - CHU DE BEAUVAL"], name, None)


@needs_ldapsearch
def test_people_first_then_boxes_and_the_size_limit(named_server) -> None:  # type: ignore[no-untyped-def]
    server, groups = named_server
    r = ldapsearch(server.uri, APPLE.format(v="jalmont"), "cn", "givenName", "displayName", "mail")
    assert r.rc == 0, r.stderr
    assert r.mails[0] == "jean-pierre.jalmont@medecin.mssante.fr" and set(r.mails[1:]) == groups["jalmont"]
    person = r.entries[0]
    assert person["givenName"] == ["Jean-Pierre"] and person["cn"] == ["Jean-Pierre JALMONT"]  # as people write it
    assert person["displayName"] == ["Dr Jean-Pierre JALMONT (Médecin)"]
    cut = ldapsearch(server.uri, THUNDERBIRD_ONE.format(v="jalmont"), "mail", options=("-z", "1"))
    assert cut.rc == 4 and cut.mails == ["jean-pierre.jalmont@medecin.mssante.fr"]  # sizeLimitExceeded
    by_name = ldapsearch(server.uri, "(mail=benedicte.marchand@chu-beauval.mssante.fr)", "givenName", "cn")
    assert by_name.entries[0]["givenName"] == ["Bénédicte"] and by_name.entries[0]["cn"] == ["Bénédicte MARCHAND"]


@needs_ldapsearch
def test_a_word_of_many_structures_is_refused(named_server) -> None:  # type: ignore[no-untyped-def]
    server, _ = named_server
    r = ldapsearch(server.uri, THUNDERBIRD_ONE.format(v="centre"), "mail")
    assert r.rc == 53 and not r.mails
    assert "boîtes organisationnelles" in r.stderr + r.stdout and "organisational boxes" in r.stderr + r.stdout
    narrowed = ldapsearch(server.uri, THUNDERBIRD.format(v1="centre", v2="aubrac"), "mail")
    assert narrowed.rc == 0 and len(narrowed.mails) == TOWN_BOXES


def test_ldap3_outlook_and_the_daily_allowance(named_server) -> None:  # type: ignore[no-untyped-def]
    server, groups = named_server
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE), auto_bind=True)
    conn.search(SUFFIX, OUTLOOK.format(v="jalmont"), attributes=["cn", "displayName", "mail"], size_limit=10)
    got = [e.mail.value for e in conn.entries]
    assert got[0] == "jean-pierre.jalmont@medecin.mssante.fr" and set(got[1:]) == groups["jalmont"]
    names = {e.mail.value: e.displayName.value for e in conn.entries}
    assert names["pediatrie@ch-jalmont.mssante.fr"] == "Pédiatrie - CENTRE HOSPITALIER DE JALMONT"
    conn.unbind()
    # Answers found by structure words are charged like any other: another network, town after town,
    # gets ALLOWANCE distinct entries in the day and no more.
    source = ("127.0.23.5", 0)
    received: set[str] = set()
    codes = []
    for town in TOWNS:
        c = ldap3.Connection(ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE), auto_bind=True,
                             source_address=source[0], source_port=source[1])
        c.search(SUFFIX, THUNDERBIRD_ONE.format(v=town.lower()), attributes=["mail"])
        received.update(e.mail.value for e in c.entries)
        codes.append(c.result["result"])
        c.unbind()
    assert codes[:3] == [0, 0, 0] and codes[3:] == [11] * (len(TOWNS) - 3)  # adminLimitExceeded
    assert len(received) == ALLOWANCE and received <= groups["towns"]
