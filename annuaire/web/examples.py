"""The search hint's examples, drawn from the data being served (and so finding something).

"Un nom (« Camille Martin »)…" told nothing true when nobody of that name was in
the store. The examples are read from the store once an hour per process: a
professional holding a published personal box (name, profession, the city and
département of one of their places, the box's domain), and a structure
publishing an organisational box (its name, and one of its services with its
city). Each query is a few rows read in id order. An empty store has none, and
the hint then gives no example.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, select, true

from annuaire.store.keys import search_key
from annuaire.store.schema import activity, mailbox, person, structure
from annuaire.web import display
from annuaire.web.search import published
from annuaire.web.words import LEGAL_FORMS, STOP_WORDS

TTL = 3600.0
LOOKED_AT = 50  # rows read to choose each example


@dataclass(frozen=True)
class Examples:
    name: str = ""  # "Isabelle Lamoleix"
    trade: str = ""  # "infirmier"
    city: str = ""  # "Jalmont"
    departement: str = ""  # "33"
    structure: str = ""  # "centre hospitalier de jalmont"
    service: str = ""  # "cardiologie jalmont"
    domain: str = ""  # "@medecin.mssante.fr"

    @property
    def any(self) -> bool:
        return bool(self.name or self.structure)


_lock = threading.Lock()
_cache: dict[str, tuple[float, Examples]] = {}


def get(conn: Connection) -> Examples:
    """The examples of this store (cached for TTL seconds)."""
    key = conn.engine.url.render_as_string()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < TTL:
            return hit[1]
    value = draw(conn)
    with _lock:
        _cache[key] = (now, value)
    return value


def clear() -> None:
    with _lock:
        _cache.clear()


def draw(conn: Connection) -> Examples:
    values: dict[str, str] = {}
    holders = conn.execute(
        select(mailbox.c.holder, mailbox.c.domain)
        .where(published(("PER",)))
        .order_by(mailbox.c.id)
        .limit(LOOKED_AT)
    ).all()
    for holder, domain in holders:
        row = conn.execute(
            select(person.c.id, person.c.first_name, person.c.last_name, person.c.profession_label)
            .where(person.c.id_nat == holder, person.c.active == true())
        ).first()
        if row is None or not row.first_name or not row.last_name:
            continue
        place = conn.execute(
            select(structure.c.commune_label, structure.c.dept_code)
            .select_from(activity.join(structure, structure.c.id == activity.c.structure_id))
            .where(activity.c.person_id == row.id, activity.c.active == true(), structure.c.active == true(),
                   structure.c.commune_label.is_not(None))
            .limit(1)
        ).first()
        if place is None:
            continue
        values.update(
            name=f"{display.first_name(row.first_name)} {row.last_name.title()}",
            trade=(row.profession_label or "").lower(),
            city=place.commune_label or "",
            departement=place.dept_code or "",
            domain="@" + domain,
        )
        break
    owners = conn.execute(
        select(mailbox.c.structure_idnat, mailbox.c.service)
        .where(published(("ORG",)), mailbox.c.service.is_not(None))
        .order_by(mailbox.c.id)
        .limit(LOOKED_AT)
    ).all()
    best: tuple[int, str, str] | None = None
    for idnat, service in owners:
        site = conn.execute(
            select(structure.c.name, structure.c.commune_label)
            .where(structure.c.idnat == idnat, structure.c.active == true())
            .limit(1)
        ).first()
        if site is None or not site.name or not site.commune_label:
            continue
        name = search_key(site.name)
        significant = [w for w in name.split() if w not in STOP_WORDS and w not in LEGAL_FORMS]
        if not significant or not search_key(service):
            continue
        candidate = (len(name), name, f"{search_key(service).split()[0]} {search_key(site.commune_label)}")
        if best is None or candidate < best:
            best = candidate
    if best is not None:
        values.update(structure=best[1], service=best[2])
    return Examples(**values)
