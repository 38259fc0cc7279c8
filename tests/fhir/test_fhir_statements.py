"""annuaire.fhir.statements: a statement shape compiled once answers like SQLAlchemy
for every later statement of that shape, whatever its values (on both engines)."""

from __future__ import annotations

from typing import Any

from fhir_server import Api
from sqlalchemy import BigInteger, and_, bindparam, func, or_, select, true

from annuaire.fhir import statements
from annuaire.fhir.tables import fhir_resource as f
from annuaire.store.prefix import starts_with
from annuaire.store.schema import person
from annuaire.store.select import mark


def _expected(conn: Any, stmt: Any, values: dict | None = None) -> list[tuple]:
    return [tuple(r) for r in conn.execute(stmt, values or {})]


def test_same_shape_other_values(api: Api) -> None:
    with api.store.read() as conn:
        answers = []
        for prefix in ("testd", "dupont", "pageura", "zzz"):  # one shape, four values
            stmt = select(person.c.id, person.c.last_name).where(starts_with(person.c.last_name_key, prefix)).order_by(person.c.id)
            got = statements.rows(conn, stmt)
            assert got == _expected(conn, stmt)
            answers.append(got)
        assert answers[0] and answers[2] and not answers[3] and answers[0] != answers[1]


def test_parts_and_run_time_values(api: Api) -> None:
    """A statement around a part (a lookup) with values bound at run time, as `_candidates` builds them."""
    memo: dict[int, Any] = {}
    with api.store.read() as conn:
        for prefix, lo, hi, limit in (("pageur", 0, 10**12, 5), ("pageur", 0, 10**12, 500), ("test", 0, 1, 10),
                                      ("dupontel", 0, 10**12, 3)):
            branch = select(person.c.id).where(starts_with(person.c.last_name_key, prefix))

            def build(branch: Any = branch) -> Any:
                cid = list(branch.subquery("c").c)[0]
                lower, upper = bindparam("lo", type_=BigInteger), bindparam("hi", type_=BigInteger)
                return select(cid).where(and_(cid + 0 >= lower, cid + 0 <= upper)).order_by(cid + 0).limit(
                    bindparam("limit", type_=BigInteger))

            values = {"lo": lo, "hi": hi, "limit": limit}
            got = statements.run(conn, "test candidates", (branch,), build, values, memo=memo)
            assert got == _expected(conn, build(), values)
            assert len(got) <= limit
        # and it ran on the driver's cursor, not through SQLAlchemy
        shapes = [v for k, v in statements._SHAPES.items() if k[:2] == (mark(conn), "test candidates")]
        assert shapes and all(v is not None for v in shapes)


def test_lists_of_ids_and_expanded_values(api: Api) -> None:
    """`rid_in()` takes the ids given at run time; an `IN (list)` (expanded by SQLAlchemy when executed,
    so run by it) gives the same rows as well."""
    with api.store.read() as conn:
        every = [r[0] for r in conn.execute(select(f.c.rid).where(f.c.kind == "P").order_by(f.c.rid))]
        for ids in (every[:3], every[2:40], [], [10**15]):
            stmt = select(f.c.rid).where((f.c.kind == "P") & (f.c.active == true()) & statements.rid_in()).order_by(f.c.rid)
            got = statements.rows(conn, stmt, ids)
            plain = select(f.c.rid).where((f.c.kind == "P") & (f.c.active == true()) & f.c.rid.in_(ids or [-1]))
            assert got == _expected(conn, plain.order_by(f.c.rid))
        for names in (["TESTDUPONT", "MARTIN"], ["LE GALL"]):
            stmt = select(person.c.id).where(or_(person.c.last_name.in_(names), person.c.id < 0)).order_by(person.c.id)
            assert statements.rows(conn, stmt) == _expected(conn, stmt)
            assert len(statements.rows(conn, stmt)) == len(names)


def test_constants_without_values(api: Api) -> None:
    with api.store.read() as conn:
        stmt = select(func.count()).select_from(select(person.c.id).where(person.c.last_name_key.like("%ont%")).subquery())
        assert statements.rows(conn, stmt) == _expected(conn, stmt)
        assert statements.rows(conn, stmt)[0][0] >= 2  # TESTDUPONT, DUPONTEL


def test_a_search_reads_one_snapshot(api: Api) -> None:
    """The driver's cursor bypasses SQLAlchemy's autobegin: the first statement begins the
    transaction, so that every statement of a search (bounds, candidates, page) reads one snapshot."""
    with api.store.read() as conn:
        assert not conn.in_transaction()
        statements.rows(conn, select(person.c.id).order_by(person.c.id).limit(1))
        assert conn.in_transaction()
