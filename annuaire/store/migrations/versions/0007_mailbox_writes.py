"""Lighter mailbox writes: no index on `mailbox.last_updated`.

No query reads mailboxes by `last_updated` (history comes from the journal,
extractions scan the table), and the index cost every publication one more
B-tree insert per box (~40 ms for a first publication of 67k boxes).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_mailbox_last_updated", table_name="mailbox", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_mailbox_last_updated", "mailbox", ["last_updated"], if_not_exists=True)
