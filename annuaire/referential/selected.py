"""Reading only the persons whose lines changed: `selected_lines(lines, groups)`.

The raw blocks of a national file (`nationalfiles.lines`) are grouped by
person and fingerprinted (`groups.py`); only the lines of the persons selected
are decoded. Unchanged lines are not decoded at all: they are byte for byte
lines of the last imported file, which was read as UTF-8 (fingerprints are
kept for UTF-8 files only), so they need no encoding check either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from annuaire.nationalfiles.encoding import Undecodable
from annuaire.nationalfiles.lines import Lines
from annuaire.referential import records
from annuaire.referential.groups import Groups, ShortLine


def selected_lines(lines: Lines, groups: Groups) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines of the persons `groups` selects, in file order;
    `groups` keeps the fingerprints of every person's lines.

    When `groups` compares with the last import's fingerprints, a selected line that is
    not UTF-8 raises `Undecodable`: the file must then be read, and decoded, in full.
    Without fingerprints every line is selected, and decoded and checked once (its
    block is not): the encoding rule of a full read applies."""
    lines.read_header()
    groups.column = lines.column_index()[records.ID_NAT]
    decoded: Callable[[bytes, int], str]
    if groups.previous is None:  # every line selected: each decoded and checked as it comes
        decoded = lines.checked_text
    elif lines.encoding != "utf-8":  # (the header's block was not UTF-8)
        raise Undecodable
    else:
        decoded = lambda raw, _: lines.text(raw)
    try:
        for raws, numbers in lines.blocks(raw=True, decode=False):
            for line_no, raw in groups.select(raws, numbers):
                yield line_no, decoded(raw, line_no)
        for line_no, raw in groups.select([], [], last=True):
            yield line_no, decoded(raw, line_no)
    except ShortLine as short:
        lines.fields(decoded(short.raw, short.line_no), short.line_no)  # raises, naming the line
        raise
    if groups.deferred:  # persons whose lines are not all together: read again for them
        for raws, numbers in lines.blocks(raw=True, decode=False):
            for line_no, raw in groups.select_deferred(raws, numbers):
                yield line_no, lines.text(raw)
