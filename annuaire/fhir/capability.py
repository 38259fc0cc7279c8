"""The CapabilityStatement: generated from the parameter tables, so it lists
exactly what the server really supports (tests/fhir/test_fhir_capability.py
tries every parameter and modifier it lists against the running API)."""

from __future__ import annotations

from typing import Any

from annuaire.fhir.params import INCLUDES, MODIFIERS, PARAMETERS, REVINCLUDES, STRING, SUMMARIES
from annuaire.store.clock import utc_now

MODIFIERS_SAID = "Modifiers: "  # how a parameter's documentation lists its modifiers
# patch: operators only, conditional on identifier, telecom only (annuaire.fhir.patchwrite);
# vread and the histories: annuaire.fhir.historyview
INTERACTIONS = ("read", "vread", "search-type", "history-instance", "history-type", "patch")


def search_param(name: str, kind: str) -> dict[str, Any]:
    """One searchParam entry: R4 has no element for modifiers, so its documentation lists them."""
    entry: dict[str, Any] = {"name": name, "type": kind}
    said = []
    if MODIFIERS[kind]:
        said.append(MODIFIERS_SAID + ", ".join(f":{m}" for m in MODIFIERS[kind]) + ".")
    if kind == STRING:
        said.insert(0, "Starts with, case-, accent- and punctuation-insensitive.")
    if name == "_profile":
        said.append("A profile of meta.profile (unversioned canonical); another selects nothing.")
    if said:
        entry["documentation"] = " ".join(said)
    return entry


def capability_statement(base: str, software_version: str) -> dict[str, Any]:
    resources = []
    for rtype, params in PARAMETERS.items():
        resource: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
        }
        # R4 JSON forbids empty arrays: a list with nothing to say is left out
        if INCLUDES[rtype]:
            resource["searchInclude"] = list(INCLUDES[rtype])
        if REVINCLUDES[rtype]:
            resource["searchRevInclude"] = list(REVINCLUDES[rtype])
        resource["searchParam"] = [search_param(name, kind) for name, kind in params.items()]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": utc_now()[:10],
        "kind": "instance",
        "software": {"name": "annuaire", "version": software_version},
        "implementation": {"description": "Annuaire santé MSSanté — API FHIR compatible v2", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": (
                "Read-only for API keys (header ESANTE-API-KEY). MSSanté operators (Bearer token or client "
                "certificate) may PATCH [type]?identifier=... with a FHIRPath Patch of telecom (their mailboxes). "
                "String parameters: starts-with, case- and "
                "accent-insensitive, modifiers :exact and :contains (3 characters at least). Tokens: code, "
                "system|code, system|. _lastUpdated prefixes eq ne gt lt ge le sa eb ap. AND by repetition, "
                "OR by commas. _count (default 50; 0 gives the total only), "
                f"_summary ({'|'.join(SUMMARIES)}), _total (accurate|estimate|none), _elements, "
                "_include/_revinclude as listed. Paging by opaque next links (/_page?id=...). "
                "History: [type]/_history and [type]/[id]/_history (_since, _count), vread; not the whole "
                "system's."
            ),
            "security": {"description": "API key in the ESANTE-API-KEY header; per-key rate limit (429)."},
            "resource": resources,
        }],
    }
