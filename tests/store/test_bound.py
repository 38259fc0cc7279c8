"""annuaire.store.bound builds the comparisons SQLAlchemy's operators build: same SQL, same cache keys."""

from __future__ import annotations

import operator

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from annuaire.store import bound
from annuaire.store.prefix import starts_with
from annuaire.store.schema import person


def _sql(condition, dialect) -> str:
    return str(select(person.c.id).where(condition).compile(dialect=dialect))


@pytest.mark.parametrize("built, operated", [
    (bound.eq, operator.eq), (bound.ge, operator.ge), (bound.lt, operator.lt),
])
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_same_sql_and_cache_key_as_the_operator(built, operated, dialect) -> None:
    column = person.c.last_name_key
    ours, theirs = built(column, "dup"), operated(column, "dup")
    assert _sql(ours, dialect) == _sql(theirs, dialect)
    assert ours._generate_cache_key().key == theirs._generate_cache_key().key
    assert [b.effective_value for b in ours._generate_cache_key().bindparams] == ["dup"]


def test_starts_with_binds_the_prefix_and_its_bound() -> None:
    condition = starts_with(person.c.last_name_key, "dup")
    compiled = select(person.c.id).where(condition).compile(dialect=sqlite.dialect())
    assert "person.last_name_key >= ? AND person.last_name_key < ?" in str(compiled)
    assert sorted(compiled.params.values()) == ["dup", "dup\x7f"]


def test_an_expression_on_the_left_is_grouped() -> None:
    """(what SQLAlchemy's operators do: `(id + 0) >= ?` keeps its parentheses where needed)"""
    expr = person.c.id + 0
    assert _sql(bound.ge(expr, 5), sqlite.dialect()) == _sql(expr >= 5, sqlite.dialect())
