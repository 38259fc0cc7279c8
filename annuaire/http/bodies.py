"""Request bodies read with a size limit, refused (413) as soon as they exceed it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from annuaire.errors import BodyTooLarge
from annuaire.http.inputs import is_integer

DRAIN_MAX = 1 << 20  # bytes of a refused body still read (and dropped) so that its 413 reaches the client


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds `limit` bytes: at once when the
    declared Content-Length says so, else while streaming (chunked bodies).

    A refused body of up to DRAIN_MAX bytes is read to its end first: a server that closes
    the connection with bytes of the request unread makes the kernel reset it, and the
    client then sees "connection reset" instead of the 413 (larger ones are cut short)."""
    declared = request.headers.get("content-length")
    if declared and is_integer(declared, 2**64) and int(declared) > limit:
        if int(declared) <= DRAIN_MAX:
            await _drain(request.stream(), DRAIN_MAX)
        raise BodyTooLarge(f"the body is {int(declared):,} bytes, the limit is {limit:,} bytes")
    chunks, size = [], 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, DRAIN_MAX - size)
            raise BodyTooLarge(f"the body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop what is left of the body, `budget` bytes at most."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return
