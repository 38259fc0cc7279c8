"""Exports of the local address book for mail clients and software.

- `vcf`: vCard 4.0 (RFC 6350), one card per contact;
- `vcf3`: vCard 3.0 (RFC 2426), for clients that only read 3.0 (older
  Outlook, some phones and CardDAV clients): no KIND, TYPE parameters of 3.0;
- `outlook-csv`: the CSV layout Outlook exports and imports (UTF-8 with BOM);
- `thunderbird-csv`: the CSV layout of Thunderbird's address book;
- `ldif`: inetOrgPerson entries (RFC 2849), for an LDAP server or a client.

Each reads `contacts.iter_contacts`: local-only contacts, then national ones
(merged with their local contact when linked).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterable
from typing import TextIO

from annuaire.localsync.contacts import Contact, iter_contacts
from annuaire.localsync.db import LocalBase

FORMATS = ("vcf", "vcf3", "outlook-csv", "thunderbird-csv", "ldif")
DEFAULT_BASE_DN = "ou=contacts,o=carnet-local"


# --- vCard 4.0 and 3.0 --------------------------------------------------------


def _vescape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\r\n", "\\n").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 6350 §3.2: lines of at most 75 octets, continuation lines start with a space."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line + "\r\n"
    out: list[str] = []
    current, size = "", 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > (75 if not out else 74):
            out.append(current)
            current, size = "", 0
        current += ch
        size += n
    out.append(current)
    return "\r\n ".join(out) + "\r\n"


# Property names with their parameters, per version: 4.0 (RFC 6350) and 3.0 (RFC 2426 — no PREF=1,
# "pref" and "internet" are TYPE values).
_PARAMS = {
    "4.0": {"email": "EMAIL;TYPE=work;PREF=1", "email2": "EMAIL;TYPE=work", "tel": "TEL;TYPE=work,voice",
            "cell": "TEL;TYPE=cell", "adr": "ADR;TYPE=work"},
    "3.0": {"email": "EMAIL;TYPE=INTERNET,WORK,PREF", "email2": "EMAIL;TYPE=INTERNET,WORK",
            "tel": "TEL;TYPE=WORK,VOICE", "cell": "TEL;TYPE=CELL", "adr": "ADR;TYPE=WORK"},
}


def vcard(c: Contact, version: str = "4.0") -> str:
    """One contact as a vCard of `version` (4.0 or 3.0), folded, CRLF line ends."""
    p = _PARAMS[version]
    lines = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:{_vescape(c.uid)}", f"FN:{_vescape(c.display_name or c.email)}"]
    lines.append(f"N:{_vescape(c.last_name)};{_vescape(c.first_name)};;;")
    is_org = c.bal_type in ("ORG", "APP") or (not c.first_name and not c.last_name and bool(c.organisation))
    if version == "4.0":
        lines.append(f"KIND:{'org' if is_org else 'individual'}")
    elif is_org:
        lines.append("X-ABSHOWAS:COMPANY")  # 3.0 has no KIND: Apple's extension, ignored by other clients
    if c.email:
        lines.append(f"{p['email']}:{c.email}")
    for other in c.other_emails:
        lines.append(f"{p['email2']}:{other}")
    if c.organisation or c.service:
        lines.append(f"ORG:{_vescape(c.organisation)}" + (f";{_vescape(c.service)}" if c.service else ""))
    if c.title:
        lines.append(f"TITLE:{_vescape(c.title)}")
    if c.phone:
        lines.append(f"{p['tel']}:{_vescape(c.phone)}")
    if c.mobile:
        lines.append(f"{p['cell']}:{_vescape(c.mobile)}")
    if c.street or c.city or c.postcode:
        adr = ";".join(_vescape(v) for v in ("", c.extended, c.street, c.city, "", c.postcode, c.country))
        lines.append(f"{p['adr']}:{adr}")
    if c.note:
        lines.append(f"NOTE:{_vescape(c.note)}")
    if c.id_nat:
        lines.append(f"X-ANNUAIRE-IDNAT:{_vescape(c.id_nat)}")
    if c.structure:
        lines.append(f"X-ANNUAIRE-STRUCTURE:{_vescape(c.structure)}")
    if c.bal_type:
        lines.append(f"X-ANNUAIRE-TYPE-BAL:{c.bal_type}")
    lines.append("END:VCARD")
    return "".join(_fold(line) for line in lines)


def write_vcf(contacts: Iterable[Contact], out: TextIO, version: str = "4.0") -> int:
    n = 0
    for c in contacts:
        out.write(vcard(c, version))
        n += 1
    return n


# --- CSV layouts of mail clients --------------------------------------------

OUTLOOK_HEADER = ["First Name", "Middle Name", "Last Name", "Title", "Suffix", "Nickname", "Given Yomi", "Surname Yomi", "E-mail Address", "E-mail 2 Address", "E-mail 3 Address", "Home Phone", "Home Phone 2", "Business Phone", "Business Phone 2", "Mobile Phone", "Car Phone", "Other Phone", "Primary Phone", "Pager", "Business Fax", "Home Fax", "Other Fax", "Company Main Phone", "Callback", "Radio Phone", "Telex", "TTY/TDD Phone", "IMAddress", "Job Title", "Department", "Company", "Office Location", "Manager's Name", "Assistant's Name", "Assistant's Phone", "Company Yomi", "Business Street", "Business City", "Business State", "Business Postal Code", "Business Country/Region", "Home Street", "Home City", "Home State", "Home Postal Code", "Home Country/Region", "Other Street", "Other City", "Other State", "Other Postal Code", "Other Country/Region", "Personal Web Page", "Spouse", "Schools", "Hobby", "Location", "Web Page", "Birthday", "Anniversary", "Notes"]

THUNDERBIRD_HEADER = ["First Name", "Last Name", "Display Name", "Nickname", "Primary Email", "Secondary Email", "Screen Name", "Work Phone", "Home Phone", "Fax Number", "Pager Number", "Mobile Number", "Home Address", "Home Address 2", "Home City", "Home State", "Home ZipCode", "Home Country", "Work Address", "Work Address 2", "Work City", "Work State", "Work ZipCode", "Work Country", "Job Title", "Department", "Organization", "Web Page 1", "Web Page 2", "Birth Year", "Birth Month", "Birth Day", "Custom 1", "Custom 2", "Custom 3", "Custom 4", "Notes"]


def _outlook_row(c: Contact) -> dict[str, str]:
    return {
        "First Name": c.first_name, "Last Name": c.last_name, "E-mail Address": c.email,
        "E-mail 2 Address": c.other_emails[0] if c.other_emails else "", "Business Phone": c.phone,
        "Mobile Phone": c.mobile, "Job Title": c.title, "Department": c.service,
        "Company": c.organisation, "Business Street": ", ".join(v for v in (c.extended, c.street) if v),
        "Business City": c.city, "Business Postal Code": c.postcode, "Business Country/Region": c.country,
        "Notes": _note(c),
    }


def _thunderbird_row(c: Contact) -> dict[str, str]:
    return {
        "First Name": c.first_name, "Last Name": c.last_name, "Display Name": c.display_name,
        "Primary Email": c.email, "Secondary Email": c.other_emails[0] if c.other_emails else "",
        "Work Phone": c.phone, "Mobile Number": c.mobile, "Work Address": c.street,
        "Work Address 2": c.extended, "Work City": c.city, "Work ZipCode": c.postcode,
        "Work Country": c.country, "Job Title": c.title, "Department": c.service,
        "Organization": c.organisation, "Custom 1": c.id_nat, "Custom 2": c.structure, "Notes": _note(c),
    }


def _note(c: Contact) -> str:
    return c.note


def _write_csv(contacts: Iterable[Contact], out: TextIO, header: list[str], row: Callable[[Contact], dict[str, str]]) -> int:
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n", extrasaction="raise")
    writer.writeheader()
    n = 0
    for c in contacts:
        writer.writerow({k: v.replace("\r", " ").replace("\n", " ") for k, v in row(c).items()})
        n += 1
    return n


# --- LDIF --------------------------------------------------------------------


def _dn_escape(value: str) -> str:
    """RFC 4514 escaping of an attribute value in a DN."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _ldif_line(attr: str, value: str) -> str:
    """`attr: value`, base64 (`attr:: …`) when RFC 2849 says the value is not safe."""
    safe = value.isascii() and value[:1] not in (" ", ":", "<") and not value.endswith(" ")
    safe = safe and not any(ch in value for ch in "\r\n\x00")
    line = f"{attr}: {value}" if safe else f"{attr}:: {base64.b64encode(value.encode()).decode()}"
    if len(line) <= 76:
        return line + "\n"
    return "\n ".join(line[i : i + 75] for i in range(0, len(line), 75)) + "\n"


