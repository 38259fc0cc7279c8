"""Findability (issue 22) in a real browser, at desktop and phone (390 px) widths.

Chromium (the `browser` fixture of conftest) over the real app: a number copied
from another system opens its record, a structure is found by any word of its
name, a typo gets "Vouliez-vous dire", the mailbox badges say what they are in
visible text, phone numbers are grouped by pairs, first names stored in
capitals read as people write them, the extractions page has the site's layout
and fits a phone, and /aide tells the LDAP port `annuaire serve` listens on (or
that LDAP is off).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from annuaire.extractions.generate import generate
from annuaire.store import open_store
from tests.browser import page_of, search
from tests.web import world
from tests.web.conftest import Site, make_settings, serve

pytestmark = pytest.mark.browser

BENEDICTE, JEAN_PIERRE = world.PEOPLE[0][0], world.PEOPLE[2][0]
HOSPITAL, CABINET = world.STRUCTURES[0][0], world.STRUCTURES[1][0]
RESULT_LINK = ".result h3 a"
LABELS = ("Boîte personnelle", "Boîte de cabinet", "Boîte organisationnelle", "Boîte applicative")
WIDTHS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(params=list(WIDTHS))
def width(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_page(browser, sqlite_site, width):  # type: ignore[no-untyped-def]
    """A page of the world's site at the width asked; fails on JavaScript errors and, on every
    page visited, on horizontal scrolling."""
    yield from page_of(browser, sqlite_site.url, **WIDTHS[width])


def assert_fits(page, what: str) -> None:  # type: ignore[no-untyped-def]
    """No horizontal scrolling at the page's width."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"horizontal scrolling on {what}: {width}px > {viewport}px"


def h1(page) -> str:  # type: ignore[no-untyped-def]
    return page.get_by_role("heading", level=1).inner_text()


