"""The web pages' routes, contributed to the one HTTP app (annuaire.http.app)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from annuaire.config import Settings
from annuaire.store import Store
from annuaire.web.views import Pages, page_errors

STATIC = Path(__file__).with_name("static")


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """`/` search, `/pro/<id_nat>`, `/structure/<tech_id>`, `/aide`, and `/assets/` (CSS, JS)."""
    pages = Pages(store, settings)
    return [
        Route("/", page_errors(pages, pages.home), methods=["GET", "HEAD"], name="web-search"),
        Route("/pro/{id}", page_errors(pages, pages.professional), methods=["GET", "HEAD"], name="web-pro"),
        Route(
            "/structure/{id}", page_errors(pages, pages.structure), methods=["GET", "HEAD"], name="web-structure"
        ),
        Route("/aide", page_errors(pages, pages.help), methods=["GET", "HEAD"], name="web-help"),
        Mount("/assets", app=StaticFiles(directory=STATIC), name="web-assets"),
    ]
