"""The local address book: its OWN SQLite file, never the national store.

Two kinds of contacts live side by side and are never mixed up:

- `national`: one row per mailbox line of the MSSanté extraction selected by
  the filters; owned by the sync, which adds, updates and removes them. Each
  row keeps the digest of its line, so a repeated sync only rewrites what
  changed.
- `local_contact`: contacts entered by hand or imported from a CSV/vCard
  file. The sync NEVER writes to this table.

`link` records which local contact is merged with which national one (same
address, or same national id + same structure); it is recomputed by the sync
and after every local change. Views (exports, LDAP) show a merged pair once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from annuaire.errors import InvalidInput

APPLICATION_ID = 0x414E4C53  # "ANLS": marks the file as a local address book
SCHEMA_VERSION = 1

# The national line's columns, in the extraction's order (Extraction_Correspondance_MSSante).
NATIONAL_FIELDS: tuple[str, ...] = (
    "bal_type", "address", "id_type", "id_pp", "id_nat", "structure_type", "structure_id", "service",
    "civilite", "last_name", "first_name", "category_code", "category_label", "profession_code",
    "profession_label", "skill_code", "skill_label", "dematerialisation", "org_name", "org_sign",
    "l2", "l3", "street_number", "street_repetition", "street_type", "street_name", "l5", "l6",
    "postcode", "departement", "country",
)
# Search keys (annuaire.store.keys.search_key) stored with each national row.
NATIONAL_KEYS: tuple[str, ...] = ("structure", "cn_key", "last_name_key", "first_name_key", "org_key")

LOCAL_FIELDS: tuple[str, ...] = (
    "address", "first_name", "last_name", "display_name", "organisation", "service", "title",
    "phone", "mobile", "street", "postcode", "city", "country", "id_nat", "structure", "note",
)
LOCAL_KEYS: tuple[str, ...] = ("cn_key", "last_name_key", "first_name_key", "org_key")

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE national (
    {", ".join(f"{c} TEXT" + (" PRIMARY KEY" if c == "address" else "") for c in NATIONAL_FIELDS)},
    {", ".join(f"{c} TEXT" for c in NATIONAL_KEYS)},
    digest INTEGER NOT NULL
);
CREATE INDEX ix_national_id_nat ON national (id_nat, structure);
CREATE INDEX ix_national_cn_key ON national (cn_key, structure, bal_type, address);  -- covers the duplicate report
CREATE INDEX ix_national_last_name_key ON national (last_name_key);
CREATE INDEX ix_national_first_name_key ON national (first_name_key);
CREATE INDEX ix_national_org_key ON national (org_key);
CREATE TABLE local_contact (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{c} TEXT" for c in LOCAL_FIELDS + LOCAL_KEYS)},
    origin TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_local_address ON local_contact (address);
CREATE INDEX ix_local_cn_key ON local_contact (cn_key);
CREATE TABLE link (
    local_id INTEGER PRIMARY KEY REFERENCES local_contact (id),
    address TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL
);
CREATE TABLE sync_run (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    source TEXT,
    extraction TEXT,
    status TEXT NOT NULL,
    report TEXT
);
"""


class LocalBase:
    """An open local address book (one sqlite3 connection, explicit transactions)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | str, create: bool = True) -> LocalBase:
        path = Path(path)
        if not path.exists() and not create:
            raise InvalidInput(f"{path}: no such local address book (run `annuaire local-sync` first)")
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=60000")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{path}: not an SQLite database ({exc})") from exc
        if app_id != APPLICATION_ID:
            if tables or not create:
                conn.close()
                what = "it has other tables" if tables else "it is empty"
                raise InvalidInput(
                    f"{path}: this SQLite file is not a local address book ({what}); "
                    "give the file of an address book, or a new file name for --local"
                )
            conn.execute("PRAGMA journal_mode=WAL")
            with _transaction(conn):
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA application_id={APPLICATION_ID};"
                                   f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        else:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                conn.close()
                raise InvalidInput(f"{path}: local address book of schema version {version}, expected {SCHEMA_VERSION}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-100000")
        return cls(conn, path)

    @classmethod
    def empty(cls) -> LocalBase:
        """A new address book in memory: what a dry run compares with when --local does not exist yet."""
        return cls.open(":memory:")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is applied, or none of it."""
        with _transaction(self.conn) as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    def counts(self) -> dict[str, int]:
        c = self.conn
        return {
            "national": c.execute("SELECT count(*) FROM national").fetchone()[0],
            "local": c.execute("SELECT count(*) FROM local_contact").fetchone()[0],
            "merged": c.execute("SELECT count(*) FROM link").fetchone()[0],
        }


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Commit on success, roll back on any exception (BEGIN issued by the caller)."""
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        if conn.in_transaction:
            conn.execute("COMMIT")


def set_meta(conn: sqlite3.Connection, values: dict[str, str | None]) -> None:
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )
