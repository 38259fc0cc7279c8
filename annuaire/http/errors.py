"""The one HTTP error edge: the tree of annuaire.errors → a status, drawn in each interface's shape.

Each interface's routes are wrapped in an `Edge` owning a path prefix: every
request under it, whatever its path holds (a newline, bytes that are not
UTF-8), whatever its method, is answered by the routes or, on failure, by the
edge's Starlette exception handlers in the edge's shape:

    /api/v1       operator publication API  application/problem+json (RFC 7807)
    /extractions  extraction downloads      application/problem+json
    /fhir/v2      FHIR API                  OperationOutcome (application/fhir+json)
    /             web pages                 a French HTML page

Why one place: the status tables used to live in three modules (and, in
reverse, in the operator client), so a new error class meant four edits and
each edge answered Starlette's own text/plain for unknown paths and methods.
Domain code raises classes of the tree; exceptions from below (Starlette's
404/405, a client gone, the database) are mapped here to the most specific
class, as httpx's `map_httpcore_exceptions` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

import orjson
from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, Router
from starlette.types import Message, Receive, Scope, Send

from annuaire.errors import (
    BodyTooLarge,
    ClientGone,
    ConcurrentChange,
    Conflict,
    DirectoryError,
    Forbidden,
    Gone,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)

log = logging.getLogger("annuaire.http")

# The one mapping: the most specific class of an error's MRO listed here gives its status.
STATUS: dict[type[DirectoryError], int] = {
    DirectoryError: 500,
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    Gone: 410,
    PreconditionFailed: 412,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,
    Unavailable: 503,
}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 410: "Gone", 412: "Precondition Failed", 413: "Content Too Large",
          415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error",
          503: "Service Unavailable"}
PROBLEM = "application/problem+json"
FHIR_JSON = "application/fhir+json;charset=UTF-8"


def status_of(error: DirectoryError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def headers_of(error: DirectoryError, status: int) -> dict[str, str]:
    """What every shape adds: Retry-After when a delay is known, Allow for a 405."""
    headers: dict[str, str] = {}
    retry = error.retry_after_header
    if retry is not None:
        headers["Retry-After"] = retry
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    return headers


def translate(request: Request, exc: BaseException) -> DirectoryError:
    """Any exception met at an edge, as the most specific class of the tree (logged when unexpected).
    Starlette's own 404/405 are translated by the Edge, which knows its messages."""
    # Imported here: `annuaire publish` reads STATUS without the database layer.
    from sqlalchemy.exc import DBAPIError, IntegrityError

    where = (request.method, request.url.path)
    if isinstance(exc, DirectoryError):
        return exc
    if isinstance(exc, ClientDisconnect):
        log.info("client gone during %s %s; nothing was applied", *where)
        return ClientGone("the client disconnected before the end of its request")
    if isinstance(exc, IntegrityError):  # a concurrent writer outside the domain lock (e.g. a national import)
        log.warning("integrity conflict on %s %s", *where, exc_info=exc)
        return ConcurrentChange("the store changed during the publication; nothing was applied, send it again")
    if isinstance(exc, DBAPIError):
        log.error("store error on %s %s", *where, exc_info=exc)
        return StoreUnavailable("the store is unavailable; nothing was applied, retry later")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return InvalidInput(str(exc.detail))
    log.error("unexpected error on %s %s", *where, exc_info=exc)
    return InternalError("unexpected server error; nothing was applied")


# --- the shapes -----------------------------------------------------------------------------


class Shape(Protocol):
    def __call__(self, request: Request, error: DirectoryError, status: int) -> Response: ...


class Problem:
    """RFC 7807 problem+json: type, title, status, detail, instance, code and the error's members.
    `credentials`: the header a 401 or 429 names (`parameter`), when the edge authenticates."""

    def __init__(self, credentials: str | None = None) -> None:
        self.credentials = credentials

    def __call__(self, request: Request, error: DirectoryError, status: int) -> Response:
        body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                                "detail": error.message, "instance": request.url.path, "code": error.code}
        body.update({k: v for k, v in error.members().items() if v is not None})
        if self.credentials and isinstance(error, (Unauthorized, TooManyRequests)):
            body["parameter"] = self.credentials
        headers = headers_of(error, status)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="annuaire"'
        return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


class Outcome:
    """A FHIR OperationOutcome in the national shape: one issue, severity error, code exception."""

    MESSAGES: ClassVar[dict[str, str]] = {InternalError.code: "Unknown error"}  # the national API's words

    def __call__(self, request: Request, error: DirectoryError, status: int) -> Response:
        message = self.MESSAGES.get(error.code, error.message)
        body = {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception", "diagnostics": message}]}
        return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON,
                        headers=headers_of(error, status))


PageRenderer = Callable[[Request, int, str, str], Response]


