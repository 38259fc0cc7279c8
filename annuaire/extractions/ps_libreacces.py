"""Writer of `PS_LibreAcces_<ts>.zip`: the public referential in the national layout.

Three files, the current 56-column layout for Personne_activite, every line
(header included) ending with `|`. Only active records are written. Each
Personne_activite line is rebuilt from person + activity + structure; an
active person without an active activity gets one line with empty activity
and structure fields, as in the national file. Which store column feeds which
header comes from `annuaire.referential.records`, the mapping the importer
uses, so that what we write is what we read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, select
from sqlalchemy.sql import ColumnElement

from annuaire import formats
from annuaire.extractions.package import AtomicArchive, render
from annuaire.extractions.select_stream import batches
from annuaire.nationalfiles.manifest import MemberInfo
from annuaire.referential import records
from annuaire.store.schema import activity, diploma, person, skill, structure

_PERSON_IDENTITY = {
    "Type d'identifiant PP": "id_type",
    "Identifiant PP": "id_pp",
    records.ID_NAT: "id_nat",
    "Nom d'exercice": "last_name",
    "Prénom d'exercice": "first_name",
}


def _inverse(mapping: dict[str, str]) -> dict[str, str]:
    return {header: column for column, header in mapping.items()}


@dataclass(frozen=True)
class ActivityLayout:
    """The 56 columns as: person/activity head, one run of structure columns, activity tail."""

    head: list[ColumnElement[Any]]
    structure: list[str]  # structure table columns, in file order
    tail: list[ColumnElement[Any]]


def activity_layout() -> ActivityLayout:
    """Which store column feeds each header of the 56-column layout, in order.

    The structure columns form one run in the file: they are rendered once per
    structure (a structure is shared by many activities) rather than fetched
    and decoded again for every activity line.
    """
    by_person = _inverse(records.PERSON) | _PERSON_IDENTITY
    by_activity = _inverse(records.ACTIVITY)
    by_structure = _inverse(records.STRUCTURE) | {records.TECH_ID: "tech_id"}
    head: list[ColumnElement[Any]] = []
    tail: list[ColumnElement[Any]] = []
    structure_columns: list[str] = []
    for header in formats.PERSONNE_ACTIVITE_COLUMNS:
        target = tail if structure_columns else head
        if header in by_structure:
            if tail:
                raise ValueError(f"the structure columns of {formats.PERSONNE_ACTIVITE} are not contiguous ({header!r})")
            structure_columns.append(by_structure[header])
        elif header in by_activity and header in by_person:
            # The activity's own value; the person's when there is no activity.
            target.append(
                case((activity.c.id.is_(None), person.c[by_person[header]]), else_=activity.c[by_activity[header]])
            )
        elif header in by_activity:
            target.append(activity.c[by_activity[header]])
        elif header in by_person:
            target.append(person.c[by_person[header]])
        else:  # pragma: no cover - a layout change not mirrored in records.py
            raise KeyError(f"no store column feeds the PS_LibreAcces column {header!r}")
    return ActivityLayout(head, structure_columns, tail)


def _person_file_columns(table, mapping: dict[str, str], headers: tuple[str, ...]) -> list[ColumnElement[Any]]:
    own = _inverse(mapping)
    out: list[ColumnElement[Any]] = []
    for header in headers:
        if header in _PERSON_IDENTITY:
            out.append(person.c[_PERSON_IDENTITY[header]])
        else:
            out.append(table.c[own[header]])
    return out


def activity_query(layout: ActivityLayout):
    """Person and activity values, then the activity's structure id (None without activity)."""
    return (
        select(*layout.head, *layout.tail, activity.c.structure_id)
        .select_from(person.outerjoin(activity, and_(activity.c.person_id == person.c.id, activity.c.active)))
        .where(person.c.active)
        .order_by(person.c.id, activity.c.id)
    )


def structure_blocks(conn: Connection, columns: list[str]) -> dict[int, str]:
    """Structure id -> its run of columns, already joined with `|` (and cleaned)."""
    stmt = select(structure.c.id, *(structure.c[c] for c in columns))
    blocks: dict[int, str] = {}
    for rows in batches(conn, stmt):
        for row in rows:
            blocks[row[0]] = render(row[1:], len(columns) - 1)[:-1]
    return blocks


def skill_query():
    return (
        select(*_person_file_columns(skill, records.SKILL, formats.SAVOIR_FAIRE_COLUMNS))
        .select_from(skill.join(person, person.c.id == skill.c.person_id))
        .where(skill.c.active, person.c.active)
        .order_by(skill.c.id)
    )


def diploma_query():
    return (
        select(*_person_file_columns(diploma, records.DIPLOMA, formats.DIPLOMES_COLUMNS))
        .select_from(diploma.join(person, person.c.id == diploma.c.person_id))
        .where(diploma.c.active, person.c.active)
        .order_by(diploma.c.id)
    )


def activity_lines(conn: Connection) -> Iterator[str]:
    layout = activity_layout()
    blocks = structure_blocks(conn, layout.structure)
    empty = "|" * (len(layout.structure) - 1)
    nhead = len(layout.head)
    separators = len(formats.PERSONNE_ACTIVITE_COLUMNS)  # 55 between fields + the trailing one
    for rows in batches(conn, activity_query(layout)):
        for row in rows:
            values = [v or "" for v in row[:-1]]
            block = blocks.get(row[-1], empty) if row[-1] is not None else empty
            line = "|".join(values[:nhead]) + "|" + block + "|" + "|".join(values[nhead:]) + "|\n"
            if line.count("|") != separators or "\n" in line[:-1] or "\r" in line:
                clean = render(values, len(values) - 1)[:-1].split("|")  # stray separators become spaces
                line = "|".join(clean[:nhead]) + "|" + block + "|" + "|".join(clean[nhead:]) + "|\n"
            yield line


def _lines(conn: Connection, stmt, width: int) -> Iterator[str]:
    for rows in batches(conn, stmt):
        for row in rows:
            yield render(row, width - 1, trailing=True)


FILES = (
    (formats.PERSONNE_ACTIVITE, formats.PERSONNE_ACTIVITE_COLUMNS, activity_lines),
    (formats.SAVOIR_FAIRE, formats.SAVOIR_FAIRE_COLUMNS, lambda conn: _lines(conn, skill_query(), 13)),
    (formats.DIPLOMES, formats.DIPLOMES_COLUMNS, lambda conn: _lines(conn, diploma_query(), 13)),
)


def write(conn: Connection, archive: AtomicArchive) -> list[MemberInfo]:
    infos = []
    for kind, columns, make_lines in FILES:
        member = archive.member(kind, formats.header_line(columns, trailing=True))
        member.write_lines(make_lines(conn))
        member.close()
        infos.append(member.info)
    return infos
