"""The search plan's choice between intersecting two sets from their indexes and probing each row."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from annuaire.store.schema import activity, skill
from annuaire.web import plan


@pytest.mark.parametrize(("driver", "other", "intersected"), [
    (10_000, 40_000, True),  # a savoir-faire within a city: both read from their indexes
    (1_000, 40_000, False),  # a rare one in a big city: its few people are probed one by one
    (60_000, 150_000, False),  # beyond INTERSECT_MAX: never read whole
])
def test_a_second_set_is_read_only_when_not_much_larger_than_the_driver(store, driver, other, intersected) -> None:  # type: ignore[no-untyped-def]
    skills = plan.Candidate("savoir_faire", select(skill.c.person_id), known=driver, index_only=True)
    places = plan.Candidate("place", select(activity.c.person_id), known=other, index_only=True)
    with store.read() as conn:
        chosen = plan.choose(conn, [skills, places], 2_000_000, 1, 20, walk=False)
    assert chosen.path == "drive" and chosen.driver is skills
    assert (chosen.ids is not skills.ids) == intersected
    # the ids kept in the city's set are of the city: its condition is not checked again on each row
    assert chosen.implied == (("savoir_faire", "place") if intersected else ("savoir_faire",))
