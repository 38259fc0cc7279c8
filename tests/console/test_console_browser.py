"""The operators' console in a real browser (Debian's Chromium driven by Playwright), on a
desktop and a 390 px phone: sign in with a token, upload a list, read the dry run, confirm.

Skipped with a message when Chromium or Playwright is missing, except in CI where they must
run (same rule as tests/web/test_browser.py). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from annuaire.config import Settings
from annuaire.console.spool import Spool
from annuaire.mailboxes import operators
from annuaire.store import Store, open_store
from tests.browser import ARTIFACTS, chromium
from tests.console.conftest import Site, console_app
from tests.mailboxes.mailbox_fixtures import CAMILLE, HUGO, running, seed_referential

pytestmark = pytest.mark.browser

A = "a.mssante.fr"
VIEWPORTS = {
    "bureau": {"viewport": {"width": 1280, "height": 900}},
    "telephone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                  "has_touch": True},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from chromium()


@pytest.fixture(scope="module")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("console-browser")
    store: Store = open_store(f"sqlite:///{base / 'annuaire.sqlite'}")
    settings = Settings(mass_delete_min=2)
    seed_referential(store)
    _, alpha = operators.add_operator(store, "alpha", [A, "b.mssante.fr"])
    with running(console_app(store, settings, Spool(base / "spool"))) as url:
        yield Site(store, settings, url, {"alpha": alpha})
    store.dispose()


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser, console_site: Site):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=console_site.url, locale="fr-FR", **VIEWPORTS[request.param])
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.set_default_timeout(10_000)
    p.screen_name = request.param
    yield p
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def no_horizontal_scroll(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    shown = page.viewport_size["width"]
    assert width <= shown, f"horizontal scrolling at {shown}px: {width}px"


def sign_in(page, token: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/operateurs")
    assert page.url.endswith("/operateurs/connexion")
    page.get_by_label("Jeton d’API de l’opérateur").fill(token)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Mes domaines").is_visible()


def test_sign_in_with_the_keyboard_and_sign_out(page, console_site: Site) -> None:  # type: ignore[no-untyped-def]
    page.goto("/operateurs/connexion")
    no_horizontal_scroll(page)
    page.keyboard.press("Tab")  # the skip link first
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "jeton":
            break
    assert page.evaluate("document.activeElement.id") == "jeton"
    page.keyboard.type(console_site.tokens["alpha"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/operateurs")
    assert console_site.tokens["alpha"] not in page.url
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["annuaire_console"]["httpOnly"] and cookies["annuaire_console"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable by scripts
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/operateurs/connexion?motif=deconnecte")
    assert page.get_by_text("Vous êtes déconnecté.").is_visible()


def test_upload_dry_run_then_confirm(page, console_site: Site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain = f"{page.screen_name}.mssante.fr"  # a fresh domain for each screen size
    operators.add_domains(console_site.store, "alpha", [domain])
    listed = [
        {"address": f"camille.martin@{domain}", "type": "PER", "holder": CAMILLE},
        {"address": f"hugo.lefevre@{domain}", "type": "PER", "holder": HUGO, "liste_rouge": True},
        {"address": f"accueil@{domain}", "type": "ORG", "structure": "1990000019", "service": "Accueil"},
        {"address": "perdu@ailleurs.fr", "type": "PER", "holder": CAMILLE},
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    path = tmp_path / "liste.json"
    path.write_bytes(orjson.dumps({"mailboxes": listed}))
    sign_in(page, console_site.tokens["alpha"])
    page.get_by_role("link", name=domain).click()
    page.get_by_label("Fichier de la liste (CSV ou JSON)").set_input_files(str(path))
    page.get_by_role("button", name="Faire l’essai").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name=f"Essai pour {domain}").is_visible()
    assert page.locator('[data-count="created"]').inner_text() == "3"
    assert page.locator('[data-count="rejected"]').inner_text() == "1"
    assert page.get_by_text("la publication porte sur").is_visible()  # the French rejection
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"console-essai-{page.screen_name}.png"), full_page=True)
    page.get_by_role("button", name="Publier cette liste").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name=f"Liste publiée pour {domain}").is_visible()
    assert page.locator('[data-count="created"]').inner_text() == "3"
    page.get_by_role("link", name="Liste et envoi").click()
    page.get_by_label("Visibilité").select_option("masquees")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_load_state()
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "BAL en liste rouge" in rows.first.inner_text()
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"console-domaine-{page.screen_name}.png"), full_page=True)


def test_mass_deletion_is_confirmed_with_the_keyboard(page, console_site: Site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain = f"masse-{page.screen_name}.mssante.fr"
    operators.add_domains(console_site.store, "alpha", [domain])
    full = [{"address": f"{name}@{domain}", "type": "ORG", "structure": "1990000019", "service": name}
            for name in ("accueil", "urgences", "radiologie", "pharmacie")]
    sign_in(page, console_site.tokens["alpha"])
    for listed, name in ((full, "complete.json"), (full[:1], "tronquee.json")):
        path = tmp_path / name
        path.write_bytes(orjson.dumps({"mailboxes": listed}))
        page.goto(f"/operateurs/domaines/{domain}")
        page.get_by_label("Fichier de la liste (CSV ou JSON)").set_input_files(str(path))
        page.get_by_role("button", name="Faire l’essai").click()
        page.wait_for_load_state()
        if listed is full:
            page.get_by_role("button", name="Publier cette liste").click()
            page.wait_for_load_state()
    assert page.get_by_role("heading", name="Attention : suppression massive").is_visible()
    box = page.get_by_label("Je confirme la suppression de 3 boîtes : la liste est complète.")
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked()
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"console-suppression-{page.screen_name}.png"), full_page=True)
    page.get_by_role("button", name="Publier cette liste").press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("heading", name=f"Liste publiée pour {domain}").is_visible()
    assert page.locator('[data-count="deleted"]').inner_text() == "3"
