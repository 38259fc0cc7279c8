"""Chromium (Debian's, driven by Playwright) for the browser tests of every interface: the web
pages, the operators' console, the API docs. Missing Chromium or Playwright skips with the
reason, except in CI (CI env var set) where browser tests must run. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("ANNUAIRE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def missing() -> str | None:
    """Why browser tests cannot run here (None: they can)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    return None


def skip_or_fail_without_browser() -> None:
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (browser tests must run in CI)")
        pytest.skip(reason)


def chromium() -> Iterator[object]:
    """One Chromium, for a fixture to yield from."""
    skip_or_fail_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def page_of(browser: Any, base_url: str, **context: Any) -> Iterator[Any]:
    """A page of a site (for a fixture to yield from), with a 10 s default timeout; the test fails
    on JavaScript errors."""
    ctx = browser.new_context(base_url=base_url, locale="fr-FR", **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    yield page
    ctx.close()
    assert errors == [], f"JavaScript errors: {errors}"


def search(page: Any, text: str) -> None:
    """Type `text` in the web page's search box and submit, as a person does."""
    page.goto("/")
    page.get_by_label("Rechercher un professionnel ou une structure").fill(text)
    page.get_by_role("button", name="Rechercher", exact=True).click()
    page.wait_for_load_state()
