"""SQL building blocks of the search page: steering SQLite's index choice.

Prefix ranges are `annuaire.store.prefix.starts_with`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, bindparam
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from annuaire.store.dialect import steers_indexes


def bare(col: Any) -> Any:
    return col


class Columns:
    """Column references for one query, with SQLite's index use steered.

    On SQLite `+column` keeps the planner off that column's index: the path is
    chosen by annuaire.web.plan from counts, and SQLite without statistics
    would otherwise prefer any equality index, however unselective.
    PostgreSQL has statistics and gets the bare columns.
    """

    def __init__(self, conn: Connection) -> None:
        self.steer = steers_indexes(conn)

    def __call__(self, col: Any) -> Any:
        if not self.steer:
            return col
        return UnaryExpression(col, operator=custom_op("+"), type_=col.type)


def placeholder(name: str) -> Any:
    """A text value given when a statement compiled once runs (`annuaire.store.select.prepared`),
    where the code building it takes a str (`starts_with`, `city_condition`)."""
    return bindparam(name, type_=String)
