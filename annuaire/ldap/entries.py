"""Mailbox records -> LDAP entries: display values, normalised values, pre-encoded bytes.

A record is a plain dict read from the store (see backend.py for the query)
or built by tests. An entry is the tuple `(norm, blob)`:

- `norm`: one normalised value (or None) per user attribute slot, compared
  by the compiled filters;
- `blob`: the BER encoding of the DN and of every attribute, with a small
  header of offsets, so that answering a search costs slices and joins.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import Any

from annuaire.ldap.ber import SEQUENCE, SET, octets, tlv
from annuaire.ldap.filters import normalise
from annuaire.ldap.schema import MAILBOX_OBJECT_CLASSES, OC_SLOT, USER_ATTRIBUTES
from annuaire.store.keys import search_key
from annuaire.web.display import first_name as written_first_name

Entry = tuple[tuple["str | None", ...], bytes]
Record = dict[str, Any]

NSLOTS = len(USER_ATTRIBUTES)
HEADER = struct.Struct(f"<{NSLOTS + 2}H")
_KINDS = [a.kind for a in USER_ATTRIBUTES]
_NAMES = [a.name for a in USER_ATTRIBUTES]
_OC_TLV = tlv(SEQUENCE, octets("objectClass") + tlv(SET, b"".join(octets(v) for v in MAILBOX_OBJECT_CLASSES)))
_CIVILITY_PREFIX = {"DR": "Dr", "PR": "Pr", "MC": "Dr", "MG": "Dr"}
BOX_NAME_SEPARATOR = " - "  # between the service (or description) and the structure of a box (spec/ldap.md)


def escape_dn_value(value: str) -> str:
    """RFC 4514 escaping of an attribute value inside a DN."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _clean(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())


def box_name(label: str, structure: str) -> str:
    """What a mail client shows for an organisational box: "Cardiologie - CHU DE BEAUVAL".

    The service (or the box's description) says what the box is for, the structure's
    name as the referential writes it says whose it is: either alone is ambiguous in an
    address book ("Accueil" exists in every hospital).
    """
    if not (label and structure):
        return label or structure
    if f" {search_key(structure)} " in f" {search_key(label)} ":  # "Cardiologie - CH DE LYON", a local contact's
        return label
    return f"{label}{BOX_NAME_SEPARATOR}{structure}"


def display_values(rec: Record) -> dict[str, str]:
    """The attribute values shown to mail clients, following the table of spec/ldap.md.

    First names are shown as people write them (`annuaire.web.display.first_name`, the one
    rule of every view: "JEAN-PIERRE" -> "Jean-Pierre"); the store keeps them as received,
    and matching ignores case anyway.
    """
    g = lambda k: _clean(rec.get(k))
    address = g("address").lower()
    kind = g("type").upper()
    first, last = written_first_name(g("first_name")), g("last_name")
    profession, skill = g("profession_label"), g("skill_label")
    structure_name = g("structure_name") or g("structure_sign")
    service, description = g("service"), g("description")
    values: dict[str, str] = {"mail": address, "mssBalType": kind}
    if kind in ("PER", "CAB") and (first or last):
        cn = f"{first} {last.upper()}".strip()
        values["cn"] = cn
        values["sn"] = last or cn
        if first:
            values["givenName"] = first
        title = profession + (f" - {skill}" if profession and skill else skill if skill else "")
        prefix = _CIVILITY_PREFIX.get(g("civilite_exercice_code").upper(), "")
        display = f"{prefix} {cn}".strip()
        if title:
            display += f" ({title})"
            values["title"] = title
        values["displayName"] = display
    else:
        cn = box_name(description or service, structure_name) or address.split("@", 1)[0]
        values["cn"] = cn
        values["sn"] = cn
        values["displayName"] = box_name(service or description, structure_name) or cn  # (spec: service first)
    if structure_name:
        values["o"] = structure_name
    if service:
        values["ou"] = service
    if description:
        values["description"] = description
    street = " ".join(x for x in (g("street_number"), g("street_repetition"), g("street_type_label"),
                                  g("street_name")) if x)
    postcode = g("postcode")
    city = g("commune_label")
    cedex = g("cedex_office")
    last_line = " ".join(x for x in (postcode, cedex or city) if x)
    lines = [x for x in (g("addressee"), g("geo_complement"), street, g("distribution_mention"), last_line) if x]
    if lines:
        values["postalAddress"] = "$".join(x.replace("$", " ") for x in lines)
    if street:
        values["street"] = street
    if postcode:
        values["postalCode"] = postcode
    if city:
        values["l"] = city
    if g("phone"):
        values["telephoneNumber"] = g("phone")
    dept = g("dept_code") or _departement(postcode)
    if dept:
        values["mssDepartement"] = dept
    for attr, key in (("mssIdNatPS", "holder"), ("mssProfessionCode", "profession_code"),
                      ("mssProfession", "profession_label"), ("mssSavoirFaireCode", "skill_code"),
                      ("mssSavoirFaire", "skill_label"), ("mssStructureId", "structure_idnat")):
        if g(key):
            values[attr] = g(key)
    demat = rec.get("dematerialisation")
    if demat is not None:
        values["mssDematerialisation"] = "TRUE" if demat else "FALSE"
    return values


