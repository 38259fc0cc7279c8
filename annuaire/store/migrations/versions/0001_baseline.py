"""Baseline: the schema of the first release.

Frozen: every table, index and constraint is written here as this revision
created it, never read from `annuaire.store.schema`, so that a later change of
the live schema cannot change what an empty store gets at this revision (later
revisions bring a store from here to the live schema). Names are those the live
schema's naming convention gives (`pk_<table>`, `ix_<table>_<columns>`,
`uq_<table>_<columns>`, `fk_<table>_<column>_<referred table>`): code renames
and drops indexes by these names.

"As this revision created it": the tables of the first runnable chain (with
0003), that is natural keys as unique indexes, the journal's partial index of
mailbox history, and the single-column indexes that 0005-0007 replace or drop.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key(length: int) -> sa.String:
    """A text column compared byte-wise (C collation on PostgreSQL)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _labelled(name: str) -> list[sa.Column]:
    return [sa.Column(f"{name}_code", sa.String(16)), sa.Column(f"{name}_label", sa.String(200))]


def _record() -> list[sa.Column]:
    """active, version, last_updated, digest: the columns of every directory record."""
    return [
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(32), nullable=False),
        sa.Column("digest", sa.BigInteger, nullable=False),
    ]


def _id(autoincrement: bool) -> sa.Column:
    return sa.Column("id", BIG_ID, nullable=False, autoincrement=autoincrement)


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=f"pk_{table}")


def _unique(table: str, column: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(column, name=f"uq_{table}_{column}")


# (table, columns, unique); the index is named ix_<table>_<columns joined by "_">.
INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("run", ("kind", "file_ts"), False),
    ("run", ("domain", "id"), False),
    ("person", ("id_nat",), True),
    ("person", ("last_name_key",), False),
    ("person", ("first_name_key",), False),
    ("person", ("profession_code",), False),
    ("person", ("last_updated",), False),
    ("structure", ("tech_id",), True),
    ("structure", ("idnat",), False),
    ("structure", ("finess",), False),
    ("structure", ("siret",), False),
    ("structure", ("finess_ej",), False),
    ("structure", ("name_key",), False),
    ("structure", ("city_key",), False),
    ("structure", ("postcode",), False),
    ("structure", ("dept_code",), False),
    ("structure", ("last_updated",), False),
    ("activity", ("key",), True),
    ("activity", ("person_id",), False),
    ("activity", ("structure_id",), False),
    ("activity", ("last_updated",), False),
    ("skill", ("key",), True),
    ("skill", ("person_id",), False),
    ("skill", ("code",), False),
    ("diploma", ("key",), True),
    ("diploma", ("person_id",), False),
    ("domain", ("operator_id",), False),
    ("mailbox", ("domain", "active"), False),
    ("mailbox", ("holder",), False),
    ("mailbox", ("structure_idnat",), False),
    ("mailbox", ("last_updated",), False),
)