def test_an_identifier_opens_its_record(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    for typed in (BENEDICTE[1:], BENEDICTE, "810 000 000 011"):  # RPPS, national id, with spaces
        search(page, typed)
        page.wait_for_url(f"**/pro/{BENEDICTE}")
        assert h1(page) == "Dr Bénédicte LEFÈVRE", typed
    search(page, "99 000 001 9")  # the hospital's FINESS, as printed on a letter
    page.wait_for_url(f"**/structure/{HOSPITAL}")
    assert h1(page) == "CENTRE HOSPITALIER D'EXEMPLEVILLE"
    assert_fits(page, "a structure opened by its FINESS")


def test_a_structure_is_found_by_any_word_of_its_name(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    for typed, name in (("exempleville", "CENTRE HOSPITALIER D'EXEMPLEVILLE"), ("hospitalier", "CENTRE HOSPITALIER D'EXEMPLEVILLE"),
                        ("parc", "CABINET DU PARC"), ("ch exempleville", "CENTRE HOSPITALIER D'EXEMPLEVILLE")):
        search(page, typed)
        assert page.locator(RESULT_LINK).first.inner_text() == name, typed
        # structures only: never a "no result" (nor a first-name note) above them
        assert page.locator(".empty").count() == 0, typed
        assert "Aucun" not in page.locator("main").inner_text(), typed
        assert page.get_by_role("heading", level=2, name="Structures").first.is_visible()
        assert_fits(page, f"the results of « {typed} »")


def test_an_organisational_box_is_found_by_its_service(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    search(page, "secretariat cardio")
    hit = page.locator(".result").first
    assert hit.locator("h3 a").inner_text() == "CENTRE HOSPITALIER D'EXEMPLEVILLE"
    first_box = hit.locator(".box").first
    assert first_box.locator(".box-address").inner_text() == "secretariat.cardio@ch-exempleville.mssante.fr"
    assert first_box.locator(".box-type").inner_text() == "Boîte organisationnelle"
    assert "Secrétariat de cardiologie" in first_box.inner_text()
    assert "direction.confidentielle" not in page.content()  # liste rouge


def test_a_typo_is_corrected_or_suggested(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    # Nothing found: the nearest spelling's results, said so.
    search(page, "cardiolgue")
    note = page.locator(".correction")
    assert note.is_visible()
    assert "Aucun résultat pour « cardiolgue »" in note.inner_text()
    assert "« cardiologue »" in note.inner_text()
    assert page.locator(RESULT_LINK).all_inner_texts() == ["Dr Bénédicte LEFÈVRE"]
    # Little found ("le gof" begins LE GOFF): a suggestion to click, which finds the name.
    search(page, "le gof")
    suggestion = page.locator(".suggestions")
    assert suggestion.is_visible() and suggestion.inner_text().startswith("Vouliez-vous dire")
    assert_fits(page, "a suggestion")
    suggestion.get_by_role("link", name="le goff").click()
    page.wait_for_url("**/?q=le+goff")
    assert page.locator("#q").input_value() == "le goff"
    assert page.locator(RESULT_LINK).first.inner_text() == "Dr Jean-Pierre LE GOFF"


def test_a_suggestion_that_finds_nothing_is_not_offered(open_page) -> None:  # type: ignore[no-untyped-def]
    # "dupomd" is one letter from DUPOND, whose only bearer is inactive: a link to an empty
    # page would be no help.
    page = open_page
    search(page, "dupomd")
    assert page.locator(".empty").is_visible()
    assert page.locator(".suggestions").count() == 0


def test_badges_say_what_each_box_is(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    expected = {
        f"/pro/{BENEDICTE}": {"Boîte personnelle"},
        f"/pro/{JEAN_PIERRE}": {"Boîte personnelle", "Boîte de cabinet"},
        f"/structure/{HOSPITAL}": {"Boîte organisationnelle", "Boîte applicative"},  # (and its people's)
    }
    for path, labels in expected.items():
        page.goto(path)
        badges = page.locator(".box-type")
        shown = {b.inner_text() for b in badges.all()}
        assert labels <= shown <= set(LABELS), (path, shown)
        for b in badges.all():
            assert b.is_visible()
            box = b.bounding_box()
            assert box is not None and box["width"] > 40, (path, b.inner_text())  # a word, not a dot
        assert_fits(page, path)


def test_phone_numbers_are_grouped_by_pairs(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    shown = {
        HOSPITAL: ("01 23 45 67 80", "tel:0123456780"),  # stored "0123456780"
        CABINET: ("+33 1 23 45 67 81", "tel:+33123456781"),  # stored "+33123456781"
        world.STRUCTURES[2][0]: ("01 23 45 67 82", "tel:0123456782"),  # stored "01.23.45.67.82"
    }
    for tech_id, (text, href) in shown.items():
        page.goto(f"/structure/{tech_id}")
        link = page.locator('a[href^="tel:"]')
        assert link.inner_text() == text
        assert link.get_attribute("href") == href
        assert page.evaluate("(a) => a.getClientRects().length", link.element_handle()) == 1  # on one line
    # Bénédicte works at the hospital and at the cabinet: both numbers on her page, grouped.
    page.goto(f"/pro/{BENEDICTE}")
    assert sorted(page.locator('a[href^="tel:"]').all_inner_texts()) == ["+33 1 23 45 67 81", "01 23 45 67 80"]


def test_first_names_stored_in_capitals_read_as_people_write_them(open_page) -> None:  # type: ignore[no-untyped-def]
    page = open_page
    search(page, "BENEDICTE LEFEVRE")
    assert page.locator(RESULT_LINK).all_inner_texts() == ["Dr Bénédicte LEFÈVRE"]  # stored "BÉNÉDICTE"
    page.goto(f"/pro/{JEAN_PIERRE}")
    assert h1(page) == "Dr Jean-Pierre LE GOFF"  # stored "JEAN-PIERRE"
    assert "Jean-Pierre LE GOFF" in page.title()
    page.goto(f"/structure/{CABINET}")
    people = page.locator("table a[href^='/pro/']").all_inner_texts()
    assert "Dr Jean-Pierre LE GOFF" in people and "Dr Bénédicte LEFÈVRE" in people
    assert "Hélène DUPONT" in page.goto(f"/structure/{HOSPITAL}").text()  # mixed case kept as stored


# --- the extractions page -------------------------------------------------------------


@pytest.fixture
def extractions_site(tmp_path: Path) -> Iterator[Site]:
    """The world, with its daily extractions generated, served with their directory."""
    store = open_store(f"sqlite:///{tmp_path / 'web.sqlite'}")
    world.build(store)
    outdir = tmp_path / "extractions"
    generate(store, outdir, now=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    settings = replace(make_settings(), extractions_dir=str(outdir))
    try:
        yield from serve(store, settings)
    finally:
        store.dispose()


def test_extractions_page_has_the_site_layout_and_fits_a_phone(browser, extractions_site, width) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=extractions_site.url, locale="fr-FR", **WIDTHS[width])
    page = context.new_page()
    try:
        page.goto("/extractions/")
        assert h1(page) == "Extractions publiques quotidiennes"
        nav = page.get_by_role("navigation", name="Navigation principale")
        assert nav.is_visible()
        assert nav.get_by_role("link", name="Recherche").get_attribute("href") == "/"
        assert page.locator("footer.site-footer").is_visible()
        # the site's stylesheet is applied (not the browser's default serif and margins)
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Times" not in font and font != "serif", font
        assert page.evaluate("document.styleSheets.length") >= 1
        files = page.locator("table.extractions a.file")
        assert files.count() == 2
        for f in files.all():
            assert f.is_visible() and f.inner_text().endswith("202611250300.zip")
            assert f.get_attribute("href") == "/extractions/" + f.inner_text()
        assert_fits(page, f"the extractions page ({width})")
        # the latest-file links work from the page
        with page.expect_download() as download:
            page.get_by_role("link", name="dernière version de Extraction_Correspondance_MSSante").click()
        assert download.value.suggested_filename == "Extraction_Correspondance_MSSante_202611250300.zip"
    finally:
        context.close()


# --- /aide tells the LDAP port actually served --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """`annuaire serve` as deployed, LDAP on a free port (or off with `0`); (base URL, LDAP port)."""
    ldap_port = _free_port() if request.param == "on" else 0
    http_port = _free_port()
    from annuaire.store import open_store

    open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}").dispose()  # (serve refuses a missing store)
    env = dict(os.environ, ANNUAIRE_DB=f"sqlite:///{tmp_path / 'annuaire.sqlite'}", ANNUAIRE_EXTRACTIONS_TIME="off",
               ANNUAIRE_EXTRACTIONS_DIR=str(tmp_path / "out"))
    with (tmp_path / "stderr.log").open("wb") as err:  # (its access log: a pipe nobody drains would fill)
        proc = subprocess.Popen(
            [sys.executable, "-m", "annuaire", "serve", "--host", "127.0.0.1", "--http-port", str(http_port),
             "--ldap-port", str(ldap_port), "--http-workers", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200 and proc.poll() is None:
            try:
                status = httpx.get(base + "/aide").status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200, (tmp_path / "stderr.log").read_text() if proc.poll() is not None else status
        yield base, ldap_port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("served", ["on", "off"], indirect=True)
def test_help_page_shows_the_ldap_port_served(browser, served, width) -> None:  # type: ignore[no-untyped-def]
    base, ldap_port = served
    context = browser.new_context(base_url=base, locale="fr-FR", **WIDTHS[width])
    page = context.new_page()
    try:
        page.goto("/aide")
        ldap = page.locator("section#ldap")
        if ldap_port:
            assert page.locator("#ldap-port").inner_text() == str(ldap_port)
            assert page.locator("#ldap-host").inner_text() == "127.0.0.1"
            assert f"Port : {ldap_port}" in ldap.inner_text()  # in the Thunderbird steps too
            assert page.locator("#ldap-off").count() == 0
            with socket.create_connection(("127.0.0.1", ldap_port), timeout=5):
                pass  # the port the page gives is the one that answers
        else:
            assert page.locator("#ldap-off").is_visible()
            assert "n’est pas activé" in page.locator("#ldap-off").inner_text()
            assert page.locator("#ldap-port").count() == 0 and page.locator("#ldaps-port").count() == 0
            assert "Thunderbird" not in ldap.inner_text()
        assert_fits(page, f"/aide ({width})")
    finally:
        context.close()
