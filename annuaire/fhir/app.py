"""HTTP routes of the FHIR API under /fhir/v2 (Starlette).

Reads serve the stored bytes of each resource; searches assemble the Bundle
by concatenating stored bytes (no JSON parsing on the hot path, except for
`_elements`). Every error, unknown paths and methods included, leaves through
the FHIR edge of annuaire.http.errors: one OperationOutcome in the national
shape (one issue, severity error, code exception).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from annuaire.config import Settings
from annuaire.errors import (
    Gone,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from annuaire.fhir import ids, packing, paging, params, query, statements
from annuaire.fhir.auth import KeyRing, RateLimiter
from annuaire.fhir.cache import BackgroundRenderer
from annuaire.fhir.capability import capability_statement
from annuaire.fhir.historyview import HistoryView
from annuaire.fhir.patchwrite import MailboxPatcher
from annuaire.fhir.tables import (
    ORGANIZATION,
    PRACTITIONER,
    fhir_resource,
    fhir_sync,
)
from annuaire.http import limits
from annuaire.http.bodies import read_body
from annuaire.http.errors import FHIR_JSON, Edge, Outcome
from annuaire.store import Store, credentials, replica
from annuaire.store.schema import activity

PREFIX = "/fhir/v2"
CONTENT_TYPE = FHIR_JSON
MAX_INCLUDED = 5000  # included/revincluded resources per page
RETRY_AFTER = 5  # seconds, while the cache catches up


def _software_version() -> str:
    try:
        return version("annuaire")
    except PackageNotFoundError:
        return "0"


class FhirApi:
    """The state shared by the routes: store, settings, keys, limits, secret."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.keys = KeyRing(store)
        self.limits = limits.for_app()  # shared by the worker processes when there are several
        self.limiter = RateLimiter(settings.fhir_rate_limit, self.limits)
        self.throttle = limits.AuthThrottle(self.limits, "FHIR API", settings.auth_failures_per_address)
        # The renderer reads the store and writes the cache on the primary; with a replica
        # (`serve --read-db`) searches read its copy of the cache, watched for lag (store.replica).
        self.renderer = BackgroundRenderer(store.primary, history_days=settings.fhir_history_days)
        self.renderer.start()  # with the server, not at the first request
        replica.watch(store)  # (None without a replica)
        self.compiler = query.Compiler(store)
        self.inline = store.in_process
        self._secret: bytes | None = settings.secret.encode() if settings.secret else None
        self._bases: dict[tuple, str] = {}  # base URLs by what makes them (`base`)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self.store.read() as conn:
                self._secret = conn.execute(select(fhir_sync.c.secret).where(fhir_sync.c.id == 1)).scalar_one().encode()
        return self._secret

    async def _call(self, func: Callable[..., Any], *args: Any, unbounded: bool = False) -> Any:
        """Run a store query inline on SQLite: its indexed searches take a few ms of CPU in
        this process, and a hop to the thread pool cost more than that (0.6-1.1 ms a
        request, measured at national scale). `unbounded` work (`_total=accurate` over
        millions) goes to the thread pool, so that it does not block the other interfaces;
        so does every query on PostgreSQL, where the thread waits for another process."""
        if unbounded or not self.inline:
            return await run_in_threadpool(func, *args)
        return func(*args)

    def base(self, request: Request) -> str:
        """The API's base URL: the configured public URL, else the one the request was sent to."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/") + PREFIX
        scope = request.scope
        where = (scope.get("scheme"), scope.get("server"), scope.get("app_root_path", scope.get("root_path", "")),
                 next((v for k, v in scope["headers"] if k == b"host"), None))
        base = self._bases.get(where)
        if base is None:  # (starlette's URL building took longer than parsing the query)
            if len(self._bases) >= 64:  # a bound: clients choose their Host header
                self._bases.clear()
            base = self._bases[where] = str(request.base_url).rstrip("/") + PREFIX
        return base

    # --- guard: key, rate, freshness ------------------------------------------

    def guarded(self, handler: Callable[[Request], Awaitable[Response]], needs_key: bool = True,
                cached: bool = True) -> Callable:
        """`cached`: the handler serves the rendered cache, which must not be served while it is
        known to be behind (503 + Retry-After). Errors are drawn by the edge (`routes`)."""

        async def endpoint(request: Request) -> Response:
            if needs_key:
                self._check_key(request)  # in memory (the key ring reloads every 2 s)
            if cached:
                if not self.renderer.checked.is_set():  # just started: its first look takes a moment
                    await run_in_threadpool(self.renderer.checked.wait, 2.0)
                why = replica.unavailable(self.store) or self.renderer.unavailable()  # (the replica first: the more basic reason)
                if why is not None:
                    raise Unavailable(f"{why}; retry shortly", RETRY_AFTER)
            return await handler(request)

        return endpoint

    def position(self) -> dict[str, str]:
        """Every answer, errors included, says which journal position the cache reflects."""
        position = self.renderer.position
        return {} if position is None else {"X-Journal-Position": str(position)}

    def _check_key(self, request: Request) -> None:
        """The key is known, current and within its rate. An address that keeps sending wrong
        keys is refused (429) before they are looked at (annuaire.http.limits.AuthThrottle)."""
        address = request.client.host if request.client else "unknown"
        given = request.headers.get("esante-api-key")
        self.throttle.check(address)
        found = self.keys.lookup(given)
        if found is None:
            if given:  # a missing key is a mistake, not a guess
                self.throttle.failed(address)
            raise Unauthorized("Missing or invalid API key: send it in the ESANTE-API-KEY header")
        if found.expired:
            raise Unauthorized(f"This API key expired on {credentials.shown_expiry(found.expires_at)}: "
                               "ask for a new one")
        wait = self.limiter.wait(found.id, found.rate_limit)
        if wait:
            raise TooManyRequests("Too many requests for this API key: slow down and retry", wait)

    # --- handlers -------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        body = capability_statement(self.base(request), _software_version())
        return Response(orjson.dumps(body), media_type=CONTENT_TYPE)

    async def read(self, request: Request) -> Response:
        rtype = ids.resource_type(request.path_params["type"])
        rid_text = request.path_params["id"]
        elements = None
        for name, value in _query(request):
            if name == "_elements":
                elements = params._elements(rtype, value)
            elif name != "_format":
                raise InvalidInput(f"Parameter {name} not found for read of {rtype}")
        body = await self._call(self._read, rtype, rid_text)
        if elements is not None:
            body = _subset(body, elements)
        return Response(body, media_type=CONTENT_TYPE)

    def _read(self, rtype: str, public_id: str) -> bytes:
        try:
            rid, _ = ids.parse(rtype, public_id)
        except ValueError:
            raise NotFound(f"Resource not found with id: {public_id}") from None
        with self.store.read() as conn:
            found = statements.rows(conn, select(fhir_resource.c.active, fhir_resource.c.json).where(
                (fhir_resource.c.kind == ids.TYPES[rtype]) & (fhir_resource.c.rid == rid)))
            active, body = (found[0][0], packing.unpack(conn, found[0][1])) if found else (False, b"")
        if not found or ids.of_body(body) != public_id:
            raise NotFound(f"Resource not found with id: {public_id}")
        if not active:
            raise Gone(f"Resource {rtype}/{public_id} no longer exists (inactive); its last state is in "
                       f"{rtype}?_id={public_id}")
        return body

    async def search_get(self, request: Request) -> Response:
        rtype = ids.resource_type(request.path_params["type"])
        pairs = _query(request)
        base, query_text = self.base(request), _query_text(request)
        return await self._search(rtype, pairs, f"{base}/{rtype}" + (f"?{query_text}" if query_text else ""), base)

    async def search_post(self, request: Request) -> Response:
        rtype = ids.resource_type(request.path_params["type"])
        ctype = request.headers.get("content-type", "")
        if ctype and not ctype.startswith("application/x-www-form-urlencoded"):
            raise InvalidInput(f"POST {rtype}/_search expects application/x-www-form-urlencoded, got {ctype}")
        raw = await read_body(request, self.settings.fhir_max_body_bytes)
        pairs = _query(request) + params.query_pairs(raw, "form body")
        body = raw.decode("utf-8", "backslashreplace")  # for the self link only: the pairs are checked
        query_text = "&".join(p for p in (_query_text(request), body) if p)
        self_url = f"{self.base(request)}/{rtype}" + (f"?{query_text}" if query_text else "")
        return await self._search(rtype, pairs, self_url, self.base(request))

    async def page(self, request: Request) -> Response:
        pairs = _query(request)
        if [n for n, _ in pairs] != ["id"]:
            raise InvalidInput("A page link has exactly one parameter, id: follow the next link as given")
        cursor = paging.decode(self.secret, pairs[0][1])
        self_url = f"{self.base(request)}/_page?{_query_text(request)}"
        body = await self._call(self._run, cursor.search, cursor, self_url, self.base(request))
        return Response(body, media_type=CONTENT_TYPE)

    async def _search(self, rtype: str, pairs: list[tuple[str, str]], self_url: str, base: str) -> Response:
        search = params.parse(rtype, pairs, self.settings.fhir_default_count, self.settings.fhir_max_count)
        body = await self._call(self._run, search, None, self_url, base, unbounded=search.total == "accurate")
        return Response(body, media_type=CONTENT_TYPE)

    # --- the search itself ------------------------------------------------------

    def _run(self, search: params.Search, cursor: paging.Cursor | None, self_url: str, base: str) -> bytes:
        kind = ids.TYPES[search.resource_type]
        plan = self.compiler.conditions(search)
        with self.store.read() as conn:
            if cursor is None:
                bounds = query.bounds(conn, kind)
                page = query.first_page(conn, plan, bounds, search.count, search.total)
                total = page.total
            else:
                bounds, total = cursor.bounds, cursor.total
                page = query.run_page(conn, plan, cursor.after, bounds, search.count)
            entries = self._entries(conn, search, page.rows, base)
        links = []
        if page.more and page.rows:  # `_count=0` asks for the total only: no page follows
            token = paging.encode(self.secret, paging.Cursor(search, page.last, bounds, total))
            links.append(b'{"relation":"next","url":' + orjson.dumps(f"{base}/_page?id={token}") + b"}")
        links.append(b'{"relation":"self","url":' + orjson.dumps(self_url) + b"}")
        head = b'{"resourceType":"Bundle","type":"searchset","id":"' + str(uuid.uuid4()).encode() + b'",'
        if total is not None and search.total != "none":
            head += b'"total":' + str(total).encode() + b","
        if entries:
            entries[-1] = b"}"  # (the separator after the last entry)
        return b"".join([head, b'"entry":[', *entries, b'],"link":[', b",".join(links), b"]}"])

    def _entries(self, conn: Any, search: params.Search, rows: list[tuple[int, bytes]], base: str) -> list[bytes]:
        """The Bundle's entries as the bytes to join: each entry is five parts, the last one its
        closing brace and separator (`},`). Joined once: a 50-entry Bundle is ~70 KB, and
        concatenating each entry, then the entries, copied it three times."""
        rtype = search.resource_type
        subset = search.elements
        out: list[bytes] = []
        prefixes: dict[str, bytes] = {}

        def entry(type_: str, body: bytes, filtered: bool = False) -> tuple[bytes, ...]:
            if filtered and subset is not None:
                body = _subset(body, subset)
            prefix = prefixes.get(type_)
            if prefix is None:
                prefix = prefixes[type_] = f'{{"fullUrl":"{base}/{type_}/'.encode()
            return prefix, ids.id_bytes(body), b'","resource":', body, b"},"

        rev: dict[int, list[bytes]] = {}
        if search.revinclude and rows:
            column = None
            if rtype == "Practitioner" and "PractitionerRole:practitioner" in search.revinclude:
                column = activity.c.person_id
            elif rtype == "Organization" and "PractitionerRole:organization" in search.revinclude:
                column = activity.c.structure_id
            if column is not None:
                owners = [rid for rid, _ in rows if rid > 0]
                for owner, body in query.roles_of(conn, column, owners, MAX_INCLUDED):
                    rev.setdefault(owner, []).append(body)
        for rid, body in rows:
            out += entry(rtype, body, filtered=True)
            for role in rev.get(rid, ()):
                out += entry("PractitionerRole", role)
        if search.include and rows:
            for parts in self._includes(conn, search, rows, entry):
                out += parts
        return out

    def _includes(self, conn: Any, search: params.Search, rows: list[tuple[int, bytes]],
                  entry: Callable) -> list[tuple[bytes, ...]]:
        out: list[tuple[bytes, ...]] = []
        inc = set(search.include)
        if search.resource_type == "PractitionerRole":
            every = bool(inc & {"*", "PractitionerRole:*"})
            refs = conn.execute(
                select(activity.c.person_id, activity.c.structure_id).where(activity.c.id.in_([r for r, _ in rows]))
            ).all()
            if every or "PractitionerRole:practitioner" in inc:
                people = sorted({r.person_id for r in refs})
                bodies = query.resources(conn, PRACTITIONER, people[:MAX_INCLUDED])
                out.extend(entry("Practitioner", bodies[p]) for p in people if p in bodies)
            if every or "PractitionerRole:organization" in inc:
                sites = sorted({r.structure_id for r in refs if r.structure_id is not None})
                bodies = query.resources(conn, ORGANIZATION, sites[:MAX_INCLUDED])
                out.extend(entry("Organization", bodies[s]) for s in sites if s in bodies)
        elif search.resource_type == "Organization" and "Organization:partof" in inc:
            parents = sorted({p for p in (ids.part_of(body) for _, body in rows) if p is not None})
            matched = {rid for rid, _ in rows}
            parents = [p for p in parents if p not in matched]
            bodies = query.resources(conn, ORGANIZATION, parents)
            out.extend(entry("Organization", bodies[p]) for p in parents if p in bodies)
        return out


# --- helpers ---------------------------------------------------------------------


def _subset(body: bytes, elements: tuple[str, ...]) -> bytes:
    """`_elements`: keep the mandatory elements and the asked ones, tagged SUBSETTED."""
    doc = orjson.loads(body)
    keep = {"resourceType", "id", "meta", *elements}
    out = {k: v for k, v in doc.items() if k in keep}
    meta = dict(out.get("meta", {}))
    meta["tag"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}]
    out["meta"] = meta
    return orjson.dumps(out)


def _query(request: Request) -> list[tuple[str, str]]:
    """The query string's pairs, strictly decoded (params.query_pairs)."""
    return params.query_pairs(request.scope.get("query_string", b""))


