"""LDAP accounts carry their own daily allowance of distinct entries.

- `ldap_account.daily_allowance`: distinct entries the account may receive over
  a sliding day (NULL = the default share of the published directory,
  `account_daily_share`; see annuaire/ldap/limits.py).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("ldap_account")}
    if "daily_allowance" not in present:  # earlier baselines built the live tables
        op.add_column("ldap_account", sa.Column("daily_allowance", sa.Integer))


def downgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("ldap_account")}
    if "daily_allowance" in present:
        op.drop_column("ldap_account", "daily_allowance")  # SQLite >= 3.35: ALTER TABLE DROP COLUMN
