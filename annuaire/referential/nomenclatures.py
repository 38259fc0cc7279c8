"""The code tables (TRE_*) shipped with the package, and their copy in the store."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

FOLDER = Path(__file__).resolve().parent.parent / "nomenclatures"


@lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, str]]:
    """{table name: {code: label}} for every CSV of the package (e.g. 'TRE_G15-ProfessionSante')."""
    result: dict[str, dict[str, str]] = {}
    for path in sorted(FOLDER.glob("*.csv")):
        if path.stem == "departements":
            continue
        with path.open(encoding="utf-8", newline="") as f:
            result[path.stem] = {row["code"]: row["label"] for row in csv.DictReader(f, delimiter=";")}
    return result


def label(table: str, code: str) -> str:
    return tables().get(table, {}).get(code, "")


@lru_cache(maxsize=1)
def departements() -> dict[str, str]:
    """{code: name} of the 101 départements."""
    with (FOLDER / "departements.csv").open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["departement"] for row in csv.DictReader(f, delimiter=";")}


def ensure_loaded(conn: Connection) -> None:
    """Copy the shipped tables into the store the first time."""
    from sqlalchemy import func, select  # here: the tables alone (local-sync) start without SQLAlchemy

    from annuaire.store.schema import nomenclature

    if conn.execute(select(func.count()).select_from(nomenclature)).scalar():
        return
    with (FOLDER / "TRE_G15-ProfessionSante.csv").open(encoding="utf-8") as f:
        statuses = {row["code"]: row.get("status") for row in csv.DictReader(f, delimiter=";")}
    rows = [
        {"tre": tre, "code": code, "label": text, "status": statuses.get(code) if tre.startswith("TRE_G15") else None}
        for tre, codes in tables().items()
        for code, text in codes.items()
    ]
    conn.execute(nomenclature.insert(), rows)
