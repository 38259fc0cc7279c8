"""Web search: places read from indexes alone.

- structure (city_key, active), (dept_code, active): every place criterion reads
  `structure.active AND city_key …` (or `dept_code = …`): the people of a town
  (`activity.structure_id IN (…)`), its structures, its boxes. The single-column
  indexes held the key, not `active`, so each structure of the place cost a
  visit of its row: 7,441 structures of a town, 18 ms of a 50 ms "cardiologie
  <town>" page at national scale (4 ms from the index alone);
- activity (person_id, active, structure_id): whether a person works in a place
  (a name walked in a town, the cardiologists checked one by one) without
  visiting each of their activities' rows (10,502 people: 43 -> 19 ms).

`dept_code`'s own index is dropped: the new one answers all it did. `city_key`'s and
`person_id`'s stay: FHIR reads them in (key, id) order (a city's range, a person's
roles). About 45 MB at national scale.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_structure_city_key_active": ("structure", ["city_key", "active"]),
    "ix_structure_dept_code_active": ("structure", ["dept_code", "active"]),
    "ix_activity_person_id_active_structure_id": ("activity", ["person_id", "active", "structure_id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, if_not_exists=True)
    op.drop_index("ix_structure_dept_code", table_name="structure", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_structure_dept_code", "structure", ["dept_code"], if_not_exists=True)
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table, if_exists=True)
