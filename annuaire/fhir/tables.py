"""The FHIR API's own tables: a derived cache, rebuilt from the store at will.

Nothing here is a source of truth. `fhir_resource` holds the JSON of every
Practitioner, PractitionerRole and Organization as served (rendered once per
version); `fhir_telecom` says which published mailbox sits in which resource
(so `mailbox-mss` searches see exactly what is rendered, liste rouge never);
`fhir_token` indexes the coded values that have no indexed column in the store
(qualifications, role codes, organisation types…), its search parameter and
code system stored as small integers (`token_param`, `token_system`): 22.7 M rows
at national scale, which spelt out repeated 80-byte URLs in two b-trees;
`fhir_legal_entity` gives a stable number to each legal entity (FINESS EJ) found
on structures; `fhir_history` keeps the versions a resource had before its
current one (`_history`, vread); `fhir_dictionary` the zstd dictionaries the
bodies are compressed with (`packing`); `fhir_sync` remembers how far the
renderer has followed the journal.

Resource kinds (`kind` columns), one integer id space each:
P = Practitioner (person.id), R = PractitionerRole (activity.id),
O = Organization: geographic entities use structure.id, legal entities use
the NEGATIVE of fhir_legal_entity.id, so one integer orders all Organizations.
"""

from __future__ import annotations

import zlib

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
    text,
)

from annuaire.store.schema import BigId, Key, metadata

PRACTITIONER = "P"
ROLE = "R"
ORGANIZATION = "O"

INACTIVE_INDEX = "ix_fhir_resource_inactive"  # the inactive resources only (migration 0016)

fhir_resource = Table(
    "fhir_resource",
    metadata,
    Column("kind", String(1), primary_key=True),
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(32), nullable=False),  # the time of the change it renders (meta.lastUpdated)
    Column("recorded_at", String(32), nullable=False),  # when this version was written here (_history's _since)
    Column("digest", BigInteger, nullable=False),  # of the body without meta
    Column("json", LargeBinary, nullable=False),  # compressed (packing)
    Index(None, "kind", "last_updated"),
    Index(None, "kind", "recorded_at"),
    # covering index: checking candidates (active, _lastUpdated) never reads the JSON rows
    Index(None, "kind", "rid", "active", "last_updated"),
    # the few inactive ones: which of a search's candidates are not active (query.active_among)
    Index(INACTIVE_INDEX, "kind", "rid", sqlite_where=text("active = 0"), postgresql_where=text("NOT active")),
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
    Column("param", Integer, primary_key=True),  # token_param
    Column("code", Key(120), primary_key=True),
    Column("system", Integer, primary_key=True),  # token_system
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Index(None, "kind", "rid"),
    sqlite_with_rowid=False,
)

fhir_history = Table(
    "fhir_history",
    metadata,
    Column("kind", String(1), primary_key=True),
    Column("rid", BigInteger, primary_key=True, autoincrement=False),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("active", Boolean, nullable=False),
    Column("last_updated", String(32), nullable=False),  # of this version
    Column("recorded_at", String(32), nullable=False),  # when this version was written
    Column("superseded_at", String(32), nullable=False),  # when the next version was written (pruning)
    Column("json", LargeBinary, nullable=False),  # compressed (packing)
    Index(None, "kind", "recorded_at"),
    Index(None, "superseded_at"),
)

fhir_dictionary = Table(
    "fhir_dictionary",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # the zstd dictionary id
    Column("data", LargeBinary, nullable=False),
    Column("trained_at", String(32), nullable=False),
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

# The search parameters with token rows, by their number in `fhir_token.param` (never renumber).
TOKEN_PARAMS = {"qualification-code": 1, "role": 2, "type": 3, "data-registration-authority": 4, "address-line": 5}


def token_param(name: str) -> int:
    return TOKEN_PARAMS[name]


_SYSTEMS: dict[str, int] = {}


def token_system(url: str) -> int:
    """The number of a code system in `fhir_token.system`: a CRC-32 of its URL (0 for none),
    the same in every process without a table to share; two systems of the same number would
    only widen a search by code to both, and none of the ~30 systems served collide."""
    known = _SYSTEMS.get(url)
    if known is None:
        known = _SYSTEMS[url] = zlib.crc32(url.encode()) - 2**31 if url else 0  # (fits a 32-bit signed column)
    return known
