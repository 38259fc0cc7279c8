"""The prefix condition, written once for every SQL search (web, FHIR, the store)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_

from annuaire.store import bound
from annuaire.store.keys import prefix_upper_bound


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, as a range both engines read from the column's b-tree
    index (key columns are C-collated on PostgreSQL; see `prefix_upper_bound`), where
    `LIKE 'x%'` depends on each engine's collation and LIKE settings."""
    if isinstance(prefix, str) and isinstance(column, ColumnElement):  # (the frequent case, built directly)
        return and_(bound.ge(column, prefix), bound.lt(column, prefix_upper_bound(prefix)))
    return and_(column >= prefix, column < prefix_upper_bound(prefix))
