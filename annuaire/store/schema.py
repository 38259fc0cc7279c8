"""The one schema of the directory (SQLAlchemy Core), for SQLite and PostgreSQL.

Conventions shared by every table holding directory records:
- an integer surrogate `id` (stable, used in public ids and keyset paging) and
  the natural key of the national files in a unique column;
- `active` (False = tombstone: records are never physically deleted),
  `version` (starts at 1, +1 on every change) and `last_updated` (UTC,
  `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so that text order is time order);
- `digest`: a 64-bit hash of the record's content, compared by the diff engine
  so that an unchanged record is never rewritten;
- `*_key` columns: search keys from `annuaire.store.keys.search_key`, indexed.

Key columns use the C collation on PostgreSQL so that prefix ranges
(`key >= 'dup' AND key < 'dup\\x7f'`) are b-tree range scans on both engines.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def Key(length: int = 255) -> String:
    """A text column compared byte-wise (C collation on PostgreSQL)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def _record_columns() -> list[Column]:
    return [
        Column("active", Boolean, nullable=False, default=True),
        Column("version", Integer, nullable=False, default=1),
        Column("last_updated", String(32), nullable=False),
        Column("digest", BigInteger, nullable=False),
    ]


def _labelled(name: str) -> list[Column]:
    """A code and the label the file carried with it (the file's label wins)."""
    return [Column(f"{name}_code", String(16)), Column(f"{name}_label", String(200))]


# --- import runs and publications ------------------------------------------

run = Table(
    "run",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # 'referential' (PS_LibreAcces), 'mssante' (national MSSanté file), 'publication' (operator)
    Column("kind", String(20), nullable=False),
    Column("source", String(500)),  # file name, or operator name for publications
    Column("file_ts", String(12)),  # YYYYMMDDhhmm of the national file
    Column("domain", Key(255)),
    Column("operator_id", Integer),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(20), nullable=False),  # running | ok | failed | dry_run
    Column("report", Text),  # JSON summary / publication report
    Index(None, "kind", "file_ts"),
    Index(None, "domain", "id"),
)

# Append-only: one row per change of one record.
journal = Table(
    "journal",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigInteger, nullable=False),
    Column("at", String(32), nullable=False),
    # person | activity | structure | skill | diploma | mailbox
    Column("entity", String(16), nullable=False),
    Column("key", Key(300), nullable=False),
    Column("change", String(8), nullable=False),  # created | updated | deleted
    Column("scope", Key(255)),  # the domain, for mailboxes
    Column("before_digest", BigInteger),
    Column("after_digest", BigInteger),
    Column("data", Text),  # JSON copy of the new state (mailboxes) or None
    # Domain history (mailboxes only); followers read by id (the primary key).
    Index(None, "scope", "id", sqlite_where=text("scope IS NOT NULL"), postgresql_where=text("scope IS NOT NULL")),
)

# Fingerprints of the lines of each person in the last imported referential file of
# each kind (annuaire.referential.prints): the next import re-reads only the persons
# whose lines changed. A cache of the import: dropping a row costs one full diff.
referential_print = Table(
    "referential_print",
    metadata,
    Column("kind", String(40), primary_key=True),  # PS_LibreAcces_Personne_activite, …
    Column("version", String(40), nullable=False),  # of the line -> record mappings
    Column("header", Text, nullable=False),  # the file's header line
    Column("ids", LargeBinary, nullable=False),  # the persons' national ids, "\n"-separated
    Column("prints", LargeBinary, nullable=False),  # one unsigned 64-bit fingerprint per id
)

# --- nomenclatures -----------------------------------------------------------

nomenclature = Table(
    "nomenclature",
    metadata,
    Column("tre", String(40), primary_key=True),  # e.g. TRE_G15-ProfessionSante
    Column("code", String(20), primary_key=True),
    Column("label", String(300), nullable=False),
    Column("status", String(20)),
)

# --- the referential ---------------------------------------------------------

