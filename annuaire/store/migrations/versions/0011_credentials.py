"""Credentials: keyed HMAC-SHA-256 hashes, expiry dates, last use.

- `server_secret` holds the store's credentials key (32 random bytes, hex),
  shared by every process serving the store (annuaire.store.credentials).
- `operator.token_expires_at`, `operator.token_last_used`,
  `api_key.expires_at`, `api_key.last_used_at`.
- API key hashes `sha256:<hex>` become `hmac-sha256$HMAC(key, sha256)`: the
  same secrets, no key to reissue. Operator hashes `scrypt$…` cannot be
  converted without the token: they are converted at their next successful use.

Downgrade removes the key and the columns: tokens and keys hashed in the new
form no longer authenticate under the former code and must be reissued.

Revision ID: 0011
Revises: 0010
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = {
    "operator": ("token_expires_at", "token_last_used"),
    "api_key": ("expires_at", "last_used_at"),
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table, names in COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}  # earlier baselines built the live tables
        for name in names:
            if name not in present:
                op.add_column(table, sa.Column(name, sa.String(32)))
    if not inspector.has_table("server_secret"):
        op.create_table(
            "server_secret",
            sa.Column("name", sa.String(50), primary_key=True),
            sa.Column("value", sa.String(200), nullable=False),
            sa.Column("created_at", sa.String(32), nullable=False),
        )
    secret_table = sa.table("server_secret", sa.column("name"), sa.column("value"), sa.column("created_at"))
    value = bind.execute(sa.select(secret_table.c.value).where(secret_table.c.name == "credentials")).scalar()
    if value is None:
        value = secrets.token_hex(32)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        bind.execute(sa.insert(secret_table).values(name="credentials", value=value, created_at=now))
    key = bytes.fromhex(value)
    keys = sa.table("api_key", sa.column("id"), sa.column("key_hash"))
    for ident, stored in bind.execute(sa.select(keys.c.id, keys.c.key_hash)).all():
        if stored and stored.startswith("sha256:"):
            new = "hmac-sha256$" + hmac.new(key, bytes.fromhex(stored[7:]), hashlib.sha256).hexdigest()
            bind.execute(sa.update(keys).where(keys.c.id == ident).values(key_hash=new))


def downgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if inspector.has_table("server_secret"):
        op.drop_table("server_secret")
    for table, names in COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for name in names:
            if name in present:
                op.drop_column(table, name)  # SQLite >= 3.35: ALTER TABLE DROP COLUMN
