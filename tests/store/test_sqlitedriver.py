"""The store's SQLite maps whole national files (annuaire.store.sqlitedriver)."""

from __future__ import annotations

from pathlib import Path

from annuaire.store import open_store
from annuaire.store.sqlitedriver import MMAP_BYTES

SYSTEM_CAP = 0x7FFF0000  # the 2 GB cap of Debian's (and most systems') SQLite builds


def test_store_connections_map_beyond_the_system_cap(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        with store.read() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            mapped = raw.execute("PRAGMA mmap_size").fetchone()[0]
            version = raw.execute("SELECT sqlite_version()").fetchone()[0]
    finally:
        store.dispose()
    assert mapped == MMAP_BYTES > SYSTEM_CAP
    assert tuple(int(p) for p in version.split(".")) >= (3, 45)
