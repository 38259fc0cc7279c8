"""Rendering store records into FHIR resources in the national v2 shape.

Pure functions of the rows they are given (no database access): the cache
(`cache.py`) loads the rows, calls these once per version of a record and
stores the bytes. Each function returns a `Rendered`: the document with a
`meta` placeholder (so that a content digest can tell whether the version
must change), the coded values to index and the mailboxes placed in it.

Rules applied here and nowhere else:
- liste rouge mailboxes and the `responsible` field are never rendered (the
  caller does not even pass liste rouge boxes; `responsible` is not read);
- an inactive resource keeps only id, meta, language, its business
  identifiers (and name for an Organization) and `active: false`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from struct import Struct
from typing import Any

import orjson

from annuaire.fhir import codes as cs
from annuaire.fhir import ids
from annuaire.fhir.tables import ORGANIZATION, PRACTITIONER, ROLE
from annuaire.store.keys import search_key

Row = Mapping[str, Any]

# The columns of its records each function reads (the cache reads these and no others;
# `tests/fhir/test_fhir_render_parallel.py` renders from rows holding only them).
PRACTITIONER_COLUMNS = ("id", "id_nat", "id_type", "id_pp", "active", "last_name", "first_name", "civilite_code",
                        "civilite_exercice_code", "category_code", "profession_code")
QUALIFICATION_COLUMNS = ("type_code", "code", "label", "active")  # savoir-faire and diplomas
ROLE_COLUMNS = ("id", "person_id", "active", "genre_code", "mode_code", "role_code", "pharma_section_code",
                "registration_authority")
Token = tuple[str, str, str]  # (search parameter, system, code)
_SIGNED_64 = Struct(">q").unpack  # (as store.digest: a signed 64-bit value fits a BIGINT column)


@dataclass
class Rendered:
    kind: str
    rid: int
    active: bool
    doc: dict[str, Any]
    tokens: list[Token] = field(default_factory=list)
    mailboxes: list[Row] = field(default_factory=list)
    changed_at: str = ""  # stored time of the latest change it is made of (set by the cache)

    _body: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def resource_type(self) -> str:
        return self.doc["resourceType"]

    def body(self) -> bytes:
        """The document with its meta placeholder, serialised once (digest and served bytes)."""
        if self._body is None:
            self._body = orjson.dumps(self.doc)
        return self._body

    def body_digest(self) -> int:
        """Digest of everything but meta: unchanged content keeps its version.

        `digest([text])` of the serialised document, computed on its bytes (orjson writes
        UTF-8: the same bytes `digest` hashes, without decoding and encoding them again)."""
        return _SIGNED_64(blake2b(self.body(), digest_size=8).digest())[0]

    def finish(self, version: int, last_updated: str) -> bytes:
        """The served bytes, with meta filled in.

        The bytes of `orjson.dumps(doc)` with doc["meta"] replaced by `meta`: the body
        already serialised, with the serialised meta put in place of its placeholder
        (`"meta"` is the third key, after resourceType and id), instead of copying and
        serialising the whole document a second time."""
        meta: dict[str, Any] = {}
        trace = self.doc["meta"]
        if trace:
            meta["extension"] = trace
        meta["versionId"] = str(version)
        meta["lastUpdated"] = fhir_instant(last_updated)
        meta["source"] = cs.SOURCE
        meta["profile"] = cs.PROFILES[self.resource_type]
        body = self.body()
        start = body.index(b'"meta":') + 7
        end = start + len(orjson.dumps(trace))
        return body[:start] + orjson.dumps(meta) + body[end:]


def fhir_instant(stored: str) -> str:
    """`2025-04-28T16:19:26.335123Z` -> `2025-04-28T16:19:26.335+00:00` (national form)."""
    return stored[:23] + "+00:00"


def _head(resource_type: str, public_id: str, trace: list | None = None) -> dict[str, Any]:
    # "meta" holds the data-trace extension (or None) until finish() builds it.
    return {"resourceType": resource_type, "id": public_id, "meta": trace, "language": "fr"}


def _coding(system: str, code: str) -> dict[str, str]:
    return {"system": system, "code": code}


def _concept(*pairs: tuple[str, str | None]) -> dict[str, Any]:
    return {"coding": [_coding(s, c) for s, c in pairs if c]}


# Constant parts of documents are built once and shared by them (a document is only
# serialised, never changed once rendered).
_ID_TYPES: dict[str, dict[str, Any]] = {}
_TRACES: dict[str, list[dict[str, Any]]] = {}


def _identifier(type_code: str | None, system: str, value: str) -> dict[str, Any]:
    if not type_code:
        return {"use": "official", "system": system, "value": value}
    kind = _ID_TYPES.get(type_code)
    if kind is None:
        kind = _ID_TYPES[type_code] = {"coding": [_coding(cs.V2_0203, type_code)]}
    return {"use": "official", "type": kind, "system": system, "value": value}


def _trace(system_code: str) -> list[dict[str, Any]]:
    trace = _TRACES.get(system_code)
    if trace is None:
        trace = _TRACES[system_code] = [
            {"url": cs.DATA_TRACE, "extension": [{"url": "systeme-information", "valueCode": system_code}]}]
    return trace


# --- mailboxes ---------------------------------------------------------------


def mailbox_telecom(box: Row, use_work: bool = False) -> dict[str, Any]:
    """One MSSanté mailbox as a telecom entry (never `responsible`, never liste rouge)."""
    meta: list[dict[str, Any]] = [
        {"url": "type", "valueCodeableConcept": {"coding": [_coding(cs.TYPE_BAL, box["type"])]}}
    ]
    if box.get("description"):
        meta.append({"url": "description", "valueString": box["description"]})
    if box.get("service"):
        meta.append({"url": "service", "valueString": box["service"]})
    if box.get("dematerialisation") is not None:
        meta.append({"url": "digitization", "valueBoolean": bool(box["dematerialisation"])})
    entry: dict[str, Any] = {
        "extension": [
            {"url": cs.EMAIL_TYPE, "valueCoding": _coding(cs.TYPE_MESSAGERIE, "MSSANTE")},
            {"url": cs.MAILBOX_METADATA, "extension": meta},
        ],
        "system": "email",
        "value": box["address"],
    }
    if use_work:
        entry["use"] = "work"
    if box.get("rank") is not None:
        entry["rank"] = int(box["rank"])
    return entry


def _sorted_boxes(boxes: Iterable[Row]) -> list[Row]:
    if not boxes:
        return []
    return sorted(boxes, key=lambda b: (b.get("rank") is None, b.get("rank") or 0, b["address"]))


def _authority_tokens(authority: str | None) -> list[Token]:
    return [("data-registration-authority", "", part) for part in (authority or "").split("/") if part]


# --- Practitioner ------------------------------------------------------------

# Qualifications are few (the nomenclatures'): each is built once, with its tokens, and shared.
_QUALIFICATIONS: dict[tuple, tuple[dict[str, Any] | None, tuple[Token, ...]]] = {}
_EXERCISES: dict[tuple, dict[str, Any] | None] = {}
_MEMO = 100_000  # entries kept at most (a store's codes and labels are far fewer)


def _by_type_and_code(row: Row) -> tuple[str, str]:
    return row.get("type_code") or "", row.get("code") or ""


def _qualification(diploma: bool, type_code: str | None, code: str | None,
                   label: str | None) -> tuple[dict[str, Any] | None, tuple[Token, ...]]:
    """A diploma's or savoir-faire's entry of `qualification` (None: nothing to say) and its tokens."""
    key = (diploma, type_code, code, label)
    known = _QUALIFICATIONS.get(key)
    if known is not None:
        return known
    coding = []
    tokens: list[Token] = []
    kind, systems = (cs.DIPLOMA_TYPE, cs.DIPLOMA_SYSTEMS) if diploma else (cs.SKILL_TYPE, cs.SKILL_SYSTEMS)
    system = systems.get(type_code or "")
    if type_code:
        coding.append(_coding(kind, type_code))
        tokens.append(("qualification-code", kind, type_code))
    if code:
        coding.append(_coding(system, code) if system else {"code": code, "display": label or code})
        if diploma:  # (a savoir-faire's code is not searchable)
            tokens.append(("qualification-code", system or "", code))
    if len(_QUALIFICATIONS) >= _MEMO:
        _QUALIFICATIONS.clear()
    known = _QUALIFICATIONS[key] = ({"code": {"coding": coding}} if coding else None, tuple(tokens))
    return known


def _exercise(category: str | None, profession: str | None) -> dict[str, Any] | None:
    key = (category, profession)
    if key not in _EXERCISES:
        if len(_EXERCISES) >= _MEMO:
            _EXERCISES.clear()
        exercise = _concept((cs.CATEGORY, category), (cs.PROFESSION, profession))
        _EXERCISES[key] = {"code": exercise} if exercise["coding"] else None
    return _EXERCISES[key]



def practitioner(
    person: Row,
    skills: Iterable[Row] = (),
    diplomas: Iterable[Row] = (),
    mailboxes: Iterable[Row] = (),
    authorities: Iterable[str | None] = (),
) -> Rendered:
    pid = person["id"]
    doc = _head("Practitioner", ids.practitioner_id(pid))
    identifiers = [_identifier("IDNPS", cs.IDNPS, person["id_nat"])]
    if person["id_type"] == "8":
        identifiers.append(_identifier("RPPS", cs.RPPS, person["id_pp"]))
    doc["identifier"] = identifiers
    if not person["active"]:
        doc["active"] = False
        return Rendered(PRACTITIONER, pid, False, doc)
    doc["active"] = True
    tokens: list[Token] = []
    name: dict[str, Any] = {}
    text = " ".join(p for p in (person.get("last_name"), person.get("first_name")) if p)
    if text:
        name["text"] = text
    if person.get("last_name"):
        name["family"] = person["last_name"]
    if person.get("first_name"):
        name["given"] = [person["first_name"]]
    if person.get("civilite_code"):
        name["prefix"] = [person["civilite_code"]]
    if person.get("civilite_exercice_code"):
        name["suffix"] = [person["civilite_exercice_code"]]
    if name:
        doc["name"] = [name]
    boxes = _sorted_boxes(mailboxes)
    if boxes:
        doc["telecom"] = [mailbox_telecom(b, use_work=True) for b in boxes]
    quals: list[dict[str, Any]] = []
    for d in sorted(diplomas, key=_by_type_and_code):
        if d.get("active", True):
            entry, found = _qualification(True, d.get("type_code"), d.get("code"), d.get("label"))
            if entry:
                quals.append(entry)
            tokens.extend(found)
    exercise = _exercise(person.get("category_code"), person.get("profession_code"))
    if exercise:
        quals.append(exercise)
    if person.get("category_code"):
        tokens.append(("qualification-code", cs.CATEGORY, person["category_code"]))
    for s in sorted(skills, key=_by_type_and_code):
        if s.get("active", True):
            entry, found = _qualification(False, s.get("type_code"), s.get("code"), s.get("label"))
            if entry:
                quals.append(entry)
            tokens.extend(found)
    if quals:
        doc["qualification"] = quals
    for authority in set(authorities):
        tokens.extend(_authority_tokens(authority))
    return Rendered(PRACTITIONER, pid, True, doc, sorted(set(tokens)), boxes)


# --- PractitionerRole --------------------------------------------------------


_ROLE_CODES = ((cs.GENRE, "genre_code"), (cs.MODE, "mode_code"), (cs.FONCTION, "role_code"),
               (cs.SECTION, "pharma_section_code"))


def role(activity: Row, structure_rid: int | None, mailboxes: Iterable[Row] = ()) -> Rendered:
    aid, pid = activity["id"], activity["person_id"]
    doc = _head("PractitionerRole", ids.role_id(pid, aid))
    doc["identifier"] = [_identifier(None, cs.RPPS, str(aid))]
    if not activity["active"]:
        doc["active"] = False
        return Rendered(ROLE, aid, False, doc)
    doc["active"] = True
    doc["practitioner"] = {"reference": f"Practitioner/{ids.practitioner_id(pid)}"}
    if structure_rid is not None:
        doc["organization"] = {"reference": f"Organization/{ids.organization_id(structure_rid)}"}
    tokens: list[Token] = []
    concepts = []
    for system, column in _ROLE_CODES:
        code = activity.get(column)
        if code:
            concepts.append({"coding": [{"system": system, "code": code}]})
            tokens.append(("role", system, code))
    if concepts:
        doc["code"] = concepts
    boxes = _sorted_boxes(mailboxes)
    if boxes:
        doc["telecom"] = [mailbox_telecom(b) for b in boxes]
    tokens.extend(_authority_tokens(activity.get("registration_authority")))
    return Rendered(ROLE, aid, True, doc, sorted(set(tokens)), boxes)


# --- Organization ------------------------------------------------------------


def _org_type(code: str) -> dict[str, Any]:
    return {
        "extension": [{"url": cs.ORG_TYPES, "valueCode": "organizationType"}],
        "coding": [_coding(cs.V2_3307, code)],
    }


def _sector_type(code: str) -> dict[str, Any]:
    return {
        "extension": [{"url": cs.ORG_TYPES, "valueCode": "secteurActiviteRASS"}],
        "coding": [_coding(cs.SECTOR, code)],
    }


def _street_line(s: Row) -> tuple[str, list[dict[str, str]]]:
    parts = []
    for column, adxp in (
        ("street_number", "houseNumber"),
        ("street_repetition", "buildingNumberSuffix"),
        ("street_type_code", "streetNameType"),
        ("street_name", "streetNameBase"),
    ):
        if s.get(column):
            parts.append({"url": cs.ADXP + adxp, "valueString": s[column]})
    text = " ".join(p["valueString"] for p in parts)
    return text, parts


def _address(s: Row) -> dict[str, Any] | None:
    lines: list[str] = []
    details: list[dict[str, Any]] = []
    if s.get("addressee"):
        lines.append(s["addressee"])
        details.append({"extension": [{"url": cs.ADXP + "careOf", "valueString": s["addressee"]}]})
    if s.get("geo_complement"):
        lines.append(s["geo_complement"])
        details.append({"extension": [{"url": cs.ADXP + "additionalLocator", "valueString": s["geo_complement"]}]})
    text, parts = _street_line(s)
    if text:
        lines.append(text)
        details.append({"extension": parts})
    if s.get("distribution_mention"):
        lines.append(s["distribution_mention"])
        details.append({"extension": [{"url": cs.LIEU_DIT, "valueString": s["distribution_mention"]}]})
    address: dict[str, Any] = {}
    if s.get("commune_code"):
        address["extension"] = [{"url": cs.INSEE_CODE, "valueCoding": _coding(cs.COMMUNE, s["commune_code"])}]
    if lines:
        address["line"] = lines
        address["_line"] = details
    city = s.get("cedex_office") or s.get("commune_label")
    if city:
        address["city"] = city
    if s.get("postcode"):
        address["postalCode"] = s["postcode"]
    return address or None


def site(structure: Row, sector_code: str | None, legal_rid: int | None, mailboxes: Iterable[Row] = ()) -> Rendered:
    """A geographic entity (site) from a structure row."""
    sid = structure["id"]
    system = "FINESS" if structure["tech_id"].startswith("F") else "RPPS"
    doc = _head("Organization", ids.organization_id(sid), _trace(system))
    identifiers = []
    if structure.get("idnat"):
        identifiers.append(_identifier("IDNST", cs.IDNST, structure["idnat"]))
    if structure.get("finess"):
        identifiers.append(_identifier("FINEG", cs.FINESS, structure["finess"]))
    if structure.get("siret"):
        identifiers.append(_identifier("SIRET", cs.SIRENE, structure["siret"]))
    if structure.get("siren"):
        identifiers.append(_identifier("SIREN", cs.SIRENE, structure["siren"]))
    identifiers.append(_identifier("INTRN", cs.RPPS, structure["tech_id"]))
    doc["identifier"] = identifiers
    active = bool(structure["active"])
    doc["active"] = active
    if not active:
        if structure.get("name"):
            doc["name"] = structure["name"]
        return Rendered(ORGANIZATION, sid, False, _reorder_inactive_org(doc))
    tokens: list[Token] = []
    types = [_org_type("GEOGRAPHICAL-ENTITY")]
    if sector_code:
        types.append(_sector_type(sector_code))
        tokens.append(("type", cs.SECTOR, sector_code))
    doc["type"] = types
    if structure.get("name"):
        doc["name"] = structure["name"]
    if structure.get("sign"):
        doc["alias"] = [structure["sign"]]
    telecom: list[dict[str, Any]] = []
    if structure.get("phone"):
        telecom.append({"system": "phone", "value": structure["phone"], "rank": 1})
    if structure.get("phone2"):
        telecom.append({"system": "phone", "value": structure["phone2"]})
    if structure.get("fax"):
        telecom.append({"system": "fax", "value": structure["fax"]})
    if structure.get("email"):
        telecom.append({"system": "email", "value": structure["email"]})
    boxes = _sorted_boxes(mailboxes)
    telecom.extend(mailbox_telecom(b) for b in boxes)
    if telecom:
        doc["telecom"] = telecom
    address = _address(structure)
    if address:
        doc["address"] = [address]
        street = " ".join(structure.get(c) or "" for c in ("street_type_code", "street_name"))
        for line in (*address.get("line", ()), street):  # the street also without its number
            key = search_key(line)
            if key:
                tokens.append(("address-line", "", key[:120]))
    if legal_rid is not None:
        doc["partOf"] = {"reference": f"Organization/{ids.organization_id(legal_rid)}"}
    return Rendered(ORGANIZATION, sid, True, doc, sorted(set(tokens)), boxes)


def legal_entity(rid: int, finess: str, active: bool, sector_code: str | None, mailboxes: Iterable[Row] = ()) -> Rendered:
    """A legal entity (FINESS EJ), synthesised from the sites that name it.

    The national files carry only the EJ's FINESS number on each site, so the
    EJ has identifiers and type but no name or address of its own; it is
    active while at least one of its sites is.
    """
    doc = _head("Organization", ids.organization_id(rid), _trace("FINESS"))
    doc["identifier"] = [
        _identifier("IDNST", cs.IDNST, "1" + finess),
        _identifier("FINEJ", cs.FINESS, finess),
    ]
    doc["active"] = active
    if not active:
        return Rendered(ORGANIZATION, rid, False, doc)
    tokens: list[Token] = []
    types = [_org_type("LEGAL-ENTITY")]
    if sector_code:
        types.append(_sector_type(sector_code))
        tokens.append(("type", cs.SECTOR, sector_code))
    doc["type"] = types
    boxes = _sorted_boxes(mailboxes)
    if boxes:
        doc["telecom"] = [mailbox_telecom(b) for b in boxes]
    return Rendered(ORGANIZATION, rid, True, doc, tokens, boxes)


def _reorder_inactive_org(doc: dict[str, Any]) -> dict[str, Any]:
    """Inactive Organization: identifier, active, name (FHIR element order)."""
    out = {k: doc[k] for k in ("resourceType", "id", "meta", "language", "identifier", "active")}
    if "name" in doc:
        out["name"] = doc["name"]
    return out
