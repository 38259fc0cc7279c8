"""FHIRPath Patch on `telecom`: the per-mailbox write interface of the national draft.

A `Parameters` body (FHIR R4 FHIRPath Patch) whose operations add, insert,
replace or delete MSSanté entries of the carrier's `telecom` (mailboxes.md,
"The newer per-mailbox interface"). Pure functions: this module reads the
body and the carrier's current `telecom` and says which boxes to create,
update or delete; `patchwrite` publishes them. Why a separate step: the
publication engine is THE one place that validates and journals a box, so
here only the shape of the patch is checked (400 when it is malformed, when
it targets anything but MSSanté telecom entries, or changes an address or a
type).

Paths accepted (with or without the leading resource type):
- add:     path `Practitioner`, name `telecom`, value a ContactPoint;
- insert:  path `Practitioner.telecom`, index, value (the order of the served
  list is the directory's: rank, then address, so the index only has to be valid);
- replace: path `Practitioner.telecom[i]` or `Practitioner.telecom.where(value='a@b')`,
  value a ContactPoint (the same address and type);
- delete:  the same paths as replace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from annuaire.errors import InvalidInput
from annuaire.fhir import codes as cs

OPERATIONS = ("add", "insert", "replace", "delete")
# Sub-extensions of the mailbox metadata an operator may send (`digitization` is the older name
# of dematerialisation; `responsible` is write-only: it is never served).
METADATA_FIELDS = {"type", "description", "service", "listeRouge", "digitization", "dematerialisation",
                   "responsible"}
CONTACT_POINT_FIELDS = {"system", "value", "use", "rank", "extension", "id", "period"}

_INDEXED = re.compile(r"telecom\[(\d{1,6})\]")
_WHERE = re.compile(r"""telecom\.where\(\s*value\s*=\s*(['"])([^'"]{1,300})\1\s*\)""")


@dataclass
class Box:
    """The mailbox an MSSanté telecom entry describes (values as sent; the rules check them)."""

    address: str
    type: str | None
    rank: Any = None
    description: Any = None
    service: Any = None
    liste_rouge: Any = None
    dematerialisation: Any = None
    responsible: Any = None
    sent: set[str] = field(default_factory=set)  # metadata given (a replace keeps `responsible` if absent)


@dataclass
class Changes:
    """What a patch does to the carrier's boxes, by address: a Box to write, or None to delete."""

    writes: dict[str, Box | None] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)  # addresses added by the patch (new boxes)


# --- reading the body ------------------------------------------------------------------


@dataclass
class Operation:
    type: str
    path: str
    name: str | None = None
    index: int | None = None
    value: dict[str, Any] | None = None


def parse(body: bytes, resource_type: str) -> list[Operation]:
    """The operations of a FHIRPath Patch `Parameters` document (400 for anything else)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The body is not JSON ({exc.msg} at character {exc.pos}): send a FHIRPath Patch "
                         "Parameters resource") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Parameters":
        raise InvalidInput("The body must be a FHIRPath Patch: a Parameters resource of 'operation' parameters")
    params = doc.get("parameter")
    if not isinstance(params, list) or not params:
        raise InvalidInput("The Parameters resource has no 'operation' parameter")
    return [_operation(p, n, resource_type) for n, p in enumerate(params)]


def _operation(param: Any, n: int, resource_type: str) -> Operation:
    where = f"parameter[{n}]"
    if not isinstance(param, dict) or param.get("name") != "operation" or not isinstance(param.get("part"), list):
        raise InvalidInput(f"{where} must be an 'operation' parameter with parts (FHIRPath Patch)")
    parts: dict[str, Any] = {}
    for part in param["part"]:
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise InvalidInput(f"{where}: every part needs a name")
        name = part["name"]
        values = [k for k in part if k.startswith("value")]
        if name in parts or len(values) != 1:
            raise InvalidInput(f"{where}: part {name!r} must appear once with one value[x]")
        parts[name] = (values[0], part[values[0]])
    kind = _typed(parts, "type", "valueCode", where)
    if kind not in OPERATIONS:
        raise InvalidInput(f"{where}: operation type {kind!r} is not supported here "
                         f"(supported on telecom: {', '.join(OPERATIONS)})")
    path = _typed(parts, "path", "valueString", where)
    op = Operation(kind, _relative(path, resource_type, where))
    if kind == "add":
        op.name = _typed(parts, "name", "valueString", where)
    if kind == "insert":
        index = parts.get("index")
        if index is None or index[0] != "valueInteger" or type(index[1]) is not int or index[1] < 0:
            raise InvalidInput(f"{where}: an insert needs an 'index' part (valueInteger, 0 or more)")
        op.index = index[1]
    if kind != "delete":
        value = parts.get("value")
        if value is None or value[0] != "valueContactPoint" or not isinstance(value[1], dict):
            raise InvalidInput(f"{where}: a {kind} on telecom needs a 'value' part holding a valueContactPoint")
        op.value = value[1]
    unknown = set(parts) - {"type", "path", "name", "index", "value"}
    if unknown:
        raise InvalidInput(f"{where}: unexpected part(s) {', '.join(sorted(unknown))}")
    return op


def _typed(parts: dict[str, Any], name: str, kind: str, where: str) -> Any:
    found = parts.get(name)
    if found is None or found[0] != kind or not isinstance(found[1], str) or not found[1].strip():
        raise InvalidInput(f"{where}: part {name!r} is required as {kind}")
    return found[1].strip()


def _relative(path: str, resource_type: str, where: str) -> str:
    """The path without its leading resource type (`Practitioner.telecom[0]` -> `telecom[0]`)."""
    if path == resource_type:
        return ""
    if path.startswith(resource_type + "."):
        return path[len(resource_type) + 1:]
    head = path.split(".", 1)[0]
    if head in ("Practitioner", "PractitionerRole", "Organization"):
        raise InvalidInput(f"{where}: path {path!r} is about {head}, the request about {resource_type}")
    return path


# --- a telecom entry as a box --------------------------------------------------------------


def is_mailbox(entry: Any) -> bool:
    """An MSSanté entry: system email with the MSSANTE email type (others are not writable here)."""
    if not isinstance(entry, dict) or entry.get("system") != "email":
        return False
    for ext in entry.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == cs.EMAIL_TYPE:
            coding = ext.get("valueCoding") or {}
            return coding.get("code") == "MSSANTE"
    return False


def box_of(entry: dict[str, Any], where: str) -> Box:
    """The box a ContactPoint sent by an operator describes (shape only; values go to the rules)."""
    unknown = set(entry) - CONTACT_POINT_FIELDS
    if unknown:
        raise InvalidInput(f"{where}: unknown ContactPoint field(s) {', '.join(sorted(unknown))}")
    if not is_mailbox(entry):
        raise InvalidInput(f"{where}: only MSSanté mailboxes can be written here: system 'email' and the "
                         f"{cs.EMAIL_TYPE} extension coding {cs.TYPE_MESSAGERIE}#MSSANTE")
    address = entry.get("value")
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput(f"{where}: the ContactPoint has no value (the mailbox address)")
    box = Box(address.strip().lower(), None, rank=entry.get("rank"))
    for ext in entry.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == cs.MAILBOX_METADATA:
            _metadata(box, ext.get("extension") or [], where)
        elif not isinstance(ext, dict) or ext.get("url") != cs.EMAIL_TYPE:
            raise InvalidInput(f"{where}: unknown extension {ext.get('url') if isinstance(ext, dict) else ext!r}")
    if box.type is None:
        raise InvalidInput(f"{where}: the mailbox type is missing (sub-extension 'type' of {cs.MAILBOX_METADATA}: "
                         "PER, CAB, ORG or APP)")
    return box


def _metadata(box: Box, subs: Any, where: str) -> None:
    if not isinstance(subs, list):
        raise InvalidInput(f"{where}: {cs.MAILBOX_METADATA} must hold sub-extensions")
    for sub in subs:
        url = sub.get("url") if isinstance(sub, dict) else None
        if url not in METADATA_FIELDS:
            raise InvalidInput(f"{where}: unknown mailbox metadata {url!r} (known: {', '.join(sorted(METADATA_FIELDS))})")
        if url in box.sent:
            raise InvalidInput(f"{where}: mailbox metadata {url!r} given twice")
        box.sent.add(url)
        values = [v for k, v in sub.items() if k.startswith("value")]
        value = values[0] if len(values) == 1 else None
        if url == "type":
            box.type = _type_code(sub, where)
        elif url == "description":
            box.description = value
        elif url == "service":
            box.service = value
        elif url == "responsible":
            box.responsible = value
        elif url == "listeRouge":
            box.liste_rouge = value
        else:
            box.dematerialisation = value


def _type_code(sub: dict[str, Any], where: str) -> str:
    """`valueCodeableConcept` (TRE_R257), or `valueCode` as operators may also send it (fhir.md)."""
    if isinstance(sub.get("valueCode"), str):
        return sub["valueCode"].strip().upper()
    concept = sub.get("valueCodeableConcept")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings or ():
        if isinstance(coding, dict) and coding.get("system") in (cs.TYPE_BAL, None) and isinstance(coding.get("code"), str):
            return coding["code"].strip().upper()
    raise InvalidInput(f"{where}: the mailbox type must be a valueCodeableConcept of {cs.TYPE_BAL} (or a valueCode)")


# --- applying the operations to the served telecom -------------------------------------------


def apply(operations: list[Operation], telecom: list[dict[str, Any]], hidden: set[str]) -> Changes:
    """Play the operations on a copy of the carrier's served `telecom`; `hidden` are the addresses
    of its boxes that are stored but not served (liste rouge…): a `where(value=…)` may name them."""
    current = list(telecom)
    changes = Changes()
    for n, op in enumerate(operations):
        where = f"parameter[{n}] ({op.type} {op.path or '<resource>'})"
        if op.type == "add":
            if op.path != "" or op.name != "telecom":
                raise InvalidInput(f"{where}: only telecom can be added to (path '<Type>', name 'telecom')")
            _create(changes, current, box_of(op.value or {}, where), len(current), where)
        elif op.type == "insert":
            if op.path != "telecom":
                raise InvalidInput(f"{where}: only telecom entries can be inserted (path '<Type>.telecom')")
            if op.index is None or op.index > len(current):
                raise InvalidInput(f"{where}: index {op.index} is past the end of telecom ({len(current)} entries)")
            _create(changes, current, box_of(op.value or {}, where), op.index, where)
        else:
            at, address = _target(op.path, current, hidden, where)
            if op.type == "delete":
                changes.writes[address] = None
                changes.created.discard(address)
                if at is not None:
                    current.pop(at)
                else:
                    hidden.discard(address)
                continue
            box = box_of(op.value or {}, where)
            if box.address != address:
                raise InvalidInput(f"{where}: the address of a mailbox cannot change ({address} -> {box.address}); "
                                 "delete it and add the new one")
            changes.writes[address] = box
            if at is not None:
                current[at] = op.value or {}
    return changes


def _create(changes: Changes, current: list[dict[str, Any]], box: Box, index: int, where: str) -> None:
    if any(is_mailbox(e) and str(e.get("value", "")).lower() == box.address for e in current):
        raise InvalidInput(f"{where}: {box.address} is already in telecom: replace it instead")
    changes.writes[box.address] = box
    changes.created.add(box.address)
    current.insert(index, {"system": "email", "value": box.address,
                           "extension": [{"url": cs.EMAIL_TYPE, "valueCoding": {"code": "MSSANTE"}}]})


def _target(path: str, current: list[dict[str, Any]], hidden: set[str], where: str) -> tuple[int | None, str]:
    """(position in the served list or None for a hidden box, address) of a replace or delete."""
    indexed = _INDEXED.fullmatch(path)
    if indexed:
        at = int(indexed.group(1))
        if at >= len(current):
            raise InvalidInput(f"{where}: telecom has {len(current)} entries, there is no [{at}]")
        entry = current[at]
        if not is_mailbox(entry):
            raise InvalidInput(f"{where}: telecom[{at}] is not an MSSanté mailbox; only those can be written here")
        return at, str(entry["value"]).lower()
    selected = _WHERE.fullmatch(path)
    if selected:
        address = selected.group(2).strip().lower()
        for at, entry in enumerate(current):
            if is_mailbox(entry) and str(entry.get("value", "")).lower() == address:
                return at, address
        if address in hidden:
            return None, address
        raise InvalidInput(f"{where}: no MSSanté telecom entry has the value {address!r}")
    raise InvalidInput(f"{where}: unsupported path; use telecom[<index>] or telecom.where(value='<address>')")
