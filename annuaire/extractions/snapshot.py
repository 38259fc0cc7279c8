"""One consistent read of the store for one extraction, and its timestamps.

Every line of an extraction must come from the same state of the store, or a
mailbox could appear with a structure that was deleted a moment later. The
read runs in one transaction: a WAL snapshot on SQLite (pinned by the first
read), REPEATABLE READ on PostgreSQL. `generated_at` is taken just BEFORE the
snapshot, so a change stamped before it is in the files or, at worst, is also
reported by the next "changes since generated_at" query: never lost. The
exact point is `journal_cursor`, read in the same snapshot: the publication
API's domain history (`…/history?cursor=…`) continues from it through the one
journal follower, so a change committed late (PostgreSQL) is not skipped
either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from annuaire import formats
from annuaire.store import Store
from annuaire.store.clock import FORMAT, from_stored
from annuaire.store.dialect import consistent_reads, mapped_reads
from annuaire.store.follow import start

PARIS = ZoneInfo("Europe/Paris")
MMAP_BYTES = 16 << 30


@dataclass(frozen=True)
class Snapshot:
    conn: Connection
    generated_at: str  # UTC, stored format
    ts: str  # YYYYMMDDhhmm, Paris local time (the file names')
    journal_cursor: str = ""  # the journal follower's cursor of this state (`store.follow.Cursor.token`)


def file_timestamp(generated_at: str) -> str:
    """The `YYYYMMDDhhmm` of the file names: Paris local time, as the national files."""
    return from_stored(generated_at).astimezone(PARIS).strftime(formats.TIMESTAMP_FORMAT)


@contextmanager
def snapshot(store: Store, now: datetime | None = None) -> Iterator[Snapshot]:
    """A read-only transaction seeing one state of the store."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    generated_at = moment.strftime(FORMAT)
    with store.engine.connect() as conn:
        conn = consistent_reads(conn)
        # Memory-mapped reads: an extraction touches most pages of a multi-GB file.
        with mapped_reads(conn, MMAP_BYTES), conn.begin():
            # Pin the snapshot now (SQLite's deferred BEGIN takes it at the first read); the cursor
            # read in it names exactly the changes the files hold: "changes since" starts there.
            conn.exec_driver_sql("SELECT count(*) FROM run")
            cursor = start(conn).token()
            yield Snapshot(conn, generated_at, file_timestamp(generated_at), cursor)
