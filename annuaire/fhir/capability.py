"""The CapabilityStatement: generated from the parameter tables, so it lists
exactly what the server really supports."""

from __future__ import annotations

from typing import Any

from annuaire.fhir.params import INCLUDES, PARAMETERS, REVINCLUDES
from annuaire.store.clock import utc_now


def capability_statement(base: str, software_version: str) -> dict[str, Any]:
    resources = []
    for rtype, params in PARAMETERS.items():
        resources.append({
            "type": rtype,
            # patch: operators only, conditional on identifier, telecom only (annuaire.fhir.patchwrite)
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "patch"}],
            "versioning": "versioned",
            "readHistory": False,
            "searchInclude": list(INCLUDES[rtype]),
            "searchRevInclude": list(REVINCLUDES[rtype]),
            "searchParam": [{"name": name, "type": kind} for name, kind in params.items()],
        })
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
                "OR by commas. _count (default 50), _total (accurate|estimate|none), _elements, "
                "_include/_revinclude as listed. Paging by opaque next links (/_page?id=...)."
            ),
            "security": {"description": "API key in the ESANTE-API-KEY header; per-key rate limit (429)."},
            "resource": resources,
            "interaction": [],
        }],
    }
