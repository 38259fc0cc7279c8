"""Counts of what the store holds, for `annuaire stats`."""

from __future__ import annotations

from sqlalchemy import case, func, select

from annuaire.store import Store
from annuaire.store.schema import activity, mailbox, person, structure


def collect(store: Store) -> dict:
    """Active/inactive counts per entity, per profession and per mailbox type."""
    out: dict = {}
    with store.read() as conn:
        for name, table in (("persons", person), ("activities", activity), ("structures", structure), ("mailboxes", mailbox)):
            active, total = conn.execute(
                select(func.sum(case((table.c.active, 1), else_=0)), func.count()).select_from(table)
            ).one()
            out[name] = int(active or 0)
            out[f"{name}_inactive"] = int(total or 0) - int(active or 0)
        out["professions"] = {
            f"{code} {label}": n
            for code, label, n in conn.execute(
                select(person.c.profession_code, func.max(person.c.profession_label), func.count())
                .where(person.c.active)
                .group_by(person.c.profession_code)
                .order_by(func.count().desc())
            )
        }
        out["mailbox_types"] = dict(conn.execute(  # (.all(): a Result has keys(), dict() would read it as a mapping)
            select(mailbox.c.type, func.count()).where(mailbox.c.active).group_by(mailbox.c.type).order_by(mailbox.c.type)
        ).all())
        out["liste_rouge"] = conn.execute(
            select(func.count()).select_from(mailbox).where(mailbox.c.active, mailbox.c.liste_rouge)
        ).scalar()
        out["domains"] = conn.execute(select(func.count(func.distinct(mailbox.c.domain))).where(mailbox.c.active)).scalar()
    return out
