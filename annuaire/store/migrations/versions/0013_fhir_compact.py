"""FHIR cache: compressed bodies, token numbers, versions kept (history).

- `fhir_resource.recorded_at` (indexed): when a version was written (`_history?_since`);
- `fhir_token.param` and `.system` become integers (`annuaire.fhir.tables.token_param`,
  `token_system`): the rows spelt out 80-byte system URLs, twice (table and index);
- `fhir_dictionary`: the zstd dictionaries resource bodies are compressed with;
- `fhir_history`: the versions a resource had before its current one.

The cache is derived from the store: it is emptied here (its tables made anew) and rendered again by the next
`annuaire fhir render` (or `annuaire import`, or a server's renderer, which answers 503
meanwhile). Legal entities keep their numbers (their ids are public).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _key(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _empty_cache() -> None:
    op.execute("DELETE FROM fhir_telecom")
    op.execute("UPDATE fhir_sync SET journal_id = 0, holes = '[]', rendered_at = NULL")


def _resources(recorded: bool) -> None:
    op.drop_table("fhir_resource")
    op.create_table(
        "fhir_resource",
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(32), nullable=False),
        *([sa.Column("recorded_at", sa.String(32), nullable=False)] if recorded else []),
        sa.Column("digest", sa.BigInteger, nullable=False),
        sa.Column("json", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("kind", "rid", name="pk_fhir_resource"),
    )
    for columns in (("kind", "last_updated"), ("kind", "rid", "active", "last_updated"),
                    *((("kind", "recorded_at"),) if recorded else ())):
        op.create_index(f"ix_fhir_resource_{'_'.join(columns)}", "fhir_resource", list(columns))


def _tokens(param: sa.types.TypeEngine, system: sa.types.TypeEngine) -> None:
    op.drop_table("fhir_token")
    op.create_table(
        "fhir_token",
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("param", param, nullable=False),
        sa.Column("code", _key(120), nullable=False),
        sa.Column("system", system, nullable=False),
        sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("kind", "param", "code", "system", "rid", name="pk_fhir_token"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_fhir_token_kind_rid", "fhir_token", ["kind", "rid"])


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())  # (defensive: a partial earlier run)
    _empty_cache()
    _resources(recorded=True)
    _tokens(sa.Integer(), sa.Integer())
    if "fhir_dictionary" not in present:  # (a store created at this revision by the baseline has them)
        op.create_table(
            "fhir_dictionary",
            sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("trained_at", sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_fhir_dictionary"),
        )
    if "fhir_history" not in present:
        op.create_table(
            "fhir_history",
            sa.Column("kind", sa.String(1), nullable=False),
            sa.Column("rid", sa.BigInteger, nullable=False, autoincrement=False),
            sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
            sa.Column("active", sa.Boolean, nullable=False),
            sa.Column("last_updated", sa.String(32), nullable=False),
            sa.Column("recorded_at", sa.String(32), nullable=False),
            sa.Column("superseded_at", sa.String(32), nullable=False),
            sa.Column("json", sa.LargeBinary, nullable=False),
            sa.PrimaryKeyConstraint("kind", "rid", "version", name="pk_fhir_history"),
        )
        op.create_index("ix_fhir_history_kind_recorded_at", "fhir_history", ["kind", "recorded_at"])
        op.create_index("ix_fhir_history_superseded_at", "fhir_history", ["superseded_at"])


def downgrade() -> None:
    _empty_cache()
    op.drop_table("fhir_history")
    op.drop_table("fhir_dictionary")
    _resources(recorded=False)
    _tokens(sa.String(40), _key(200))