def _departement(postcode: str) -> str:
    if len(postcode) != 5 or not postcode.isdigit():
        return ""
    if postcode.startswith(("97", "98")):
        return postcode[:3]
    if postcode.startswith("20"):
        return ""  # 2A or 2B: not decidable from the postcode
    return postcode[:2]


def mailbox_dn(address: str, suffix: str) -> str:
    return f"mail={escape_dn_value(address)},{suffix}"


_NAME_TLVS = [octets(n) for n in _NAMES]
_SPECIAL_DN = re.compile(r'[,+"\\<>;=\0]|^[# ]| $')


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _attribute_tlv(name_tlv: bytes, value: bytes) -> bytes:
    """SEQUENCE { name, SET { OCTET STRING value } } for one value (values are < 64 KiB)."""
    v = b"\x04" + _len(len(value)) + value
    s = b"\x31" + _len(len(v)) + v
    body = name_tlv + s
    return b"\x30" + _len(len(body)) + body


def make_entry(rec: Record, suffix: str) -> Entry:
    """The (norm, blob) pair of one published mailbox; `suffix` is the mailboxes container DN."""
    values = display_values(rec)
    mail = values["mail"]
    dn = f"mail={mail},{suffix}" if not _SPECIAL_DN.search(mail) else mailbox_dn(mail, suffix)
    norm: list[str | None] = [None] * NSLOTS
    segments = [octets(dn)]
    append = segments.append
    for slot in range(NSLOTS):
        if slot == OC_SLOT:
            append(_OC_TLV)
            continue
        name = _NAMES[slot]
        value = values.get(name)
        if value is None:
            append(b"")
            continue
        norm[slot] = normalise(_KINDS[slot], value.replace("$", " ") if name == "postalAddress" else value)
        append(_attribute_tlv(_NAME_TLVS[slot], value.encode("utf-8")))
    offsets = [HEADER.size]
    total = HEADER.size
    for seg in segments:
        total += len(seg)
        offsets.append(total)
    if total > 0xFFFF:
        raise ValueError(f"entry {mail} is too large to encode")
    return tuple(norm), HEADER.pack(*offsets) + b"".join(segments)


def entry_op(blob: bytes, slots: Iterable[int] | None, extra: bytes = b"") -> bytes:
    """The encoded SearchResultEntry op: all user attributes when `slots` is None."""
    offs = HEADER.unpack_from(blob)
    if slots is None:
        attrs = blob[offs[1]:]
    else:
        attrs = b"".join([blob[offs[s + 1]:offs[s + 2]] for s in slots])
    return tlv(0x64, blob[offs[0]:offs[1]] + tlv(SEQUENCE, attrs + extra))


def _hdr(tag: int, n: int) -> bytes:
    if n < 0x80:
        return bytes((tag, n))
    if n < 0x100:
        return bytes((tag, 0x81, n))
    if n < 0x10000:
        return bytes((tag, 0x82, n >> 8, n & 0xFF))
    return bytes((tag, 0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))


def entry_message(mid_tlv: bytes, blob: bytes, slots: list[int] | None, extra: bytes = b"") -> bytes:
    """The whole LDAPMessage carrying one SearchResultEntry (the hot path: slices and one join)."""
    offs = HEADER.unpack_from(blob)
    dn = blob[offs[0]:offs[1]]
    if slots is None:
        attrs = blob[offs[1]:]
    else:
        attrs = b"".join([blob[offs[s + 1]:offs[s + 2]] for s in slots])
    if extra:
        attrs += extra
    h1 = _hdr(0x30, len(attrs))
    body = len(dn) + len(h1) + len(attrs)
    h2 = _hdr(0x64, body)
    return b"".join((_hdr(0x30, len(mid_tlv) + len(h2) + body), mid_tlv, h2, dn, h1, attrs))


def entry_types_only_op(blob: bytes, slots: Iterable[int] | None, extra_names: Iterable[str] = ()) -> bytes:
    """SearchResultEntry with attribute types and no values (typesOnly)."""
    offs = HEADER.unpack_from(blob)
    chosen = range(NSLOTS) if slots is None else slots
    parts = [tlv(SEQUENCE, octets(_NAMES[s]) + tlv(SET, b"")) for s in chosen if offs[s + 2] > offs[s + 1]]
    parts += [tlv(SEQUENCE, octets(n) + tlv(SET, b"")) for n in extra_names]
    return tlv(0x64, blob[offs[0]:offs[1]] + tlv(SEQUENCE, b"".join(parts)))


def entry_dn(blob: bytes) -> str:
    from annuaire.ldap.ber import read_header

    offs = HEADER.unpack_from(blob)
    _, s, e = read_header(blob, offs[0], offs[1])
    return blob[s:e].decode("utf-8")