person = Table(
    "person",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("id_nat", Key(20), nullable=False),  # Identification nationale PP
    Column("id_type", String(2), nullable=False),  # 8 RPPS, 0 ADELI
    Column("id_pp", String(20), nullable=False),
    *_labelled("civilite"),
    *_labelled("civilite_exercice"),
    Column("last_name", String(200)),
    Column("first_name", String(200)),
    *_labelled("profession"),
    *_labelled("category"),
    Column("last_name_key", Key(200)),
    Column("first_name_key", Key(200)),
    *_record_columns(),
    Index(None, "id_nat", unique=True),
    # (PostgreSQL: with the ids, so that name ranges are read from the index alone: migration 0014)
    Index(None, "last_name_key", postgresql_include=["id"]),
    Index(None, "first_name_key", postgresql_include=["id"]),
    # the people of one profession in name order (web search, migration 0005)
    Index("ix_person_profession_code_last_name_key", "profession_code", "last_name_key", "first_name_key"),
    Index(None, "last_updated"),
)

structure = Table(
    "structure",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("tech_id", Key(40), nullable=False),  # Identifiant technique de la structure
    Column("idnat", Key(40)),  # Ancien identifiant: TRE_G07 type digit + id (1+FINESS, 3+SIRET…)
    Column("siret", String(14)),
    Column("siren", String(9)),
    Column("finess", String(9)),
    Column("finess_ej", String(9)),
    Column("name", String(300)),
    Column("sign", String(300)),  # enseigne commerciale
    Column("addressee", String(300)),  # complément destinataire
    Column("geo_complement", String(300)),
    Column("street_number", String(20)),
    Column("street_repetition", String(20)),
    *_labelled("street_type"),
    Column("street_name", String(300)),
    Column("distribution_mention", String(300)),
    Column("cedex_office", String(300)),
    Column("postcode", Key(10)),
    Column("commune_code", String(10)),
    Column("commune_label", String(200)),
    *_labelled("country"),
    Column("phone", String(30)),
    Column("phone2", String(30)),
    Column("fax", String(30)),
    Column("email", String(300)),
    Column("dept_code", Key(5)),
    Column("dept_label", String(100)),
    Column("name_key", Key(300)),
    Column("city_key", Key(200)),
    *_record_columns(),
    Index(None, "tech_id", unique=True),
    Index(None, "idnat"),
    Index(None, "finess"),
    Index(None, "siret"),
    Index(None, "finess_ej"),
    Index(None, "name_key", postgresql_include=["id"]),
    Index(None, "city_key", postgresql_include=["id"]),
    Index(None, "postcode"),
    # the active structures of a place from the index alone (web search: migration 0015); city_key's own
    # index stays: FHIR reads its ranges in (key, id) order
    Index(None, "city_key", "active"),
    Index(None, "dept_code", "active"),
    Index(None, "last_updated"),
)

# One row per line of PS_LibreAcces_Personne_activite.
activity = Table(
    "activity",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    # id_nat|tech_id|n : n counts identical (person, structure) pairs in file order
    Column("key", Key(80), nullable=False),
    Column("person_id", BigInteger, nullable=False),
    Column("structure_id", BigInteger),
    *_labelled("profession"),
    *_labelled("category"),
    *_labelled("skill_type"),
    *_labelled("skill"),
    *_labelled("mode"),
    *_labelled("sector"),
    *_labelled("pharma_section"),
    *_labelled("role"),
    *_labelled("genre"),
    Column("registration_authority", String(100)),
    *_record_columns(),
    Index(None, "key", unique=True),
    Index(None, "person_id"),  # (a person's activities in id order, without a sort)
    Index(None, "structure_id", "active", "person_id"),  # the people of a place, from the index alone
    Index(None, "person_id", "active", "structure_id"),  # whether a person works there, too (migration 0015)
    Index(None, "last_updated"),
)