def ldif_entry(c: Contact, base_dn: str) -> str:
    rdn = f"mail={_dn_escape(c.email)}" if c.email else f"uid=local-{c.local_id}"
    cn = c.display_name or c.email
    attrs: list[tuple[str, str]] = [
        ("objectClass", "top"), ("objectClass", "person"), ("objectClass", "organizationalPerson"),
        ("objectClass", "inetOrgPerson"), ("cn", cn), ("sn", c.last_name or cn),
    ]
    if not c.email:
        attrs.append(("uid", f"local-{c.local_id}"))
    optional = [
        ("givenName", c.first_name), ("displayName", c.display_name), ("mail", c.email),
        *[("mail", e) for e in c.other_emails], ("o", c.organisation), ("ou", c.service), ("title", c.title),
        ("telephoneNumber", c.phone), ("mobile", c.mobile), ("street", c.street), ("postalCode", c.postcode),
        ("l", c.city), ("postalAddress", "$".join(v.replace("$", " ") for v in c.postal_lines())),
        ("description", c.note),
    ]
    attrs.extend((a, v) for a, v in optional if v)
    return _ldif_line("dn", f"{rdn},{base_dn}") + "".join(_ldif_line(a, v) for a, v in attrs) + "\n"


def write_ldif(contacts: Iterable[Contact], out: TextIO, base_dn: str = DEFAULT_BASE_DN) -> int:
    out.write("version: 1\n")  # RFC 2849: the first record follows directly
    n = 0
    for c in contacts:
        out.write(ldif_entry(c, base_dn))
        n += 1
    return n


def export(base: LocalBase, fmt: str, out: TextIO, base_dn: str = DEFAULT_BASE_DN) -> int:
    """Write the whole address book to `out` in `fmt`; returns the number of contacts."""
    contacts = iter_contacts(base.conn)
    if fmt == "vcf":
        return write_vcf(contacts, out)
    if fmt == "vcf3":
        return write_vcf(contacts, out, "3.0")
    if fmt == "outlook-csv":
        return _write_csv(contacts, out, OUTLOOK_HEADER, _outlook_row)
    if fmt == "thunderbird-csv":
        return _write_csv(contacts, out, THUNDERBIRD_HEADER, _thunderbird_row)
    if fmt == "ldif":
        return write_ldif(contacts, out, base_dn)
    raise ValueError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")


def encoding_of(fmt: str) -> str:
    """Outlook needs the BOM to read UTF-8 CSV; the others are plain UTF-8."""
    return "utf-8-sig" if fmt == "outlook-csv" else "utf-8"


__all__ = ["FORMATS", "encoding_of", "export", "io", "ldif_entry", "vcard"]
