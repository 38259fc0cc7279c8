"""HTTP answers of the history interactions: vread, instance `_history`, type `_history`.

Bundles of type `history`, newest version first (FHIR R4 3.1.0.11.2), each entry with its
`request` (POST for a resource's first version, PUT for a later one, DELETE for a version
that withdraws it: inactive, as a read answers 410) and its `response`; the resource is
given in every entry, a withdrawn one too (`active: false`), so that a mirror may keep it.

`_since` is on the time each version was written into the cache (see `history`). Type
history pages on (that time, id, version) below a bound fixed at its first page (`_until`,
a few seconds before then, with `_after` the position reached): versions written while a
client pages sort above it and come with its next `_since`. The bundle's
`meta.lastUpdated` is that bound: the `_since` of the client's next poll (docs/fhir.md,
"History").
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from annuaire.errors import Gone, InvalidInput, NotFound
from annuaire.fhir import history, ids, params
from annuaire.fhir.render import fhir_instant
from annuaire.http.errors import FHIR_JSON
from annuaire.store.clock import utc_now

if TYPE_CHECKING:
    from annuaire.fhir.app import FhirApi

# Result parameters history shares with searches: parsed by the search's rules (`params.parse`),
# so that a valid `_count`, its bounds and its error message are the same on both.
SHARED = ("_count", "_format")


class HistoryView:
    """The three history interactions of one FHIR API (its store, settings and base URL)."""

    def __init__(self, api: FhirApi) -> None:
        self.api = api

    @property
    def days(self) -> int:
        return self.api.settings.fhir_history_days

    # --- request parsing ---

    def _target(self, request: Request) -> tuple[str, str, int]:
        rtype = ids.resource_type(request.path_params["type"])
        public_id = request.path_params.get("id", "")
        if not public_id:
            return rtype, "", 0
        try:
            rid, _ = ids.parse(rtype, public_id)
        except ValueError:
            raise NotFound(f"Resource not found with id: {public_id}") from None
        return rtype, public_id, rid

    def _options(self, request: Request, rtype: str, allowed: tuple[str, ...]) -> tuple[dict[str, str], int]:
        """The request's parameters (each at most once, `_format` always allowed) and its `_count`."""
        allowed = (*allowed, "_format")
        found: dict[str, str] = {}
        for name, value in params.query_pairs(request.scope.get("query_string", b"")):
            if name not in allowed:
                raise InvalidInput(f"Parameter {name} is not supported by _history (supported: {', '.join(allowed)})")
            if name in found:
                raise InvalidInput(f"Parameter {name} is repeated")
            found[name] = value
        settings = self.api.settings
        shared = [(name, found[name]) for name in SHARED if name in found]
        count = params.parse(rtype, shared, settings.fhir_default_count, settings.fhir_max_count).count
        return found, count

    def _since(self, options: dict[str, str]) -> str | None:
        if "_since" not in options:
            return None
        since = params.parse_date("_since", options["_since"]).start
        oldest = history.oldest_since(self.days)
        if since < oldest:
            raise InvalidInput(
                f"Parameter _since={options['_since']} is older than the versions this server keeps "
                f"({self.days} days: _since must be on or after {fhir_instant(oldest)}); "
                "load the current resources with a search, then follow _history from the time of that search")
        return since

    # --- handlers ---

    async def vread(self, request: Request) -> Response:
        rtype, public_id, rid = self._target(request)
        self._options(request, rtype, ())
        vid = request.path_params["vid"]
        if not vid.isdigit() or int(vid) < 1:
            raise NotFound(f"Version {vid!r} of {rtype}/{public_id} not found: versions are numbered 1, 2, …")
        found = await self.api._call(self._vread, ids.TYPES[rtype], rid, int(vid))
        if found is None or ids.of_body(found.body) != public_id:
            raise NotFound(f"Version {vid} of {rtype}/{public_id} not found (versions superseded more than "
                           f"{self.days} days ago are not kept)")
        if not found.active:
            raise Gone(f"Version {vid} of {rtype}/{public_id} withdrew it (inactive)")
        return Response(found.body, media_type=FHIR_JSON, headers=_version_headers(found))

    def _vread(self, kind: str, rid: int, vid: int) -> history.Version | None:
        with self.api.store.read() as conn:
            return history.vread(conn, kind, rid, vid)

    async def instance(self, request: Request) -> Response:
        rtype, public_id, rid = self._target(request)
        options, count = self._options(request, rtype, ("_since", "_count"))
        since = self._since(options)
        kind = ids.TYPES[rtype]
        versions, total = await self.api._call(self._instance, kind, rid, public_id, since, count)
        base = self.api.base(request)
        self_url = f"{base}/{rtype}/{public_id}/_history" + (f"?{request.url.query}" if request.url.query else "")
        return Response(_bundle(versions, base, self_url, utc_now(), total=total), media_type=FHIR_JSON)

    def _instance(self, kind: str, rid: int, public_id: str, since: str | None,
                  count: int) -> tuple[list[history.Version], int]:
        with self.api.store.read() as conn:
            current = history.of_instance(conn, kind, rid, None, 1)[0]
            if not current or ids.of_body(current[0].body) != public_id:
                raise NotFound(f"Resource not found with id: {public_id}")
            return history.of_instance(conn, kind, rid, since, count)

    async def type(self, request: Request) -> Response:
        rtype, _, _ = self._target(request)
        options, count = self._options(request, rtype, ("_since", "_count", "_until", "_after"))
        since = self._since(options)
        until = history.settled()
        after = None
        if "_until" in options:
            until = params.parse_date("_until", options["_until"]).start
        if "_after" in options:
            after = _position(options["_after"])
        versions, more = await self.api._call(self._type, ids.TYPES[rtype], since, until, after, count)
        base = self.api.base(request)
        query = request.url.query
        self_url = f"{base}/{rtype}/_history" + (f"?{query}" if query else "")
        next_url = None
        if more and versions:
            last = versions[-1]
            kept = [f"_since={options['_since']}"] if "_since" in options else []
            next_url = (f"{base}/{rtype}/_history?" + "&".join(
                [*kept, f"_count={count}", f"_until={fhir_instant(until).replace('+', '%2B')}",
                 f"_after={last.recorded_at}~{last.rid}~{last.version}"]))
        return Response(_bundle(versions, base, self_url, until, next_url=next_url), media_type=FHIR_JSON)

    def _type(self, kind: str, since: str | None, until: str, after: tuple[str, int, int] | None,
              count: int) -> tuple[list[history.Version], bool]:
        with self.api.store.read() as conn:
            return history.changes(conn, kind, since, until, after, count)


