"""What the operator API tells an operator about one of its domains beyond the list itself.

Why here and not in api.py: these views are computed from the store alone, by
the directory's own rules (the one visibility rule of `store.visibility`, the
quality report of `annuaire quality`), so the API only authenticates and
answers; the command line and the API can never disagree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, true

from annuaire.config import Settings
from annuaire.errors import NotFound
from annuaire.mailboxes.quality import has_issues, quality_report
from annuaire.store import Store
from annuaire.store.schema import mailbox
from annuaire.store.visibility import REASONS, reasons, state_columns


def visibility(store: Store, name: str) -> dict[str, Any]:
    """Every active box of the domain: visible to the public or not, and why (reason codes and
    their French/English messages). One query, so the answer is one consistent state."""
    query = (
        select(mailbox.c.address, *state_columns())
        .where(mailbox.c.domain == name, mailbox.c.active == true())
        .order_by(mailbox.c.address)
    )
    boxes = []
    with store.read() as conn:
        for row in conn.execute(query):
            why = reasons(row)
            boxes.append({"address": row.address, "type": row.type, "visible": not why, "reasons": why,
                          "messages": [REASONS[r].fr for r in why], "messages_en": [REASONS[r].en for r in why]})
    shown = sum(1 for b in boxes if b["visible"])
    return {"domain": name, "visible": shown, "hidden": len(boxes) - shown, "mailboxes": boxes}


def quality(store: Store, settings: Settings, operator_name: str, name: str) -> dict[str, Any]:
    """The domain's entry of `annuaire quality --json --operator NAME`, plus `issues` (what the
    table of `annuaire quality` shows without --all)."""
    entries = quality_report(store, settings, operator_name=operator_name, domain_name=name)
    if not entries:  # detached from the operator since its ownership was checked
        raise NotFound(f"domain {name} no longer belongs to operator {operator_name!r}")
    return {**entries[0], "issues": has_issues(entries[0])}
