"""A publication report as people read it in a terminal (`annuaire publish` without --json).

Why a module of its own: the CLI stays thin, and the table is what an
operator looks at first when a publication goes wrong: each finding carries
the line of the operator's own file (header = line 1 in the text layout; the
line where the item starts in a JSON file) and its 1-based item number.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN = 100  # findings listed per table; --json has them all
COUNTS = ("created", "updated", "deleted", "unchanged")


def summary(report: dict[str, Any]) -> Table:
    dry = report.get("dry_run")
    title = "Dry run (nothing applied)" if dry else f"Publication {report.get('publication')}"
    table = Table(title=f"{title} — {report.get('domain')}, version {report.get('version')}")
    for column in (*COUNTS, "rejected", "warnings"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{report.get(k, 0):,}" for k in COUNTS), f"{len(report.get('rejected') or []):,}",
                  f"{len(report.get('warnings') or []):,}")
    return table


def findings(title: str, items: list[dict[str, Any]], style: str) -> Table:
    table = Table(title=title, title_style=style)
    for column in ("line", "item", "address", "code", "message"):
        table.add_column(column, justify="right" if column in ("line", "item") else "left")
    for item in items[:SHOWN]:
        line = item.get("line")
        index = item.get("index")
        table.add_row("" if line is None else str(line), "" if index is None else str(index + 1),
                      item.get("address") or "", item.get("code") or "", item.get("message") or "")
    return table


def print_report(console: Console, report: dict[str, Any]) -> None:
    console.print(summary(report))
    for title, key, style in (("Rejected (not applied)", "rejected", "red"), ("Warnings", "warnings", "yellow")):
        items = report.get(key) or []
        if not items:
            continue
        console.print(findings(title, items, style))
        if len(items) > SHOWN:
            console.print(f"… and {len(items) - SHOWN:,} more (use --json for all)", highlight=False)
