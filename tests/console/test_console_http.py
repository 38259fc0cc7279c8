"""The operators' console over real HTTP, on both engines: sign-in, cookies, CSRF, bad input,
and the upload → dry run → confirm flow (issue 21 item 3)."""

from __future__ import annotations

import html
import logging
import re
import time

import httpx
import orjson
import pytest

from annuaire.console import session as sessions
from annuaire.mailboxes import operators
from annuaire.store import credentials
from tests.console.conftest import Site, csrf_of, sign_in
from tests.mailboxes.mailbox_fixtures import CAMILLE, HUGO, JEAN_PIERRE

A = "a.mssante.fr"
ENVOI = re.compile(r'name="envoi" value="([^"]+)"')


def boxes(n: int = 4) -> list[dict]:
    listed = [
        {"address": f"camille.martin@{A}", "type": "PER", "holder": CAMILLE},
        {"address": f"hugo.lefevre@{A}", "type": "PER", "holder": HUGO, "liste_rouge": True},
        {"address": f"accueil@{A}", "type": "ORG", "structure": "1990000019", "service": "Accueil"},
        {"address": f"jean-pierre.durand@{A}", "type": "PER", "holder": JEAN_PIERRE},
    ]
    return listed[:n]


def as_file(listed: list[dict]) -> bytes:
    return orjson.dumps({"mailboxes": listed})


