"""The one HTTP application served by `annuaire serve`.

Each capability contributes its routes through a function
`routes(store, settings) -> list[BaseRoute]` listed in PROVIDERS; this module
only assembles them.
"""

from __future__ import annotations

from importlib import import_module

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from annuaire.config import Settings
from annuaire.observability.asgi import Observed
from annuaire.store import Store

# "module:function" of each capability's routes, most specific prefixes first.
PROVIDERS: list[str] = [
    "annuaire.mailboxes.api:routes",  # /api/v1: operator publication API
    "annuaire.mailboxes.whitelist:routes",  # /listeblanchemssante.xml: the domain whitelist (issue 21)
    "annuaire.console.routes:routes",  # /operateurs: the operators' console in French (issue 21 item 3)
    "annuaire.extractions.http:routes",  # /extractions: daily extraction downloads (issue 5)
    "annuaire.fhir.app:routes",  # /fhir/v2: FHIR API compatible with the national API v2 (issue 6)
    "annuaire.http.health:routes",  # /healthz, /readyz: liveness and readiness (issue 23)
    "annuaire.http.metrics:routes",  # /metrics: Prometheus text, the whole server's (issue 23)
    "annuaire.web.routes:routes",  # web search page: "/", /pro, /structure, /aide, /assets (keep last: owns "/")
]


# Capabilities that read what they then write (publications and their diffs, operators' sessions):
# they read the primary, never a replica a little behind it (`Store.primary`; `serve --read-db`).
WRITERS = {"annuaire.mailboxes.api:routes", "annuaire.console.routes:routes"}


def create_app(store: Store, settings: Settings) -> Starlette:
    routes: list[BaseRoute] = []
    for spec in PROVIDERS:
        module, func = spec.split(":")
        routes.extend(getattr(import_module(module), func)(store.primary if spec in WRITERS else store, settings))
    app = Starlette(routes=routes)
    app.add_middleware(Observed)  # every request's metrics and access line (annuaire.observability.asgi)
    app.state.store = store
    app.state.settings = settings
    return app


def app_from_env() -> Starlette:
    """The same app for `uvicorn --factory annuaire.http.app:app_from_env`: store from ANNUAIRE_DB.
    (`annuaire serve` passes the store URL and settings to its workers explicitly, and serves
    them with the limits of annuaire.http.guard, which a bare uvicorn does not apply.)"""
    from annuaire.config import store_url
    from annuaire.store import open_store

    return create_app(open_store(store_url()), Settings.from_env())
