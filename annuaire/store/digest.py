"""Content digests: how the diff engine tells a changed record (or line) from an unchanged one."""

from __future__ import annotations

import zlib
from hashlib import blake2b
from itertools import repeat
from operator import lshift, or_
from struct import Struct
from typing import Iterable

_SIGNED_64 = Struct(">q").unpack


def digest(values: Iterable[str]) -> int:
    """A signed 64-bit hash of a record's fields (fits a BIGINT column); None counts as ''."""
    try:
        text = "\x1f".join(values)  # type: ignore[arg-type]
    except TypeError:
        text = "\x1f".join(v or "" for v in values)
    return _SIGNED_64(blake2b(text.encode(), digest_size=8).digest())[0]


def fingerprints(chunks: list[bytes]) -> list[int]:
    """An unsigned 64-bit fingerprint of each chunk of raw bytes (lines of a file): CRC-32 and
    Adler-32 side by side, each mapped in C over the whole list (no Python call per chunk,
    which matters for millions of lines). A chunk is only compared with the previous
    version of the same line or person, and the national files are not adversarial."""
    return list(map(or_, map(lshift, map(zlib.crc32, chunks), repeat(32)), map(zlib.adler32, chunks)))