def upgrade() -> None:
    op.create_table(
        "run",
        _id(True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(500)),
        sa.Column("file_ts", sa.String(12)),
        sa.Column("domain", _key(255)),
        sa.Column("operator_id", sa.Integer),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("report", sa.Text),
        _pk("run", "id"),
    )
    op.create_table(
        "journal",
        _id(True),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("key", _key(300), nullable=False),
        sa.Column("change", sa.String(8), nullable=False),
        sa.Column("scope", _key(255)),
        sa.Column("before_digest", sa.BigInteger),
        sa.Column("after_digest", sa.BigInteger),
        sa.Column("data", sa.Text),
        _pk("journal", "id"),
    )
    op.create_table(
        "nomenclature",
        sa.Column("tre", sa.String(40), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20)),
        _pk("nomenclature", "tre", "code"),
    )
    op.create_table(
        "person",
        _id(False),
        sa.Column("id_nat", _key(20), nullable=False),
        sa.Column("id_type", sa.String(2), nullable=False),
        sa.Column("id_pp", sa.String(20), nullable=False),
        *_labelled("civilite"),
        *_labelled("civilite_exercice"),
        sa.Column("last_name", sa.String(200)),
        sa.Column("first_name", sa.String(200)),
        *_labelled("profession"),
        *_labelled("category"),
        sa.Column("last_name_key", _key(200)),
        sa.Column("first_name_key", _key(200)),
        *_record(),
        _pk("person", "id"),
    )
    op.create_table(
        "structure",
        _id(False),
        sa.Column("tech_id", _key(40), nullable=False),
        sa.Column("idnat", _key(40)),
        sa.Column("siret", sa.String(14)),
        sa.Column("siren", sa.String(9)),
        sa.Column("finess", sa.String(9)),
        sa.Column("finess_ej", sa.String(9)),
        sa.Column("name", sa.String(300)),
        sa.Column("sign", sa.String(300)),
        sa.Column("addressee", sa.String(300)),
        sa.Column("geo_complement", sa.String(300)),
        sa.Column("street_number", sa.String(20)),
        sa.Column("street_repetition", sa.String(20)),
        *_labelled("street_type"),
        sa.Column("street_name", sa.String(300)),
        sa.Column("distribution_mention", sa.String(300)),
        sa.Column("cedex_office", sa.String(300)),
        sa.Column("postcode", _key(10)),
        sa.Column("commune_code", sa.String(10)),
        sa.Column("commune_label", sa.String(200)),
        *_labelled("country"),
        sa.Column("phone", sa.String(30)),
        sa.Column("phone2", sa.String(30)),
        sa.Column("fax", sa.String(30)),
        sa.Column("email", sa.String(300)),
        sa.Column("dept_code", _key(5)),
        sa.Column("dept_label", sa.String(100)),
        sa.Column("name_key", _key(300)),
        sa.Column("city_key", _key(200)),
        *_record(),
        _pk("structure", "id"),
    )
    op.create_table(
        "activity",
        _id(False),
        sa.Column("key", _key(80), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("structure_id", sa.BigInteger),
        *_labelled("profession"),
        *_labelled("category"),
        *_labelled("skill_type"),
        *_labelled("skill"),
        *_labelled("mode"),
        *_labelled("sector"),
        *_labelled("pharma_section"),
        *_labelled("role"),
        *_labelled("genre"),
        sa.Column("registration_authority", sa.String(100)),
        *_record(),
        _pk("activity", "id"),
    )
    op.create_table(
        "skill",
        _id(False),
        sa.Column("key", _key(80), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        *_labelled("profession"),
        *_labelled("category"),
        *_labelled("type"),
        sa.Column("code", sa.String(16)),
        sa.Column("label", sa.String(300)),
        *_record(),
        _pk("skill", "id"),
    )
    op.create_table(
        "diploma",
        _id(False),
        sa.Column("key", _key(120), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        *_labelled("type"),
        sa.Column("code", sa.String(30)),
        sa.Column("label", sa.String(300)),
        *_labelled("auth_type"),
        *_labelled("auth_discipline"),
        *_record(),
        _pk("diploma", "id"),
    )
    op.create_table(
        "operator",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cert_dn", sa.String(500)),
        sa.Column("token_hash", sa.String(200)),
        sa.Column("contact", sa.String(300)),
        sa.Column("support_contact", sa.String(300)),
        sa.Column("created_at", sa.String(32), nullable=False),
        _pk("operator", "id"),
        _unique("operator", "name"),
    )
    op.create_table(
        "domain",
        sa.Column("name", _key(255), nullable=False),
        sa.Column("operator_id", sa.Integer),
        sa.Column("description", sa.String(500)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_published", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
        _pk("domain", "name"),
        sa.ForeignKeyConstraint(["operator_id"], ["operator.id"], name="fk_domain_operator_id_operator"),
    )
    op.create_table(
        "mailbox",
        _id(True),
        sa.Column("address", _key(254), nullable=False),
        sa.Column("domain", _key(255), nullable=False),
        sa.Column("type", sa.String(3), nullable=False),
        sa.Column("holder", _key(20)),
        sa.Column("structure_type", sa.String(3)),
        sa.Column("structure", _key(40)),
        sa.Column("structure_idnat", _key(45)),
        sa.Column("service", sa.String(300)),
        sa.Column("description", sa.String(500)),
        sa.Column("responsible", sa.String(300)),
        sa.Column("liste_rouge", sa.Boolean, nullable=False),
        sa.Column("rank", sa.Integer),
        sa.Column("dematerialisation", sa.Boolean),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("run_id", sa.BigInteger),
        *_record(),
        _pk("mailbox", "id"),
        _unique("mailbox", "address"),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(200), nullable=False),
        sa.Column("rate_limit", sa.Integer),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        _pk("api_key", "id"),
        _unique("api_key", "name"),
    )
    op.create_table(
        "ldap_account",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("size_limit", sa.Integer),
        sa.Column("entries_per_minute", sa.Integer),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        _pk("ldap_account", "id"),
        _unique("ldap_account", "name"),
    )
    # Mailbox history of a domain, read by id: journal rows of other entities have no scope.
    where = sa.text("scope IS NOT NULL")
    op.create_index("ix_journal_scope_id", "journal", ["scope", "id"], sqlite_where=where, postgresql_where=where)
    for table, columns, unique in INDEXES:
        op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=unique)


def downgrade() -> None:
    for name in ("ldap_account", "api_key", "mailbox", "domain", "operator", "diploma", "skill", "activity",
                 "structure", "person", "nomenclature", "journal", "run"):
        op.drop_table(name)
