"""The address book as users see it: national and local contacts, merged pairs once.

A national contact merged with a local one shows the national value of each
field, and the local value where the national file has nothing (the local
address is kept as a second address when it differs). Every view of the
local address book (exports, the one-account LDAP endpoint) reads it here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import fields as dc_fields

from annuaire.localsync.db import LOCAL_FIELDS, NATIONAL_FIELDS
from annuaire.store.keys import search_key

PERSONAL_TYPES = ("PER", "CAB")

# A few AFNOR street type codes (NL4TYPEVOIE) spelt out for mail clients.
STREET_TYPES = {
    "R": "Rue", "AV": "Avenue", "BD": "Boulevard", "PL": "Place", "CHE": "Chemin", "RTE": "Route",
    "ALL": "Allée", "IMP": "Impasse", "QUA": "Quai", "QU": "Quai", "SQ": "Square", "CRS": "Cours",
    "FG": "Faubourg", "PAS": "Passage", "LOT": "Lotissement", "RES": "Résidence", "HAM": "Hameau",
    "ZA": "Zone artisanale", "ZI": "Zone industrielle", "PRO": "Promenade", "SEN": "Sentier",
    "VOI": "Voie", "ESP": "Esplanade", "CITE": "Cité", "LD": "Lieu-dit", "QUAI": "Quai",
}


@dataclass
class Contact:
    """One entry of the address book, whatever its origin."""

    origin: str  # national | local | merged
    email: str = ""
    other_emails: list[str] = field(default_factory=list)
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    organisation: str = ""
    service: str = ""
    title: str = ""
    phone: str = ""
    mobile: str = ""
    street: str = ""
    extended: str = ""  # additional address lines (AFNOR L2, L3, L5)
    postcode: str = ""
    city: str = ""
    country: str = ""
    departement: str = ""
    note: str = ""
    id_nat: str = ""
    structure: str = ""
    bal_type: str = ""
    profession: str = ""
    local_id: int | None = None

    @property
    def uid(self) -> str:
        return f"mailto:{self.email}" if self.email else f"local:{self.local_id}"

    def postal_lines(self) -> list[str]:
        lines = [self.extended, self.street, " ".join(v for v in (self.postcode, self.city) if v), self.country]
        return [line for line in lines if line]


def national_cn(bal_type: str, first: str, last: str, service: str, org: str) -> str:
    """The common name of a national entry: `Prénom NOM`, or the service / structure of a box."""
    if bal_type in PERSONAL_TYPES and (first or last):
        return " ".join(v for v in (first, last) if v)
    if service and org:
        return f"{service} - {org}"
    return service or org or ""


_F = {name: i for i, name in enumerate(NATIONAL_FIELDS)}
_TYPE, _FIRST, _LAST, _SERVICE, _ORG = _F["bal_type"], _F["first_name"], _F["last_name"], _F["service"], _F["org_name"]
_ST_TYPE, _ST_ID = _F["structure_type"], _F["structure_id"]


def national_keys(values: list[str]) -> tuple[str, str, str, str, str]:
    """(structure, cn_key, last_name_key, first_name_key, org_key) of a national line.

    Hot path of a first sync (one call per line): keys of the parts are cached
    by search_key, and the key of `Prénom NOM` is the keys of its parts joined.
    """
    first_key, last_key = search_key(values[_FIRST]), search_key(values[_LAST])
    org_key = search_key(values[_ORG])
    if values[_TYPE] in PERSONAL_TYPES and (first_key or last_key):
        cn_key = f"{first_key} {last_key}".strip()
    else:
        cn_key = search_key(national_cn(values[_TYPE], "", "", values[_SERVICE], values[_ORG]))
    structure = values[_ST_TYPE] + values[_ST_ID] if values[_ST_ID] else ""
    return (structure, cn_key, last_key, first_key, org_key)


def street_line(number: str, repetition: str, kind: str, name: str) -> str:
    kind = STREET_TYPES.get(kind.upper(), kind) if kind else ""
    return " ".join(v for v in (number, repetition, kind, name) if v)


def city_of(l6: str, postcode: str) -> str:
    """AFNOR line 6 without its leading postcode: `99031 EXEMPLEVILLE CEDEX 1` -> `EXEMPLEVILLE CEDEX 1`."""
    head, _, rest = l6.partition(" ")
    return rest if head and (head == postcode or head.isdigit()) else l6


def from_national(row: sqlite3.Row | dict) -> Contact:
    g = row.__getitem__
    bal_type = g("bal_type") or ""
    first, last = g("first_name") or "", g("last_name") or ""
    service, org = g("service") or "", g("org_name") or ""
    title = " - ".join(v for v in (g("profession_label"), g("skill_label")) if v)
    return Contact(
        origin="national",
        email=g("address"),
        first_name=first if bal_type in PERSONAL_TYPES else "",
        last_name=last if bal_type in PERSONAL_TYPES else "",
        display_name=national_cn(bal_type, first, last, service, org),
        organisation=org,
        service=service,
        title=title,
        street=street_line(g("street_number") or "", g("street_repetition") or "", g("street_type") or "", g("street_name") or ""),
        extended=", ".join(v for v in (g("l2"), g("l3"), g("l5")) if v),
        postcode=g("postcode") or "",
        city=city_of(g("l6") or "", g("postcode") or ""),
        country=g("country") or "",
        departement=g("departement") or "",
        id_nat=g("id_nat") or "",
        structure=(g("structure_type") or "") + (g("structure_id") or ""),
        bal_type=bal_type,
        profession=g("profession_code") or "",
    )


def from_local(row: sqlite3.Row | dict) -> Contact:
    g = row.__getitem__
    first, last = g("first_name") or "", g("last_name") or ""
    return Contact(
        origin="local",
        email=g("address") or "",
        first_name=first,
        last_name=last,
        display_name=g("display_name") or " ".join(v for v in (first, last) if v) or g("organisation") or g("address") or "",
        organisation=g("organisation") or "",
        service=g("service") or "",
        title=g("title") or "",
        phone=g("phone") or "",
        mobile=g("mobile") or "",
        street=g("street") or "",
        postcode=g("postcode") or "",
        city=g("city") or "",
        country=g("country") or "",
        note=g("note") or "",
        id_nat=g("id_nat") or "",
        structure=g("structure") or "",
        local_id=g("id"),
    )


def merge(national: Contact, local: Contact) -> Contact:
    """National values first; local ones where the national file has nothing."""
    merged = Contact(origin="merged", local_id=local.local_id)
    for f in dc_fields(Contact):
        if f.name in ("origin", "local_id", "other_emails"):
            continue
        setattr(merged, f.name, getattr(national, f.name) or getattr(local, f.name))
    if local.email and local.email != national.email:
        merged.other_emails = [local.email]
    return merged


_NATIONAL_SELECT = f"SELECT {', '.join('n.' + c for c in NATIONAL_FIELDS)}, l.local_id FROM national n LEFT JOIN link l ON l.address = n.address"
_LOCAL_SELECT = f"SELECT id, {', '.join(LOCAL_FIELDS)} FROM local_contact"


def _local_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Contact]:
    out: dict[int, Contact] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = f"{_LOCAL_SELECT} WHERE id IN ({','.join('?' * len(chunk))})"
        for row in _rows(conn, q, chunk):
            out[row["id"]] = from_local(row)
    return out


def _rows(conn: sqlite3.Connection, sql: str, params: list | tuple = ()) -> Iterator[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=False))


def iter_contacts(conn: sqlite3.Connection, where: str = "", params: list | tuple = ()) -> Iterator[Contact]:
    """Every contact once: local-only contacts, then national (merged) ones, by name."""
    linked = {row[0] for row in conn.execute("SELECT local_id FROM link")}
    for row in _rows(conn, f"{_LOCAL_SELECT} ORDER BY cn_key, id"):
        if row["id"] not in linked:
            yield from_local(row)
    yield from national_contacts(conn, where, params)


def national_contacts(conn: sqlite3.Connection, where: str = "", params: list | tuple = ()) -> Iterator[Contact]:
    """National contacts (merged with their local contact when linked), in name order."""
    batch: list[dict] = []
    sql = f"{_NATIONAL_SELECT} {where} ORDER BY n.cn_key, n.address"
    for row in _rows(conn, sql, params):
        batch.append(row)
        if len(batch) >= 2000:
            yield from _merge_batch(conn, batch)
            batch = []
    yield from _merge_batch(conn, batch)


def _merge_batch(conn: sqlite3.Connection, batch: list[dict]) -> Iterator[Contact]:
    locals_ = _local_by_id(conn, [r["local_id"] for r in batch if r["local_id"] is not None])
    for row in batch:
        contact = from_national(row)
        local = locals_.get(row["local_id"]) if row["local_id"] is not None else None
        yield merge(contact, local) if local else contact
