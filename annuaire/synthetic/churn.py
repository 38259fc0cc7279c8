"""Daily churn: the world of day D is day 0 with D days of changes applied in turn.

Each day draws from its own stream Random(f"{seed}:churn:{day}"), so day D+1
is exactly day D plus one more day of changes, whatever machine computes it.
Rates per day (distributions.md, ~12,000 activity changes and ~340 / ~480
mailbox creations / deletions a day at national scale):
- ~0.5 % of activities change: role/genre, liberal <-> salaried in practices,
  moves to another structure of the same kind, or the structure's address;
- ~0.02 % new professionals and ~0.02 % departures (their lines disappear,
  most of their PER boxes too; ~10 % are kept as "left professional" boxes);
- ~0.07 % mailboxes created and ~0.08 % deleted.
"""

from __future__ import annotations

from random import Random

from annuaire.synthetic import pace
from annuaire.synthetic.tables import (
    CDS,
    EHPAD,
    GROUP,
    HOSP,
    IMAGING,
    LAB,
    LIB,
    PHARMA,
    R_REMPL,
    R_SALARIE,
    SAL,
    SOLO,
)
from annuaire.synthetic.world import World

ACTIVITY_CHANGES = 0.005
ARRIVALS = 0.0002
DEPARTURES = 0.0002
BOX_CREATIONS = 0.0007
BOX_DELETIONS = 0.0008
_ORG_KINDS = (HOSP, PHARMA, LAB, EHPAD, CDS, GROUP, IMAGING)


def _count(rng: Random, expected: float) -> int:
    """Randomised rounding, so that even tiny worlds churn a little."""
    n = int(expected)
    return n + (1 if rng.random() < expected - n else 0)


def apply_days(world: World, days: int, progress=None) -> dict[str, int]:
    """Advance the world from its current day to `days`; returns summed counters."""
    totals: dict[str, int] = {}
    if progress and days > world.day:
        progress.start("daily churn", days - world.day, pace.churn(days - world.day, len(world.p_ident)),
                       unit="days")
    while world.day < days:
        world.day += 1
        for key, value in apply_day(world, world.day).items():
            totals[key] = totals.get(key, 0) + value
        if progress:
            progress.advance(1)
    return totals


def apply_day(world: World, day: int) -> dict[str, int]:
    rng = Random(f"{world.seed}:churn:{day}")
    stats = {"departures": 0, "arrivals": 0, "activity_changes": 0, "boxes_created": 0, "boxes_deleted": 0}
    alive = world.p_alive.count(1)
    npersons = len(world.p_ident)
    for _ in range(_count(rng, DEPARTURES * alive)):
        p = _random_alive(rng, world, npersons)
        if p >= 0:
            _depart(world, rng, p)
            stats["departures"] += 1
    boxes = world.boxes
    for _ in range(_count(rng, ARRIVALS * alive)):
        p = world.add_person(rng)
        stats["arrivals"] += 1
        if world.a_struct[world.p_act[p]] >= 0 and rng.random() < boxes.per_probability(p) * 0.3:
            boxes.add_per(rng, p)
            stats["boxes_created"] += 1
    live_activities = len(world.a_person) * alive // max(npersons, 1)
    for _ in range(_count(rng, ACTIVITY_CHANGES * live_activities)):
        a = _random_activity(rng, world)
        if a >= 0 and _change(world, rng, a):
            stats["activity_changes"] += 1
    live_boxes = boxes.alive.count(1)
    for _ in range(_count(rng, BOX_DELETIONS * live_boxes)):
        for _try in range(50):
            b = int(rng.random() * len(boxes.kind))
            if boxes.alive[b]:
                boxes.delete(b)
                stats["boxes_deleted"] += 1
                break
    for _ in range(_count(rng, BOX_CREATIONS * live_boxes)):
        if _create_box(world, rng):
            stats["boxes_created"] += 1
    return stats


def _random_alive(rng: Random, world: World, n: int) -> int:
    for _ in range(100):
        p = int(rng.random() * n)
        if world.p_alive[p]:
            return p
    return -1


def _random_activity(rng: Random, world: World) -> int:
    n = len(world.a_person)
    for _ in range(100):
        a = int(rng.random() * n)
        if world.a_struct[a] >= 0 and world.p_alive[world.a_person[a]]:
            return a
    return -1


def _release(world: World, s: int) -> None:
    nact = world.structures.nact
    nact[s] -= 1
    if nact[s] == 0:
        world.boxes.structure_closed(s)


def _depart(world: World, rng: Random, p: int) -> None:
    world.p_alive[p] = 0
    for a in world.activity_range(p):
        if world.a_struct[a] >= 0:
            _release(world, world.a_struct[a])
    world.boxes.person_left(rng, p)


def _change(world: World, rng: Random, a: int) -> bool:
    st = world.structures
    p = world.a_person[a]
    s = world.a_struct[a]
    kind, d, mode = st.kind[s], st.dept[s], world.a_mode[a]
    pi = world.p_prof[p]
    r = rng.random()
    if r < 0.15 and kind in (GROUP, IMAGING):
        mode = SAL if mode == LIB else LIB
        world.a_mode[a] = mode
        role, genre, section = world.role_for(rng, pi, kind, mode, d)
        world.a_role[a], world.a_genre[a], world.a_section[a] = (R_SALARIE if mode == SAL else role), genre, section
        return True
    if r < 0.55:
        role, genre, section = world.role_for(rng, pi, kind, mode, d)
        if world.a_role[a] == R_REMPL:
            return False  # replacements keep their role; they move instead
        world.a_role[a], world.a_genre[a], world.a_section[a] = role, genre, section
        return True
    if r < 0.92:
        if world.a_role[a] == R_REMPL:
            new = st.replacement_cabinet(rng, d)
        else:
            person = (world.first_name(p), world.last_name(p), "DR" if world.p_civex[p] else "")
            rank = 0
            if kind == SOLO:
                rank = st.solo_rank.get(p, 10) + 1
                st.solo_rank[p] = rank
            new = world.find_structure(rng, p, pi, kind, mode, d, person, rank)
        if new < 0 or new in world.person_structures(p):
            return False  # one line per (person, structure)
        world.a_struct[a] = new
        st.nact[new] += 1
        _release(world, s)
        world.boxes.activity_moved(p, s, new)
        return True
    st.move_address(rng, s)
    return True


def _create_box(world: World, rng: Random) -> bool:
    boxes = world.boxes
    if rng.random() < 0.85:
        for _ in range(50):
            p = _random_alive(rng, world, len(world.p_ident))
            if p >= 0 and world.a_struct[world.p_act[p]] >= 0 and not boxes.has_live_per(p):
                boxes.add_per(rng, p)
                return True
        return False
    st = world.structures
    for _ in range(50):
        if rng.random() < 0.5 and boxes.by_struct:
            b = int(rng.random() * len(boxes.kind))
            s = boxes.struct[b] if boxes.kind[b] else -1
        else:
            s = int(rng.random() * len(st))
        if s >= 0 and st.nact[s] > 0 and st.kind[s] in _ORG_KINDS:
            boxes.add_org(rng, s)
            return True
    return False
