"""Contacts entered by the establishment: by hand, or from a CSV / vCard file.

These are the rows the sync never touches. Each addition re-merges local and
national contacts (same address, or same national id + structure). An import
is all or nothing: every record is validated before one transaction writes
them; a record whose address is already a local contact is skipped, so
importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from annuaire.errors import InvalidInput
from annuaire.localsync import dedup
from annuaire.localsync.db import LOCAL_FIELDS, LOCAL_KEYS, LocalBase
from annuaire.store.clock import utc_now
from annuaire.store.keys import search_key

_EMAIL = re.compile(r"^[^@\s|]+@[^@\s|]+\.[^@\s|]+$")
MAX_FIELD = 500


@dataclass
class ImportReport:
    added: int = 0
    skipped: int = 0  # already present
    merges: list[dict[str, object]] = field(default_factory=list)
    suspected_duplicates: list[dict[str, object]] = field(default_factory=list)  # involving an added contact


def clean_contact(values: dict[str, str | None], where: str) -> dict[str, str | None]:
    """Validate and normalise one local contact; InvalidInput names `where` and the field."""
    unknown = set(values) - set(LOCAL_FIELDS)
    if unknown:
        raise InvalidInput(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    out: dict[str, str | None] = {}
    for name in LOCAL_FIELDS:
        value = (values.get(name) or "").strip()
        if len(value) > MAX_FIELD:
            raise InvalidInput(f"{where}: {name} is longer than {MAX_FIELD} characters")
        if "\x00" in value:
            raise InvalidInput(f"{where}: {name} contains a NUL character")
        out[name] = value or None
    if out["address"]:
        address = out["address"].lower().removeprefix("mailto:")
        if not _EMAIL.match(address):
            raise InvalidInput(f"{where}: {out['address']!r} is not a mail address (expected name@domain.tld)")
        out["address"] = address
    if out["id_nat"]:
        out["id_nat"] = dedup.normalise_id_nat(out["id_nat"])
    if not (out["address"] or out["last_name"] or out["first_name"] or out["display_name"] or out["organisation"]):
        raise InvalidInput(f"{where}: a contact needs at least an address, a name or an organisation")
    return out


def _keys(c: dict[str, str | None]) -> tuple[str, str, str, str]:
    name = " ".join(v for v in (c["first_name"], c["last_name"]) if v) or c["display_name"] or c["organisation"] or ""
    return (search_key(name), search_key(c["last_name"]), search_key(c["first_name"]), search_key(c["organisation"]))


_INSERT = (
    f"INSERT INTO local_contact ({', '.join(LOCAL_FIELDS + LOCAL_KEYS)}, origin, created_at) "
    f"VALUES ({', '.join('?' * (len(LOCAL_FIELDS) + len(LOCAL_KEYS) + 2))})"
)


def add_contacts(base: LocalBase, contacts: list[dict[str, str | None]], origin: str) -> ImportReport:
    """Insert validated contacts in one transaction, skipping those already present."""
    report = ImportReport()
    now = utc_now()
    added: set[int | None] = set()
    with base.write() as conn:
        for c in contacts:
            if c["address"]:
                exists = conn.execute("SELECT 1 FROM local_contact WHERE address = ?", (c["address"],)).fetchone()
            else:
                cn_key, _, _, org_key = _keys(c)
                exists = conn.execute(
                    "SELECT 1 FROM local_contact WHERE address IS NULL AND cn_key = ? AND coalesce(org_key, '') = ?",
                    (cn_key, org_key),
                ).fetchone()
            if exists:
                report.skipped += 1
                continue
            added.add(conn.execute(_INSERT, (*(c[f] for f in LOCAL_FIELDS), *_keys(c), origin, now)).lastrowid)
            report.added += 1
        report.merges = dedup.relink(conn).merged
        pairs = dedup.suspected_duplicates(conn, national=False)["local"]
        report.suspected_duplicates = [
            p for p in pairs if p["local_id"] in added or p.get("other_local_id") in added
        ]
    return report


def add_contact(base: LocalBase, values: dict[str, str | None]) -> ImportReport:
    return add_contacts(base, [clean_contact(values, "contact")], "manual")


# --- reading contact files -------------------------------------------------------

# Header names of the mail clients' CSV layouts (see export.py), per field.
_OUTLOOK = {
    "address": "E-mail Address", "first_name": "First Name", "last_name": "Last Name",
    "organisation": "Company", "service": "Department", "title": "Job Title", "phone": "Business Phone",
    "mobile": "Mobile Phone", "street": "Business Street", "postcode": "Business Postal Code",
    "city": "Business City", "country": "Business Country/Region", "note": "Notes",
}
_THUNDERBIRD = {
    "address": "Primary Email", "first_name": "First Name", "last_name": "Last Name",
    "display_name": "Display Name", "organisation": "Organization", "service": "Department",
    "title": "Job Title", "phone": "Work Phone", "mobile": "Mobile Number", "street": "Work Address",
    "postcode": "Work ZipCode", "city": "Work City", "country": "Work Country", "note": "Notes",
}
_GENERIC_ALIASES = {
    "address": ("address", "email", "e-mail", "mail", "courriel", "adresse bal", "adresse e-mail"),
    "first_name": ("first_name", "prenom", "given name"),
    "last_name": ("last_name", "nom", "surname", "family name"),
    "display_name": ("display_name", "name", "nom complet", "full name"),
    "organisation": ("organisation", "organization", "company", "etablissement", "structure name"),
    "service": ("service", "department"),
    "title": ("title", "fonction", "profession", "job title"),
    "phone": ("phone", "telephone", "tel"),
    "mobile": ("mobile", "portable"),
    "street": ("street", "adresse", "rue"),
    "postcode": ("postcode", "code postal", "postal code", "cp"),
    "city": ("city", "ville", "commune"),
    "country": ("country", "pays"),
    "id_nat": ("id_nat", "rpps", "identification nationale pp", "idnat"),
    "structure": ("structure", "identification structure"),
    "note": ("note", "notes", "commentaire"),
}


def _csv_mapping(header: list[str], path: str) -> dict[str, int]:
    names = [h.strip() for h in header]
    for layout in (_OUTLOOK, _THUNDERBIRD):
        key_column = layout["address"]
        if key_column in names:
            return {f: names.index(h) for f, h in layout.items() if h in names}
    keys = [search_key(h) for h in names]
    mapping: dict[str, int] = {}
    for f, aliases in _GENERIC_ALIASES.items():
        for alias in aliases:
            if search_key(alias) in keys:
                mapping[f] = keys.index(search_key(alias))
                break
    if not mapping:
        raise InvalidInput(
            f"{path}: no known column in the header (expected e.g. email, first_name, last_name, organisation, "
            "or an Outlook / Thunderbird export)"
        )
    return mapping


def read_csv(path: Path) -> list[dict[str, str | None]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    sample = text[:4096]
    delimiter = max(",;\t", key=lambda d: sample.split("\n", 1)[0].count(d))
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise InvalidInput(f"{path}: empty file (no header line)")
    mapping = _csv_mapping(rows[0], str(path))
    contacts = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(rows[0]):
            raise InvalidInput(f"{path}, line {line_no}: {len(row)} fields where the header has {len(rows[0])}")
        values: dict[str, str | None] = {f: row[i] for f, i in mapping.items()}
        contacts.append(clean_contact(values, f"{path}, line {line_no}"))
    return contacts


def read_vcards(path: Path) -> list[dict[str, str | None]]:
    import vobject

    text = path.read_text(encoding="utf-8-sig", errors="strict")
    contacts = []
    try:
        cards = list(vobject.readComponents(text))
    except Exception as exc:
        raise InvalidInput(f"{path}: not a valid vCard file ({exc})") from exc
    for n, card in enumerate(cards, start=1):
        if card.name != "VCARD":
            raise InvalidInput(f"{path}, card {n}: a {card.name} component, not a VCARD")
        contacts.append(clean_contact(_card_values(card), f"{path}, card {n}"))
    return contacts


def _first(card, name: str):
    items = card.contents.get(name.lower())
    return items[0] if items else None


def _card_values(card) -> dict[str, str | None]:
    v: dict[str, str | None] = {}
    if (fn := _first(card, "FN")) is not None:
        v["display_name"] = fn.value
    if (n := _first(card, "N")) is not None and hasattr(n.value, "family"):
        v["last_name"], v["first_name"] = n.value.family or None, n.value.given or None
    if (email := _first(card, "EMAIL")) is not None:
        v["address"] = email.value
    if (org := _first(card, "ORG")) is not None:
        parts = org.value if isinstance(org.value, list) else [org.value]
        v["organisation"] = parts[0] if parts else None
        v["service"] = parts[1] if len(parts) > 1 else None
    if (title := _first(card, "TITLE")) is not None:
        v["title"] = title.value
    for tel in card.contents.get("tel", []):
        types = {t.lower() for t in tel.params.get("TYPE", [])}
        number = str(tel.value).removeprefix("tel:")
        if "cell" in types:
            v.setdefault("mobile", number)
        else:
            v.setdefault("phone", number)
    if (adr := _first(card, "ADR")) is not None and hasattr(adr.value, "street"):
        a = adr.value
        v["street"] = (a.street if isinstance(a.street, str) else " ".join(a.street)) or None
        v["postcode"], v["city"], v["country"] = a.code or None, a.city or None, a.country or None
    if (note := _first(card, "NOTE")) is not None:
        v["note"] = note.value
    if (idnat := _first(card, "X-ANNUAIRE-IDNAT")) is not None:
        v["id_nat"] = idnat.value
    if (structure := _first(card, "X-ANNUAIRE-STRUCTURE")) is not None:
        v["structure"] = structure.value
    return {k: (val if isinstance(val, str) else None) for k, val in v.items()}


def import_file(base: LocalBase, path: Path) -> ImportReport:
    """Import a `.csv` or `.vcf` file of local contacts (all or nothing)."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        contacts, origin = read_csv(path), "csv"
    elif suffix in (".vcf", ".vcard"):
        contacts, origin = read_vcards(path), "vcard"
    else:
        raise InvalidInput(f"{path}: unknown contact file type {suffix!r} (expected .csv or .vcf)")
    return add_contacts(base, contacts, origin)
