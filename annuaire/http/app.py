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
from annuaire.store import Store

# "module:function" of each capability's routes, most specific prefixes first.
PROVIDERS: list[str] = [
]


def create_app(store: Store, settings: Settings) -> Starlette:
    routes: list[BaseRoute] = []
    for spec in PROVIDERS:
        module, func = spec.split(":")
        routes.extend(getattr(import_module(module), func)(store, settings))
    app = Starlette(routes=routes)
    app.state.store = store
    app.state.settings = settings
    return app
