"""Numbers and text from requests, range-checked at the edge.

`str.isdigit()` is true for '²' or '١' and `int()` refuses 5,000-digit
strings, the store refuses integers beyond 64 bits and PostgreSQL refuses
NUL characters: each of these used to escape as a 500. Every interface reads
its integers through `integer()` and refuses NULs with `no_nul()`, so that a
bad value is an InvalidInput (4xx) naming the parameter.
"""

from __future__ import annotations

from annuaire.errors import InvalidInput

MAX_ID = 2**63 - 1  # the largest integer the store keeps (BIGINT)
_DIGITS = frozenset("0123456789")


def shown(raw: str, limit: int = 40) -> str:
    """A value quoted for a message, cut when long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")


def is_integer(raw: str, maximum: int = MAX_ID) -> bool:
    """`raw` is ASCII digits (no sign, no space) of a value up to `maximum`."""
    return 0 < len(raw) <= len(str(maximum)) and _DIGITS.issuperset(raw) and int(raw) <= maximum


def integer(raw: str, name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int:
    """`raw` as an integer in [minimum, maximum], else InvalidInput naming `name`."""
    if not is_integer(raw, maximum) or int(raw) < minimum:
        raise InvalidInput(f"{name}={shown(raw)}: expected an integer from {minimum} to {maximum}")
    return int(raw)


def no_nul(raw: str, name: str) -> str:
    """`raw` unless it holds a NUL character (which no directory value contains)."""
    if "\x00" in raw:
        raise InvalidInput(f"{name}={shown(raw)}: NUL characters are not accepted")
    return raw
