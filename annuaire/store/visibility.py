"""What the public may see of a mailbox: THE one rule, and the reasons a box is hidden.

A mailbox is publicly visible when

- it is active (its operator still publishes it) and not liste rouge, and
- what it points to is still there: a PER/CAB box's holder is an active person
  of the referential; an ORG/APP box's structure is open: an active structure
  has its national id (`mailbox.structure_idnat = structure.idnat`), or the box
  names a legal entity (`1` + FINESS EJ) of which an active structure is a site
  (the referential lists sites; an EJ is open while one of its sites is, as its
  FHIR Organization says).

Why the second condition: a box whose professional left the register, or whose
establishment closed, would otherwise keep receiving mail under a name nobody
can check (LDAP served it under the old name, the extraction wrote it with empty
name columns and establishments' address books took it in). Why hidden and not
deleted: the operator's list is authoritative for what exists; when the holder
comes back (a late registration, a file fixed the next day) the box is public
again everywhere without anybody publishing it again, and meanwhile its
operator is told why it is hidden (`reasons`).

Every outward view selects boxes with `visible()`: LDAP index and LDIF export,
FHIR cache, web pages, MSSanté extraction (and so local-sync, which reads the
extraction or LDAP). Operator-facing reports explain the others with
`hidden_boxes()` / `reasons()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    true,
)

from annuaire.store.schema import mailbox, person, structure

CHUNK = 500  # addresses per query
PERSONAL_TYPES = ("PER", "CAB")
STRUCTURE_TYPES = ("ORG", "APP")


@dataclass(frozen=True)
class Reason:
    code: str
    fr: str
    en: str


# Why an active box is not public, in the order reports list them.
REASONS = {r.code: r for r in (
    Reason("LISTE_ROUGE", "BAL en liste rouge (jamais publiée)", "liste rouge box (never published)"),
    Reason("HOLDER_UNKNOWN", "titulaire inconnu du référentiel", "holder not in the referential"),
    Reason("HOLDER_INACTIVE", "titulaire inactif dans le référentiel (parti ou radié)",
           "holder inactive in the referential (left or struck off)"),
    Reason("STRUCTURE_UNKNOWN", "structure inconnue du référentiel", "structure not in the referential"),
    Reason("STRUCTURE_CLOSED", "structure fermée dans le référentiel", "structure closed in the referential"),
    Reason("DELETED", "BAL supprimée par son opérateur", "box deleted by its operator"),
)}


# Aliases: the rule must not correlate with a `person` or `structure` of the query using it.
_holder_p = person.alias("visibility_holder")
_site_s = structure.alias("visibility_site")
_legal_s = structure.alias("visibility_legal")


def _holder(box: Table, *, active: bool) -> ColumnElement[bool]:
    p = _holder_p
    conds = [p.c.id_nat == box.c.holder]
    if active:
        conds.append(p.c.active == true())
    return exists().where(*conds)


def _structure(box: Table, *, active: bool) -> ColumnElement[bool]:
    """A structure with the box's national id, or a site of the legal entity it names."""
    site = [_site_s.c.idnat == box.c.structure_idnat]
    legal = [_legal_s.c.finess_ej == func.substr(box.c.structure_idnat, 2)]
    if active:
        site.append(_site_s.c.active == true())
        legal.append(_legal_s.c.active == true())
    return or_(exists().where(*site), and_(func.substr(box.c.structure_idnat, 1, 1) == "1", exists().where(*legal)))


def visible(box: Table = mailbox) -> ColumnElement[bool]:
    """SQL condition: the box is publicly visible (see the module docstring)."""
    return and_(
        box.c.active == true(),
        box.c.liste_rouge == false(),
        or_(
            and_(box.c.type.in_(PERSONAL_TYPES), _holder(box, active=True)),
            and_(box.c.type.in_(STRUCTURE_TYPES), _structure(box, active=True)),
        ),
    )


def state_columns(box: Table = mailbox) -> list[Any]:
    """The facts `reasons` needs, as labelled columns to add to a select of `box`."""
    return [
        box.c.active, box.c.liste_rouge, box.c.type,
        _holder(box, active=True).label("holder_active"), _holder(box, active=False).label("holder_known"),
        _structure(box, active=True).label("structure_active"),
        _structure(box, active=False).label("structure_known"),
    ]


def reasons(row: Any) -> list[str]:
    """Why the box of a row carrying `state_columns` is hidden; [] when it is visible.

    The Python twin of `visible()`: tests check both agree on every combination.
    """
    out = []
    if not row.active:
        out.append("DELETED")
    if row.liste_rouge:
        out.append("LISTE_ROUGE")
    if row.type in PERSONAL_TYPES:
        if not row.holder_active:
            out.append("HOLDER_INACTIVE" if row.holder_known else "HOLDER_UNKNOWN")
    elif row.type in STRUCTURE_TYPES:
        if not row.structure_active:
            out.append("STRUCTURE_CLOSED" if row.structure_known else "STRUCTURE_UNKNOWN")
    else:
        out.append("STRUCTURE_UNKNOWN")  # (no such type is ever stored: the rules reject it)
    return sorted(out, key=list(REASONS).index)


@dataclass(frozen=True)
class Hidden:
    """An active box the public does not see, and why."""

    address: str
    domain: str
    type: str
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "type": self.type, "reasons": self.reasons,
                "messages": [REASONS[r].fr for r in self.reasons],
                "messages_en": [REASONS[r].en for r in self.reasons]}


def hidden_boxes(conn: Connection, *, domains: Iterable[str] | None = None,
                 addresses: Iterable[str] | None = None) -> Iterator[Hidden]:
    """The active boxes (of these domains, or with these addresses) that are not visible."""
    query = select(mailbox.c.address, mailbox.c.domain, *state_columns()).where(
        mailbox.c.active == true(), ~visible())
    if domains is not None:
        query = query.where(mailbox.c.domain.in_(sorted(set(domains))))
    query = query.order_by(mailbox.c.domain, mailbox.c.address)
    if addresses is None:
        chunks: Iterable[Any] = [query]
    else:
        wanted = sorted(set(addresses))
        chunks = (query.where(mailbox.c.address.in_(wanted[i:i + CHUNK])) for i in range(0, len(wanted), CHUNK))
    for chunk in chunks:
        for row in conn.execute(chunk):
            yield Hidden(row.address, row.domain, row.type, reasons(row))
