"""The public pages: search, professional, structure, help; and their error page.

Handlers are plain functions (Starlette runs them in its thread pool) that
read the store, build the page's data and render a Jinja2 template with
autoescaping. They raise errors of the directory with French messages; the
web edge of annuaire.http.errors turns them (and unknown paths) into the
French error page `Pages.error_page` draws.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from annuaire.config import Settings
from annuaire.errors import NotFound
from annuaire.store import Store
from annuaire.store.dialect import tune_short_queries
from annuaire.store.keys import search_key
from annuaire.web import display, examples, search
from annuaire.web.answer import answer
from annuaire.web.details import person_detail, structure_detail
from annuaire.web.interpret import Criteria
from annuaire.web.links import access
from annuaire.web.params import FIELDS, SearchParams, read_page, read_params
from annuaire.web.vocab import BOX_LABELS, MAILBOX_TYPES, vocabulary

TEMPLATES = Path(__file__).with_name("templates")
MAX_ID_LENGTH = 64  # national ids are 11-12 characters, technical ids of structures up to ~20
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    vocab = vocabulary()
    env.globals["vocab"] = vocab
    env.globals["skills_sorted"] = sorted(vocab.skills.items(), key=lambda item: search_key(item[1]))
    env.globals["mailbox_types"] = MAILBOX_TYPES
    env.globals["box_labels"] = BOX_LABELS
    env.filters["first_name"] = display.first_name
    env.filters["phone"] = display.phone
    env.filters["phone_link"] = display.phone_link
    env.globals["max_page"] = search.MAX_PAGE
    env.globals["page_size"] = search.PAGE_SIZE
    return env


_shared: Environment | None = None


def page_html(request: Request, settings: Settings, name: str, **context: Any) -> str:
    """A page of the site's layout rendered for another part of the HTTP app (the extractions'
    listing): same templates, navigation and stylesheet."""
    global _shared
    if _shared is None:
        _shared = make_environment()
    context.setdefault("access", access(settings, request.url.hostname, str(request.base_url)))
    context.setdefault("params", SearchParams())
    return _shared.get_template(name).render(request=request, **context)


class Pages:
    """The page handlers bound to one store and one Settings."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.env = make_environment()

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("access", access(self.settings, request.url.hostname, str(request.base_url)))
        context.setdefault("params", SearchParams())
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def error_page(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        """The French error page (annuaire.http.errors.FrenchPage)."""
        return self.render(request, "error.html", status, title=title, message=message)

    # --- pages -------------------------------------------------------------

    def home(self, request: Request) -> Response:
        params = read_params(request.query_params)
        if any(not request.query_params.get(name, "x").strip() for name in FIELDS):
            return RedirectResponse(params.url(), status_code=303)  # the short, shareable URL
        with self.store.read() as conn:
            hints = examples.get(conn)
            if params.blank:
                return self.render(request, "home.html", params=params, hints=hints)
            tune_short_queries(conn)
            result = answer(conn, params)
        if result.redirect:
            return RedirectResponse(result.redirect, status_code=303)
        shown = replace(params, q=result.shown) if result.shown else params
        return self.render(
            request,
            "results.html",
            params=params,
            result=result,
            criteria=result.criteria,
            hints=hints,
            as_name_url=_as_name_url(params, result.box),
            page_url=lambda n: shown.url(page=n),
            suggestion_url=lambda q: params.url(q=q, page=1, comme=""),
        )

    def professional(self, request: Request) -> Response:
        id_nat = request.path_params["id"]
        if not _plausible_id(id_nat):
            raise NotFound(f"aucun professionnel actif n'a l'identifiant {id_nat[:40]!r}")
        with self.store.read() as conn:
            detail = person_detail(conn, id_nat)
        return self.render(request, "professional.html", detail=detail)

    def structure(self, request: Request) -> Response:
        tech_id = request.path_params["id"]
        if not _plausible_id(tech_id):
            raise NotFound(f"aucune structure active n'a l'identifiant {tech_id[:40]!r}")
        page = read_page(request.query_params)
        with self.store.read() as conn:
            detail = structure_detail(conn, tech_id, page)
        base = f"/structure/{quote(tech_id, safe='')}"
        return self.render(
            request, "structure.html", detail=detail, page_url=lambda n: base if n == 1 else f"{base}?page={n}"
        )

    def help(self, request: Request) -> Response:
        return self.render(request, "help.html")


def _plausible_id(value: str) -> bool:
    """National and technical ids are short and printable: anything else is not looked up
    (PostgreSQL refuses NUL characters in a query)."""
    return len(value) <= MAX_ID_LENGTH and value.isprintable()


def _as_name_url(params: SearchParams, box: Criteria) -> str:
    """The link that reads the whole box as a name, when the box was read otherwise."""
    if params.comme == "nom" or not box.interpreted or box.address:
        return ""
    return params.url(comme="nom", page=1)
