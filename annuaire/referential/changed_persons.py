"""Which persons' lines changed since the last import, told by their fingerprints.

`compare` reads one file against the fingerprints stored by the last import
(`prints`) and keeps the lines of the persons to diff. It needs no database,
so the savoir-faire and diploma files of a daily refresh are compared by a
helper process (`Ahead`) while this one diffs Personne_activite: two cores
instead of one (about 5 s of a national refresh).

Whatever goes wrong in the helper (a bad file, a crash), its answer for a
file is None and the importer reads that file itself, in full: the error, if
any, is then raised there, naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from annuaire.nationalfiles.encoding import Undecodable
from annuaire.nationalfiles.lines import Lines
from annuaire.nationalfiles.sources import Source
from annuaire.referential import helper_process
from annuaire.referential.groups import Groups
from annuaire.referential.helper_process import Helper
from annuaire.referential.prints import Packed, Stored, pack
from annuaire.referential.selected import selected_lines

AHEAD_MIN_SIZE = 50 << 20  # smaller files are compared in process (starting the helper costs ~0.2 s)


@dataclass
class Compared:
    """The outcome of a comparison: what the importer diffs, and what it stores next."""

    groups: Groups  # this file's fingerprints, and the persons skipped (unchanged)
    selected: list[tuple[int, str]]  # (line number, text) of the lines of the persons to diff
    gone: set[bytes]  # persons of the last imported file that this one no longer has
    packed: Packed | None = None  # the fingerprints to store, packed (by the helper) instead of groups.prints


def compare(lines: Lines, stored: Stored, also: Collection[bytes] = frozenset()) -> Compared | None:
    """The lines of the persons whose lines changed (or are in `also`); None when the file
    must be read in full: another header, most of it changed, or not UTF-8 like the last."""
    if lines.read_header() != stored.header:
        return None
    groups = Groups(stored.prints, also)
    selected = []
    try:
        for item in selected_lines(lines, groups):
            selected.append(item)
            if groups.selected_bytes > lines.source.size // 4:  # most of the file changed
                return None
    except Undecodable:
        return None
    gone = stored.prints.keys() - groups.prints.keys()
    groups.previous, groups.also = None, frozenset()  # not needed any more (nor sent back)
    return Compared(groups, selected, gone)


def orphans(stored: Stored, before: set[bytes]) -> set[bytes]:
    """Persons of a savoir-faire or diploma file who were not in the last Personne_activite
    (`before`): their lines were skipped then, and must be read whatever their fingerprints."""
    return stored.prints.keys() - before


def compare_child(lines: Lines, packed: Packed, before: set[bytes]) -> Compared | None:
    """`compare` for a savoir-faire or diploma file."""
    stored = packed.unpack()
    return compare(lines, stored, orphans(stored, before))


class Ahead:
    """Savoir-faire and diploma files compared by a helper process, started at once."""

    def __init__(self, jobs: list[tuple[Source, Packed]], before: Packed) -> None:
        self.kinds = [source.kind for source, _ in jobs]
        self._helper = Helper("annuaire.referential.changed_persons", "serve", (jobs, before))

    def result(self, kind: str) -> Compared | None:
        """The comparison of the file of `kind` (waits for the helper); None: read it in full."""
        try:
            results = self._helper.answer()
        except Exception:  # noqa: BLE001 - a dead or broken helper: the files are read in process
            return None
        return results.get(kind)  # type: ignore[attr-defined]  # the helper's answer is a dict by kind

    def close(self) -> None:
        self._helper.close()


def serve() -> None:
    helper_process.serve(_compare_children)


def _compare_children(job: tuple[list[tuple[Source, Packed]], Packed]) -> Iterator[dict[str, Compared | None]]:
    """The helper's work: each file's comparison, None where one failed."""
    jobs, before = job
    before_ids = before.ids_set()
    results: dict[str, Compared | None] = {}
    for source, packed in jobs:
        try:
            lines = Lines(source)
            compared = results[source.kind] = compare_child(lines, packed, before_ids)
            if compared is not None:  # sent packed: cheaper both to send and to store
                compared.packed = pack(lines.header_line, compared.groups.prints)
                compared.groups.prints = {}
        except Exception:  # noqa: BLE001 - the importer reads the file itself and names the error
            results[source.kind] = None
    yield results
