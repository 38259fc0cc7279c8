"""The API's description is valid OpenAPI, and /api/v1/docs renders it from the application's
own assets (nothing from a CDN), in a real browser when Chromium is there."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

from annuaire.mailboxes.openapi import description
from tests.browser import ARGS, ARTIFACTS, CHROMIUM, skip_or_fail_without_browser
from tests.mailboxes.mailbox_fixtures import Env

ASSETS = ("docs/docs.js", "docs/docs.css")


def test_description_is_valid_openapi(env: Env) -> None:
    spec = env.client.get("/api/v1/openapi.json").json()
    validate(spec)
    validate(description("https://annuaire.example.test"))
    paths = spec["paths"]
    for path in ("/api/v1/domains/{domain}/visibility", "/api/v1/domains/{domain}/quality",
                 "/listeblanchemssante.xml"):
        assert "get" in paths[path], path
    body = paths["/api/v1/domains/{domain}/mailboxes"]["put"]["requestBody"]
    assert all(set(c) <= {"schema", "example", "examples", "encoding"} for c in body["content"].values())
    assert {"domain", "version"} <= set(spec["components"]["schemas"]["MailboxList"]["properties"])


def test_docs_page_and_assets_are_served_by_the_app(env: Env) -> None:
    page = env.client.get("/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="fr">' in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    linked = set(re.findall(r'(?:src|href)="([^"]+)"', page.text))
    assert linked == {*ASSETS, "openapi.json"}, linked  # relative: nothing from elsewhere
    for asset in ASSETS:
        r = env.client.get(f"/api/v1/{asset}")
        assert r.status_code == 200 and r.content, asset
        assert not re.search(r"https?:|url\(|@import|//[a-z]", r.text), asset  # no other host, no fetched file
    assert env.client.get("/api/v1/docs/docs.js").headers["content-type"].startswith("text/javascript")
    r = env.client.get("/api/v1/docs/secret.py")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert env.client.get("/api/v1/docs/..%2Fapi.py").status_code == 404
    assert env.client.get("/api/v1/docs", params={"x": "1"}).status_code == 400


@pytest.mark.browser
def test_docs_render_in_a_browser(env: Env) -> None:
    if env.store.url.startswith("postgresql"):
        pytest.skip("the page does not depend on the engine: rendered once, on SQLite")
    skip_or_fail_without_browser()
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(base_url=env.url, locale="fr-FR")
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("/api/v1/docs")
            page.wait_for_selector("details.op", timeout=10_000)
            assert page.title().startswith("Annuaire MSSanté")
            summaries = page.locator("details.op > summary").all_inner_texts()
            assert any("PUT" in s and "/api/v1/domains/{domain}/mailboxes" in s for s in summaries), summaries
            assert any("/api/v1/domains/{domain}/visibility" in s for s in summaries)
            page.locator("details.op > summary").first.click()
            assert page.locator("#schema-Mailbox table").count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert requested and all(url.startswith(env.url) for url in requested), requested
    assert httpx.get(f"{env.url}/api/v1/openapi.json").status_code == 200
