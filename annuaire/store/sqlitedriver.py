"""The SQLite library the store runs on.

sqlean.py ships a recent SQLite built to map a whole database into memory
(`mmap_size` up to 1 TiB); the standard library's module uses the system's
SQLite, which Debian builds with a 2 GB cap. A national store is 4-6 GB and
a FHIR search reads ~50 random rows of it: read through the map, a row costs
a third of what a copy into SQLite's page cache costs (4 µs instead of 13,
measured at national scale). Without sqlean.py (a platform it has no wheel
for) the standard library's module serves, capped.

Every connection of this process to a store's file goes through this module:
two SQLite libraries in one process do not see each other's locks (SQLite
tracks a process's own locks itself, per library: "How To Corrupt An SQLite
Database File", §2.2.1), so one could take the file for itself under the
other's feet.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def _library() -> ModuleType:
    try:
        import sqlean

        return sqlean
    except ImportError:  # pragma: no cover - every platform the project tests has sqlean.py
        import sqlite3

        return sqlite3


driver = _library()

# Bytes of the file each connection maps (SQLite caps it at its build's maximum). Virtual memory
# only: the pages are the operating system's file cache, shared by every process.
MMAP_BYTES = 1 << 40


def connect(database: str, **kwargs: Any) -> Any:
    """A DB-API connection to an SQLite file, by the store's library."""
    return driver.connect(database, **kwargs)
