"""The operator publication API under /api/v1 (Starlette routes).

Every failure is a problem+json answer (RFC 7807) naming what and where,
drawn by the one HTTP error edge (annuaire.http.errors) from the errors
raised here; nothing is applied unless the whole publication succeeds.
Request order: identity (401), domain ownership (403), content type (415),
body size (413, counted while streaming), shape of the document (400), then
the publication itself (report, 409 mass deletion, 412 If-Match).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import and_, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from annuaire.config import Settings
from annuaire.errors import (
    BadToken,
    InvalidInput,
    ListFormatError,
    NotFound,
    TokenExpired,
    Unauthorized,
    UnsupportedMediaType,
)
from annuaire.gcpause import gc_paused
from annuaire.http.bodies import read_body
from annuaire.http.errors import Edge, Problem
from annuaire.http.inputs import MAX_ID, integer, is_integer, no_nul, shown
from annuaire.http.limits import AuthThrottle, for_app
from annuaire.mailboxes import apidocs, domainviews, openapi
from annuaire.mailboxes.entries import (
    ListBody,
    decode_text,
    parse_json_list,
    parse_text,
)
from annuaire.mailboxes.model import Mailbox, mailbox_from_row
from annuaire.mailboxes.operators import (
    Operator,
    authenticate_dn,
    authenticate_token,
)
from annuaire.mailboxes.publication import check_owner, publish
from annuaire.mailboxes.rules import normalise_domain, valid_domain
from annuaire.mailboxes.tlsident import client_dn
from annuaire.store import Store
from annuaire.store.clock import to_stored
from annuaire.store.follow import Cursor, Follower
from annuaire.store.schema import domain as domain_table
from annuaire.store.schema import journal, mailbox, run

JSON_TYPES = ("application/json",)
TEXT_TYPES = ("text/csv", "text/plain")
RENDER_WAIT = 30.0  # seconds a publication waits for another FHIR renderer before answering
CSV_COLUMNS = (
    "Type de BAL", "Adresse BAL", "Identification nationale PP", "Type identifiant structure",
    "Identification Structure", "Service de rattachement", "Dématérialisation", "Liste rouge", "Description",
    "Responsable", "Rang",
)


# --- request helpers ---------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    params = dict(request.query_params)
    unknown = sorted(set(params) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise InvalidInput(f"unknown query parameter(s) {', '.join(map(shown, unknown))} (known: {known})")
    for name, value in params.items():
        no_nul(value, f"query parameter {name}")
    return params


def _flag(params: dict[str, str], name: str) -> bool:
    if name not in params:
        return False
    value = params[name].strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise InvalidInput(f"query parameter {name}={value!r}: expected true or false")


def _int_param(params: dict[str, str], name: str, default: int, maximum: int | None = None) -> int:
    """A non-negative integer parameter (at most MAX_ID, what the store holds); values above
    `maximum` are brought down to it."""
    raw = params.get(name)
    if raw is None:
        return default
    value = integer(raw, f"query parameter {name}")
    return min(value, maximum) if maximum else value


def _if_match(header: str | None) -> int | None:
    """The version in If-Match (`"3"`, `W/"3"`, `3`); `*` = any; anything else can never match."""
    if header is None or header.strip() == "*":
        return None
    text = header.strip()
    text = text.removeprefix("W/")
    text = text.strip('"')
    return int(text) if is_integer(text) else -1


def _since(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return to_stored(datetime.fromisoformat(raw))  # Python 3.11 reads a trailing Z
    except (ValueError, OverflowError) as exc:  # OverflowError: year 1 or 9999 moved to UTC
        raise InvalidInput(f"query parameter since={shown(raw)} is not an ISO 8601 date or instant between "
                           "years 1 and 9999 (e.g. 2026-11-25T03:00:00Z)") from exc


def _media_type(request: Request) -> tuple[str, str | None]:
    raw = request.headers.get("content-type", "")
    media, _, rest = raw.partition(";")
    media = media.strip().lower()
    charset = None
    for param in rest.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    if media in JSON_TYPES or media in TEXT_TYPES:
        return media, charset
    shown = f"{media!r}" if media else "none"
    raise UnsupportedMediaType(
        f"content type {shown} is not accepted: send application/json ({{\"mailboxes\": [...]}}) "
        "or text/csv / text/plain (the '|'-separated Extraction_Correspondance_MSSante layout)"
    )


# --- the API ------------------------------------------------------------------------------------


class PublicationAPI:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.throttle = AuthThrottle(for_app(), "publication API", settings.auth_failures_per_address,
                                     settings.auth_failures_per_operator)

    def _identify(self, request: Request, connection: Any = None) -> Operator:
        """The operator behind the request's token or certificate. Failures are counted per client
        address and per operator; an address (or operator) over its budget gets 429 before any
        store read or hash (annuaire.http.limits.AuthThrottle)."""
        address = request.client.host if request.client else "unknown"
        header = request.headers.get("authorization")
        dn = None if header else client_dn(request.scope)
        if not header and not dn:
            raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>' or a registered TLS "
                               "client certificate")
        self.throttle.check(address)
        if connection is None:
            with self.store.read() as conn:
                return self._identify_with(request, conn, address, header, dn)
        return self._identify_with(request, connection, address, header, dn)

    def _identify_with(self, request: Request, conn: Any, address: str, header: str | None,
                       dn: str | None) -> Operator:
        try:
            if header:
                scheme, _, token = header.strip().partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthorized("the Authorization header must read 'Bearer <token>'")
                return authenticate_token(conn, token.strip(), slow_allowed=self.throttle.operator_open)
            return authenticate_dn(conn, dn or "")
        except BadToken as exc:
            self.throttle.failed(address, exc.operator_id)  # TooManyRequests when the operator's budget is spent
            raise
        except TokenExpired:  # the right token, only too old: not a guess
            raise
        except Unauthorized:
            self.throttle.failed(address)
            raise

    def _owner(self, request: Request) -> tuple[Operator, str]:
        name = normalise_domain(request.path_params["domain"])
        if not valid_domain(name):
            self._identify(request)  # 401 before anything else (request order, module docstring)
            raise InvalidInput(f"domain {shown(name)} in the path is not a mail domain (e.g. ch-exemple.mssante.fr)")
        with self.store.read() as conn:
            op = self._identify(request, conn)
            check_owner(conn, op, name)
        return op, name

    # PUT /api/v1/domains/{domain}/mailboxes
    async def put_mailboxes(self, request: Request) -> Response:
        started = time.perf_counter()
        params = _query(request, {"dry_run", "confirm_mass_delete"})
        dry_run, confirm = _flag(params, "dry_run"), _flag(params, "confirm_mass_delete")
        if_match = request.headers.get("if-match")
        op, name = await run_in_threadpool(self._owner, request)
        media, charset = _media_type(request)
        body = await read_body(request, self.settings.max_body_bytes)
        report = await run_in_threadpool(self._publish, op, name, media, charset, body, dry_run, confirm, if_match)
        if not dry_run and any(report.get(k) for k in ("created", "updated", "deleted")):
            report["fhir_current"] = await run_in_threadpool(self._render)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return _json(report, headers={"ETag": f'"{report["version"]}"', "Server-Timing": f"app;dur={elapsed_ms:.1f}"})

    def _publish(self, op: Operator, name: str, media: str, charset: str | None, body: bytes,
                 dry_run: bool, confirm: bool, if_match: str | None) -> dict[str, Any]:
        with gc_paused():  # the entries are freed before the collector resumes (no local holds them)
            listed = _entries(media, charset, body, name)
            expected = _expected_version(if_match, listed.version)
            return publish(self.store, self.settings, op, name, listed.entries, dry_run=dry_run,
                           confirm_mass_delete=confirm, if_match=expected)

    def _render(self) -> bool:
        """Bring the FHIR cache up to the publication before answering (freshness contract,
        docs/architecture.md); False when another renderer kept it busy longer than RENDER_WAIT
        (the server's own renderer then catches up, and FHIR answers 503 meanwhile)."""
        from annuaire.fhir.cache import refresh

        return not refresh(self.store, wait=RENDER_WAIT).skipped

    # GET /api/v1/domains/{domain}/mailboxes
    async def get_mailboxes(self, request: Request) -> Response:
        params = _query(request, {"format"})
        fmt = params.get("format") or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")
        if fmt not in ("json", "csv"):
            raise InvalidInput(f"format={fmt!r}: expected json or csv")
        _, name = await run_in_threadpool(self._owner, request)
        version, boxes = await run_in_threadpool(self._current, name)
        headers = {"ETag": f'"{version}"'}
        if fmt == "csv":
            return Response(_csv(boxes), media_type="text/csv; charset=utf-8", headers=headers)
        # The operator's own view: its `responsible` contact is included (never in public outputs).
        listed = [{**mb.public(), "responsible": mb.responsible} for mb in boxes]
        return _json({"domain": name, "version": version, "mailboxes": listed}, headers=headers)

    def _current(self, name: str) -> tuple[int, list[Mailbox]]:
        with self.store.read() as conn:
            version = conn.execute(select(domain_table.c.version).where(domain_table.c.name == name)).scalar() or 0
            rows = conn.execute(
                select(mailbox).where(mailbox.c.domain == name, mailbox.c.active).order_by(mailbox.c.address)
            ).mappings()
            return int(version), [mailbox_from_row(row) for row in rows]

    # GET /api/v1/domains/{domain}/visibility
    async def visibility(self, request: Request) -> Response:
        """Per active box: seen by the public or not, and why (the directory's one rule)."""
        _query(request, set())
        _, name = await run_in_threadpool(self._owner, request)
        return _json(await run_in_threadpool(domainviews.visibility, self.store, name))

    # GET /api/v1/domains/{domain}/quality
    async def quality(self, request: Request) -> Response:
        """The domain's entry of `annuaire quality`."""
        _query(request, set())
        op, name = await run_in_threadpool(self._owner, request)
        return _json(await run_in_threadpool(domainviews.quality, self.store, self.settings, op.name, name))

    # GET /api/v1/domains
    async def list_domains(self, request: Request) -> Response:
        _query(request, set())
        op = await run_in_threadpool(self._identify, request)
        return _json({"operator": op.name, "domains": await run_in_threadpool(self._domains, op)})

    def _domains(self, op: Operator) -> list[dict[str, Any]]:
        counts = (
            select(mailbox.c.domain, func.count().label("n"))
            .where(mailbox.c.active)
            .group_by(mailbox.c.domain)
            .subquery()
        )
        query = (
            select(domain_table.c.name, domain_table.c.version, domain_table.c.last_published, counts.c.n)
            .outerjoin(counts, counts.c.domain == domain_table.c.name)
            .where(domain_table.c.operator_id == op.id)
            .order_by(domain_table.c.name)
        )
        with self.store.read() as conn:
            return [
                {"domain": r[0], "version": r[1], "last_published": r[2], "mailboxes": r[3] or 0}
                for r in conn.execute(query)
            ]

    # GET /api/v1/domains/{domain}/history
    async def history(self, request: Request) -> Response:
        params = _query(request, {"since", "after", "limit", "cursor"})
        limit = max(1, _int_param(params, "limit", 1000, 10_000))
        if "cursor" in params:
            if "since" in params or "after" in params:
                raise InvalidInput("query parameter cursor: give it alone (not with since or after)")
            raw = params["cursor"]
            cursor = Cursor() if raw == "start" else Cursor.from_token(raw)
            _, name = await run_in_threadpool(self._owner, request)
            entries, cursor, more = await run_in_threadpool(self._follow, name, cursor, limit)
            token = cursor.token()
            next_url = f"{request.url.path}?{urlencode({'cursor': token, 'limit': limit})}" if more else None
            return _json({"domain": name, "entries": entries, "cursor": token, "next": next_url})
        since = _since(params.get("since"))
        after = _int_param(params, "after", 0)
        _, name = await run_in_threadpool(self._owner, request)
        entries = await run_in_threadpool(self._journal, name, since, after, limit)
        next_url = None
        if len(entries) == limit:
            query = {"after": entries[-1]["id"], "limit": limit, **({"since": params["since"]} if since else {})}
            next_url = f"{request.url.path}?{urlencode(query)}"
        return _json({"domain": name, "entries": entries, "next": next_url})

    def _follow(self, name: str, cursor: Cursor, limit: int) -> tuple[list[dict[str, Any]], Cursor, bool]:
        """The domain's changes committed since `cursor` (the one journal follower: none skipped)."""
        follower = Follower(cursor)
        scope = (journal.c.scope == name) & (journal.c.entity == "mailbox")
        columns = (journal.c.id, journal.c.at, journal.c.key, journal.c.change, journal.c.run_id, journal.c.data)
        batch = follower.poll(self.store.engine, columns=columns, where=scope, limit=limit)
        return [_entry(r._mapping) for r in sorted(batch.rows, key=lambda r: r.id)], follower.cursor, batch.truncated

    def _journal(self, name: str, since: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        conditions = [journal.c.scope == name, journal.c.entity == "mailbox", journal.c.id > after]
        if since:
            conditions.append(journal.c.at >= since)
        query = select(journal).where(and_(*conditions)).order_by(journal.c.id).limit(limit)
        with self.store.read() as conn:
            return [_entry(r) for r in conn.execute(query).mappings()]

    # GET /api/v1/publications/{id}
    async def publication(self, request: Request) -> Response:
        _query(request, set())
        raw = request.path_params["id"]
        op = await run_in_threadpool(self._identify, request)
        if not is_integer(raw):
            raise NotFound(f"no publication {shown(raw)}: publication ids are integers from 1 to {MAX_ID}")
        return _json(await run_in_threadpool(self._run, op, int(raw)))

    def _run(self, op: Operator, run_id: int) -> dict[str, Any]:
        with self.store.read() as conn:
            row = conn.execute(
                select(run).where(run.c.id == run_id, run.c.kind == "publication", run.c.operator_id == op.id)
            ).mappings().first()
        if row is None:
            raise NotFound(f"no publication {run_id} of operator {op.name!r}")
        report = orjson.loads(row["report"]) if row["report"] else {}
        return {**report, "publication": row["id"], "domain": row["domain"], "status": row["status"],
                "started_at": row["started_at"], "finished_at": row["finished_at"]}

    async def openapi_json(self, request: Request) -> Response:
        return _json(openapi.description(self.settings.base_url))

    async def docs(self, request: Request) -> Response:
        """The browsable description (apidocs: a page and its assets, served from here)."""
        _query(request, set())
        return apidocs.page()

    async def docs_asset(self, request: Request) -> Response:
        return apidocs.asset(request.path_params["name"])


def _entry(r: Any) -> dict[str, Any]:
    """One journal row of a domain's history, as the API shows it."""
    return {"id": r["id"], "at": r["at"], "address": r["key"], "change": r["change"], "publication": r["run_id"],
            "data": orjson.loads(r["data"]) if r["data"] else None}


def _entries(media: str, charset: str | None, body: bytes, name: str) -> ListBody:
    """The entries of a PUT body (JSON or the text layout). A JSON list read from GET carries
    `domain` (it must be the URL's) and `version` (checked by `_expected_version`)."""
    if media not in JSON_TYPES:
        return ListBody(parse_text(decode_text(body, charset)))
    listed = parse_json_list(body)
    if listed.domain is not None and normalise_domain(listed.domain) != name:
        raise ListFormatError(f"the list is the one of domain {shown(listed.domain)}, not of {name} (the URL's "
                              "domain): nothing was applied")
    return listed


def _expected_version(header: str | None, listed: int | None) -> int | None:
    """The version the list applies to: If-Match when sent (`*`: any), else the list's own
    `version` (what the GET it came from returned): 412 if the domain changed since."""
    if header is None:
        return listed
    expected = _if_match(header)
    if expected is not None and listed is not None and expected != listed:
        raise ListFormatError(f"the list's 'version' {listed} and If-Match {shown(header)} disagree: send the same "
                              "version in both, or one of them (If-Match: * publishes whatever the version)")
    return expected


def _csv(boxes: list[Mailbox]) -> bytes:
    """The current list in the text layout the PUT accepts (so GET then PUT changes nothing)."""

    def flag(value: bool | None) -> str:
        return "" if value is None else ("True" if value else "False")

    lines = ["|".join(CSV_COLUMNS)]
    for b in boxes:
        lines.append("|".join((
            b.type, b.address, b.holder or "", b.structure_type or "", b.structure or "", b.service or "",
            flag(b.dematerialisation), flag(b.liste_rouge), b.description or "", b.responsible or "",
            "" if b.rank is None else str(b.rank),
        )))
    return ("\n".join(lines) + "\n").encode()


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """The publication API routes, for annuaire.http.app.PROVIDERS: every path under /api/v1,
    whatever its method, answers JSON or problem+json."""
    api = PublicationAPI(store, settings)
    known = [
        Route("/api/v1/openapi.json", api.openapi_json, methods=["GET"]),
        Route("/api/v1/docs", api.docs, methods=["GET"]),
        Route("/api/v1/docs/{name}", api.docs_asset, methods=["GET"]),
        Route("/api/v1/domains", api.list_domains, methods=["GET"]),
        Route("/api/v1/domains/{domain}/mailboxes", api.put_mailboxes, methods=["PUT"]),
        Route("/api/v1/domains/{domain}/mailboxes", api.get_mailboxes, methods=["GET"]),
        Route("/api/v1/domains/{domain}/history", api.history, methods=["GET"]),
        Route("/api/v1/domains/{domain}/visibility", api.visibility, methods=["GET"]),
        Route("/api/v1/domains/{domain}/quality", api.quality, methods=["GET"]),
        Route("/api/v1/publications/{id}", api.publication, methods=["GET"]),
    ]
    return [Edge("/api/v1", known, Problem(credentials="Authorization"),
                 not_found="no such API resource {path} (see /api/v1/openapi.json)", redirect_slashes=False)]
