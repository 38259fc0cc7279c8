"""FHIR API: the rendered-resource cache and the trigram ("contains") indexes.

Frozen: the tables and the trigram indexes are written here as this revision
created them, never read from `annuaire.fhir.tables` or `annuaire.store.contains`
(0006 and 0009 changed the trigram layout since; see their docstrings).

- SQLite: one FTS5 table per column group (`tokenize='trigram'`, the indexed
  table as external content) kept in step by three triggers;
- PostgreSQL: `pg_trgm` GIN indexes on the key columns.

Revision ID: 0003
Revises: 0001
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("fhir_resource", "fhir_telecom", "fhir_token", "fhir_legal_entity", "fhir_sync")

# SQLite FTS5 table -> (indexed table, its columns); PostgreSQL: one GIN index per column.
TRIGRAMS = {
    "person_name_tri": ("person", ("last_name_key", "first_name_key")),
    "structure_name_tri": ("structure", ("name_key", "city_key")),
    "mailbox_address_tri": ("mailbox", ("address",)),
}


def _key(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "fhir_resource",
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(32), nullable=False),
        sa.Column("digest", sa.BigInteger, nullable=False),
        sa.Column("json", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("kind", "rid", name="pk_fhir_resource"),
    )
    op.create_table(
        "fhir_telecom",
        sa.Column("mailbox_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("address", _key(254), nullable=False),
        sa.Column("domain", _key(255), nullable=False),
        sa.Column("type", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "kind", "rid", name="pk_fhir_telecom"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "fhir_token",
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("param", sa.String(40), nullable=False),
        sa.Column("code", _key(120), nullable=False),
        sa.Column("system", _key(200), nullable=False),
        sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("kind", "param", "code", "system", "rid", name="pk_fhir_token"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "fhir_legal_entity",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("finess", _key(9), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fhir_legal_entity"),
        sa.UniqueConstraint("finess", name="uq_fhir_legal_entity_finess"),
    )
    sync = op.create_table(
        "fhir_sync",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("journal_id", sa.BigInteger, nullable=False),
        sa.Column("holes", sa.Text, nullable=False),
        sa.Column("lease_until", sa.Integer, nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("rendered_at", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_fhir_sync"),
    )
    for table, columns in (
        ("fhir_resource", ("kind", "last_updated")),
        ("fhir_resource", ("kind", "rid", "active", "last_updated")),
        ("fhir_telecom", ("kind", "rid")),
        ("fhir_telecom", ("kind", "domain", "rid")),
        ("fhir_telecom", ("kind", "address")),
        ("fhir_telecom", ("kind", "type", "rid")),
        ("fhir_token", ("kind", "rid")),
    ):
        op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))
    op.bulk_insert(sync, [{"id": 1, "journal_id": 0, "holes": "[]", "lease_until": 0,
                           "secret": secrets.token_urlsafe(32)}])
    _create_trigrams()


def _create_trigrams() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, columns in TRIGRAMS.values():
            for column in columns:
                op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm ON {table} "
                           f"USING gin ({column} gin_trgm_ops)")
        return
    for fts, (table, columns) in TRIGRAMS.items():
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', content_rowid='id', "
                   "tokenize='trigram')")
        op.execute(f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
                   f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute(f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); END")
        op.execute(f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
                   f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, columns in TRIGRAMS.values():
            for column in columns:
                op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    else:
        for fts in TRIGRAMS:
            for event in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    for name in reversed(TABLES):
        op.drop_table(name)
