"""The cyclic garbage collector: paused around bulk work, settled in long-running servers.

Building the LDAP index or publishing a 67k-line list makes millions of small
objects: the collector's passes over them find nothing but cost 0.2-0.5 s
(and more for the index). Objects are still freed by reference counting.

A server process holds what it built at start (modules, the app, an index) for
its whole life, and each request makes thousands of short-lived objects (SQL
constructs, rows): `settle` keeps the former out of every collection and
makes young collections rarer and larger.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections every 50,000 net allocations (the default is 700: several per FHIR search),
# older generations as rarely as they were.
SERVER_THRESHOLDS = (50_000, 50, 100)


def freeze_long_lived() -> None:
    """Move every object alive now to the permanent generation: collections no longer walk them,
    and forked workers do not touch (copy) their pages."""
    gc.collect()
    gc.freeze()


def settle() -> None:
    """For a server process, once it has built what it serves with: see the module's docstring."""
    freeze_long_lived()
    gc.set_threshold(*SERVER_THRESHOLDS)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector paused for the block; it resumes after, if it was running before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
