"""Web search page: composite indexes for searches that combine criteria.

- person (profession_code, last_name_key, first_name_key): the people of one
  profession in name order, so that "médecin à Lyon" reads doctors in order
  until 20 of them work in Lyon instead of sorting every doctor of Lyon;
- activity (structure_id, active, person_id) and skill (code, active,
  person_id): the people of a place or of a savoir-faire read from the index
  alone, without visiting one row per activity (measured: the index-only read
  is what keeps "profession + city" and the filters under the page's budget).

Revision ID: 0005
Revises: 0003 (to be re-chained by the lead when merging)
"""

from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_person_profession_code_last_name_key": ("person", ["profession_code", "last_name_key", "first_name_key"]),
    "ix_activity_structure_id_active_person_id": ("activity", ["structure_id", "active", "person_id"]),
    "ix_skill_code_active_person_id": ("skill", ["code", "active", "person_id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, if_not_exists=True)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table, if_exists=True)
