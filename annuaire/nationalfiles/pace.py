"""How long each step of an import takes, roughly: the weights behind its overall time left.

Seconds per MB of the file a step works on, measured on the reference machine (2 cores,
SQLite, 300,000 professionals: a first import 98 s, the next day's 17 s). Only their
proportions matter: the time left is the pace so far applied to the share of the weight
left (annuaire.progress.Overall).
"""

from __future__ import annotations

from collections.abc import Iterable

from annuaire import formats
from annuaire.nationalfiles.sources import Source

FIRST_READ = 0.48  # a referential file read into an empty store (its persons written meanwhile)
FIRST_BUILD = 0.125  # per MB of the whole referential: the other records written once it is read
COMPARE = 0.07  # a next day's referential file compared with the fingerprints of the last one
MSSANTE_READ = 0.084  # an MSSanté file read and checked
DOMAINS = {True: 0.45, False: 0.09}  # per MB of the MSSanté file: its domains compared and written (first or not)


def _mb(source: Source) -> float:
    return source.size / 1e6


def referential_read(source: Source, first: bool) -> float:
    return _mb(source) * (FIRST_READ if first else COMPARE)


def referential_built(sources: Iterable[Source]) -> float:
    return sum(_mb(s) for s in sources) * FIRST_BUILD


def mssante_read(source: Source) -> float:
    return _mb(source) * MSSANTE_READ


def domains(source: Source, first: bool) -> float:
    return _mb(source) * DOMAINS[first]


def whole(sources: list[Source], first: bool, built: bool) -> float:
    """The weight of importing `sources` (`first`: into an empty store; `built`: by the helper
    process of a large first import, whose records are written after the reading)."""
    referential = [s for s in sources if s.kind != formats.MSSANTE]
    mssante = [s for s in sources if s.kind == formats.MSSANTE]
    read = [s for s in referential if s.kind == formats.PERSONNE_ACTIVITE] if built else referential  # (the helper reads the rest)
    return (sum(referential_read(s, first) for s in read)
            + (referential_built(referential) if built else 0.0)
            + sum(mssante_read(s) + domains(s, first) for s in mssante))
