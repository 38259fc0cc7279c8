"""Lookups repeated while one results page is answered, made once.

A box with a typo is read several times (as typed, as a name, then each correction),
and the readings share most of their phrases: is "saint semont" a city, does anybody
bear the family name "teserele", how many family names begin with "teserele"? The
answer (`annuaire.web.answer.answer`) opens a memo for its own duration; outside
one, every lookup goes to the store. Nothing outlives the answer: the next page
reads the store as it is then.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar

T = TypeVar("T")

_memo: ContextVar[dict[Hashable, Any] | None] = ContextVar("annuaire_web_memo", default=None)


@contextmanager
def answering() -> Iterator[None]:
    """Remember the lookups made until the block ends."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def remembered(key: Hashable, lookup: Callable[[], T]) -> T:
    """`lookup()`, made once per key inside `answering()`."""
    memo = _memo.get()
    if memo is None:
        return lookup()
    if key not in memo:
        memo[key] = lookup()
    return memo[key]


def per_answer(lookup: Callable[..., T]) -> Callable[..., T]:
    """`lookup(conn, *keys)` made once per answer for the same keys (`remembered`)."""

    @wraps(lookup)
    def once(conn: Any, *keys: Hashable) -> T:
        return remembered((lookup.__qualname__, *keys), lambda: lookup(conn, *keys))

    return once


def prefetch(lookup: Callable[..., Any], keys: Iterable[Hashable], read: Callable[[list], Mapping[Any, Any]]) -> None:
    """Inside `answering()`: what a `per_answer` lookup of one key gives for each of these keys, read
    at once (`read(keys not remembered yet)` -> each one's value) where the lookups would each run
    a statement; outside, nothing (every lookup goes to the store)."""
    memo = _memo.get()
    if memo is None:
        return
    missing = [k for k in dict.fromkeys(keys) if (lookup.__qualname__, k) not in memo]
    if missing:
        for key, value in read(missing).items():
            memo[(lookup.__qualname__, key)] = value
