"""FHIR API: the rendered-resource cache and the trigram ("contains") indexes.

Revision ID: 0003
Revises: 0001 (to be re-chained by the lead when merging)
"""

import secrets

from alembic import op

from annuaire.fhir.tables import TABLES, fhir_sync
from annuaire.store import contains
from annuaire.store.schema import metadata

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        metadata.tables[name].create(bind)
    bind.execute(
        fhir_sync.insert().values(
            id=1, journal_id=0, holes="[]", lease_until=0, secret=secrets.token_urlsafe(32)
        )
    )
    contains.create_indexes(bind)


def downgrade() -> None:
    bind = op.get_bind()
    contains.drop_indexes(bind)
    for name in reversed(TABLES):
        metadata.tables[name].drop(bind)
