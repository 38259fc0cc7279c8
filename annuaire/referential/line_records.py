"""The records the lines of a file give, and what their reading counts: keys, orphans,
unknown codes. Shared by the importer and the first import's helper process
(`firstload`), so that both build the same records.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

from annuaire import formats
from annuaire.referential import nomenclatures, records

# The files of lines attached to a person: kind -> store table (entity).
CHILD_KINDS = {formats.SAVOIR_FAIRE: "skill", formats.DIPLOMES: "diploma"}
CHILDREN = {"skill": records.SKILL, "diploma": records.DIPLOMA}  # entity -> its mapping


class CodeCheck:
    """Unknown codes of one file's coded columns.

    Lines repeat a few thousand combinations of codes: each distinct
    combination is counted with one dict lookup per line and checked
    against the nomenclatures once, at the end.
    """

    def __init__(self, checked: list[tuple[int, str, set[str]]]) -> None:
        self.checked = checked
        self.pick = itemgetter(*(i for i, _, _ in checked)) if checked else _no_codes
        self.combos: dict[object, list[int]] = {}  # combination -> [count, first line]

    def __call__(self, fields: list[str], line_no: int) -> None:
        combo = self.pick(fields)
        seen = self.combos.get(combo)
        if seen is None:
            self.combos[combo] = [1, line_no]
        else:
            seen[0] += 1

    def add_unknown(self, found: dict[tuple[str, str], list[int]]) -> None:
        """Add this file's unknown codes to `found`: (column, code) -> [count, first line]."""
        for combo, (count, first) in self.combos.items():
            codes = combo if isinstance(combo, tuple) else (combo,)  # itemgetter of one column: a scalar
            for (_, column, known), code in zip(self.checked, codes, strict=False):
                if code and code not in known:
                    seen = found.setdefault((column, code), [0, first])
                    seen[0] += count
                    seen[1] = min(seen[1], first)


def _no_codes(fields: list[str]) -> tuple:
    return ()


def code_check(index: dict[str, int]) -> CodeCheck:
    """The unknown-code counter of a file with this header."""
    known = _known_codes()
    return CodeCheck([
        (index[col], col, known[tre]) for col, tre in records.CODED_COLUMNS.items() if col in index and tre in known
    ])


@lru_cache(maxsize=1)
def _known_codes() -> dict[str, set[str]]:
    return {table: set(codes) for table, codes in nomenclatures.tables().items()}


@dataclass
class Orphans:
    """Lines of a savoir-faire or diploma file whose person is not in Personne_activite."""

    count: int = 0
    first: int = 0  # line number of the first one

    def add(self, count: int, first: int) -> None:
        self.count += count
        self.first = min(self.first or first, first)


def child_lines(rows: Iterable[tuple[int, list[str]]], index: dict[str, int], entity: str,
                persons: Container[str], check_codes: CodeCheck, orphans: Orphans) -> Iterator[tuple[str, str, tuple]]:
    """(national id, key, values) of the lines of a savoir-faire or diploma file whose person
    is in `persons`; the others are counted in `orphans`."""
    i_idnat = index[records.ID_NAT]
    pick = records.picker(index, CHILDREN[entity])
    keys: set[str] = set()
    for line_no, fields in rows:
        id_nat = fields[i_idnat]
        if id_nat not in persons:
            orphans.add(1, line_no)
            continue
        check_codes(fields, line_no)
        values = pick(fields)
        codes = values[4::2] if entity == "skill" else values[::2]  # (what tells the person's lines apart)
        yield id_nat, unique_key(f"{id_nat}|{'|'.join(codes)}|", keys), values


def activity_key(id_nat: str, tech_id: str, taken: set[str]) -> str:
    """An activity's key: "id_nat|tech_id|n", n counting the person's lines at that structure."""
    return unique_key(f"{id_nat}|{tech_id}|", taken)


def structure_of(activity_key: str) -> str:
    """The structure's technical id in an activity's key ("" for none)."""
    return activity_key.split("|", 2)[1]


def unique_key(base: str, taken: set[str]) -> str:
    """`base` + the first free occurrence number (identical lines stay distinct records), taken."""
    n = 0
    key = base + "0"
    while key in taken:
        n += 1
        key = base + str(n)
    taken.add(key)
    return key