def api_current(site: Site, domain: str = A) -> dict:
    r = httpx.get(f"{site.url}/api/v1/domains/{domain}/mailboxes",
                  headers={"Authorization": f"Bearer {site.tokens['alpha']}"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def client(site: Site):  # type: ignore[no-untyped-def]
    with site.client() as c:
        assert sign_in(c, site.tokens["alpha"]).status_code == 303
        yield c


def upload(c: httpx.Client, body: bytes, domain: str = A, name: str = "liste.json", **extra: str) -> httpx.Response:
    csrf = csrf_of(c.get("/operateurs").text)
    return c.post(f"/operateurs/domaines/{domain}/essai", data={"csrf": csrf, **extra},
                  files={"liste": (name, body, "application/octet-stream")})


def confirm(c: httpx.Client, dry: httpx.Response, domain: str = A, **extra: str) -> httpx.Response:
    return c.post(f"/operateurs/domaines/{domain}/publier",
                  data={"csrf": csrf_of(dry.text), "envoi": ENVOI.search(dry.text).group(1), **extra})


def t(r: httpx.Response) -> str:
    """The page's text with its entities read (apostrophes are escaped)."""
    return html.unescape(r.text)


def count(page: str, key: str) -> int:
    return int(re.search(rf'data-count="{key}"[^>]*>(\d+)<', page).group(1))


# --- sign-in, cookies, sessions ---------------------------------------------------------------


def test_sign_in_sets_a_safe_cookie_and_never_shows_the_token(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    token = site.tokens["alpha"]
    with site.client() as c:
        assert c.get("/operateurs").headers["location"] == "/operateurs/connexion"
        form = c.get("/operateurs/connexion")
        assert form.status_code == 200 and 'type="password"' in t(form) and 'method="post"' in t(form)
        with caplog.at_level(logging.DEBUG):
            r = c.post("/operateurs/connexion", data={"jeton": token, "csrf": csrf_of(form.text)})
        assert r.status_code == 303 and r.headers["location"] == "/operateurs"
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(sessions.COOKIE + "="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/operateurs" in cookie
        assert "Secure" not in cookie  # plain HTTP here; Secure when the request came over TLS
        home = c.get("/operateurs")
        assert home.status_code == 200 and "a.mssante.fr" in t(home) and "c.mssante.fr" not in t(home)
        assert home.headers["cache-control"] == "no-store"
        secret = token.split("_", 2)[2]  # the secret itself may hold "_"
        assert all(secret not in text for text in (cookie, r.headers["location"], home.text))
        leaked = [rec.getMessage() for rec in caplog.records if secret in rec.getMessage()]
        assert leaked == []


def test_wrong_token_is_refused_in_french(site: Site) -> None:
    with site.client() as c:
        for token, words in ((site.tokens["alpha"] + "x", "n'est pas valide"), ("", "le jeton d'API")):
            r = sign_in(c, token)
            assert r.status_code == 401 and words in t(r) and "text/html" in r.headers["content-type"]
            assert sessions.COOKIE not in r.headers.get("set-cookie", "")
        assert c.get("/operateurs").status_code == 303


def test_sign_in_needs_its_csrf_token(site: Site) -> None:
    with site.client() as c:
        c.get("/operateurs/connexion")
        r = c.post("/operateurs/connexion", data={"jeton": site.tokens["alpha"]})
        assert r.status_code == 403 and "jeton de sécurité" in t(r)
        r = c.post("/operateurs/connexion", data={"jeton": site.tokens["alpha"], "csrf": "autre"})
        assert r.status_code == 403


def test_forms_need_the_session_csrf_and_origin(client: httpx.Client, site: Site) -> None:
    files = {"liste": ("l.json", as_file(boxes()), "application/json")}
    r = client.post(f"/operateurs/domaines/{A}/essai", files=files)
    assert r.status_code == 403 and "Rien n'a été modifié" in t(r)
    with site.client() as other:  # beta's CSRF token is not alpha's
        sign_in(other, site.tokens["beta"])
        foreign = csrf_of(other.get("/operateurs").text)
    r = client.post(f"/operateurs/domaines/{A}/essai", data={"csrf": foreign}, files=files)
    assert r.status_code == 403
    csrf = csrf_of(client.get("/operateurs").text)
    r = client.post(f"/operateurs/domaines/{A}/essai", data={"csrf": csrf}, files=files,
                    headers={"Origin": "https://ailleurs.example"})
    assert r.status_code == 403 and "origine" in t(r)
    assert api_current(site)["mailboxes"] == []


def test_expired_forged_or_rotated_sessions_end(site: Site, client: httpx.Client) -> None:
    signer = sessions.Signer(credentials.store_key(site.store))
    good = client.cookies.get(sessions.COOKIE)
    live = signer.read(good)
    assert live is not None
    old = sessions.Session(live.operator_id, live.credential, live.csrf, live.issued, time.time() - sessions.IDLE - 5)
    for value in (signer.sign(old), good[:-2] + "xx", "n'importe quoi"):
        client.cookies.set(sessions.COOKIE, value, path="/operateurs")
        r = client.get("/operateurs")
        assert r.status_code == 303 and r.headers["location"] == "/operateurs/connexion?motif=expiree"
        assert "Votre session a expiré" in t(client.get(r.headers["location"]))
        r = client.post(f"/operateurs/domaines/{A}/essai", data={"csrf": live.csrf},
                        files={"liste": ("l.json", as_file(boxes()), "application/json")})
        assert r.status_code == 401 and "session a expiré" in t(r)
    client.cookies.set(sessions.COOKIE, good, path="/operateurs")
    assert client.get("/operateurs").status_code == 200
    site.tokens["alpha"] = operators.rotate_token(site.store, "alpha")  # the old credential's sessions end
    assert client.get("/operateurs").status_code == 303


def test_sign_out(client: httpx.Client) -> None:
    csrf = csrf_of(client.get("/operateurs").text)
    assert client.post("/operateurs/deconnexion").status_code == 403
    r = client.post("/operateurs/deconnexion", data={"csrf": csrf})
    assert r.status_code == 303 and "deconnecte" in r.headers["location"]
    assert client.cookies.get(sessions.COOKIE) is None
    assert client.get("/operateurs").status_code == 303


# --- per domain -------------------------------------------------------------------------------


def test_domain_page_filters_boxes_by_address_and_visibility(client: httpx.Client, site: Site) -> None:
    confirm(client, upload(client, as_file(boxes())))
    page = client.get(f"/operateurs/domaines/{A}")
    assert page.status_code == 200 and "3 visibles, 1 masquées" in t(page)
    assert "BAL en liste rouge" in t(page)
    hidden = client.get(f"/operateurs/domaines/{A}", params={"visibilite": "masquees"}).text
    assert f"hugo.lefevre@{A}" in hidden and f"accueil@{A}" not in hidden
    found = client.get(f"/operateurs/domaines/{A}", params={"q": "accueil"}).text
    assert f"accueil@{A}" in found and f"camille.martin@{A}" not in found and "1 boîte affichée sur 4" in found


def test_other_operators_domains_and_bad_paths(client: httpx.Client) -> None:
    r = client.get("/operateurs/domaines/c.mssante.fr")
    assert r.status_code == 403 and "n'est pas l'un de vos domaines" in t(r)
    assert upload(client, as_file([]), domain="c.mssante.fr").status_code == 403
    assert client.get("/operateurs/domaines/pas un domaine").status_code == 404
    assert client.get(f"/operateurs/domaines/{A}/liste.xml").status_code == 404
    assert client.get("/operateurs/publications/abc").status_code == 404
    r = client.get("/operateurs/nulle-part")
    assert r.status_code == 404 and "ucune page de la console" in t(r)


# --- upload → dry run → confirm ---------------------------------------------------------------


def test_upload_dry_run_then_confirm(client: httpx.Client, site: Site) -> None:
    listed = [*boxes(3), {"address": "x@ailleurs.fr", "type": "PER", "holder": CAMILLE}]
    dry = upload(client, as_file(listed))
    assert dry.status_code == 200 and "Rien n’est encore publié" in t(dry)
    assert (count(dry.text, "created"), count(dry.text, "rejected")) == (3, 1)
    assert "ADDRESS_DOMAIN_MISMATCH" in t(dry) and "la publication porte sur" in t(dry)  # French message
    assert api_current(site)["version"] == 0  # nothing applied by the dry run
    done = confirm(client, dry)
    assert done.status_code == 200 and "Liste publiée" in t(done) and count(done.text, "created") == 3
    assert api_current(site)["version"] == 1
    again = confirm(client, dry)  # the same upload cannot be published twice
    assert again.status_code == 410 and "envoyez le fichier à nouveau" in t(again)
    history = client.get(f"/operateurs/domaines/{A}/historique").text
    assert "essai" in history and "publiée" in history
    run_id = re.findall(r'/operateurs/publications/(\d+)"', history)[0]
    assert "Publication n°" in client.get(f"/operateurs/publications/{run_id}").text


def test_csv_upload_and_downloads_round_trip(client: httpx.Client, site: Site) -> None:
    confirm(client, upload(client, as_file(boxes())))
    csv = client.get(f"/operateurs/domaines/{A}/liste.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    listed = client.get(f"/operateurs/domaines/{A}/liste.json").json()
    assert listed["version"] == 1 and len(listed["mailboxes"]) == 4
    dry = upload(client, csv.content, name="liste.csv")
    assert dry.status_code == 200 and count(dry.text, "unchanged") == 4 and count(dry.text, "created") == 0


def test_confirm_refuses_a_list_whose_domain_changed(client: httpx.Client, site: Site) -> None:
    dry = upload(client, as_file(boxes(2)))
    r = httpx.put(f"{site.url}/api/v1/domains/{A}/mailboxes", content=as_file(boxes(1)),
                  headers={"Authorization": f"Bearer {site.tokens['alpha']}", "Content-Type": "application/json"})
    assert r.status_code == 200
    late = confirm(client, dry)
    assert late.status_code == 412 and "a changé depuis l'essai" in t(late)
    assert len(api_current(site)["mailboxes"]) == 1


def test_mass_deletion_needs_the_checkbox(client: httpx.Client, site: Site) -> None:
    confirm(client, upload(client, as_file(boxes())))
    dry = upload(client, as_file(boxes(1)))
    assert "suppression massive" in t(dry) and 'name="suppression_massive"' in t(dry)
    refused = confirm(client, dry)
    assert refused.status_code == 409 and "supprimerait 3 des 4" in t(refused)
    assert len(api_current(site)["mailboxes"]) == 4
    history = client.get(f"/operateurs/domaines/{A}/historique").text
    assert "refusée" in history
    refused_id = re.findall(r'/operateurs/publications/(\d+)"', history)[0]
    assert "aurait supprimé 3 des 4 boîtes" in t(client.get(f"/operateurs/publications/{refused_id}"))
    dry = upload(client, as_file(boxes(1)))
    done = confirm(client, dry, suppression_massive="oui")
    assert done.status_code == 200 and count(done.text, "deleted") == 3


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"mailboxes": [', 400, "pas une liste lisible"),
    (b"   ", 400, "vide"),
    (b"x" * (70 * 1024), 413, "trop volumineux"),
    (b"Type de BAL|Adresse\nPER", 400, "Rien n'a été publié"),
])
def test_bad_files_change_nothing(client: httpx.Client, site: Site, body: bytes, status: int, words: str) -> None:
    r = upload(client, body)
    assert r.status_code == status and words in t(r) and "text/html" in r.headers["content-type"]
    assert api_current(site)["version"] == 0


def test_quality_page(client: httpx.Client) -> None:
    confirm(client, upload(client, as_file(boxes())))
    page = client.get(f"/operateurs/domaines/{A}/qualite")
    assert page.status_code == 200 and "4 boîtes actives" in t(page) and "liste rouge" in t(page)
