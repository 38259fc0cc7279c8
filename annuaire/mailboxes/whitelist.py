"""The national domain whitelist served at /listeblanchemssante.xml.

Mail servers of the MSSanté space download it often (they only accept mail
from listed domains), so every answer carries an `ETag` and a `Last-Modified`,
and a conditional request whose copy is current gets a 304 without a body.

Why a fingerprint and not a timestamp: operators and domains carry no "last
changed" column (a certificate DN or a contact can change without any
version), so the ETag is a hash of exactly what the document says (one small
query, `operators.whitelist_rows`). The XML itself is only rebuilt when that
hash changes; `Last-Modified` is when this process built it (the ETag is
exact, prefer If-None-Match).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from annuaire.config import Settings
from annuaire.http.errors import Edge, Problem
from annuaire.mailboxes.operators import whitelist_document, whitelist_rows
from annuaire.store import Store
from annuaire.store.clock import from_stored, to_stored, utc_now

PATH = "/listeblanchemssante.xml"
MEDIA_TYPE = "application/xml"


@dataclass(frozen=True)
class Document:
    etag: str  # quoted, as sent
    modified: datetime  # whole seconds, UTC
    body: bytes


class WhitelistCache:
    """The last built document of this process, rebuilt when the fingerprint changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._current: Document | None = None

    def current(self) -> Document:
        # Stamped before reading: whatever changes after the read gets a later stamp.
        stamp = from_stored(utc_now()).replace(microsecond=0)
        with self.store.read() as conn:
            rows = whitelist_rows(conn)
        values = [list(row.values()) for row in rows]  # (column names are not plain str: orjson refuses them)
        etag = '"' + hashlib.sha256(orjson.dumps(values)).hexdigest()[:32] + '"'
        with self._lock:
            previous = self._current
            if previous is not None and previous.etag == etag:
                return previous
            if previous is not None and stamp <= previous.modified:  # never two documents in one second
                stamp = previous.modified + timedelta(seconds=1)
            document = Document(etag, stamp, whitelist_document(rows, to_stored(stamp)))
            self._current = document
            return document


def not_modified(request: Request, document: Document) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present; else If-Modified-Since (an unreadable
    date is ignored, as the RFC says)."""
    tags = request.headers.get("if-none-match")
    if tags is not None:
        sent = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
        return "*" in sent or document.etag in sent
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return document.modified <= when


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """The whitelist route, for annuaire.http.app.PROVIDERS (errors: problem+json)."""
    cache = WhitelistCache(store)

    async def whitelist(request: Request) -> Response:
        document = await run_in_threadpool(cache.current)
        headers = {"ETag": document.etag, "Last-Modified": format_datetime(document.modified, usegmt=True),
                   "Cache-Control": "no-cache"}
        if not_modified(request, document):
            return Response(status_code=304, headers=headers)
        return Response(document.body, media_type=MEDIA_TYPE, headers=headers)

    return [Edge(PATH, [Route(PATH, whitelist, methods=["GET"])], Problem(),
                 not_found=f"no such resource {{path}} (the whitelist is {PATH})", redirect_slashes=False)]
