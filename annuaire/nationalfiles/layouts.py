"""The headers each kind of national file may have, checked by column name.

Columns are found by header name, never by position (the layouts changed over
the years): a header is accepted when it holds every column of one known
layout of its kind, in any order, with or without a trailing `|`.
"""

from __future__ import annotations

from dataclasses import dataclass

from annuaire import formats
from annuaire.errors import ImportFileError

KNOWN_LAYOUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    formats.PERSONNE_ACTIVITE: (formats.PERSONNE_ACTIVITE_COLUMNS, formats.PERSONNE_ACTIVITE_COLUMNS_OLD),
    formats.SAVOIR_FAIRE: (formats.SAVOIR_FAIRE_COLUMNS,),
    formats.DIPLOMES: (formats.DIPLOMES_COLUMNS,),
    formats.MSSANTE: (formats.MSSANTE_COLUMNS,),
}


@dataclass(frozen=True)
class Header:
    """A checked header line: its column names, and whether every line ends with `|`."""

    names: tuple[str, ...]
    trailing: bool


def parse_header(text: str, kind: str, label: str) -> Header:
    """The header of a `kind` file (its first line, decoded, line end removed);
    ImportFileError naming `label` and line 1 when it is not a known layout."""
    text = text.lstrip("\ufeff")
    if not text:
        raise ImportFileError(label, "no header line (empty file or empty first line)", 1)
    names = text.split(formats.SEPARATOR)
    trailing = names[-1] == ""
    if trailing:
        names.pop()
    header = tuple(n.strip() for n in names)
    layouts = KNOWN_LAYOUTS[kind]
    if not any(set(layout) <= set(header) for layout in layouts):
        missing = [c for c in layouts[-1] if c not in header]
        raise ImportFileError(
            label, f"header is not a known {kind} layout (missing columns: {', '.join(missing[:5])})", 1
        )
    return Header(header, trailing)
