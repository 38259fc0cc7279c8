"""The quality report of published mailboxes, per domain (`annuaire quality`).

What the national good practices ask operators to keep clean: boxes the public
does not see and why (`hidden`, with the reason codes of the directory's one
visibility rule, `store.visibility`: holder inactive or unknown, structure
closed or unknown, liste rouge), boxes of professionals who left (inactive or
unknown holder, or no current activity in the attached structure), boxes named
against the naming rules, several PER boxes for one holder, boxes in liste
rouge, and domains not published for a while. Uses the same checks as the
publication rules (`rules.looks_like_name`, `rules.person_like`) and the same
bulk lookups.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from annuaire.config import Settings
from annuaire.mailboxes import bulk_reads
from annuaire.mailboxes.model import PERSONAL_TYPES, STRUCTURE_TYPES
from annuaire.mailboxes.operators import get_operator
from annuaire.mailboxes.rules import looks_like_name, person_like
from annuaire.store import Store
from annuaire.store.clock import from_stored, to_stored, utc_now
from annuaire.store.schema import domain, mailbox, operator
from annuaire.store.visibility import hidden_boxes


def quality_report(store: Store, settings: Settings, *, operator_name: str | None = None,
                   domain_name: str | None = None) -> list[dict[str, Any]]:
    """One entry per domain (of the operator, or every domain; only `domain_name` when given:
    the API's per-domain report), sorted by name."""
    narrowed = operator_name is not None or domain_name is not None
    stale_before = to_stored(from_stored(utc_now()) - timedelta(days=settings.stale_days))
    with store.read() as conn:
        dom_query = select(domain.c.name, domain.c.last_published, operator.c.name).outerjoin(
            operator, operator.c.id == domain.c.operator_id
        )
        if operator_name is not None:
            op = get_operator(conn, operator_name)
            dom_query = dom_query.where(domain.c.operator_id == op.id)
        if domain_name is not None:
            dom_query = dom_query.where(domain.c.name == domain_name)
        domains = {row[0]: {"domain": row[0], "operator": row[2], "last_published": row[1]} for row in conn.execute(dom_query)}
        boxes_query = select(
            mailbox.c.address, mailbox.c.domain, mailbox.c.type, mailbox.c.holder, mailbox.c.structure_idnat,
            mailbox.c.liste_rouge,
        ).where(mailbox.c.active)
        if narrowed:
            boxes_query = boxes_query.where(mailbox.c.domain.in_(list(domains) or [""]))
        boxes = conn.execute(boxes_query).all()
        people = bulk_reads.persons(conn, {b.holder for b in boxes if b.holder})
        _, by_idnat = bulk_reads.structures(conn, (), {b.structure_idnat for b in boxes if b.structure_idnat})
        sites = bulk_reads.active_activities(conn, {p.id for p in people.values()})
        org_names = {b.address: person_like(b.address.rpartition("@")[0]) for b in boxes if b.type in STRUCTURE_TYPES}
        known_names = bulk_reads.person_name_keys(conn, {pair[1] for pair in org_names.values() if pair})
        hidden = list(hidden_boxes(conn, domains=list(domains) if narrowed else None))

    report: dict[str, dict[str, Any]] = {}
    per_holder: dict[tuple[str, str], list[str]] = defaultdict(list)
    for b in boxes:
        entry = report.setdefault(b.domain, _empty(domains.get(b.domain, {"domain": b.domain})))
        entry["mailboxes"] += 1
        if b.liste_rouge:
            entry["liste_rouge"].append(b.address)
        if b.type in PERSONAL_TYPES:
            person = people.get(b.holder or "")
            site = by_idnat.get(b.structure_idnat or "")
            if person is None or not person.active:
                entry["departed"].append({"address": b.address, "holder": b.holder,
                                          "reason": "unknown holder" if person is None else "inactive holder"})
            elif site is not None and site.id not in sites[person.id]:
                entry["departed"].append({"address": b.address, "holder": b.holder,
                                          "reason": f"no current activity in {b.structure_idnat}"})
            if b.type == "PER":
                per_holder[(b.domain, b.holder or "")].append(b.address)
                if person is not None and not looks_like_name(b.address.rpartition("@")[0], person.last_name):
                    entry["naming"].append({"address": b.address, "code": "NAMING_PER_UNRELATED"})
        elif org_names.get(b.address) in known_names:
            entry["naming"].append({"address": b.address, "code": "NAMING_ORG_LIKE_PERSON"})
    for h in hidden:
        entry = report.setdefault(h.domain, _empty(domains.get(h.domain, {"domain": h.domain})))
        entry["hidden"].append(h.as_dict())
    for (dom, holder), addresses in per_holder.items():
        if len(addresses) > 1:
            report[dom]["holder_duplicates"].append({"holder": holder, "addresses": sorted(addresses)})
    for name, info in domains.items():
        report.setdefault(name, _empty(info))
    for entry in report.values():
        last = entry["last_published"]
        entry["stale"] = last is None or last < stale_before
    return [report[name] for name in sorted(report)]


def _empty(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "domain": info["domain"], "operator": info.get("operator"), "last_published": info.get("last_published"),
        "mailboxes": 0, "hidden": [], "departed": [], "naming": [], "holder_duplicates": [], "liste_rouge": [],
        "stale": False,
    }


def has_issues(entry: dict[str, Any]) -> bool:
    """Something the operator should act on (a liste rouge box alone is the operator's own choice)."""
    acting = [h for h in entry["hidden"] if h["reasons"] != ["LISTE_ROUGE"]]
    return bool(acting or entry["departed"] or entry["naming"] or entry["holder_duplicates"] or entry["stale"])
