"""Keeping the address book free of duplicates: merges and suspicions.

A local contact is MERGED with a national one when they share the address,
or else the national id and the structure (a local contact recorded with an
old address of a professional who has a new box at the same place). Address
matches are decided first, then id matches; each side is merged at most once.

Suspected duplicates are reported, never merged: same normalised name
(`search_key`) and same structure (same id, or same organisation name when a
local contact has no id), but different addresses.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 20


@dataclass
class LinkChanges:
    merged: list[dict[str, object]] = field(default_factory=list)  # new links
    unmerged: list[dict[str, object]] = field(default_factory=list)  # links whose national side left
    kept: int = 0


def normalise_id_nat(value: str) -> str:
    """An RPPS (11 digits) or ADELI (9 digits) given without its type digit gets it."""
    value = value.strip()
    if value.isdigit() and len(value) == 11:
        return "8" + value
    if value.isdigit() and len(value) == 9:
        return "0" + value
    return value


def compute_links(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """local_id -> (national address, reason) for every local contact that merges."""
    links: dict[int, tuple[str, str]] = {}
    taken: set[str] = set()
    locals_ = conn.execute("SELECT id, address, id_nat, structure FROM local_contact ORDER BY id").fetchall()
    for local_id, address, _, _ in locals_:
        known = address and address not in taken
        if known and conn.execute("SELECT 1 FROM national WHERE address = ?", (address,)).fetchone():
            links[local_id] = (address, "same address")
            taken.add(address)
    for local_id, _, id_nat, structure in locals_:
        if local_id in links or not id_nat or not structure:
            continue
        rows = conn.execute(
            "SELECT address FROM national WHERE id_nat = ? AND (structure = ? OR structure_id = ?) ORDER BY address",
            (id_nat, structure, structure),
        ).fetchall()
        for (candidate,) in rows:
            if candidate not in taken:
                links[local_id] = (candidate, "same national id and structure")
                taken.add(candidate)
                break
    return links


def relink(conn: sqlite3.Connection) -> LinkChanges:
    """Bring the `link` table to `compute_links` (inside the caller's transaction)."""
    wanted = compute_links(conn)
    current = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT local_id, address, reason FROM link")}
    changes = LinkChanges()
    stale = [lid for lid, link in current.items() if wanted.get(lid) != link]
    conn.executemany("DELETE FROM link WHERE local_id = ?", [(lid,) for lid in stale])
    for lid in stale:
        if lid not in wanted:
            changes.unmerged.append({"local_id": lid, "address": current[lid][0]})
    fresh = [(lid, addr, reason) for lid, (addr, reason) in wanted.items() if current.get(lid) != (addr, reason)]
    conn.executemany("INSERT INTO link (local_id, address, reason) VALUES (?, ?, ?)", fresh)
    names = dict(conn.execute("SELECT id, coalesce(display_name, trim(coalesce(first_name,'') || ' ' || coalesce(last_name,''))) FROM local_contact"))
    for lid, addr, reason in fresh:
        changes.merged.append({"local_id": lid, "local_name": names.get(lid), "address": addr, "reason": reason})
    changes.kept = len(wanted) - len(fresh)
    return changes


def suspected_duplicates(
    conn: sqlite3.Connection, national: bool = True, touched: set[str] | None = None
) -> dict[str, Any]:
    """Pairs with the same normalised name and structure but different addresses.

    `local`: pairs involving a local contact; `national_groups`: national
    names with several addresses at one structure (when `national`), among the
    names a sync run added or changed (`touched`), or all of them.
    """
    pairs: list[dict[str, object]] = []
    linked = dict(conn.execute("SELECT local_id, address FROM link"))
    locals_ = conn.execute(
        "SELECT id, address, cn_key, structure, org_key, display_name, first_name, last_name FROM local_contact "
        "WHERE cn_key IS NOT NULL AND cn_key <> '' ORDER BY id"
    ).fetchall()
    for lid, address, cn_key, structure, org_key, *_ in locals_:
        own = {address, linked.get(lid)}
        for n_address, n_structure, n_structure_id, n_org_key in conn.execute(
            "SELECT address, structure, structure_id, org_key FROM national WHERE cn_key = ?", (cn_key,)
        ):
            if n_address in own:
                continue
            same_place = (structure and structure in (n_structure, n_structure_id)) or (
                not structure and org_key and org_key == n_org_key
            )
            if same_place:
                pairs.append({"local_id": lid, "local_address": address, "national_address": n_address, "name_key": cn_key})
    by_key: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for lid, address, cn_key, structure, org_key, *_ in locals_:
        by_key.setdefault((cn_key, structure or org_key or ""), []).append((lid, address))
    for (cn_key, place), members in by_key.items():
        if not place:
            continue
        for i, (lid_a, addr_a) in enumerate(members):
            for lid_b, addr_b in members[i + 1 :]:
                if addr_a != addr_b:
                    pairs.append({"local_id": lid_a, "local_address": addr_a, "other_local_id": lid_b,
                                  "other_local_address": addr_b, "name_key": cn_key})
    if not national:
        return {"local": pairs}
    groups = _national_groups(conn, touched)
    return {
        "local": pairs,
        "national_groups": len(groups),
        "national_examples": [
            {"name_key": k, "structure": s, "addresses": sorted(a.split(" "))} for k, s, a in groups[:EXAMPLES]
        ],
    }


_GROUPS = (
    "SELECT cn_key, structure, group_concat(address, ' ') FROM national "
    "WHERE bal_type IN ('PER', 'CAB') AND cn_key <> '' AND structure <> '' {where} "
    "GROUP BY cn_key, structure HAVING count(*) > 1"
)
FULL_SCAN = 150_000  # touched names beyond which one scan of the index is cheaper than lookups


def _national_groups(conn: sqlite3.Connection, touched: set[str] | None) -> list[tuple[str, str, str]]:
    """National names with several addresses at one structure (among `touched` names when given)."""
    if touched is None or len(touched) > FULL_SCAN:
        return conn.execute(_GROUPS.format(where="")).fetchall()
    keys = sorted(k for k in touched if k)
    out: list[tuple[str, str, str]] = []
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        out.extend(conn.execute(_GROUPS.format(where=f"AND cn_key IN ({', '.join('?' * len(chunk))})"), chunk))
    return sorted(out)
