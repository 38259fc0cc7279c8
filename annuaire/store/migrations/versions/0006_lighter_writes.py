"""Lighter writes: trigram triggers that fire only on real changes, no redundant indexes.

- The SQLite trigram update triggers now fire only when an indexed value
  changes (the diff engine rewrites every column of an updated record).
- Three indexes were prefixes of the composite ones of 0005; each cost
  build time on a national import and write time on every refresh.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from annuaire.store import contains

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

REDUNDANT = {
    "ix_person_profession_code": ("person", ["profession_code"]),
    "ix_activity_structure_id": ("activity", ["structure_id"]),
    "ix_skill_code": ("skill", ["code"]),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        contains.create_triggers(bind)
    for name, (table, _) in REDUNDANT.items():
        op.drop_index(name, table_name=table, if_exists=True)


def downgrade() -> None:
    for name, (table, columns) in REDUNDANT.items():
        op.create_index(name, table, columns, if_not_exists=True)
