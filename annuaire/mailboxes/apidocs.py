"""The browsable description of the publication API at /api/v1/docs.

Why our own small page rather than a renderer from a CDN: operators' and
hospitals' networks often block third-party hosts, and a page that loads
nothing from elsewhere keeps working offline and under a strict
Content-Security-Policy. The page (French) reads /api/v1/openapi.json with a
little vanilla JavaScript; it and its assets ship in `docs_assets/`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.responses import Response

from annuaire.errors import NotFound

ASSETS = {"docs.js": "text/javascript; charset=utf-8", "docs.css": "text/css; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "max-age=300",
}


@cache
def _read(name: str) -> bytes:
    return resources.files("annuaire.mailboxes").joinpath("docs_assets", name).read_bytes()


def page() -> Response:
    return Response(_read("docs.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no documentation asset {name!r} (assets: {', '.join(ASSETS)})")
    return Response(_read(name), media_type=ASSETS[name], headers=HEADERS)
