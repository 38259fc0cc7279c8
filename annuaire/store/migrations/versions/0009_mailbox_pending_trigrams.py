"""PostgreSQL: new mailbox addresses reach their trigram index through GIN's pending list.

A first publication of 67k boxes spent 0.55 s of its ~2.1 s inserting 1.7 M
trigram entries into the index (GIN moves its 4 MB pending list into the
tree again and again). With a 64 MB list the insert only appends (0.3 s), and
autovacuum, told to visit the table after every 5,000 inserted rows, merges
the list in its own process a minute later at most. Meanwhile contains
searches on addresses also scan the pending entries (~10 ms for 67k): correct,
slightly slower, for that minute.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX IF EXISTS ix_mailbox_address_trgm SET (gin_pending_list_limit = 65536)")
    op.execute("ALTER TABLE mailbox SET (autovacuum_vacuum_insert_threshold = 5000, "
               "autovacuum_vacuum_insert_scale_factor = 0)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX IF EXISTS ix_mailbox_address_trgm RESET (gin_pending_list_limit)")
    op.execute("ALTER TABLE mailbox RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor)")
