"""Every HTTP request, observed once: its metrics and its access line (annuaire.http.app adds this).

The kind of a request is its route template (`/fhir/v2/{type}/{id}`), found
after routing in the scope (Starlette sets `route`; a Mount moves
`root_path`), so that paths full of identifiers make a bounded set of
series; a path no route matched is `unmatched`. The interface is read from
the path: FHIR under /fhir, the public web pages (`/`, /pro, /structure,
/aide, /assets), `http` for the rest (publication API, console,
extractions, health and metrics).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annuaire.observability import accesslog, metrics

WEB = ("/pro/", "/structure/", "/aide", "/assets/")


def interface(path: str) -> str:
    if path == "/fhir" or path.startswith("/fhir/"):
        return "fhir"
    if path == "/" or path.startswith(WEB):
        return "web"
    return "http"


def template(scope: Scope) -> str:
    """The route template that answered, with the prefixes of the mounts it sits in."""
    route: Any = scope.get("route")
    root = scope.get("root_path", "")
    prefix = root[len(scope.get("app_root_path", root)):]
    if isinstance(route, Route):
        return prefix + route.path
    if isinstance(route, Mount):
        return prefix + "/{path}"
    return "unmatched"


class Observed:
    """ASGI middleware: times the request, then records its metrics and writes its access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception becomes the server's 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            path = scope.get("path", "")
            where = interface(path)
            metrics.observe(where, template(scope), str(status), seconds)
            if accesslog.enabled():
                client = scope.get("client")
                accesslog.write(where, client[0] if client else "-", {
                    "method": scope.get("method", ""),
                    "path": accesslog.path_with_query(path, scope.get("query_string", b"")),
                    "status": status,
                }, seconds)
