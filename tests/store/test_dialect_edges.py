"""Only `annuaire.store` tests which engine it runs on: every other module asks the store
a question (`store.dialect`, `Store.in_process`, `contains.fts_tables`, …).

The check reads the package's syntax trees: a comparison with "sqlite" or "postgresql",
`X.dialect.name` / `X.dialect.paramstyle`, `Store.is_sqlite` / `is_postgresql`, or an
import from `sqlalchemy.dialects` outside annuaire/store fails it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select

import annuaire
from annuaire.store import dialect
from annuaire.store.engine import create_store_engine
from annuaire.store.prefix import starts_with
from annuaire.store.schema import domain, person

PACKAGE = Path(annuaire.__file__).parent
ENGINE_NAMES = {"sqlite", "postgresql"}
STORE_PROPERTIES = {"is_sqlite", "is_postgresql"}



def _edges(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in ENGINE_NAMES for o in operands):
                found.append((node.lineno, "compares with an engine's name"))
        elif isinstance(node, ast.Attribute):
            if node.attr in STORE_PROPERTIES:
                found.append((node.lineno, f".{node.attr}"))
            elif node.attr in ("name", "paramstyle") and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "dialect":
                found.append((node.lineno, f".dialect.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy.dialects"):
            found.append((node.lineno, f"imports {node.module}"))
    return found


def test_no_module_outside_the_store_tests_the_engine() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/"):
            continue
        for line, what in _edges(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            offenders.append(f"annuaire/{relative}:{line}: {what}")
    assert not offenders, "ask annuaire.store instead (store/dialect.py):\n" + "\n".join(offenders)


def test_the_check_sees_each_kind_of_test() -> None:
    source = (
        "from sqlalchemy.dialects.sqlite import insert\n"
        "a = conn.dialect.name == 'sqlite'\n"
        "b = store.is_postgresql\n"
        "c = conn.dialect.paramstyle\n"
        "d = 'postgresql' != name\n"
    )
    assert sorted(line for line, _ in _edges(ast.parse(source))) == [1, 2, 2, 3, 4, 5]


# --- the helpers, on both engines ----------------------------------------------------


def test_starts_with_is_a_range_of_the_index(store) -> None:  # type: ignore[no-untyped-def]
    condition = starts_with(person.c.last_name_key, "dup")
    sql = str(condition.compile(store.engine, compile_kwargs={"literal_binds": True}))
    assert ">= 'dup'" in sql and "< 'dup\x7f'" in sql


def test_row_lock_and_lock_rows(store) -> None:  # type: ignore[no-untyped-def]
    postgresql = store.engine.dialect.name == "postgresql"
    with store.write() as conn:
        conn.execute(dialect.insert_ignore(conn, domain, ["name"]), [{"name": "a.fr", "version": 0, "created_at": "x"}])
        conn.execute(dialect.insert_ignore(conn, domain, ["name"]), [{"name": "a.fr", "version": 5, "created_at": "y"}])
        assert dialect.row_lock(conn) == (" FOR UPDATE" if postgresql else "")
        dialect.lock_rows(conn, select(domain.c.name))
        assert conn.execute(select(domain.c.version).where(domain.c.name == "a.fr")).scalar_one() == 0


def test_transaction_settings_run_on_both_engines(store) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        dialect.relaxed_commit(conn)
        dialect.tune_short_queries(conn)
        with dialect.index_scans(conn):
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        if store.engine.dialect.name == "postgresql":
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
            assert conn.exec_driver_sql("SHOW enable_seqscan").scalar() == "on"
            assert conn.exec_driver_sql("SHOW jit").scalar() == "off"


@pytest.mark.parametrize("url", ["sqlite://"])
def test_name_of_every_kind_of_bind(url: str) -> None:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        assert {dialect.name(engine), dialect.name(conn), dialect.name("sqlite")} == {"sqlite"}
        assert dialect.unindexed(conn, "structure_id") == "+structure_id"
        assert dialect.steers_indexes(conn)
