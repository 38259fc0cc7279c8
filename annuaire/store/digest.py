"""Content digests: how the diff engine tells a changed record from an unchanged one."""

from __future__ import annotations

from hashlib import blake2b
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
