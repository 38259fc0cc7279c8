"""Contacts entered by the establishment: by hand, or from a CSV / vCard file.

These are the rows the sync never touches. Each addition re-merges local and
national contacts (same address, or same national id + structure). An import
is all or nothing: every record is validated before one transaction writes
them; a record whose address is already a local contact is skipped, so
importing the same file twice adds nothing. Every contact has a mail address:
a record without one is refused with its line (or card), never added without
it. CSV headers of the mail clients are recognised by `csv_layouts`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from annuaire.errors import InvalidInput
from annuaire.localsync import dedup
from annuaire.localsync.csv_layouts import map_header
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
    if not out["address"]:
        # A contact without its address is of no use to a mail client: a column left unread, not a contact.
        raise InvalidInput(f"{where}: no mail address; every contact needs one")
    address = out["address"].lower().removeprefix("mailto:")
    if not _EMAIL.match(address):
        raise InvalidInput(f"{where}: {out['address']!r} is not a mail address (expected name@domain.tld)")
    out["address"] = address
    if out["id_nat"]:
        out["id_nat"] = dedup.normalise_id_nat(out["id_nat"])
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
            exists = conn.execute("SELECT 1 FROM local_contact WHERE address = ?", (c["address"],)).fetchone()
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

def read_csv(path: Path) -> list[dict[str, str | None]]:
    """Contacts of a CSV file (a mail client's export or a generic layout); InvalidInput names the line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise InvalidInput(f"{path}: empty file (no header line)")
    cmap = map_header(header, str(path))
    contacts = []
    while True:
        line_no = reader.line_num + 1  # where the record starts (a quoted field may span lines)
        row = next(reader, None)
        if row is None:
            break
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}, line {line_no}"
        if len(row) != len(header):
            raise InvalidInput(f"{where}: {len(row)} fields where the header has {len(header)}")
        if not row[cmap.columns["address"]].strip():
            raise InvalidInput(
                f"{where}: no e-mail address in column \"{cmap.column_name('address')}\" "
                f"({cmap.layout} layout); every contact needs one: fill it in or remove the line"
            )
        values: dict[str, str | None] = {f: row[i] for f, i in cmap.columns.items()}
        contacts.append(clean_contact(values, where))
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
        values = _card_values(card)
        name = values.get("display_name")
        contacts.append(clean_contact(values, f"{path}, card {n}" + (f" ({name})" if name else "")))
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
