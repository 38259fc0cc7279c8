"""The trigram index of mailbox addresses covers their local part only.

A domain's trigrams are in every address of the domain: more than half the
entries of an index on whole addresses, and of its cost when a domain is
published (a 67k-box first publication: 0.3 s on PostgreSQL, 0.18 s on
SQLite). A contains-search finds domains through the `domain` table instead
(`annuaire.store.contains._address_ids`). On SQLite the FTS5 table becomes
contentless (its values are not a column of `mailbox`).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from annuaire.store.contains import INDEXED, create_index, create_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_SQLITE = "mailbox_address_tri"
OLD_PG = "ix_mailbox_address_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    spec = INDEXED["mailbox.address"]
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {OLD_PG}")
        create_index(bind, spec)
        return
    _drop_sqlite(OLD_SQLITE)
    exists = bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (spec.fts,)).first()
    if not exists:  # a store created before this version (0003 creates the current layout)
        create_index(bind, spec)
        create_triggers(bind)


def downgrade() -> None:
    bind = op.get_bind()
    spec = INDEXED["mailbox.address"]
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {spec.pg_index}")
        op.execute(f"CREATE INDEX IF NOT EXISTS {OLD_PG} ON mailbox USING gin (address gin_trgm_ops)")
        return
    _drop_sqlite(spec.fts)
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
