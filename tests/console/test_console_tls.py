"""Console sign-in over TLS: with a registered client certificate, and the Secure cookie
(real uvicorn with `uvicorn_tls_options`, as `annuaire serve`; SQLite only: identity does not
depend on the engine)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from annuaire.config import Settings
from annuaire.console import session as sessions
from annuaire.console.spool import Spool
from annuaire.http.guard import server_options
from annuaire.mailboxes.tlsident import uvicorn_tls_options
from annuaire.store import open_store
from tests.console.conftest import console_app, csrf_of, sign_in
from tests.mailboxes.mailbox_fixtures import make_env, running
from tests.mailboxes.test_tls import Pki, _client, pki  # noqa: F401  (the module's PKI fixture)


@pytest.fixture
def tls(tmp_path: Path, pki: Pki) -> Iterator[tuple[dict[str, str], str]]:  # noqa: F811
    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    settings = Settings(tls_cert=str(pki.server[0]), tls_key=str(pki.server[1]), tls_client_ca=str(pki.ca))
    options = uvicorn_tls_options(settings)
    options.update(server_options(settings, base=options["http"]))
    with make_env(store) as env, running(console_app(store, settings, Spool(tmp_path / "spool")), **options) as url:
        yield env.tokens, url
    store.dispose()


def certificate_sign_in(client: httpx.Client) -> httpx.Response:
    form = client.get("/operateurs/connexion")
    return client.post("/operateurs/connexion", data={"csrf": csrf_of(form.text), "certificat": "oui"})


def test_registered_certificate_signs_in_with_a_secure_cookie(tls, pki: Pki) -> None:  # noqa: F811
    _, url = tls
    with _client(url, pki, pki.alpha) as client:
        assert "Se connecter avec le certificat présenté" in client.get("/operateurs/connexion").text
        r = certificate_sign_in(client)
        assert r.status_code == 303, r.text
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(sessions.COOKIE + "="))
        assert "Secure" in cookie and "HttpOnly" in cookie
        home = client.get("/operateurs")
        assert home.status_code == 200 and "a.mssante.fr" in home.text and "alpha" in home.text


def test_token_over_tls_gets_a_secure_cookie(tls, pki: Pki) -> None:  # noqa: F811
    tokens, url = tls
    with _client(url, pki) as client:
        assert "certificat présenté" not in client.get("/operateurs/connexion").text
        r = certificate_sign_in(client)
        assert r.status_code == 401 and "ucun certificat client" in html.unescape(r.text)
        r = sign_in(client, tokens["beta"])
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_unregistered_certificate_is_refused(tls, pki: Pki) -> None:  # noqa: F811
    _, url = tls
    with _client(url, pki, pki.stranger) as client:
        r = certificate_sign_in(client)
        assert r.status_code == 401 and "enregistré pour aucun opérateur" in html.unescape(r.text)
        assert client.get("/operateurs").status_code == 303
