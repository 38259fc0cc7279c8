"""Lighter writes: trigram triggers that fire only on real changes, no redundant indexes.

- The SQLite trigram update triggers now fire only when an indexed value
  changes (the diff engine rewrites every column of an updated record).
- Three indexes were prefixes of the composite ones of 0005; each cost
  build time on a national import and write time on every refresh.

The triggers are written here as this revision created them (frozen: not
read from `annuaire.store.contains`, whose layout 0009 changed since).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

REDUNDANT = {
    "ix_person_profession_code": ("person", ["profession_code"]),
    "ix_activity_structure_id": ("activity", ["structure_id"]),
    "ix_skill_code": ("skill", ["code"]),
}


# SQLite FTS5 table -> (indexed table, its columns), as 0003 created them.
TRIGRAMS = {
    "person_name_tri": ("person", ("last_name_key", "first_name_key")),
    "structure_name_tri": ("structure", ("name_key", "city_key")),
    "mailbox_address_tri": ("mailbox", ("address",)),
}


def _triggers(fts: str, table: str, columns: tuple[str, ...], *, on_change: bool) -> dict[str, str]:
    """The three triggers keeping `fts` in step with `table`; `on_change`: updates touch the
    index only when an indexed value changes (this revision), else on every update (0003)."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    when = (" WHEN " + " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)) if on_change else ""
    return {
        "ai": f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END",
        "ad": f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END",
        "au": f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table}{when} BEGIN {delete} {insert} END",
    }


def _replace_triggers(*, on_change: bool) -> None:
    for fts, (table, columns) in TRIGRAMS.items():
        for event, sql in _triggers(fts, table, columns, on_change=on_change).items():
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _replace_triggers(on_change=True)
    for name, (table, _) in REDUNDANT.items():
        op.drop_index(name, table_name=table, if_exists=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _replace_triggers(on_change=False)
    for name, (table, columns) in REDUNDANT.items():
        op.create_index(name, table, columns, if_not_exists=True)
