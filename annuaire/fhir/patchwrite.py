"""`PATCH /fhir/v2/{type}?identifier=…`: an operator's FHIRPath Patch of one carrier's mailboxes.

Why through the publication engine: a patched box must be validated, journaled
and reported exactly like a line of the domain's list, and show in that list
and in every view. So the patch is turned into a publication of the domain:
its current list with the patched boxes created, replaced or left out,
published with If-Match on the version read (a concurrent publication makes
us read again, a few times). Then the FHIR cache is rendered, as after a PUT,
and the updated resource is answered.

Answers: 200 + the resource (header X-Publication: the publication's id, whose
report is at /api/v1/publications/{id}); 400 a malformed patch, a change of
address or type, a box the rules reject (the rule's code in the diagnostics);
401 no or bad credentials; 403 a domain of another operator; 404 no resource
matches the identifier; 412 several do; 415 a body that is not FHIR JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from annuaire.config import Settings
from annuaire.errors import (
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RuleViolation,
    UnsupportedMediaType,
)
from annuaire.fhir import ids, packing, params, query
from annuaire.fhir import patch as fp
from annuaire.fhir.tables import (
    ORGANIZATION,
    PRACTITIONER,
    ROLE,
    fhir_legal_entity,
    fhir_resource,
)
from annuaire.http.bodies import read_body
from annuaire.http.errors import FHIR_JSON
from annuaire.mailboxes.api import PublicationAPI
from annuaire.mailboxes.entries import Entry
from annuaire.mailboxes.model import Mailbox, mailbox_from_row
from annuaire.mailboxes.operators import Operator
from annuaire.mailboxes.publication import check_owner, publish
from annuaire.mailboxes.rules import normalise_domain, valid_domain
from annuaire.store import Store
from annuaire.store.schema import activity, mailbox, person, structure
from annuaire.store.schema import domain as domain_table

MEDIA_TYPES = ("application/fhir+json", "application/json")
ATTEMPTS = 3  # publications of the domain that may slip in between our read and our write
CARRIED_TYPES = {PRACTITIONER: ("PER", "CAB"), ROLE: ("PER",), ORGANIZATION: ("ORG", "APP")}


@dataclass
class Carrier:
    """The resource the patch is about, and what its new boxes are attached to."""

    kind: str
    rid: int
    holder: str | None  # national id of the professional (Practitioner, PractitionerRole)
    structure: str | None  # national id of the structure (PractitionerRole's site, Organization)
    telecom: list[dict[str, Any]]
    hidden: dict[str, Mailbox]  # its stored boxes, served or not, by address


class MailboxPatcher:
    """The PATCH handler; identity as on the publication API (same tokens, certificates, throttle)."""

    def __init__(self, store: Store, settings: Settings, compiler: query.Compiler) -> None:
        self.store = store
        self.settings = settings
        self.compiler = compiler
        self.identity = PublicationAPI(store, settings)

    async def patch(self, request: Request) -> Response:
        rtype = request.url.path.rstrip("/").rpartition("/")[2]  # one route per type (app.routes)
        op = await run_in_threadpool(self.identity._identify, request)
        identifier = _identifier(request)
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            raise UnsupportedMediaType(f"PATCH expects a FHIRPath Patch Parameters resource as application/fhir+json, "
                                       f"got {media or 'no content type'}")
        body = await read_body(request, self.settings.fhir_max_body_bytes)
        operations = fp.parse(body, rtype)
        report, kind, rid = await run_in_threadpool(self._apply, op, rtype, identifier, operations)
        if report is not None and any(report.get(k) for k in ("created", "updated", "deleted")):
            await run_in_threadpool(self.identity._render)
        resource, version = await run_in_threadpool(self._resource, kind, rid)
        headers = {"ETag": f'W/"{version}"'}
        if report is not None:
            headers["X-Publication"] = str(report["publication"])
        return Response(resource, media_type=FHIR_JSON, headers=headers)

    # --- the work, in a thread ----------------------------------------------------------

    def _apply(self, op: Operator, rtype: str, identifier: str,
               operations: list[fp.Operation]) -> tuple[dict[str, Any] | None, str, int]:
        carrier = self._carrier(rtype, identifier)
        changes = fp.apply(operations, carrier.telecom, set(carrier.hidden))
        if not changes.writes:
            return None, carrier.kind, carrier.rid
        domain = _one_domain(changes)
        with self.store.read() as conn:
            check_owner(conn, op, domain)
        for attempt in range(ATTEMPTS):
            version, boxes = self._list(domain)
            entries = _entries(carrier, changes, boxes)
            try:
                report = publish(self.store, self.settings, op, domain, entries, confirm_mass_delete=True,
                                 if_match=version)
            except PreconditionFailed:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            _refused(report, set(changes.writes))
            return report, carrier.kind, carrier.rid
        raise AssertionError("unreachable")

    def _carrier(self, rtype: str, identifier: str) -> Carrier:
        """The one resource the identifier names: 404 none, 412 several."""
        kind = ids.TYPES[rtype]
        search = params.parse(rtype, [("identifier", identifier)], 2, 2)
        plan = self.compiler.conditions(search)
        with self.store.read() as conn:
            page = query.first_page(conn, plan, query.bounds(conn, kind), 2, "none")
            rows = page.rows
            if not rows:
                raise NotFound(f"No {rtype} matches identifier={identifier}")
            if len(rows) > 1 or page.more:
                raise PreconditionFailed(f"Several {rtype} resources match identifier={identifier}: "
                                         "a conditional patch needs exactly one")
            rid, body = rows[0]
            telecom = list(orjson.loads(body).get("telecom") or [])
            holder = structure_id = None
            if kind == PRACTITIONER:
                holder = conn.execute(select(person.c.id_nat).where(person.c.id == rid)).scalar()
            elif kind == ROLE:
                row = conn.execute(
                    select(person.c.id_nat, structure.c.idnat)
                    .select_from(activity.join(person, person.c.id == activity.c.person_id)
                                 .outerjoin(structure, structure.c.id == activity.c.structure_id))
                    .where(activity.c.id == rid)).first()
                holder, structure_id = (row[0], row[1]) if row else (None, None)
            elif rid > 0:
                structure_id = conn.execute(select(structure.c.idnat).where(structure.c.id == rid)).scalar()
            else:
                finess = conn.execute(select(fhir_legal_entity.c.finess).where(fhir_legal_entity.c.id == -rid)).scalar()
                structure_id = "1" + finess if finess else None
            hidden = self._stored(conn, kind, holder, structure_id)
        return Carrier(kind, rid, holder, structure_id, telecom, hidden)

    def _stored(self, conn: Any, kind: str, holder: str | None, structure_id: str | None) -> dict[str, Mailbox]:
        """The active boxes attached to the carrier (liste rouge ones included: an operator may name them)."""
        condition = mailbox.c.active & mailbox.c.type.in_(CARRIED_TYPES[kind])
        if kind in (PRACTITIONER, ROLE):
            if holder is None:
                return {}
            condition &= mailbox.c.holder == holder
        if kind in (ROLE, ORGANIZATION):
            if structure_id is None:
                return {}
            condition &= mailbox.c.structure_idnat == structure_id
        return {r["address"]: mailbox_from_row(r) for r in conn.execute(select(mailbox).where(condition)).mappings()}

    def _list(self, domain: str) -> tuple[int, list[Mailbox]]:
        with self.store.read() as conn:
            version = conn.execute(select(domain_table.c.version).where(domain_table.c.name == domain)).scalar() or 0
            rows = conn.execute(select(mailbox).where(mailbox.c.domain == domain, mailbox.c.active)).mappings()
            return int(version), [mailbox_from_row(r) for r in rows]

    def _resource(self, kind: str, rid: int) -> tuple[bytes, int]:
        with self.store.read() as conn:
            row = conn.execute(select(fhir_resource.c.json, fhir_resource.c.version)
                               .where((fhir_resource.c.kind == kind) & (fhir_resource.c.rid == rid))).first()
            if row is None:
                raise NotFound("The resource is not rendered yet; read it again in a moment")
            return packing.unpack(conn, row.json), int(row.version)


# --- helpers -------------------------------------------------------------------------------


def _identifier(request: Request) -> str:
    """The one search parameter of a conditional patch."""
    pairs = request.query_params.multi_items()
    names = [n for n, _ in pairs]
    if names != ["identifier"] or not pairs[0][1].strip():
        raise InvalidInput("A conditional PATCH takes exactly one parameter, identifier=<system>|<value> "
                           f"(got {', '.join(names) or 'none'})")
    return pairs[0][1].strip()


def _one_domain(changes: fp.Changes) -> str:
    """The domain every patched box belongs to (a patch is one publication of one domain)."""
    domains = {normalise_domain(a.rpartition("@")[2]) for a in changes.writes}
    if len(domains) != 1:
        raise InvalidInput(f"A patch may change the mailboxes of one domain at a time (got {', '.join(sorted(domains))})")
    domain = domains.pop()
    if not valid_domain(domain):
        raise InvalidInput(f"{domain!r} is not a mail domain (e.g. ch-exemple.mssante.fr)")
    return domain


def _entries(carrier: Carrier, changes: fp.Changes, boxes: list[Mailbox]) -> list[Entry]:
    """The domain's list after the patch: its boxes, the patched ones replaced or left out."""
    current = {mb.address: mb for mb in boxes}
    out = [_entry(n, mb) for n, mb in enumerate(b for b in boxes if b.address not in changes.writes)]
    for address, box in changes.writes.items():
        if box is None:
            continue
        old = current.get(address)
        if address in changes.created and old is not None:
            raise InvalidInput(f"{address} is already published (in another resource's telecom): replace it there, "
                                "or delete it first")
        out.append(_patched(len(out), carrier, box, old))
    return out


