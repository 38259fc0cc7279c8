"""The OpenAPI 3.1 description of the operator publication API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from annuaire.mailboxes.entries import EXTRA_COLUMNS, JSON_FIELDS
from annuaire.mailboxes.rules import RULES
from annuaire.store.visibility import REASONS

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _param(name: str, where: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": schema or {"type": "string"}}


_DOMAIN = _param("domain", "path", "Mail domain, e.g. ch-exemple.mssante.fr", required=True)


def description(base_url: str = "") -> dict[str, Any]:
    errors = sorted(code for code, rule in RULES.items() if not rule.warning)
    warnings = sorted(code for code, rule in RULES.items() if rule.warning)
    mailbox = {
        "type": "object",
        "additionalProperties": False,
        "required": ["address", "type"],
        "properties": {
            "address": {"type": "string", "maxLength": 254, "example": "secretariat.cardio@ch-exemple.mssante.fr",
                        "description": "Lowercase; local part [a-z0-9._-]{1,64}; its domain must be the URL's domain."},
            "type": {"type": "string", "enum": ["PER", "ORG", "APP", "CAB"], "description": "Immutable once created."},
            "holder": {"type": ["string", "null"], "description": "PER/CAB: national id of the professional, 8+RPPS or 0+ADELI."},
            "structure": {"type": ["string", "null"],
                          "description": "ORG/APP (optional for PER/CAB): 1+FINESS, 3+SIRET, 4+RPPS rang, 0+ADELI, "
                                         "or the technical id F…/C…/R…"},
            "service": {"type": ["string", "null"], "maxLength": 300},
            "description": {"type": ["string", "null"], "maxLength": 500},
            "responsible": {"type": ["string", "null"], "maxLength": 300, "description": "Operational contact; never published."},
            "liste_rouge": {"type": ["boolean", "null"], "description": "true: never shown in any public output."},
            "rank": {"type": ["integer", "null"], "minimum": 1, "maximum": 999},
            "dematerialisation": {"type": ["boolean", "null"]},
        },
    }
    finding = {
        "type": "object",
        "properties": {
            "index": {"type": "integer", "description": "0-based position of the line in the list"},
            "line": {"type": "integer", "description": "line number in a text body (header = 1)"},
            "address": {"type": ["string", "null"]},
            "code": {"type": "string"},
            "message": {"type": "string", "description": "French"},
            "message_en": {"type": "string"},
        },
    }
    report = {
        "type": "object",
        "properties": {
            "publication": {"type": "integer"},
            "domain": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "version": {"type": "integer", "description": "The domain's version (ETag) after the publication."},
            **{k: {"type": "integer"} for k in ("created", "updated", "deleted", "unchanged")},
            "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
            "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
            "fhir_current": {"type": "boolean", "description": (
                "Present when the publication changed something: true once the FHIR API serves it (the "
                "LDAP address book follows within a second); false when the FHIR cache was busy "
                "(it catches up by itself; FHIR searches answer 503 meanwhile).")},
        },
    }
    reasons = sorted(REASONS)
    visibility = {
        "type": "object",
        "properties": {
            "domain": {"type": "string"},
            "visible": {"type": "integer", "description": "Boxes the public sees"},
            "hidden": {"type": "integer", "description": "Active boxes the public does not see"},
            "mailboxes": {"type": "array", "items": {"type": "object", "properties": {
                "address": {"type": "string"}, "type": {"type": "string"}, "visible": {"type": "boolean"},
                "reasons": {"type": "array", "items": {"type": "string", "enum": reasons},
                            "description": "Why the box is hidden ([] when visible)"},
                "messages": {"type": "array", "items": {"type": "string"}, "description": "French"},
                "messages_en": {"type": "array", "items": {"type": "string"}}}}},
        },
    }
    quality = {
        "type": "object",
        "description": "Boxes the public does not see and why, departed holders, naming issues, holders with "
                       "several PER boxes, liste rouge boxes, last publication (stale after ANNUAIRE_STALE_DAYS)",
        "properties": {
            "domain": {"type": "string"}, "operator": {"type": ["string", "null"]},
            "last_published": {"type": ["string", "null"]}, "mailboxes": {"type": "integer"},
            **{k: {"type": "array"} for k in ("hidden", "departed", "naming", "holder_duplicates", "liste_rouge")},
            "stale": {"type": "boolean"},
            "issues": {"type": "boolean", "description": "Something to act on (a liste rouge box alone is not)"},
        },
    }
    text_columns = "Type de BAL|Adresse BAL|Identification nationale PP|Type identifiant structure|Identification Structure|…"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Annuaire MSSanté — publication des BAL par les opérateurs",
            "version": "1",
            "description": (
                "Each operator publishes, per domain, the EXHAUSTIVE list of its mailboxes. The directory "
                "turns it into creations, updates and deletions (tombstones); identical boxes are untouched. "
                "Every line is validated: rejected lines are applied nowhere (an existing box on a rejected line "
                "is kept). The apply step is one transaction.\n\n"
                f"Rejection codes: {', '.join(errors)}.\n\nWarning codes: {', '.join(warnings)}."
            ),
        },
        "servers": [{"url": base_url or "/"}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description":
                           "Operator API token (ann_…), possibly with an expiry date (401 once expired). "
                           "Failed authentications are limited per client address and per operator (429 + "
                           "Retry-After)"},
                "clientCertificate": {"type": "mutualTLS", "description": "TLS client certificate whose subject DN is registered"},
            },
            "schemas": {
                "Mailbox": mailbox,
                "MailboxList": {"type": "object", "additionalProperties": False, "required": ["mailboxes"],
                                "properties": {
                                    "mailboxes": {"type": "array", "items": {"$ref": "#/components/schemas/Mailbox"}},
                                    "domain": {"type": "string", "readOnly": True, "description": (
                                        "What GET returns; on PUT it must be the URL's domain (400 otherwise).")},
                                    "version": {"type": "integer", "minimum": 0, "readOnly": True, "description": (
                                        "What GET returns; on PUT, the version the list was read at: 412 if the "
                                        "domain changed since (as If-Match, which takes precedence; "
                                        "If-Match: * publishes whatever the version).")}}},
                "Visibility": visibility,
                "Quality": quality,
                "Finding": finding,
                "Report": report,
                "Problem": {"type": "object", "description": "RFC 7807 problem details",
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"}, "detail": {"type": "string"},
                                           "instance": {"type": "string"}, "code": {"type": "string"},
                                           "parameter": {"type": "string",
                                                         "description": "the header at fault (401, 429)"}}},
            },
            "responses": {
                "Problem": {"description": "Error (problem+json naming what and where)",
                            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            },
        },
        "security": [{"bearer": []}, {"clientCertificate": []}],
        "paths": {
            "/api/v1/domains": {
                "get": {"summary": "The caller's domains, with version and last publication",
                        "responses": {"200": {"description": "domains"}, "401": _PROBLEM, "429": _PROBLEM}},
            },
            "/api/v1/domains/{domain}/mailboxes": {
                "put": {
                    "summary": "Replace the complete list of the domain's mailboxes",
                    "parameters": [
                        _DOMAIN,
                        _param("dry_run", "query", "true: validate and report, apply nothing", {"type": "boolean"}),
                        _param("confirm_mass_delete", "query",
                               "true: accept deleting more than the configured share of the domain", {"type": "boolean"}),
                        _param("If-Match", "header", "The domain version (ETag) the list was built on; 412 if it changed"),
                    ],
                    "requestBody": {
                        "required": True,
                        "description": (
                            "application/json: {\"mailboxes\": [...]} (what GET returns is accepted unchanged). "
                            "text/csv or text/plain: the Extraction_Correspondance_MSSante layout ('|'-separated, "
                            "header line required) plus optional columns " + ", ".join(EXTRA_COLUMNS) + "."),
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/MailboxList"}},
                            "text/csv": {"schema": {"type": "string"}, "example": text_columns},
                            "text/plain": {"schema": {"type": "string"}, "example": text_columns},
                        },
                    },
                    "responses": {
                        "200": {"description": "The publication report", "headers": {"ETag": {"schema": {"type": "string"}}},
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
                        **dict.fromkeys(("400", "401", "403", "409", "412", "413", "415", "429"), _PROBLEM),
                    },
                },
                "get": {
                    "summary": "The domain's current published list (to verify a publication)",
                    "parameters": [_DOMAIN, _param("format", "query", "json (default) or csv", {"enum": ["json", "csv"]})],
                    "responses": {"200": {"description": "JSON {domain, version, mailboxes} or the text layout",
                                          "headers": {"ETag": {"schema": {"type": "string"}}},
                                          "content": {
                                              "application/json": {"schema": {"$ref": "#/components/schemas/MailboxList"}},
                                              "text/csv": {"schema": {"type": "string"}}}},
                                  **dict.fromkeys(("400", "401", "403", "429"), _PROBLEM)},
                },
            },
            "/api/v1/domains/{domain}/history": {
                "get": {
                    "summary": "The journal of the domain's mailboxes (created, updated, deleted)",
                    "parameters": [
                        _DOMAIN,
                        _param("since", "query", "ISO 8601 instant or date: changes at or after it"),
                        _param("after", "query", "journal id to continue from (the 'next' link gives it)", {"type": "integer"}),
                        _param("limit", "query", "entries per page (default 1000, max 10000)", {"type": "integer"}),
                        _param("cursor", "query", "exact follow-up: `start`, an extraction manifest's journal_cursor, "
                               "or the cursor of the previous answer (never skips a change committed late); "
                               "not with since/after"),
                    ],
                    "responses": {"200": {"description": "{domain, entries[], next} (+ cursor, with cursor)"},
                                  **dict.fromkeys(("400", "401", "403", "429"), _PROBLEM)},
                },
            },
            "/api/v1/domains/{domain}/visibility": {
                "get": {
                    "summary": "Per active box: seen by the public or not, and why (the directory's one rule)",
                    "parameters": [_DOMAIN],
                    "responses": {"200": {"description": "Every active box of the domain", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Visibility"}}}},
                                  **dict.fromkeys(("400", "401", "403", "429"), _PROBLEM)},
                },
            },
            "/api/v1/domains/{domain}/quality": {
                "get": {
                    "summary": "The domain's quality report (as `annuaire quality --json` for this domain)",
                    "parameters": [_DOMAIN],
                    "responses": {"200": {"description": "The report", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Quality"}}}},
                                  **dict.fromkeys(("400", "401", "403", "429"), _PROBLEM)},
                },
            },
            "/listeblanchemssante.xml": {
                "get": {
                    "summary": "The national domain whitelist (public; ETag / Last-Modified, 304 when unchanged)",
                    "security": [],
                    "parameters": [
                        _param("If-None-Match", "header", "An ETag of a previous answer: 304 when unchanged"),
                        _param("If-Modified-Since", "header", "An HTTP date: 304 when unchanged since"),
                    ],
                    "responses": {"200": {"description": "listeblanchemssante.xml",
                                          "headers": {"ETag": {"schema": {"type": "string"}},
                                                      "Last-Modified": {"schema": {"type": "string"}}},
                                          "content": {"application/xml": {"schema": {"type": "string"}}}},
                                  "304": {"description": "Not modified"}},
                },
            },
            "/api/v1/publications/{id}": {
                "get": {
                    "summary": "A past publication report of the caller",
                    "parameters": [_param("id", "path", "publication id", {"type": "integer"}, required=True)],
                    "responses": {"200": {"description": "The report with status and times"},
                                  **dict.fromkeys(("401", "404", "429"), _PROBLEM)},
                },
            },
        },
        "x-json-fields": list(JSON_FIELDS),
    }