def _query_text(request: Request) -> str:
    """The query string as sent, for self links: UTF-8, which `_query` has checked before (read
    from the scope: starlette's URL took longer to build than the query to parse)."""
    return request.scope.get("query_string", b"").decode()


async def no_history(request: Request) -> Response:
    """The history of the whole system is not served: each type's is."""
    raise NotFound("The history of the whole system is not supported: ask each type's, e.g. "
                   "Practitioner/_history?_since=<instant>")


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """The /fhir/v2 routes, for annuaire.http.app PROVIDERS: every path under /fhir/v2, whatever
    its method, answers FHIR JSON or an OperationOutcome."""
    api = FhirApi(store, settings)
    patcher = MailboxPatcher(store.primary, settings, api.compiler)  # (publishes: reads the primary)
    versions = HistoryView(api)
    g = api.guarded
    mount = Mount(PREFIX, routes=[
        Route("/metadata", g(api.metadata, needs_key=False, cached=False), methods=["GET"]),
        Route("/_page", g(api.page), methods=["GET"]),
        Route("/_history", no_history, methods=["GET"]),
        Route("/{type}", g(api.search_get), methods=["GET"]),  # (one segment: after the three above; the
        # most frequent request, matched before the longer paths)
        Route("/{type}/_history", g(versions.type), methods=["GET"]),
        Route("/{type}/{id}/_history", g(versions.instance), methods=["GET"]),
        Route("/{type}/{id}/_history/{vid}", g(versions.vread), methods=["GET"]),
        Route("/{type}/_search", g(api.search_post), methods=["POST"]),
        Route("/{type}/{id}", g(api.read), methods=["GET"]),
        # operators' per-mailbox writes: their own credentials, not an API key (annuaire.fhir.patchwrite)
        *(Route(f"/{rtype}", g(patcher.patch, needs_key=False, cached=False), methods=["PATCH"]) for rtype in ids.TYPES),
    ])
    not_found = "Invalid request: the FHIR endpoint on this server does not know how to handle {method} {path}"
    return [Edge(PREFIX, [mount], Outcome(), not_found=not_found, headers=api.position)]
