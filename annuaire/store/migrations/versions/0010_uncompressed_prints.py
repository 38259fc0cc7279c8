"""PostgreSQL: the referential fingerprints are stored uncompressed.

Each import writes one row per file kind holding ~2 M national ids and as many
64-bit fingerprints (~30 MB). PostgreSQL compressed them (pglz) on every write
and decompressed them on every read: 2.2 s of a national refresh for a few MB
saved (random fingerprints do not compress). SQLite does not compress.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE referential_print ALTER COLUMN ids SET STORAGE EXTERNAL, "
                   "ALTER COLUMN prints SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE referential_print ALTER COLUMN ids SET STORAGE EXTENDED, "
                   "ALTER COLUMN prints SET STORAGE EXTENDED")
