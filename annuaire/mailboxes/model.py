"""A mailbox (BAL) as the publication engine handles it: fields, digest, rows, views.

One dataclass for a validated mailbox line, whatever it came from (operator
JSON, operator text, national file). Its digest is what the diff compares, so
an identical line is never rewritten. `responsible` is stored and counted in
the digest, but never part of `public()` (it is an operational contact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annuaire.store.digest import digest
from annuaire.store.jsonrow import TRUE, json_object_sql

TYPES = ("PER", "ORG", "APP", "CAB")
PERSONAL_TYPES = frozenset({"PER", "CAB"})  # attached to a professional (holder)
STRUCTURE_TYPES = frozenset({"ORG", "APP"})  # attached to a structure

SOURCE_OPERATOR = "operator"
SOURCE_NATIONAL = "national"

# Store columns written by the engine, in insert order (id is generated).
DATA_COLUMNS = (
    "type", "holder", "structure_type", "structure", "structure_idnat", "service", "description",
    "responsible", "liste_rouge", "rank", "dematerialisation",
)
INSERT_COLUMNS = ("address", "domain", *DATA_COLUMNS, "source", "run_id", "active", "version", "last_updated", "digest")


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("1" if value else "0")


@dataclass(slots=True)
class Mailbox:
    """One validated mailbox line (address lowercase, values normalised)."""

    address: str
    type: str
    holder: str | None = None
    structure_type: str | None = None  # TRE_G07 code: 1 FINESS, 3 SIRET, 4 RPPS rang, 0 ADELI cabinet, 40…
    structure: str | None = None  # identifier without its type
    service: str | None = None
    description: str | None = None
    responsible: str | None = None
    liste_rouge: bool = False
    rank: int | None = None
    dematerialisation: bool | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def structure_idnat(self) -> str | None:
        """Type + identifier, the form stored in structure.idnat."""
        if not self.structure:
            return None
        return (self.structure_type or "") + self.structure

    def digest(self, source: str) -> int:
        """Content hash compared by the diff (the source counts: a box taken over by an operator changes)."""
        # Every value a str ('' for None): the digest's fast path (same digest as with None).
        return digest((
            self.type, self.holder or "", self.structure_type or "", self.structure or "", self.service or "",
            self.description or "", self.responsible or "", _flag(self.liste_rouge) or "",
            "" if self.rank is None else str(self.rank), _flag(self.dematerialisation) or "", source,
        ))

    def values(self) -> tuple:
        """The DATA_COLUMNS values, in order."""
        return (
            self.type, self.holder, self.structure_type, self.structure, self.structure_idnat, self.service,
            self.description, self.responsible, self.liste_rouge, self.rank, self.dematerialisation,
        )

    def public(self) -> dict[str, Any]:
        """The published view (journal data, history): everything but `responsible`."""
        return {name: getattr(self, attribute) for name, attribute, _ in PUBLIC}


# The published view, in one place: (key, Mailbox attribute = store column, kind).
PUBLIC = (
    ("address", "address", "text"), ("type", "type", "text"), ("holder", "holder", "text"),
    ("structure", "structure_idnat", "text"), ("service", "service", "text"),
    ("description", "description", "text"), ("liste_rouge", "liste_rouge", "bool"), ("rank", "rank", "int"),
    ("dematerialisation", "dematerialisation", "bool"),
)


def public_json_sql(bind: object) -> str:
    """SQL building the journal data of a stored box (public view + active + source), as
    `write_plans` would from a Mailbox: creations are journaled in one INSERT … SELECT."""
    return json_object_sql(bind, "mailbox", (*PUBLIC, ("active", "", TRUE), ("source", "source", "text")))


def mailbox_from_row(row: Any) -> Mailbox:
    """A Mailbox from a `mailbox` table row (mapping access)."""
    return Mailbox(
        address=row["address"],
        type=row["type"],
        holder=row["holder"],
        structure_type=row["structure_type"],
        structure=row["structure"],
        service=row["service"],
        description=row["description"],
        responsible=row["responsible"],
        liste_rouge=bool(row["liste_rouge"]),
        rank=row["rank"],
        dematerialisation=None if row["dematerialisation"] is None else bool(row["dematerialisation"]),
    )
