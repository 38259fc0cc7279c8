"""The search page, detail pages and help page, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import insert

from annuaire.store.keys import search_key
from annuaire.store.schema import person
from tests.web import world
from tests.web.pagetools import people, read, structures

BENEDICTE, HELENE, JEAN_PIERRE, CAMILLE, ZOE, GASTON, ROSE, NOEMIE = (p[0] for p in world.PEOPLE)
CH, CABINET_33, CABINET_LAVAL = (s[0] for s in world.STRUCTURES)


def found(site, **params: str) -> list[str]:
    response = site.get("/", **params)
    assert response.status_code == 200, response.text
    return people(response.text)


def test_home_page_is_french_accessible_and_links_the_other_interfaces(site) -> None:
    response = site.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = read(response.text)
    assert page.html_lang == "fr"
    assert "width=device-width" in page.metas["viewport"]
    assert page.controls, "the search form has controls"
    for tag, control_id in page.controls:
        assert control_id in page.label_for, f"{tag}#{control_id} has no <label for>"
    assert "#contenu" in page.links, "skip link"
    assert [h for h in page.headings if h[0] == "h1"]
    # LDAP address book parameters come from the running server's Settings.
    assert "annuaire.exemple.test" in page.text
    assert "3389" in page.text
    assert "o=annuaire-test,c=fr" in page.text
    assert "/extractions/" in page.links
    assert "/aide" in page.links


def test_help_page_explains_the_ldap_address_book_and_the_extractions(site) -> None:
    response = site.get("/aide")
    assert response.status_code == 200
    page = read(response.text)
    for expected in ("Thunderbird", "Outlook", "annuaire.exemple.test", "3389", "o=annuaire-test,c=fr",
                     "ou=mailboxes,o=annuaire-test,c=fr", "Extraction_Correspondance_MSSante", "PS_LibreAcces"):
        assert expected in page.text, expected
    assert "/extractions/" in page.links


def test_names_match_without_accents_or_case(site) -> None:
    for q in ("benedicte", "Bénédicte", "BENEDICTE", "lefevre", "Lefèvre", "LEFÈVRE", "lef",
              "bénédicte lefèvre", "lefevre benedicte", "Lefèvre Bénédicte"):
        assert found(site, q=q) == [BENEDICTE], q


def test_name_prefixes_compound_names_and_both_orders(site) -> None:
    assert found(site, q="dupont") == [HELENE, ZOE]  # DUPONT, DUPONTEL; not the inactive DUPOND
    assert found(site, q="dupon") == [HELENE, ZOE]
    # The inactive DUPOND is never found: "dupond" finds nobody, so its nearest correction is shown.
    assert "810000000066" not in found(site, q="dupond")
    assert "Aucun résultat pour « dupond »" in site.get("/", q="dupond").text
    for q in ("le goff", "Le Goff", "le-goff", "jean-pierre le goff", "le goff jean", "jean pierre le goff"):
        assert found(site, q=q) == [JEAN_PIERRE], q
    assert found(site, q="helene dupont") == [HELENE]
    assert found(site, q="zoe dupont") == [ZOE]  # first name 'zoé' + family prefix 'dupont'


def test_professions_and_savoir_faire_are_read_from_the_box(site) -> None:
    assert found(site, q="cardiologue") == [BENEDICTE]
    assert found(site, q="Cardiologie") == [BENEDICTE]
    assert found(site, q="infirmière") == [HELENE]
    assert found(site, q="infirmiers") == [HELENE]
    assert found(site, q="médecin généraliste") == [JEAN_PIERRE]
    assert found(site, q="kiné") == [CAMILLE]
    assert set(found(site, q="médecin")) == {BENEDICTE, JEAN_PIERRE, NOEMIE}
    page = read(site.get("/", q="cardiologue").text)
    assert "Savoir-faire" in page.text and "Cardiologie et Maladies vasculaires" in page.text


def test_places_are_read_from_the_box(site) -> None:
    assert found(site, q="médecin 33") == [JEAN_PIERRE, BENEDICTE]  # "le goff" < "lefevre"
    assert found(site, q="médecins gironde") == [JEAN_PIERRE, BENEDICTE]
    assert found(site, q="infirmière lyon") == [HELENE]  # Lyon = its numbered districts too
    assert found(site, q="Bordeaux") == [ZOE, ROSE, JEAN_PIERRE, BENEDICTE]
    assert found(site, q="33000") == [ZOE, ROSE, JEAN_PIERRE, BENEDICTE]
    assert found(site, q="69") == [HELENE, BENEDICTE, NOEMIE]


def test_a_place_that_is_also_a_family_name_reads_as_a_name(site) -> None:
    # Rose LAVAL works in Bordeaux; Camille MARTIN works in the city of Laval.
    assert found(site, q="laval") == [ROSE]
    assert found(site, q="martin laval") == [CAMILLE]
    # "Chercher … comme un nom" reads the whole box as a name.
    page = read(site.get("/", q="martin laval").text)
    link = next(h for h in page.links if "comme=nom" in h)
    assert found(site, q="martin laval", comme="nom") == []
    assert link.startswith("/?") and "q=martin+laval" in link
    # Nobody named Rose works in Laval: the box is then read as a name, and the page says so.
    response = site.get("/", q="rose laval")
    assert people(response.text) == [ROSE]
    assert "comme un nom" in read(response.text).text


def test_mailbox_addresses(site) -> None:
    assert found(site, q="benedicte.lefevre@medecin.mssante.fr") == [BENEDICTE]
    assert found(site, q="Benedicte.Lefevre@medecin.mssante.fr") == [BENEDICTE]
    assert found(site, q="benedicte.lef") == [BENEDICTE]  # no "@": read as the name "benedicte lef"
    assert found(site, q="benedicte.lef@") == []
    assert found(site, q="lefevre@") == [BENEDICTE]  # a part of an address (trigram index)
    assert found(site, q="@medecin.mssante.fr") == [JEAN_PIERRE, BENEDICTE]  # domain; no liste rouge, no inactive
    assert found(site, q="@ch-exempleville.mssante.fr") == [BENEDICTE]
    # Organisational boxes are found through their structure.
    text = site.get("/", q="secretariat.cardio@ch-exempleville.mssante.fr").text
    assert structures(text) == [CH]
    assert "secretariat.cardio@ch-exempleville.mssante.fr" in read(text).copy_buttons
    assert found(site, q="noemie.secrete@medecin.mssante.fr") == []  # liste rouge


def test_filters_and_mailbox_types(site) -> None:
    assert found(site, profession="60") == [HELENE]
    assert found(site, departement="53") == [CAMILLE]
    assert found(site, savoir_faire="SM04") == [BENEDICTE]
    assert found(site, q="dupont", profession="21") == [ZOE]
    assert found(site, type="CAB") == [JEAN_PIERRE]
    assert found(site, type="PER", departement="33") == [ZOE, JEAN_PIERRE, BENEDICTE]
    assert found(site, q="médecin", departement="69") == [BENEDICTE, NOEMIE]
    # ORG / APP list structures with such boxes.
    text = site.get("/", type="ORG").text
    assert structures(text) == [CH] and people(text) == []
    assert "secretariat.cardio@ch-exempleville.mssante.fr" in read(text).copy_buttons
    assert "dmp@ch-exempleville.mssante.fr" in read(site.get("/", type="APP").text).copy_buttons
    assert structures(site.get("/", type="ORG", departement="33").text) == []


def test_results_show_profession_specialty_structures_and_addresses(site) -> None:
    html = site.get("/", q="lefevre").text
    page = read(html)
    assert "Dr Bénédicte LEFÈVRE" in page.text
    assert "Médecin" in page.text and "Cardiologie et Maladies vasculaires" in page.text
    assert "CENTRE HOSPITALIER D'EXEMPLEVILLE" in page.text and "Bordeaux" in page.text
    assert page.copy_buttons == ["b.lefevre@ch-exempleville.mssante.fr", "benedicte.lefevre@medecin.mssante.fr"]
    assert structures(html) == [CH, CABINET_33]


def test_pages_are_shareable_get_urls(site) -> None:
    with site.store.write() as conn:
        conn.execute(
            insert(person),
            [
                {
                    "id": 1000 + i, "id_nat": f"8200000{i:05d}", "id_type": "8", "id_pp": f"200000{i:05d}",
                    "first_name": f"Prénom{i:02d}", "last_name": "TESTEUR", "profession_code": "10",
                    "profession_label": "Médecin", "last_name_key": "testeur",
                    "first_name_key": search_key(f"Prénom{i:02d}"), "active": True, "version": 1,
                    "last_updated": world.NOW, "digest": 0,
                }
                for i in range(45)
            ],
        )
    first = site.get("/", q="Testeur", profession="10")
    ids = people(first.text)
    assert ids == [f"8200000{i:05d}" for i in range(20)]
    links = read(first.text).links
    assert "/?q=Testeur&profession=10&page=2" in links
    second = site.get("/", q="Testeur", profession="10", page="2")
    assert people(second.text) == [f"8200000{i:05d}" for i in range(20, 40)]
    assert "/?q=Testeur&profession=10" in read(second.text).links  # back to page 1
    third = site.get("/", q="Testeur", profession="10", page="3")
    assert people(third.text) == [f"8200000{i:05d}" for i in range(40, 45)]
    assert not any("page=4" in h for h in read(third.text).links)
    assert '<ol class="result-list" start="41">' in third.text


def test_bad_parameters_get_a_clear_french_error(site) -> None:
    cases = {
        (("page", "abc"),): "« page »",
        (("page", "51"),): "de 1 à 50",
        (("departement", "XX"),): "« departement » : « XX »",
        (("type", "FOO"),): "PER, CAB, ORG ou APP",
        (("profession", "999"),): "« profession »",
        (("q", "x" * 201),): "200 caractères",
    }
    for params, expected in cases.items():
        response = site.get("/", **dict(params))
        assert response.status_code == 400, params
        assert expected in read(response.text).text, (params, read(response.text).text)
    assert site.get("/", departement="2a").status_code == 200  # codes are case-insensitive


def test_professional_page(site) -> None:
    response = site.get(f"/pro/{JEAN_PIERRE}")
    assert response.status_code == 200
    page = read(response.text)
    assert ("h1", "Dr Jean-Pierre LE GOFF") in page.headings
    assert page.copy_buttons == ["jean-pierre.le-goff@medecin.mssante.fr", "cabinet.legoff@medecin.mssante.fr"]
    assert "Secrétariat du cabinet" in page.text
    assert "CABINET <b>TEST</b> & ASSOCIES" in page.text and "3 AVENUE DES TILLEULS" in page.text
    assert "33000 Bordeaux" in page.text and "Titulaire de cabinet" in page.text
    assert "Médecine générale" in page.text
    assert f"/structure/{CABINET_33}" in page.links


def test_structure_page_lists_its_boxes_and_professionals(site) -> None:
    response = site.get(f"/structure/{CH}")
    assert response.status_code == 200
    page = read(response.text)
    assert ("h1", "CENTRE HOSPITALIER D'EXEMPLEVILLE") in page.headings
    assert "secretariat.cardio@ch-exempleville.mssante.fr" in page.copy_buttons
    assert "dmp@ch-exempleville.mssante.fr" in page.copy_buttons
    assert "Secrétariat de cardiologie" in page.text and "Cardiologie" in page.text
    assert people(response.text) == [HELENE, BENEDICTE, NOEMIE]  # name order; not the inactive DUPOND
    assert "990000019" in page.text  # FINESS


def test_unknown_or_inactive_records_are_not_found(site) -> None:
    for path in (f"/pro/{GASTON}", "/pro/899999999999", "/structure/F000000000"):
        response = site.get(path)
        assert response.status_code == 404, path
        assert "Page introuvable" in response.text
    assert site.get("/pro/%3Cscript%3E").status_code == 404


def test_private_data_is_never_shown(site) -> None:
    """Crawl every page reachable from a few searches: no liste rouge, responsible or tombstone."""
    hidden_boxes = [b[0] for b in world.BOXES if b[7] or not b[8]] + ["gaston.dupond@medecin.mssante.fr"]
    seen: set[str] = set()
    queue = ["/", "/aide", "/?q=dupon", "/?q=m%C3%A9decin", "/?type=ORG", "/?type=APP",
             "/?q=%40medecin.mssante.fr", "/?q=%40ch-exempleville.mssante.fr", "/?q=secrete"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = site.client.get(path)
        assert response.status_code == 200, path
        for secret in [world.RESPONSIBLE, "Gaston", "DUPOND ", *hidden_boxes]:
            assert secret not in response.text, (secret, path)
        queue += [h for h in read(response.text).links if h.startswith(("/pro/", "/structure/"))]
    assert f"/pro/{NOEMIE}" in seen  # she is listed, without her liste rouge box
    assert len(seen) > 12


def test_everything_is_escaped(site) -> None:
    html = site.get(f"/structure/{CABINET_33}").text
    assert "CABINET &lt;b&gt;TEST&lt;/b&gt; &amp; ASSOCIES" in html
    assert "<b>TEST</b>" not in html
    attack = '"><script>alert(1)</script>'
    html = site.get("/", q=attack).text
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    response = site.get("/")
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_assets_are_served(site) -> None:
    css = site.get("/assets/style.css")
    assert css.status_code == 200 and ":focus-visible" in css.text
    js = site.get("/assets/copie.js")
    assert js.status_code == 200 and "navigator.clipboard" in js.text


def test_empty_form_fields_redirect_to_the_short_url(site) -> None:
    response = site.client.get("/?q=dupont&profession=&savoir_faire=&departement=&type=")
    assert response.status_code == 303
    assert response.headers["location"] == "/?q=dupont"
    assert site.client.get("/?q=").headers["location"] == "/"


def test_an_address_typed_is_listed_whatever_else_its_structure_has(site) -> None:
    """A structure publishing many boxes: the one whose address was typed is among those listed
    (a results page lists only the first few boxes of a structure)."""
    from annuaire.store.schema import mailbox

    idnat = world.STRUCTURES[0][1]
    addresses = [f"service{i}.exemple@ch-exempleville.mssante.fr" for i in range(8)]
    with site.store.write() as conn:
        conn.execute(insert(mailbox), [
            {"address": a, "domain": "ch-exempleville.mssante.fr", "type": "ORG", "structure_idnat": idnat,
             "structure_type": idnat[0], "structure": idnat[1:], "service": f"Service {i}", "liste_rouge": False,
             "source": "operator", "active": True, "version": 1, "last_updated": world.NOW, "digest": 0}
            for i, a in enumerate(addresses)
        ])
    for typed in (addresses[-1], addresses[-1].upper(), "service7.exemple@ch-exemple"):
        page = site.get("/", q=typed).text
        assert f'href="mailto:{addresses[-1]}"' in page, typed
