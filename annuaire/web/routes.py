"""The web pages' routes, contributed to the one HTTP app (annuaire.http.app)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from annuaire.config import Settings
from annuaire.http.errors import Edge, FrenchPage
from annuaire.store import Store
from annuaire.web.views import Pages

STATIC = Path(__file__).with_name("static")


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """`/` search, `/pro/<id_nat>`, `/structure/<tech_id>`, `/aide`, and `/assets/` (CSS, JS); any
    other path, or method, gets the French error page (keep last: this edge owns `/`)."""
    pages = Pages(store, settings)
    known = [
        Route("/", pages.home, methods=["GET", "HEAD"], name="web-search"),
        Route("/pro/{id}", pages.professional, methods=["GET", "HEAD"], name="web-pro"),
        Route("/structure/{id}", pages.structure, methods=["GET", "HEAD"], name="web-structure"),
        Route("/aide", pages.help, methods=["GET", "HEAD"], name="web-help"),
        Mount("/assets", app=StaticFiles(directory=STATIC), name="web-assets"),
    ]
    return [Edge("/", known, FrenchPage(pages.error_page), not_found="aucune page n'existe à l'adresse {path}",
                 not_allowed="la méthode {method} n'est pas acceptée à l'adresse {path} (acceptées : {allowed})")]
