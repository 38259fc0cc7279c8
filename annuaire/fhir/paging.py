"""Keyset paging with opaque, tamper-proof `next` links.

A `next` link is `{base}/_page?id=<token>`. The token carries the whole
parsed query, the last internal id returned, the snapshot bounds fixed at the
first page (the lowest and highest rid existing then: records created later
sort outside and are left out) and the total computed at the first page. It
is signed with HMAC-SHA256 under the store's secret (or `Settings.secret`),
so a client can follow it but not forge or alter it: any change is a 400.

Why keyset on the internal id: a page is an index range (`rid > last`), as
fast on page 40,000 as on page 1, and since ids never change or get reused,
a full walk returns every record of the snapshot exactly once even while
publications change records during the walk. Name searches page on (name
key, id) instead (`query.SqlPlan.keyed`): the same index range, read in its
own order; only a record renamed during the walk can be met again or missed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from annuaire.errors import InvalidInput
from annuaire.fhir.params import Clause, DateRange, Search

TOKEN_TTL = 24 * 3600  # seconds a next link stays valid after it was issued
_MAC = 16


@dataclass
class Cursor:
    search: Search
    after: int | list  # the last rid, or [key, rid] (query.Position)
    bounds: tuple[int, int]
    total: int | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(secret: bytes, cursor: Cursor) -> str:
    s = cursor.search
    payload = {
        "t": s.resource_type, "q": s.canonical(), "c": s.count, "tot": s.total,
        "el": list(s.elements) if s.elements is not None else None,
        "inc": list(s.include), "rev": list(s.revinclude),
        "a": cursor.after, "b": list(cursor.bounds), "n": cursor.total,
        "x": int(time.time()) + TOKEN_TTL,
    }
    body = orjson.dumps(payload)  # (not compressed: ~200 bytes, 50 more in the link, 6-34 µs less)
    mac = hmac.new(secret, body, hashlib.sha256).digest()[:_MAC]
    return _b64(mac + body)


def decode(secret: bytes, token: str) -> Cursor:
    """The cursor of a token; InvalidInput when altered, forged or expired."""
    try:
        raw = _unb64(token)
    except (ValueError, TypeError):
        raise InvalidInput("Invalid page id: not a link issued by this server") from None
    mac, body = raw[:_MAC], raw[_MAC:]
    if len(raw) <= _MAC or not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()[:_MAC]):
        raise InvalidInput("Invalid page id: not a link issued by this server (altered or forged)")
    # JSON, or compressed JSON in the links of earlier versions (still valid for TOKEN_TTL)
    p: dict[str, Any] = orjson.loads(body if body[:1] == b"{" else zlib.decompress(body))
    if p["x"] < time.time():
        raise InvalidInput("Expired page id: start the search again")
    clauses = [
        Clause(name, modifier, [DateRange(**v) if isinstance(v, dict) else v for v in values])
        for name, modifier, values in p["q"]
    ]
    search = Search(
        p["t"], clauses, count=p["c"], total=p["tot"],
        elements=tuple(p["el"]) if p["el"] is not None else None,
        include=tuple(p["inc"]), revinclude=tuple(p["rev"]),
    )
    return Cursor(search, p["a"], (p["b"][0], p["b"][1]), p["n"])
