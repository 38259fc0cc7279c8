"""Every search parameter and modifier the CapabilityStatement lists works.

The CapabilityStatement is read from the running API (real HTTP); each
parameter of each resource, bare and with each modifier its documentation
lists, is tried with a value taken from the served resources, and the ids
answered must be exactly those an independent reading of the resources gives
(`ORACLES`: where FHIR says the parameter looks). A parameter listed without
an oracle here, or an oracle for a parameter not listed, fails the test: the
statement and the server cannot drift apart silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from annuaire.store.keys import search_key
from annuaire.store.schema import activity

AS_TRACE = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-data-trace"
EMAIL_TYPE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
MSS_METADATA = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
# parameters that also find inactive resources (the others are about content an inactive resource no longer has)
NOT_CONTENT = {"_id", "_lastUpdated", "_profile", "active", "identifier", "identifier-type"}

Resource = dict[str, Any]
Facts = dict[str, Any]  # what the store knows and the resources do not show (registration authorities)


# --- where each parameter looks in a resource -----------------------------------------------------
# strings: (how compared, text), how compared being "key" (search_key), "lower" (mailboxes) or "code"
# (postal codes); tokens: (system, code); references and dates: the text.


def _mss(r: Resource) -> list[Resource]:
    return [t for t in r.get("telecom", ()) if any(e["url"] == EMAIL_TYPE for e in t.get("extension", ()))]


def _mss_types(r: Resource) -> list[tuple[str, str]]:
    out = []
    for t in _mss(r):
        for e in t["extension"]:
            if e["url"] == MSS_METADATA:
                out += [(c["system"], c["code"]) for s in e["extension"] if s["url"] == "type"
                        for c in s["valueCodeableConcept"]["coding"]]
    return out


def _codings(concepts: list[Resource]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for concept in concepts for c in concept.get("coding", ())]


def _addresses(r: Resource, parts: tuple[str, ...]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for a in r.get("address", ()):
        if "line" in parts:
            out += [("key", line) for line in a.get("line", ())]
        if "city" in parts and "city" in a:
            out.append(("key", a["city"]))
        if "postalCode" in parts and "postalCode" in a:
            out.append(("code", a["postalCode"]))
    return out


def _trace(r: Resource) -> list[tuple[str, str]]:
    return [(None, s["valueCode"]) for e in r["meta"].get("extension", ()) if e["url"] == AS_TRACE
            for s in e["extension"] if s["url"] == "systeme-information"]


def _authorities(r: Resource, facts: Facts) -> list[tuple[str, str]]:
    return [(None, code) for code in facts["authorities"].get((r["resourceType"], r["id"]), ())]


COMMON: dict[str, Callable[[Resource, Facts], list]] = {
    "_id": lambda r, f: [(None, r["id"])],
    "_lastUpdated": lambda r, f: [r["meta"]["lastUpdated"]],
    "_profile": lambda r, f: list(r["meta"]["profile"]),
    "active": lambda r, f: [(None, str(r["active"]).lower())],
    "identifier": lambda r, f: [(i["system"], i["value"]) for i in r.get("identifier", ())],
    "mailbox-mss": lambda r, f: [("lower", t["value"]) for t in _mss(r)],
    "mailbox-mss-type": lambda r, f: _mss_types(r),
    "data-registration-authority": _authorities,
}
NAMES = {
    "family": lambda r, f: [("key", n["family"]) for n in r.get("name", ()) if "family" in n],
    "given": lambda r, f: [("key", g) for n in r.get("name", ()) for g in n.get("given", ())],
}
ORACLES: dict[str, dict[str, Callable[[Resource, Facts], list]]] = {
    "Practitioner": {
        **COMMON, **NAMES,
        "name": lambda r, f: NAMES["family"](r, f) + NAMES["given"](r, f),
        "identifier-type": lambda r, f: _codings([i["type"] for i in r.get("identifier", ()) if "type" in i]),
        "qualification-code": lambda r, f: _codings([q["code"] for q in r.get("qualification", ())]),
        # the RPPS is the source of every practitioner and role (their meta carries no trace, as nationally)
        "data-information-system": lambda r, f: [(None, "RPPS")],
        "number-smartcard": lambda r, f: [],  # no card data in the public files
        "type-smartcard": lambda r, f: [],
    },
    "PractitionerRole": {
        **COMMON,
        "organization": lambda r, f: [r["organization"]["reference"]] if "organization" in r else [],
        "practitioner": lambda r, f: [r["practitioner"]["reference"]] if "practitioner" in r else [],
        "role": lambda r, f: _codings(r.get("code", [])),
        "data-information-system": lambda r, f: [(None, "RPPS")],
    },
    "Organization": {
        **COMMON,
        "name": lambda r, f: [("key", r["name"])] if "name" in r else [],
        "identifier-type": lambda r, f: _codings([i["type"] for i in r.get("identifier", ()) if "type" in i]),
        "address": lambda r, f: _addresses(r, ("line", "city", "postalCode")),
        "address-city": lambda r, f: _addresses(r, ("city",)),
        "address-line": lambda r, f: _addresses(r, ("line",)),
        "address-postalcode": lambda r, f: _addresses(r, ("postalCode",)),
        "partof": lambda r, f: [r["partOf"]["reference"]] if "partOf" in r else [],
        "type": lambda r, f: _codings(r.get("type", [])),
        "pharmacy-licence": lambda r, f: [],  # no licence numbers in the public files
        "data-information-system": lambda r, f: _trace(r),
    },
}


# --- how a searched value matches what the oracle found ---------------------------------------------


def _string_matches(modifier: str | None, searched: str, how: str, text: str) -> bool:
    if how == "key":
        s, t = search_key(searched), search_key(text)
    elif how == "lower":
        s, t = searched.lower(), text.lower()
    else:
        s, t = searched.upper(), text.upper()
    if modifier == "exact":
        return searched.lower() == text.lower() if how == "lower" else searched == text
    if modifier == "contains":
        return s in t
    return t.startswith(s)


def _matches(kind: str, modifier: str | None, searched: str, found: list) -> bool:
    if kind == "string":
        return any(_string_matches(modifier, searched, how, text) for how, text in found)
    if kind == "token":
        system, _, code = searched.rpartition("|") if "|" in searched else (None, "", searched)
        return any((system is None or s == system) and c == code for s, c in found)
    if kind == "date":  # eq<instant> to the millisecond, or ge<instant>
        prefix, instant = searched[:2], searched[2:]
        return any(v[:23] == instant[:23] if prefix == "eq" else v >= instant for v in found)
    return searched in found  # reference, uri


def _samples(kind: str, modifier: str | None, found: list) -> list[str]:
    """Values to search for, taken from what a resource holds."""
    if kind == "string":
        how, text = found[0]
        if modifier == "exact":
            return [text]
        if modifier == "contains":
            fragment = search_key(text) if how == "key" else text.lower()
            return [fragment[1:5] if len(fragment) > 4 else fragment]
        return [text[:6].strip()]
    if kind == "token":
        system, code = found[0]
        return [code] if system is None else [f"{system}|{code}", code]
    if kind == "date":
        return ["eq" + found[0], "ge" + found[0]]
    return [found[0]]


# --- the test ------------------------------------------------------------------------------------


def everything(api: Any, rtype: str) -> list[Resource]:
    bundle = api.json(f"/{rtype}", params={"_count": "1000"})
    assert "next" not in [link["relation"] for link in bundle["link"]]
    return [e["resource"] for e in bundle["entry"]]


def facts_of(api: Any) -> Facts:
    """Registration authorities (`CNOM/CNOM/ARS`): in the store, not in the resources."""
    with api.store.read() as conn:
        rows = conn.execute(select(activity.c.id, activity.c.person_id, activity.c.registration_authority)).all()
    authorities: dict[tuple[str, str], set[str]] = {}
    for aid, pid, authority in rows:
        codes = {c for c in (authority or "").split("/") if c}
        authorities.setdefault(("PractitionerRole", f"005-{pid}-{aid}"), set()).update(codes)
        authorities.setdefault(("Practitioner", f"003-{pid}-{pid}"), set()).update(codes)
    return {"authorities": authorities}


def modifiers_of(param: dict) -> list[str]:
    said = re.search(r"Modifiers: ([^.]*)\.", param.get("documentation", ""))
    return [m.strip().lstrip(":") for m in said.group(1).split(",")] if said else []


def test_the_statement_lists_exactly_the_parameters_tried(api):
    statement = api.json("/metadata")
    listed = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    assert listed == {rtype: set(oracles) for rtype, oracles in ORACLES.items()}
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            assert modifiers_of(param) == (["exact", "contains"] if param["type"] == "string" else []), param


def test_every_listed_parameter_and_modifier_answers_what_the_resources_hold(api):
    statement = api.json("/metadata")
    tried = 0
    for resource in statement["rest"][0]["resource"]:
        rtype = resource["type"]
        served = everything(api, rtype)
        facts = facts_of(api)
        for param in resource["searchParam"]:
            name, kind = param["name"], param["type"]
            oracle = ORACLES[rtype][name]
            for modifier in [None, *modifiers_of(param)]:
                holders = [r for r in served if oracle(r, facts) and (r["active"] or name in NOT_CONTENT)]
                values = _samples(kind, modifier, oracle(holders[0], facts)) if holders else ["99999999"]
                if kind == "token":  # the coded values held (each system: its own lookup), ids aside
                    values = list(dict.fromkeys(v for r in holders for found in oracle(r, facts)
                                                for v in _samples(kind, modifier, [found])))[:12]
                for value in values:
                    written = name + (f":{modifier}" if modifier else "")
                    bundle = api.json(f"/{rtype}", params={written: value, "_count": "1000"})
                    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
                    got = sorted(e["resource"]["id"] for e in bundle["entry"])
                    expected = sorted(r["id"] for r in served if (r["active"] or name in NOT_CONTENT)
                                      and _matches(kind, modifier, value, oracle(r, facts)))
                    assert got == expected, (rtype, written, value)
                    assert bundle["total"] == len(expected)
                    if holders:
                        assert expected, (rtype, written, value)  # the value came from a resource
                    tried += 1
    assert tried > 60


@pytest.mark.parametrize("rtype", list(ORACLES))
def test_an_unknown_profile_selects_nothing_and_a_known_one_everything(api, rtype):
    served = everything(api, rtype)
    for profile in served[0]["meta"]["profile"]:
        bundle = api.json(f"/{rtype}", params={"_profile": profile, "_count": "1000"})
        assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(r["id"] for r in served)
    other = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-dp-device"
    assert api.json(f"/{rtype}", params={"_profile": other})["entry"] == []
    assert api.json(f"/{rtype}", params={"_profile": other})["total"] == 0


def test_count_zero_and_summary_count_give_the_total_only(api):
    served = everything(api, "Practitioner")
    active = [r for r in served if r["active"]]
    pageurs = [r for r in active if r["name"][0]["family"].startswith("PAGEUR")]
    assert len(pageurs) > 100
    for params in ({"family": "pageur", "_count": "0"}, {"family": "pageur", "_summary": "count"},
                   {"family": "pageur", "_summary": "count", "_count": "5"}):
        bundle = api.json("/Practitioner", params=params)
        assert bundle["total"] == len(pageurs), params
        assert bundle["entry"] == []
        assert [link["relation"] for link in bundle["link"]] == ["self"]
    assert api.json("/Practitioner", params={"_summary": "count"})["total"] == len(served)
    bundle = api.json("/Practitioner", params={"_count": "0", "_total": "none"})
    assert "total" not in bundle and bundle["entry"] == []
    assert len(api.json("/Practitioner", params={"family": "pageur", "_summary": "false"})["entry"]) == 50
    r = api.get("/Practitioner", params={"_summary": "true"})
    assert r.status_code == 400 and "_summary" in r.json()["issue"][0]["diagnostics"]


def test_every_listed_interaction_answers(api):
    """read, vread, search-type, the histories: tried on a served resource; patch (operators
    only) must at least be routed (an anonymous PATCH is refused, not unknown)."""
    statement = api.json("/metadata")
    for resource in statement["rest"][0]["resource"]:
        rtype = resource["type"]
        sample = next(r for r in everything(api, rtype) if r["active"])
        version = sample["meta"]["versionId"]
        paths = {
            "read": f"/{rtype}/{sample['id']}",
            "vread": f"/{rtype}/{sample['id']}/_history/{version}",
            "search-type": f"/{rtype}?_id={sample['id']}",
            "history-instance": f"/{rtype}/{sample['id']}/_history",
            "history-type": f"/{rtype}/_history",
        }
        for interaction in resource["interaction"]:
            code = interaction["code"]
            if code == "patch":
                with api.client(key=None) as c:
                    assert c.patch(f"/{rtype}", params={"identifier": "x"}).status_code == 401
                continue
            doc = api.json(paths[code])
            if code in ("read", "vread"):
                assert doc["id"] == sample["id"] and doc["meta"]["versionId"] == version
            elif code == "search-type":
                assert [e["resource"]["id"] for e in doc["entry"]] == [sample["id"]]
            else:
                assert doc["resourceType"] == "Bundle" and doc["type"] == "history"
        assert {i["code"] for i in resource["interaction"]} == {*paths, "patch"}
        assert resource["readHistory"] is True


def test_every_listed_include_and_revinclude_answers(api):
    """Each `_include`/`_revinclude` listed is accepted; those of served types bring the resources they name."""
    statement = api.json("/metadata")
    brought = 0
    for resource in statement["rest"][0]["resource"]:
        rtype = resource["type"]
        for param, listed in (("_include", resource.get("searchInclude", [])),
                              ("_revinclude", resource.get("searchRevInclude", []))):
            for value in listed:
                bundle = api.json(f"/{rtype}", params={param: value, "_count": "1000"})
                matched = {e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype}
                others = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != rtype]
                target = value.split(":")[0] if param == "_revinclude" else None
                if param == "_revinclude" and target in ORACLES:  # the roles pointing to the matches
                    field = value.split(":")[1]
                    assert others and all(o[field]["reference"].split("/")[1] in matched for o in others), value
                    brought += len(others)
                elif param == "_include" and rtype == "PractitionerRole":
                    assert {o["resourceType"] for o in others} == (
                        {"Practitioner", "Organization"} if value in ("*", "PractitionerRole:*")
                        else {value.split(":")[1].capitalize()})
                    brought += len(others)
    assert brought > 100