def _entry(index: int, mb: Mailbox) -> Entry:
    """A stored box as a line of the list (what GET …/mailboxes returns: a PUT of it changes nothing)."""
    return Entry(index, None, address=mb.address, type=mb.type, holder=mb.holder, structure=mb.structure,
                 structure_type=mb.structure_type, service=mb.service, description=mb.description,
                 responsible=mb.responsible, liste_rouge=mb.liste_rouge, rank=mb.rank,
                 dematerialisation=mb.dematerialisation)


def _patched(index: int, carrier: Carrier, box: fp.Box, old: Mailbox | None) -> Entry:
    """A patched box as a line: attached to the carrier (a replaced box keeps its attachment);
    what the public API never serves (liste rouge, responsible) is kept unless sent."""
    allowed = CARRIED_TYPES[carrier.kind]
    if box.type not in allowed:
        raise InvalidInput(f"A {box.type} mailbox is not carried by this resource (it carries {', '.join(allowed)})")
    if old is not None and old.type != box.type:
        raise InvalidInput(f"The type of a mailbox cannot change: {box.address} is {old.type}, the patch says {box.type}")
    entry = Entry(index, None, address=box.address, type=box.type, rank=box.rank, description=box.description,
                  service=box.service, dematerialisation=box.dematerialisation)
    if old is not None:
        entry.holder, entry.structure, entry.structure_type = old.holder, old.structure, old.structure_type
    else:
        entry.holder = carrier.holder if box.type in ("PER", "CAB") else None
        if carrier.kind != PRACTITIONER:
            if carrier.structure is None:
                raise InvalidInput("This resource has no structure to attach the mailbox to")
            entry.structure = carrier.structure
    entry.liste_rouge = box.liste_rouge if "listeRouge" in box.sent else (old.liste_rouge if old else None)
    entry.responsible = box.responsible if "responsible" in box.sent else (old.responsible if old else None)
    return entry


def _refused(report: dict[str, Any], addresses: set[str]) -> None:
    """400 when the rules rejected a patched box (the publication left it as it was)."""
    for found in report.get("rejected", ()):
        if found.get("address") in addresses:
            raise RuleViolation(found["code"], f"Mailbox {found['address']} rejected ({found['code']}): "
                                f"{found['message_en']} / {found['message']}")
