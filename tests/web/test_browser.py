"""The search page in a real browser: Debian's Chromium driven by Playwright.

Skipped with a message when /usr/bin/chromium or Playwright is missing, except
in CI (CI env var set) where they must run. Screenshots of the results page
(desktop and phone) are saved in test-artifacts/ as evidence.
"""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS, page_of, search
from tests.web import world

pytestmark = pytest.mark.browser

BENEDICTE, HELENE = world.PEOPLE[0][0], world.PEOPLE[1][0]
RESULT_LINK = ".result h3 a"


@pytest.fixture
def page(browser, sqlite_site):  # type: ignore[no-untyped-def]
    yield from page_of(browser, sqlite_site.url)


def test_search_with_and_without_accents(page) -> None:  # type: ignore[no-untyped-def]
    for text in ("Bénédicte Lefèvre", "benedicte lefevre", "LEFEVRE"):
        search(page, text)
        links = page.locator(RESULT_LINK)
        assert links.count() == 1, text
        assert links.first.inner_text() == "Dr Bénédicte LEFÈVRE"
        assert "/?q=" in page.url  # a shareable GET URL


def test_open_a_professional_and_copy_an_address(browser, sqlite_site) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=sqlite_site.url, locale="fr-FR")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sqlite_site.url)
    page = context.new_page()
    try:
        search(page, "helene dupont")
        page.locator(RESULT_LINK).first.click()
        page.wait_for_url(f"**/pro/{HELENE}")
        assert page.get_by_role("heading", level=1).inner_text() == "Hélène DUPONT"
        button = page.get_by_role("button", name="Copier l’adresse helene.dupont@infirmier.mssante.fr")
        assert button.is_visible()
        button.click()
        status = page.locator(".box", has=button).locator(".copy-status")
        status.wait_for(state="visible")
        assert status.inner_text() == "Adresse copiée"
        assert page.evaluate("navigator.clipboard.readText()") == "helene.dupont@infirmier.mssante.fr"
    finally:
        context.close()


def test_copy_falls_back_without_the_clipboard_api(browser, sqlite_site) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=sqlite_site.url, locale="fr-FR")
    context.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined});")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/pro/{HELENE}")
        page.locator("button.copy").first.click()
        status = page.locator(".copy-status").first
        status.wait_for(state="visible")
        text = status.inner_text()
        assert text in ("Adresse copiée", "Copie impossible : l’adresse est sélectionnée, faites Ctrl+C")
        if text != "Adresse copiée":
            assert page.evaluate("window.getSelection().toString()") == "helene.dupont@infirmier.mssante.fr"
        assert errors == []
    finally:
        context.close()


def test_keyboard_only(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    focus_by_tab(page, "input#q")
    page.keyboard.type("dupont")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=dupont")
    # The first Tab shows the skip link to the results; following it, the next Tab is the first result.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller aux résultats"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("(s) => document.activeElement.matches(s)", RESULT_LINK)
    assert page.evaluate("document.activeElement.textContent") == "Hélène DUPONT"
    # The focus is visible: an outline or a box shadow, not the browser's nothing.
    style = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.boxShadow, s.backgroundColor]; })()"
    )
    assert style[0] != "none" or style[1] != "none", style
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/pro/{HELENE}")
    # The copy button is reachable and works from the keyboard too.
    focus_by_tab(page, "button.copy")
    page.keyboard.press("Enter")
    page.locator(".copy-status").first.wait_for(state="visible")


def focus_by_tab(page, selector: str, limit: int = 60) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until the focused element matches `selector` (fails after `limit` presses)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never received the focus after {limit} Tab presses")


def test_works_without_javascript(browser, sqlite_site) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=sqlite_site.url, java_script_enabled=False)
    page = context.new_page()
    try:
        search(page, "cardiologue")
        assert page.locator(RESULT_LINK).all_inner_texts() == ["Dr Bénédicte LEFÈVRE"]
        assert page.locator("button.copy").first.is_hidden()  # useless without JavaScript
        page.get_by_text("Affiner la recherche").click()
        page.get_by_label("Département").select_option("53")
        page.locator("#q").fill("")
        page.get_by_role("button", name="Appliquer les filtres").click()
        page.wait_for_url("**departement=53**")
        assert page.locator(RESULT_LINK).all_inner_texts() == ["Camille MARTIN"]
    finally:
        context.close()


def test_screenshots_of_the_results_page(browser, sqlite_site) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "web-results-desktop.png": {"viewport": {"width": 1280, "height": 900}},
        "web-results-phone.png": {
            "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
        },
    }
    for name, options in shots.items():
        context = browser.new_context(base_url=sqlite_site.url, locale="fr-FR", **options)
        page = context.new_page()
        try:
            page.goto("/?q=m%C3%A9decin")
            page.locator(RESULT_LINK).first.wait_for()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= options["viewport"]["width"], f"horizontal scrolling on {name}: {width}px"
            page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        finally:
            context.close()
        assert (ARTIFACTS / name).stat().st_size > 10_000
