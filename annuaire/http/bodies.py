"""Request bodies read with a size limit, refused (413) as soon as they exceed it."""

from __future__ import annotations

from starlette.requests import Request

from annuaire.errors import BodyTooLarge
from annuaire.http.inputs import is_integer


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds `limit` bytes: at once when the
    declared Content-Length says so, else while streaming (chunked bodies)."""
    declared = request.headers.get("content-length")
    if declared and is_integer(declared, 2**64) and int(declared) > limit:
        raise BodyTooLarge(f"the body is {int(declared):,} bytes, the limit is {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