def _position(text: str) -> tuple[str, int, int]:
    """`_after` of a next link: `<stored time>~<rid>~<version>`."""
    try:
        stamp, rid, version = text.split("~")
        return stamp, int(rid), int(version)
    except ValueError:
        raise InvalidInput("Bad value for parameter _after: follow the next link as given") from None


def _version_headers(v: history.Version) -> dict[str, str]:
    return {"ETag": f'W/"{v.version}"', "Last-Modified": fhir_instant(v.last_updated)}


def _method(v: history.Version) -> tuple[str, str]:
    if not v.active:
        return "DELETE", "410 Gone"
    if v.version == 1:
        return "POST", "201 Created"
    return "PUT", "200 OK"


def _entry(v: history.Version, base: str) -> bytes:
    rtype = {"P": "Practitioner", "R": "PractitionerRole", "O": "Organization"}[v.kind]
    public_id = ids.of_body(v.body)
    method, status = _method(v)
    url = rtype if method == "POST" else f"{rtype}/{public_id}"
    return (b'{"fullUrl":' + orjson.dumps(f"{base}/{rtype}/{public_id}") + b',"resource":' + v.body
            + b',"request":' + orjson.dumps({"method": method, "url": url})
            + b',"response":' + orjson.dumps({"status": status, "etag": f'W/"{v.version}"',
                                              "lastModified": fhir_instant(v.last_updated)}) + b"}")


def _bundle(versions: list[history.Version], base: str, self_url: str, at: str,
            total: int | None = None, next_url: str | None = None) -> bytes:
    head: dict[str, object] = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                               "meta": {"lastUpdated": fhir_instant(at)}, "type": "history"}
    if total is not None:
        head["total"] = total
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    head["link"] = links
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(_entry(v, base) for v in versions) + b"]}"
