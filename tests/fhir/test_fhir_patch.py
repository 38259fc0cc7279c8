"""The per-mailbox FHIR write interface: `PATCH /fhir/v2/{type}?identifier=…` (FHIRPath Patch on
`telecom`), sent by a real FHIR client library (fhirpy) over real HTTP, on both engines.

The server serves the FHIR API and the publication API together, so that a patched box is
checked where operators and the public see it: the domain's list, its history, the publication
report and the FHIR resources.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import (
    AuthorizationError,
    ForbiddenError,
    MultipleResourcesFound,
    OperationOutcome,
    ResourceNotFound,
)
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).parent))

from fhir_data import RPPS_BENE, populate
from fhir_server import _database

from annuaire.config import Settings
from annuaire.fhir import auth
from annuaire.fhir import codes as cs
from annuaire.fhir.app import routes as fhir_routes
from annuaire.fhir.cache import refresh
from annuaire.mailboxes.api import routes as publication_routes
from annuaire.mailboxes.entries import Entry
from annuaire.mailboxes.operators import add_operator, set_cert_dn
from annuaire.mailboxes.publication import publish
from annuaire.store import Store, open_store
from annuaire.store.schema import mailbox
from tests.mailboxes.mailbox_fixtures import running

CH = "ch-exemple.mssante.fr"
IDNPS_BENE = f"{cs.IDNPS}|8{RPPS_BENE}"
FINESS_S1 = f"{cs.FINESS}|990000019"


@dataclass
class Served:
    store: Store
    url: str
    tokens: dict[str, str]
    key: str
    data: dict[str, Any]

    def fhir(self, op: str | None = "ch") -> SyncFHIRClient:
        """fhirpy, authenticated as an operator (its Bearer token)."""
        return SyncFHIRClient(f"{self.url}/fhir/v2", authorization=f"Bearer {self.tokens[op]}" if op else None)

    def patch(self, rtype: str, identifier: str, *operations: dict[str, Any], op: str | None = "ch") -> Any:
        """A conditional FHIRPath Patch sent by fhirpy (PATCH [base]/{type}?identifier=…)."""
        return self.fhir(op).execute(rtype, method="patch", data=parameters(*operations),
                                     params={"identifier": identifier})

    def read(self, rtype: str, identifier: str) -> dict[str, Any]:
        """The public view (API key), as any client of the national API reads it."""
        r = httpx.get(f"{self.url}/fhir/v2/{rtype}", params={"identifier": identifier},
                      headers={"ESANTE-API-KEY": self.key}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["entry"][0]["resource"]

    def api(self, path: str, op: str = "ch") -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {self.tokens[op]}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def _app(store: Store, settings: Settings) -> Starlette:
    return Starlette(routes=[*fhir_routes(store, settings), *publication_routes(store, settings)])


def _prepare(store: Store) -> tuple[dict[str, Any], dict[str, str]]:
    """The FHIR tests' directory, its two domains owned by two operators and published once
    through the engine (the fixture writes rows directly: this gives them their real digests)."""
    data = populate(store)
    _, token_ch = add_operator(store, "op-ch", [CH])
    _, token_autre = add_operator(store, "op-autre", ["autre.mssante.fr"])
    with store.read() as conn:
        rows = conn.execute(mailbox.select().where(mailbox.c.domain == CH, mailbox.c.active)).mappings().all()
    entries = [Entry(n, None, address=r["address"], type=r["type"], holder=r["holder"], structure=r["structure"],
                     structure_type=r["structure_type"], service=r["service"], description=r["description"],
                     responsible=r["responsible"], liste_rouge=r["liste_rouge"], rank=r["rank"],
                     dematerialisation=r["dematerialisation"]) for n, r in enumerate(rows)]
    from annuaire.mailboxes.operators import find_operator

    publish(store, Settings(), find_operator(store, "op-ch"), CH, entries)
    refresh(store)
    return data, {"ch": token_ch, "autre": token_autre}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    for url in _database(request.param, tmp_path):
        store = open_store(url)
        data, tokens = _prepare(store)
        settings = Settings(fhir_rate_limit=1000.0)
        key = auth.add_key(store, "tests-patch")
        with running(_app(store, settings)) as base:
            yield Served(store, base, tokens, key, data)
        store.dispose()


# --- building patches ------------------------------------------------------------------------


def parameters(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def operation(kind: str, path: str, *, name: str | None = None, index: int | None = None,
              value: dict[str, Any] | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    if index is not None:
        parts.append({"name": "index", "valueInteger": index})
    if value is not None:
        parts.append({"name": "value", "valueContactPoint": value})
    return {"name": "operation", "part": parts}


def box(address: str, kind: str, *, rank: int | None = None, digitization: bool | None = None,
        **meta: Any) -> dict[str, Any]:
    """An MSSanté telecom entry in the shape of fhir.md."""
    subs: list[dict[str, Any]] = [{"url": "type", "valueCodeableConcept": {"coding": [{"system": cs.TYPE_BAL, "code": kind}]}}]
    for name, value in meta.items():
        key = "valueBoolean" if isinstance(value, bool) else "valueString"
        subs.append({"url": {"liste_rouge": "listeRouge"}.get(name, name), key: value})
    if digitization is not None:
        subs.append({"url": "digitization", "valueBoolean": digitization})
    entry: dict[str, Any] = {
        "extension": [
            {"url": cs.EMAIL_TYPE, "valueCoding": {"system": cs.TYPE_MESSAGERIE, "code": "MSSANTE"}},
            {"url": cs.MAILBOX_METADATA, "extension": subs},
        ],
        "system": "email",
        "value": address,
    }
    if rank is not None:
        entry["rank"] = rank
    return entry


def mailboxes(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["value"]: t for t in resource.get("telecom", []) if any(
        e.get("url") == cs.EMAIL_TYPE for e in t.get("extension", []))}


def listed(served: Served) -> dict[str, dict[str, Any]]:
    return {b["address"]: b for b in served.api(f"/domains/{CH}/mailboxes")["mailboxes"]}


# --- the tests --------------------------------------------------------------------------------


def test_add_creates_a_box_seen_everywhere(served: Served) -> None:
    address = f"dr.testdupont@{CH}"
    before = served.api(f"/domains/{CH}/mailboxes")["version"]
    resource = served.patch("Practitioner", IDNPS_BENE,
                            operation("add", "Practitioner", name="telecom", value=box(address, "PER", digitization=True)))
    assert resource["resourceType"] == "Practitioner"
    assert address in mailboxes(resource)
    # the domain's list, its version, its history (one journal row) and the public FHIR view
    after = served.api(f"/domains/{CH}/mailboxes")
    assert after["version"] == before + 1
    assert listed(served)[address]["holder"] == f"8{RPPS_BENE}"
    history = served.api(f"/domains/{CH}/history")["entries"]
    assert [(e["address"], e["change"]) for e in history if e["address"] == address] == [(address, "created")]
    public = served.read("Practitioner", IDNPS_BENE)
    assert mailboxes(public)[address]["extension"][1]["extension"][-1] == {"url": "digitization", "valueBoolean": True}
    assert served.read("Practitioner", f"{cs.IDNPS}|8{RPPS_BENE}")["meta"]["versionId"] == resource["meta"]["versionId"]
    # the publication and its report
    publications = [e["publication"] for e in history if e["address"] == address]
    report = served.api(f"/publications/{publications[0]}")
    assert report["created"] == 1 and report["deleted"] == 0 and report["updated"] == 0
    assert report["status"] == "ok" and report["unchanged"] >= 4
    # a box of the domain the rules now reject (its structure is a legal entity) stays as it was
    assert f"direction@{CH}" in listed(served)


def test_replace_updates_keeps_what_is_never_served(served: Served) -> None:
    address = f"secretariat.cardio@{CH}"
    current = served.read("Organization", FINESS_S1)
    index = [t.get("value") for t in current["telecom"]].index(address)
    new = box(address, "ORG", rank=2, description="Secrétariat de cardiologie (2e étage)", service="Cardiologie")
    resource = served.patch("Organization", FINESS_S1,
                            operation("replace", f"Organization.telecom[{index}]", value=new))
    entry = mailboxes(resource)[address]
    assert entry["rank"] == 2
    assert {"url": "description", "valueString": "Secrétariat de cardiologie (2e étage)"} in entry["extension"][1]["extension"]
    stored = listed(served)[address]
    assert stored["rank"] == 2 and stored["responsible"] == "Mme Responsable"  # not served, so kept
    assert "responsible" not in str(resource)
    # replace by value (where), then the same again: nothing changes, no new version
    again = served.patch("Organization", FINESS_S1,
                         operation("replace", f"Organization.telecom.where(value='{address}')", value=new))
    assert again["meta"]["versionId"] == resource["meta"]["versionId"]


def test_liste_rouge_is_write_only(served: Served) -> None:
    """listeRouge hides a box from every public output; as it is never served, a replace without it keeps it."""
    address = f"robot@{CH}"
    resource = served.patch("Organization", FINESS_S1, operation(
        "replace", f"Organization.telecom.where(value='{address}')", value=box(address, "APP", liste_rouge=True)))
    assert address not in mailboxes(resource) and address not in mailboxes(served.read("Organization", FINESS_S1))
    assert listed(served)[address]["liste_rouge"] is True
    plain = box(address, "APP", description="Automate")
    plain["extension"][1]["extension"][0] = {"url": "type", "valueCode": "APP"}  # the other form operators may send
    served.patch("Organization", FINESS_S1,
                 operation("replace", f"Organization.telecom.where(value='{address}')", value=plain))
    stored = listed(served)[address]
    assert stored["liste_rouge"] is True and stored["description"] == "Automate"


def test_delete_removes_the_box(served: Served) -> None:
    address = f"robot@{CH}"
    resource = served.patch("Organization", FINESS_S1,
                            operation("delete", f"Organization.telecom.where(value='{address}')"))
    assert address not in mailboxes(resource)
    assert address not in listed(served)
    assert address not in mailboxes(served.read("Organization", FINESS_S1))
    history = served.api(f"/domains/{CH}/history")["entries"]
    assert [e["change"] for e in history if e["address"] == address][-1] == "deleted"
    # a liste rouge box is never served, but its operator may name it by its address
    hidden = f"cachee.testdupont@{CH}"
    assert hidden in listed(served) and hidden not in mailboxes(served.read("Practitioner", IDNPS_BENE))
    served.patch("Practitioner", IDNPS_BENE, operation("delete", f"Practitioner.telecom.where(value='{hidden}')"))
    assert hidden not in listed(served)


def test_role_box_is_attached_to_the_role_site(served: Served) -> None:
    address = f"benedicte.cardio@{CH}"
    bene, activity = served.data["bene"], served.data["bene_role"]
    with httpx.Client(timeout=30) as c:
        r = c.get(f"{served.url}/fhir/v2/PractitionerRole", params={"_id": f"005-{bene}-{activity}"},
                  headers={"ESANTE-API-KEY": served.key})
    identifier = r.json()["entry"][0]["resource"]["identifier"][0]
    resource = served.patch("PractitionerRole", f"{identifier['system']}|{identifier['value']}",
                            operation("insert", "PractitionerRole.telecom", index=0, value=box(address, "PER")))
    assert address in mailboxes(resource)
    assert listed(served)[address]["structure"] == "1990000019"


def test_errors(served: Served) -> None:
    add = operation("add", "Practitioner", name="telecom", value=box(f"x.testdupont@{CH}", "PER"))
    with pytest.raises(ResourceNotFound):
        served.patch("Practitioner", f"{cs.IDNPS}|899999999999", add)
    with pytest.raises(MultipleResourcesFound):  # every test practitioner has the same profession code
        served.patch("Practitioner", f"{cs.IDNPS}|", add)
    with pytest.raises(AuthorizationError):
        served.patch("Practitioner", IDNPS_BENE, add, op=None)
    with pytest.raises(ForbiddenError):  # autre.mssante.fr's operator on ch-exemple's box
        served.patch("Practitioner", IDNPS_BENE, add, op="autre")
    address = f"secretariat.cardio@{CH}"
    bad = {
        "type change": operation("replace", f"Organization.telecom.where(value='{address}')", value=box(address, "APP")),
        "address change": operation("replace", f"Organization.telecom.where(value='{address}')",
                                    value=box(f"autre.adresse@{CH}", "ORG")),
        "not telecom": operation("replace", "Organization.name", value=box(address, "ORG")),
        "phone entry": operation("delete", "Organization.telecom[0]"),
        "move": operation("move", "Organization.telecom"),
        "rule (local part)": operation("add", "Organization", name="telecom", value=box(f"Bad..name@{CH}", "ORG")),
    }
    expected = {"type change": "type of a mailbox cannot change", "address change": "address of a mailbox cannot change",
                "not telecom": "unsupported path", "phone entry": "not an MSSanté mailbox",
                "move": "'move' is not supported", "rule (local part)": "(ADDRESS_LOCAL_PART)"}
    for why, op in bad.items():
        with pytest.raises(OperationOutcome) as caught:
            served.patch("Organization", FINESS_S1, op)
        outcome = caught.value.resource
        assert outcome["resourceType"] == "OperationOutcome", why
        assert outcome["issue"][0]["severity"] == "error", why
        assert expected[why] in outcome["issue"][0]["diagnostics"], (why, outcome)
    assert listed(served)[address]["type"] == "ORG"  # nothing applied


def test_statuses_over_plain_http(served: Served) -> None:
    """The answers fhirpy folds into exceptions, with their exact statuses and shapes."""
    url = f"{served.url}/fhir/v2/Practitioner"
    body = parameters(operation("add", "Practitioner", name="telecom", value=box(f"y.testdupont@{CH}", "PER")))
    auth_header = {"Authorization": f"Bearer {served.tokens['ch']}"}
    with httpx.Client(timeout=30) as c:
        r = c.patch(url, params={"identifier": IDNPS_BENE}, json=body,
                    headers={**auth_header, "Content-Type": "application/json-patch+json"})
        assert r.status_code == 415
        r = c.request("PATCH", url, params={"identifier": IDNPS_BENE}, content=b"{", headers={
            **auth_header, "Content-Type": "application/fhir+json"})
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
        r = c.request("PATCH", url, params={"name": "x"}, json=body, headers=auth_header)
        assert r.status_code == 400
        r = c.request("PATCH", url, params={"identifier": f"{cs.IDNPS}|"}, json=body, headers=auth_header)
        assert r.status_code == 412
        r = c.request("PATCH", url, params={"identifier": IDNPS_BENE}, json=body,
                      headers={"Authorization": "Bearer ann_1_wrong", "Content-Type": "application/fhir+json"})
        assert r.status_code == 401 and r.json()["issue"][0]["code"] == "exception"
        r = c.request("PATCH", url, params={"identifier": IDNPS_BENE}, json=body,
                      headers={**auth_header, "Content-Type": "application/fhir+json"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
        assert r.headers["X-Publication"].isdigit() and r.headers["ETag"].startswith('W/"')


# --- identity by client certificate ---------------------------------------------------------------


def test_client_certificate_identifies_the_operator(tmp_path: Path) -> None:
    from annuaire.mailboxes.tlsident import uvicorn_tls_options
    from tests.mailboxes.test_tls import _issue, _name

    ca_crt, _, ca_key, ca_name = _issue(tmp_path, "ca", _name(C="FR", O="Annuaire test", CN="Test CA"), None, ca=True)
    server = _issue(tmp_path, "server", _name(CN="127.0.0.1"), (ca_key, ca_name), server=True)
    client = _issue(tmp_path, "op", _name(C="FR", O="CH Exemple", CN="mail.ch-exemple.test"), (ca_key, ca_name))
    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    try:
        _prepare(store)
        set_cert_dn(store, "op-ch", "CN=mail.ch-exemple.test,O=CH Exemple,C=FR")
        settings = Settings(fhir_rate_limit=1000.0, tls_cert=str(server[0]), tls_key=str(server[1]),
                            tls_client_ca=str(ca_crt))
        context = ssl.create_default_context(cafile=str(ca_crt))
        context.load_cert_chain(str(client[0]), str(client[1]))
        address = f"cert.testdupont@{CH}"
        body = parameters(operation("add", "Practitioner", name="telecom", value=box(address, "PER")))
        with running(_app(store, settings), **uvicorn_tls_options(settings)) as url:
            with httpx.Client(verify=context, timeout=30) as c:
                r = c.patch(f"{url}/fhir/v2/Practitioner", params={"identifier": IDNPS_BENE}, json=body)
            assert r.status_code == 200, r.text
            assert address in mailboxes(r.json())
            with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_crt)), timeout=30) as c:
                r = c.patch(f"{url}/fhir/v2/Practitioner", params={"identifier": IDNPS_BENE}, json=body)
            assert r.status_code == 401
    finally:
        store.dispose()


def test_a_publication_slipping_in_is_retried(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """If-Match on the version read: a concurrent publication makes the patch read the list again."""
    from annuaire.errors import PreconditionFailed
    from annuaire.fhir import patchwrite

    calls: list[int | None] = []

    def racing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs.get("if_match"))
        if len(calls) == 1:
            raise PreconditionFailed("another publication came first")
        return publish(*args, **kwargs)

    monkeypatch.setattr(patchwrite, "publish", racing)
    address = f"retry.testdupont@{CH}"
    resource = served.patch("Practitioner", IDNPS_BENE,
                            operation("add", "Practitioner", name="telecom", value=box(address, "PER")))
    assert address in mailboxes(resource) and len(calls) == 2 and calls[0] is not None


def test_patch_shapes_without_a_server() -> None:
    """annuaire.fhir.patch on its own: what a patch says, and what it may not say."""
    from annuaire.errors import InvalidInput
    from annuaire.fhir import patch as fp

    served_telecom = [{"system": "phone", "value": "0100000000"}, box(f"a@{CH}", "ORG")]
    ops = fp.parse(orjson.dumps(parameters(
        operation("insert", "Organization.telecom", index=2, value=box(f"b@{CH}", "APP")),
        operation("replace", 'Organization.telecom.where(value = "a@ch-exemple.mssante.fr")', value=box(f"a@{CH}", "ORG", rank=1)),
        operation("delete", "telecom.where(value='c@ch-exemple.mssante.fr')"),  # a hidden box, named
    )), "Organization")
    changes = fp.apply(ops, served_telecom, {f"c@{CH}"})
    assert changes.created == {f"b@{CH}"}
    assert changes.writes[f"a@{CH}"].rank == 1 and changes.writes[f"c@{CH}"] is None
    assert len(served_telecom) == 2  # the served list is not touched
    wrong = {
        "index past the end": operation("insert", "Organization.telecom", index=3, value=box(f"b@{CH}", "APP")),
        "already there": operation("add", "Organization", name="telecom", value=box(f"a@{CH}", "ORG")),
        "another type's path": operation("delete", "Practitioner.telecom[1]"),
        "no such address": operation("delete", "Organization.telecom.where(value='z@ch-exemple.mssante.fr')"),
        "not MSSanté": operation("add", "Organization", name="telecom", value={"system": "email", "value": f"d@{CH}"}),
    }
    for why, op in wrong.items():
        with pytest.raises(InvalidInput):
            fp.apply(fp.parse(orjson.dumps(parameters(op)), "Organization"), served_telecom, set())
            pytest.fail(why)
    for body in (b"{", b'{"resourceType": "Bundle"}', b'{"resourceType": "Parameters", "parameter": []}'):
        with pytest.raises(InvalidInput):
            fp.parse(body, "Organization")