class FrenchPage:
    """A French HTML error page drawn by `render(request, status, title, message)` (the site's
    layout). Messages raised by the pages are French already; those of the edge itself are
    replaced here."""

    TITLES: ClassVar[dict[int, str]] = {
        400: "Demande incorrecte", 401: "Accès refusé", 403: "Accès refusé", 404: "Page introuvable",
        405: "Méthode non autorisée", 409: "Conflit", 410: "Page introuvable", 412: "Version périmée",
        413: "Demande trop volumineuse",
        429: "Trop de demandes", 500: "Erreur", 503: "Service indisponible",
    }
    MESSAGES: ClassVar[dict[str, str]] = {
        ClientGone.code: "La demande a été interrompue avant sa fin.",
        StoreUnavailable.code: "L'annuaire est momentanément indisponible : réessayez dans quelques instants.",
        InternalError.code: "Une erreur inattendue est survenue ; elle a été signalée à l'équipe de l'annuaire.",
        TooManyRequests.code: "Trop de demandes en peu de temps : réessayez dans quelques instants.",
    }

    def __init__(self, render: PageRenderer) -> None:
        self.render = render

    def __call__(self, request: Request, error: DirectoryError, status: int) -> Response:
        message = self.MESSAGES.get(error.code, error.message)
        if isinstance(error, NotFound) and message:
            message = message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
        response = self.render(request, status, self.TITLES.get(status, "Erreur"), message)
        response.headers.update(headers_of(error, status))
        return response


def bare_shape(path: str) -> Shape | None:
    """The shape of the edge owning `path`, for what is refused before the app reaches it
    (annuaire.http.guard); None under the web pages, whose French page needs the app."""
    if under(path, "/fhir/v2"):
        return Outcome()
    if under(path, "/api/v1") or under(path, "/extractions"):
        return Problem()
    return None


def bare_answer(path: str, error: DirectoryError) -> bytes | None:
    """The whole HTTP/1.1 answer, closing the connection, in the shape of the edge owning `path`
    (for a request line the parser refuses: no ASGI cycle exists yet)."""
    shape = bare_shape(path)
    if shape is None:
        return None
    status = status_of(error)
    request = Request({"type": "http", "method": "GET", "path": path, "root_path": "", "query_string": b"",
                       "headers": [], "server": None, "scheme": "http"})
    response = shape(request, error, status)
    head = [f"HTTP/1.1 {status} {TITLES.get(status, 'Error')}".encode()]
    head += [name + b": " + value for name, value in response.raw_headers]
    return b"\r\n".join([*head, b"connection: close", b"", response.body])


# --- the edge -------------------------------------------------------------------------------


class Edge(BaseRoute):
    """Every HTTP request under `prefix`, answered by `routes` or, on failure, in `shape`.

    `not_found` and `not_allowed` are the messages of the edge's own 404 and 405
    (`{method}`, `{path}`, `{allowed}`). `headers()`, when given, is added to every answer of
    the edge, errors included (FHIR's X-Journal-Position)."""

    def __init__(self, prefix: str, routes: Sequence[BaseRoute], shape: Shape, *, not_found: str,
                 not_allowed: str = "{method} is not allowed on {path} (allowed: {allowed})",
                 redirect_slashes: bool = True, headers: Callable[[], dict[str, str]] | None = None) -> None:
        self.prefix = prefix.rstrip("/")
        self.routes = list(routes)
        self.shape = shape
        self.not_found = not_found
        self.not_allowed = not_allowed
        self.headers = headers
        router = Router(self.routes, redirect_slashes=redirect_slashes)
        self.app = ExceptionMiddleware(router, handlers={Exception: self.error, HTTPException: self.error})

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and under(get_route_path(scope), self.prefix):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["annuaire.edge_root"] = scope.get("root_path", "")  # before mounts move it (405's Allow)
        if self.headers is not None:
            send = _stamped(send, self.headers)
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)

    async def error(self, request: Request, exc: Exception) -> Response:
        """The exception handler: the error in the tree, its status, the edge's shape."""
        error = self._own(request, exc) if isinstance(exc, HTTPException) else None
        error = error or translate(request, exc)
        return self.shape(request, error, status_of(error))

    def _own(self, request: Request, exc: HTTPException) -> DirectoryError | None:
        """Starlette's 404 (no route) and 405 (a route, another method) in this edge's words."""
        fields = {"method": request.method, "path": request.url.path}
        if exc.status_code == 404:
            return NotFound(self.not_found.format(**fields))
        if exc.status_code == 405:
            scope = {**request.scope, "root_path": request.scope.get("annuaire.edge_root", "")}
            allowed = tuple(sorted(allowed_methods(self.routes, scope)))
            if not allowed and exc.headers and exc.headers.get("Allow"):
                allowed = tuple(m.strip() for m in exc.headers["Allow"].split(","))
            return MethodNotAllowed(self.not_allowed.format(allowed=", ".join(allowed) or "none", **fields), allowed)
        return None


def under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it (`/extractions` owns `/extractions/x`, not `/extractionsx`)."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """The methods some route accepts for this path (through mounts)."""
    methods: set[str] = set()
    for route in routes:
        match, child = route.matches(scope)
        if isinstance(route, Mount) and match is Match.FULL:
            methods |= allowed_methods(route.routes, {**scope, **child})
        elif isinstance(route, Route) and match is not Match.NONE and route.methods:
            methods |= route.methods
    return methods


def _stamped(send: Send, headers: Callable[[], dict[str, str]]) -> Send:
    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers().items()]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return stamped