# One row per line of PS_LibreAcces_SavoirFaire.
skill = Table(
    "skill",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("key", Key(80), nullable=False),  # id_nat|type|code
    Column("person_id", BigInteger, nullable=False),
    *_labelled("profession"),
    *_labelled("category"),
    *_labelled("type"),
    Column("code", String(16)),
    Column("label", String(300)),
    *_record_columns(),
    Index(None, "key", unique=True),
    Index(None, "person_id"),
    Index(None, "code", "active", "person_id"),  # the people of a savoir-faire, from the index alone
)

# One row per line of PS_LibreAcces_Dipl_AutExerc.
diploma = Table(
    "diploma",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("key", Key(120), nullable=False),  # id_nat|diploma|authorisation|n
    Column("person_id", BigInteger, nullable=False),
    *_labelled("type"),
    Column("code", String(30)),
    Column("label", String(300)),
    *_labelled("auth_type"),
    *_labelled("auth_discipline"),
    *_record_columns(),
    Index(None, "key", unique=True),
    Index(None, "person_id"),
)

# --- MSSanté mailboxes (BAL) -------------------------------------------------

operator = Table(
    "operator",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("cert_dn", String(500)),
    Column("token_hash", String(200)),  # keyed hash (annuaire.store.credentials); the token is shown once
    Column("contact", String(300)),
    Column("support_contact", String(300)),
    Column("created_at", String(32), nullable=False),
    Column("token_expires_at", String(32)),  # NULL = no expiry (stored instant, exclusive)
    Column("token_last_used", String(32)),  # recorded at most once a minute per process
)

domain = Table(
    "domain",
    metadata,
    Column("name", Key(255), primary_key=True),
    Column("operator_id", Integer, ForeignKey("operator.id")),  # NULL: national mirror only
    Column("description", String(500)),
    Column("version", Integer, nullable=False, default=0),  # ETag of the published list
    Column("last_published", String(32)),
    Column("created_at", String(32), nullable=False),
    Index(None, "operator_id"),
)

mailbox = Table(
    "mailbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("address", Key(254), nullable=False, unique=True),  # lowercase
    Column("domain", Key(255), nullable=False),
    Column("type", String(3), nullable=False),  # PER ORG APP CAB (immutable)
    Column("holder", Key(20)),  # national id of the professional (8…/0…)
    Column("structure_type", String(3)),  # TRE_G07 code: 1 FINESS, 3 SIRET, 4 RPPS rang, 0, 40
    Column("structure", Key(40)),  # structure id without the type
    Column("structure_idnat", Key(45)),  # type + id, joins structure.idnat
    Column("service", String(300)),
    Column("description", String(500)),
    Column("responsible", String(300)),  # NEVER published
    Column("liste_rouge", Boolean, nullable=False, default=False),
    Column("rank", Integer),
    Column("dematerialisation", Boolean),
    Column("source", String(10), nullable=False),  # national | operator
    Column("run_id", BigInteger),  # the run that last changed it
    *_record_columns(),
    Index(None, "domain", "active"),
    Index(None, "holder"),
    Index(None, "structure_idnat"),
)

# --- consultation accounts ---------------------------------------------------

api_key = Table(
    "api_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("key_hash", String(200), nullable=False),
    Column("rate_limit", Integer),  # requests per second; NULL = default
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32)),  # NULL = no expiry (stored instant, exclusive)
    Column("last_used_at", String(32)),  # recorded at most once a minute per process
)

# Server secrets kept in the store, shared by every process serving it: "credentials" keys
# the HMAC of operator tokens and API keys (annuaire.store.credentials).
server_secret = Table(
    "server_secret",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

ldap_account = Table(
    "ldap_account",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("size_limit", Integer),
    Column("entries_per_minute", Integer),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(32), nullable=False),
    # distinct entries a sliding day; NULL = the default share (annuaire/ldap/limits.py, migration 0012)
    Column("daily_allowance", Integer),
)

