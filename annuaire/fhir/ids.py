"""Public resource ids in the national v2 formats, derived from store ids.

- Practitioner `003-<person.id>-<person.id>`: the national id is person key +
  exercice-professionnel key; the store has one exercice per person row, so
  both blocks carry person.id (the shape stays `003-<digits>-<digits>`).
- PractitionerRole `005-<person.id>-<activity.id>`.
- Organization `001-01-<structure.id>` (geographic entity, a site) and
  `001-02-<legal entity number>` (legal entity, one per distinct FINESS EJ).

Internally each kind has one integer id space (`rid`, see tables.py); legal
entities are stored with negative rids.
"""

from __future__ import annotations

import re

from annuaire.errors import NotFound
from annuaire.fhir.tables import ORGANIZATION, PRACTITIONER, ROLE

TYPES = {"Practitioner": PRACTITIONER, "PractitionerRole": ROLE, "Organization": ORGANIZATION}

_PRACTITIONER = re.compile(r"003-(\d{1,18})-(\d{1,18})")
_ROLE = re.compile(r"005-(\d{1,18})-(\d{1,18})")
_ORGANIZATION = re.compile(r"001-0([12])-(\d{1,18})")


def resource_type(name: str) -> str:
    """`name` when it is a type this server serves; else a 404 listing the known ones (the
    national API's message), for every route that takes a type in its path."""
    if name not in TYPES:
        known = ", ".join(sorted(TYPES))
        raise NotFound(f"Can't process the request. Resource type not supported. Server knows how to handle: [{known}]")
    return name


def practitioner_id(person_id: int) -> str:
    return f"003-{person_id}-{person_id}"


def role_id(person_id: int, activity_id: int) -> str:
    return f"005-{person_id}-{activity_id}"


def organization_id(rid: int) -> str:
    return f"001-02-{-rid}" if rid < 0 else f"001-01-{rid}"


def parse(resource_type: str, public_id: str) -> tuple[int, int | None]:
    """(rid, person_id for roles) of a public id, ValueError when malformed.

    The role's person block is returned so the caller can check it really is
    the role's person (ids are not guessable into a different shape).
    """
    if resource_type == "Practitioner":
        m = _PRACTITIONER.fullmatch(public_id)
        if m and m.group(1) == m.group(2):
            return int(m.group(1)), None
    elif resource_type == "PractitionerRole":
        m = _ROLE.fullmatch(public_id)
        if m:
            return int(m.group(2)), int(m.group(1))
    elif resource_type == "Organization":
        m = _ORGANIZATION.fullmatch(public_id)
        if m:
            number = int(m.group(2))
            return (number if m.group(1) == "1" else -number), None
    raise ValueError(f"{public_id!r} is not a {resource_type} id")


def public_id(kind: str, rid: int, person_id: int | None = None) -> str:
    if kind == PRACTITIONER:
        return practitioner_id(rid)
    if kind == ROLE:
        assert person_id is not None
        return role_id(person_id, rid)
    return organization_id(rid)


_ID_MARK = b'"id":"'


def of_body(body: bytes) -> str:
    """The public id of a served resource, read from its bytes (`"id"` is its second key)."""
    return id_bytes(body).decode()


def id_bytes(body: bytes) -> bytes:
    """`of_body`, as the bytes a Bundle entry's fullUrl is assembled from."""
    start = body.find(_ID_MARK) + len(_ID_MARK)
    return body[start : body.index(b'"', start)]


_PARTOF = b'"partOf":{"reference":"Organization/001-02-'


def part_of(body: bytes) -> int | None:
    """The rid of the legal entity a served Organization is part of (None: none)."""
    at = body.find(_PARTOF)
    if at < 0:
        return None
    start = at + len(_PARTOF)
    return -int(body[start : body.index(b'"', start)])
