"""Baseline: the schema of the first release.

Revision ID: 0001
Revises:
"""

from alembic import op

from annuaire.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Tables of the baseline. Later revisions add their own changes explicitly;
# a table created by a later revision must not be listed here.
BASELINE = (
    "run", "journal", "nomenclature", "person", "structure", "activity", "skill", "diploma",
    "operator", "domain", "mailbox", "api_key", "ldap_account",
)


def upgrade() -> None:
    bind = op.get_bind()
    for name in BASELINE:
        metadata.tables[name].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(BASELINE):
        metadata.tables[name].drop(bind)
