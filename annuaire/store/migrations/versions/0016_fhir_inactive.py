"""FHIR cache: a partial index of the inactive resources.

A best-effort total counts the active resources among up to 500 candidates
(`Practitioner?family=dur`): one probe each in the index of the whole cache
(4.6 M entries nationally, ~3-6 µs each out of the CPU caches: 1.7 ms for 300
candidates). Inactive resources are few: the candidates less those found in
this index (a few pages) give the same count in a tenth of that.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_fhir_resource_inactive", "fhir_resource", ["kind", "rid"], if_not_exists=True,
                    sqlite_where=sa.text("active = 0"), postgresql_where=sa.text("NOT active"))


def downgrade() -> None:
    op.drop_index("ix_fhir_resource_inactive", table_name="fhir_resource", if_exists=True)
