"""Numbers copied from other systems: which professionals and structures they identify.

People paste identifiers from a prescription, an invoice, a hospital's
software: RPPS (11 digits), ADELI (9 characters), the national id the detail
page shows (RPPS or ADELI with its type prefix, `8` or `0`: 12 or 10
characters), FINESS of a site or of its legal entity (9 characters, `2A`/`2B`
in Corsica), SIRET (14 digits) and SIREN (9 digits), a structure's national id
(`1` + FINESS, `3` + SIRET, `4` + RPPS cabinet number…) or its technical id
(`F…`, `C…`, `R…`). Spaces, dots and dashes inside the number are ignored
("810 000 000 011").

A 9-character number may be an ADELI, a FINESS or a SIREN: every reading is
looked up (each an equality on an indexed column, a few dozen index probes in
all) and every active record found is returned, labelled with what matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select, true

from annuaire.store.prefix import starts_with
from annuaire.store.schema import person, structure

_SEPARATORS = re.compile(r"[\s.\-_/]+")
# An optional technical-id letter, then digits (and A/B for Corsica's département codes).
_SHAPE = re.compile(r"[FCR]?\d[0-9AB]\d{7,13}")
MAX_FOUND = 50


@dataclass(frozen=True)
class Match:
    """A record an identifier designates: a professional (id_nat) or a structure (tech_id)."""

    kind: str  # "pro" | "structure"
    key: str  # id_nat or tech_id
    label: str  # what the number is for this record: "RPPS", "FINESS entité juridique"…


def compact(text: str) -> str | None:
    """The identifier typed in the box (separators removed, upper case), or None if it is not one."""
    value = _SEPARATORS.sub("", text.strip()).upper()
    if not _SHAPE.fullmatch(value) or sum(c.isdigit() for c in value) < 8:
        return None
    return value


def lookup(conn: Connection, value: str) -> list[Match]:
    """The active professionals and structures `value` (from `compact`) identifies."""
    found: list[Match] = []
    digits = value.isdigit()
    if digits or value[0] != "F":
        found += _people(conn, value)
    found += _structures(conn, value)
    seen: set[tuple[str, str]] = set()
    out = []
    for m in found:
        if (m.kind, m.key) not in seen:
            seen.add((m.kind, m.key))
            out.append(m)
    return out[:MAX_FOUND]


def _people(conn: Connection, value: str) -> list[Match]:
    """National id as shown (`8…`, `0…`), RPPS (11 digits) or ADELI (9 characters)."""
    readings = {value: "Identifiant national"}
    if len(value) == 11:
        readings["8" + value] = "RPPS"
    if len(value) == 9:
        readings["0" + value] = "ADELI"
    rows = conn.execute(
        select(person.c.id_nat).where(person.c.id_nat.in_(list(readings)), person.c.active == true())
    ).all()
    return [Match("pro", r.id_nat, readings[r.id_nat]) for r in rows]


def _structures(conn: Connection, value: str) -> list[Match]:
    s = structure
    conds = [
        (s.c.tech_id == value, "Identifiant technique"),
        (s.c.idnat == value, "Identifiant national"),
    ]
    if value[0] not in "FCR":
        conds += [(s.c.tech_id == letter + value, "Identifiant technique") for letter in "FCR"]
        conds += [(s.c.idnat == kind + value, "Identifiant national") for kind in "1340"]
    if len(value) == 9:
        conds += [
            (s.c.finess == value, "FINESS établissement"),
            (s.c.finess_ej == value, "FINESS entité juridique"),
        ]
        if value.isdigit():  # SIREN: the first 9 digits of its SIRETs (an index range)
            conds.append((starts_with(s.c.siret, value), "SIREN"))
    if len(value) == 14 and value.isdigit():
        conds.append((s.c.siret == value, "SIRET"))
    out: list[Match] = []
    for cond, label in conds:
        rows = conn.execute(
            select(s.c.tech_id).where(cond, s.c.active == true()).order_by(s.c.name_key, s.c.id).limit(MAX_FOUND)
        ).all()
        out += [Match("structure", r.tech_id, label) for r in rows]
    return out


def any_of(matches: list[Match], kind: str) -> list[str]:
    return [m.key for m in matches if m.kind == kind]


__all__ = ["MAX_FOUND", "Match", "any_of", "compact", "lookup", "or_"]
