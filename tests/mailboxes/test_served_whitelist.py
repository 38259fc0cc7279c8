"""The whitelist served at /listeblanchemssante.xml over real HTTP, on both engines: the
national layout, ETag / Last-Modified and 304s, a new document when a domain or an operator
changes (and only then)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from xml.etree import ElementTree as ET

import httpx
import pytest
from starlette.applications import Starlette

from annuaire.http.app import PROVIDERS, create_app
from annuaire.mailboxes import operators, whitelist
from annuaire.mailboxes.operators import WHITELIST_NAMESPACE
from tests.mailboxes.mailbox_fixtures import Env, per, running

NS = {"w": WHITELIST_NAMESPACE}
CHILDREN = ["Nom", "Description", "DNCertificatOperateur", "ResponsableContact", "SupportContact", "DateMAJ"]


@pytest.fixture
def served(env: Env) -> Iterator[tuple[Env, httpx.Client]]:
    app = Starlette(routes=whitelist.routes(env.store, env.settings))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield env, client


def _domains(body: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(body)
    assert root.tag == f"{{{WHITELIST_NAMESPACE}}}ListeBlancheMSSante"
    assert [child.tag.split("}")[1] for child in root] == ["DateDeGeneration", "ListeDomaines"]
    domains = {d.find("w:Nom", NS).text: d for d in root.findall("w:ListeDomaines/w:Domaine", NS)}
    for d in domains.values():
        assert [child.tag.split("}")[1] for child in d] == CHILDREN
    return domains


def test_layout_and_conditional_requests(served: tuple[Env, httpx.Client]) -> None:
    _, client = served
    r = client.get("/listeblanchemssante.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    domains = _domains(r.content)
    assert {"a.mssante.fr", "b.mssante.fr", "c.mssante.fr"} <= set(domains)
    assert domains["a.mssante.fr"].find("w:DNCertificatOperateur", NS).text == "CN=mail.alpha.test,O=Alpha,C=FR"
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert etag.startswith('"') and parsedate_to_datetime(modified)
    # Same state: the same document (not rebuilt), 304 on either validator.
    again = client.get("/listeblanchemssante.xml")
    assert again.content == r.content and again.headers["etag"] == etag
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-None-Match": "*"},
                    {"If-Modified-Since": modified},
                    {"If-Modified-Since": format_datetime(parsedate_to_datetime(modified) + timedelta(hours=1),
                                                          usegmt=True)}):
        r304 = client.get("/listeblanchemssante.xml", headers=headers)
        assert r304.status_code == 304 and r304.content == b"", headers
        assert r304.headers["etag"] == etag and r304.headers["last-modified"] == modified
    # Stale validators, and an unreadable date (ignored, as RFC 9110 says): the document.
    for headers in ({"If-None-Match": '"other"'}, {"If-None-Match": '"other"', "If-Modified-Since": modified},
                    {"If-Modified-Since": "hier"},
                    {"If-Modified-Since": format_datetime(parsedate_to_datetime(modified) - timedelta(hours=1),
                                                          usegmt=True)}):
        assert client.get("/listeblanchemssante.xml", headers=headers).status_code == 200, headers
    assert client.head("/listeblanchemssante.xml").headers["etag"] == etag


def test_changes_of_domains_and_operators_give_a_new_document(served: tuple[Env, httpx.Client]) -> None:
    env, client = served
    seen = [client.get("/listeblanchemssante.xml")]

    def changed() -> bytes:
        r = client.get("/listeblanchemssante.xml", headers={"If-None-Match": seen[-1].headers["etag"]})
        assert r.status_code == 200, "the whitelist did not change"
        assert r.headers["etag"] != seen[-1].headers["etag"]
        assert parsedate_to_datetime(r.headers["last-modified"]) > parsedate_to_datetime(
            seen[-1].headers["last-modified"])
        seen.append(r)
        return r.content

    operators.set_cert_dn(env.store, "beta", "CN=mail.beta.test,O=Beta,C=FR")
    try:
        assert _domains(changed())["c.mssante.fr"].find("w:DNCertificatOperateur", NS).text.startswith("CN=mail.beta")
        operators.add_domains(env.store, "beta", ["d.mssante.fr"])
        assert "d.mssante.fr" in _domains(changed())
        operators.remove_domains(env.store, "beta", ["d.mssante.fr"])
        assert "d.mssante.fr" not in _domains(changed())
        assert env.put("a.mssante.fr", [per("camille.martin")]).status_code == 200  # DateMAJ moves
        date = _domains(changed())["a.mssante.fr"].find("w:DateMAJ", NS).text
        assert date.endswith("Z") and len(date) == 20
    finally:
        operators.set_cert_dn(env.store, "beta", None)
    r = client.get("/listeblanchemssante.xml", headers={"If-None-Match": seen[-1].headers["etag"]})
    assert r.status_code == 200  # the DN removed again: a new version too


def test_errors_and_registration(served: tuple[Env, httpx.Client]) -> None:
    client = served[1]
    r = client.post("/listeblanchemssante.xml")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/listeblanchemssante.xml/x").status_code == 404
    # `annuaire serve` assembles it before the web pages (which own "/").
    assert PROVIDERS.index("annuaire.mailboxes.whitelist:routes") < PROVIDERS.index("annuaire.web.routes:routes")
    env, _ = served
    with running(create_app(env.store, env.settings)) as url:
        r = httpx.get(f"{url}/listeblanchemssante.xml")
        assert r.status_code == 200 and "a.mssante.fr" in _domains(r.content)
