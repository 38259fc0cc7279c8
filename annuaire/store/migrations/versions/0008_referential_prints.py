"""Fingerprints of the lines of each person, kept from one referential import to the next.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from annuaire.store.schema import referential_print

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    referential_print.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    referential_print.drop(op.get_bind(), checkfirst=True)
