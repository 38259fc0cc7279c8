"""Fingerprints of the lines of each person, kept from one referential import to the next.

Frozen: the table is written here as this revision created it, never read from
`annuaire.store.schema`.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("referential_print"):
        return  # this revision always checked first
    op.create_table(
        "referential_print",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("header", sa.Text, nullable=False),
        sa.Column("ids", sa.LargeBinary, nullable=False),
        sa.Column("prints", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("kind", name="pk_referential_print"),
    )


def downgrade() -> None:
    op.drop_table("referential_print", if_exists=True)
