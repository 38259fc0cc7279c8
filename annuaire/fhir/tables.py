"""The FHIR API's own tables: a derived cache, rebuilt from the store at will.

Nothing here is a source of truth. `fhir_resource` holds the JSON of every
Practitioner, PractitionerRole and Organization as served (rendered once per
version); `fhir_telecom` says which published mailbox sits in which resource
(so `mailbox-mss` searches see exactly what is rendered, liste rouge never);
`fhir_token` indexes the coded values that have no indexed column in the store
(qualifications, role codes, organisation types…); `fhir_legal_entity` gives a
stable number to each legal entity (FINESS EJ) found on structures;
`fhir_sync` remembers how far the renderer has followed the journal.

Resource kinds (`kind` columns), one integer id space each:
P = Practitioner (person.id), R = PractitionerRole (activity.id),
O = Organization: geographic entities use structure.id, legal entities use
the NEGATIVE of fhir_legal_entity.id, so one integer orders all Organizations.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from annuaire.store.schema import BigId, Key, metadata

PRACTITIONER = "P"
ROLE = "R"
ORGANIZATION = "O"

fhir_resource = Table(
    "fhir_resource",
    metadata,
    Column("kind", String(1), primary_key=True),
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(32), nullable=False),
    Column("digest", BigInteger, nullable=False),  # of the body without meta
    Column("json", LargeBinary, nullable=False),
    Index(None, "kind", "last_updated"),
    # covering index: checking candidates (active, _lastUpdated) never reads the JSON rows
    Index(None, "kind", "rid", "active", "last_updated"),
)

fhir_telecom = Table(
    "fhir_telecom",
    metadata,
    Column("mailbox_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(1), primary_key=True),
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Column("address", Key(254), nullable=False),
    Column("domain", Key(255), nullable=False),
    Column("type", String(3), nullable=False),
    Index(None, "kind", "rid"),
    Index(None, "kind", "domain", "rid"),
    Index(None, "kind", "address"),
    Index(None, "kind", "type", "rid"),
    sqlite_with_rowid=False,
)

fhir_token = Table(
    "fhir_token",
    metadata,
    Column("kind", String(1), primary_key=True),
    Column("param", String(40), primary_key=True),
    Column("code", Key(120), primary_key=True),
    Column("system", Key(200), primary_key=True),
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Index(None, "kind", "rid"),
    sqlite_with_rowid=False,
)

fhir_legal_entity = Table(
    "fhir_legal_entity",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("finess", Key(9), nullable=False, unique=True),
)

fhir_sync = Table(
    "fhir_sync",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("journal_id", BigInteger, nullable=False),  # last journal row followed
    Column("holes", Text, nullable=False),  # JSON [[id, first_seen_epoch], ...] not yet seen
    Column("lease_until", Integer, nullable=False),  # epoch seconds: a renderer is at work
    Column("secret", String(100), nullable=False),  # HMAC key of paging tokens
    Column("rendered_at", String(32)),
)

TABLES = ("fhir_resource", "fhir_telecom", "fhir_token", "fhir_legal_entity", "fhir_sync")
