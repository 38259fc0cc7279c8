"""The trigram index of mailbox addresses covers their local part only.

A domain's trigrams are in every address of the domain: more than half the
entries of an index on whole addresses, and of its cost when a domain is
published (a 67k-box first publication: 0.3 s on PostgreSQL, 0.18 s on
SQLite). A contains-search finds domains through the `domain` table instead
(`annuaire.store.contains._address_ids`). On SQLite the FTS5 table becomes
contentless (its values are not a column of `mailbox`).

Frozen: the new index and its triggers are written here as this revision
created them, never read from `annuaire.store.contains`.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_SQLITE = "mailbox_address_tri"
OLD_PG = "ix_mailbox_address_trgm"
NEW_SQLITE = "mailbox_local_tri"
NEW_PG = "ix_mailbox_local_part_trgm"


def _local_part(row: str) -> str:
    """SQLite: the local part of the address of `row` ("new.", "old." or the table's "")."""
    return f"substr({row}address, 1, instr({row}address, '@') - 1)"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {OLD_PG}")
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX IF NOT EXISTS {NEW_PG} ON mailbox USING gin ((split_part(address, '@', 1)) gin_trgm_ops)")
        return
    _drop_sqlite(OLD_SQLITE)
    if bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (NEW_SQLITE,)).first():
        return  # reached this revision already (a 0003 of earlier versions built this layout)
    new = NEW_SQLITE
    op.execute(f"CREATE VIRTUAL TABLE {new} USING fts5(local_part, content='', tokenize='trigram')")
    op.execute(f"INSERT INTO {new}(rowid, local_part) SELECT id, {_local_part('')} FROM mailbox ORDER BY id")
    delete = f"INSERT INTO {new}({new}, rowid, local_part) VALUES ('delete', old.id, {_local_part('old.')});"
    insert = f"INSERT INTO {new}(rowid, local_part) VALUES (new.id, {_local_part('new.')});"
    op.execute(f"CREATE TRIGGER {new}_ai AFTER INSERT ON mailbox BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER {new}_ad AFTER DELETE ON mailbox BEGIN {delete} END")
    op.execute(f"CREATE TRIGGER {new}_au AFTER UPDATE OF address ON mailbox "
               f"WHEN old.address IS NOT new.address BEGIN {delete} {insert} END")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {NEW_PG}")
        op.execute(f"CREATE INDEX IF NOT EXISTS {OLD_PG} ON mailbox USING gin (address gin_trgm_ops)")
        return
    _drop_sqlite(NEW_SQLITE)
    op.execute(f"CREATE VIRTUAL TABLE {OLD_SQLITE} USING fts5(address, content='mailbox', content_rowid='id', "
               "tokenize='trigram')")
    op.execute(f"INSERT INTO {OLD_SQLITE}({OLD_SQLITE}) VALUES ('rebuild')")
    delete = f"INSERT INTO {OLD_SQLITE}({OLD_SQLITE}, rowid, address) VALUES ('delete', old.id, old.address);"
    insert = f"INSERT INTO {OLD_SQLITE}(rowid, address) VALUES (new.id, new.address);"
    op.execute(f"CREATE TRIGGER {OLD_SQLITE}_ai AFTER INSERT ON mailbox BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER {OLD_SQLITE}_ad AFTER DELETE ON mailbox BEGIN {delete} END")
    op.execute(f"CREATE TRIGGER {OLD_SQLITE}_au AFTER UPDATE OF address ON mailbox "
               f"WHEN old.address IS NOT new.address BEGIN {delete} {insert} END")


def _drop_sqlite(fts: str) -> None:
    for event in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")
