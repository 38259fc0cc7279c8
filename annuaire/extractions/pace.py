"""How long each file of an extraction takes, roughly: the weights behind `extract`'s
overall time left.

Each member file's lines are counted first (the queries its writer runs, counted: a second
at national scale) and weighted by a cost per line measured on the reference machine (2
cores, SQLite, 300,000 professionals: 18 s). Only their proportions matter
(annuaire.progress.Overall).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from annuaire import formats
from annuaire.store.schema import activity, diploma, mailbox, skill
from annuaire.store.visibility import visible

SECONDS_PER_100K_LINES = {
    formats.MSSANTE: 4.9,
    formats.PERSONNE_ACTIVITE: 3.0,
    formats.SAVOIR_FAIRE: 1.5,
    formats.DIPLOMES: 0.9,
}
MEMBERS = {
    formats.MSSANTE: (formats.MSSANTE,),
    formats.PS_LIBRE_ACCES: (formats.PERSONNE_ACTIVITE, formats.SAVOIR_FAIRE, formats.DIPLOMES),
}
_COUNTED = {  # what each member file writes a line for
    formats.MSSANTE: (mailbox, visible()),
    formats.PERSONNE_ACTIVITE: (activity, activity.c.active),
    formats.SAVOIR_FAIRE: (skill, skill.c.active),
    formats.DIPLOMES: (diploma, diploma.c.active),
}


def expected_lines(conn: Connection, names: tuple[str, ...]) -> dict[str, int]:
    """The lines each member file of these extractions will hold, by its kind."""
    out = {}
    for name in names:
        for kind in MEMBERS[name]:
            table, where = _COUNTED[kind]
            out[kind] = int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())
    return out


def weight(kind: str, lines: int) -> float:
    return SECONDS_PER_100K_LINES[kind] * lines / 100_000
