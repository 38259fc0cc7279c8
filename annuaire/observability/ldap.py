"""Every LDAP operation answered, observed once (called by annuaire.ldap.server).

`answered` records the request's metrics (interface `ldap`, kind the
operation, status the result name), the limit that refused or cut it, if any,
and writes its access line. Which limit is told by the result and the
diagnostic the server sent, matched against the very messages it formats
(annuaire.ldap.server, annuaire.ldap.directory), so that the refusal is
counted where it is decided and nothing is said twice:

- `unrestricted_filter`: a search constraining no indexed attribute enough;
- `unselective_filter`: a filter too broad to designate a recipient
  (annuaire.ldap.selective);
- `daily_allowance`, `entries_per_minute`: the extraction ledger and the
  burst budget (annuaire.ldap.limits), answers cut with adminLimitExceeded;
- `size_limit`: the server's size cap cut the answer (not the client's own);
- `time_limit`; `failed_binds`: binds refused after too many failures;
- `connections` (`connection_refused`): too many connections from one address.
"""

from __future__ import annotations

import time
from typing import Any

from annuaire.ldap import messages as m
from annuaire.observability import accesslog, metrics

RESULTS = {
    m.SUCCESS: "success", m.OPERATIONS_ERROR: "operationsError", m.PROTOCOL_ERROR: "protocolError",
    m.TIME_LIMIT_EXCEEDED: "timeLimitExceeded", m.SIZE_LIMIT_EXCEEDED: "sizeLimitExceeded",
    m.AUTH_METHOD_NOT_SUPPORTED: "authMethodNotSupported", m.ADMIN_LIMIT_EXCEEDED: "adminLimitExceeded",
    m.UNAVAILABLE_CRITICAL_EXTENSION: "unavailableCriticalExtension",
    m.INAPPROPRIATE_MATCHING: "inappropriateMatching", m.NO_SUCH_OBJECT: "noSuchObject",
    m.INVALID_DN_SYNTAX: "invalidDNSyntax", m.INVALID_CREDENTIALS: "invalidCredentials",
    m.UNAVAILABLE: "unavailable", m.UNWILLING_TO_PERFORM: "unwillingToPerform", m.OTHER: "other",
}
SCOPES = {m.SCOPE_BASE: "base", m.SCOPE_ONE: "one", m.SCOPE_SUB: "sub"}


def _prefix(template: str) -> str:
    """The fixed start of a message template (before its first placeholder)."""
    return template.split("{", 1)[0]


def _prefixes() -> dict[int, list[tuple[str, str]]]:
    from annuaire.ldap.directory import REFUSAL, UNSELECTIVE
    from annuaire.ldap.server import DAILY_REFUSAL, FAILED_BINDS, MINUTE_REFUSAL

    return {
        m.UNWILLING_TO_PERFORM: [(_prefix(REFUSAL), "unrestricted_filter"),
                                 (_prefix(UNSELECTIVE), "unselective_filter"),
                                 (_prefix(FAILED_BINDS), "failed_binds")],
        m.ADMIN_LIMIT_EXCEEDED: [(_prefix(DAILY_REFUSAL), "daily_allowance"),
                                 (_prefix(MINUTE_REFUSAL), "entries_per_minute")],
    }


_PREFIXES: dict[int, list[tuple[str, str]]] | None = None


def refusal(code: int, message: str) -> str | None:
    """The limit a result tells of (None: not a limit's)."""
    global _PREFIXES
    if code == m.TIME_LIMIT_EXCEEDED:
        return "time_limit"
    if code == m.SIZE_LIMIT_EXCEEDED:
        return "size_limit" if message else None  # an empty message: the client's own size limit
    if _PREFIXES is None:
        _PREFIXES = _prefixes()
    for prefix, limit in _PREFIXES.get(code, ()):
        if message.startswith(prefix):
            return limit
    return None


def answered(address: str, op: str, code: int, message: str, started: float, account: str | None = None,
             search: m.SearchRequest | None = None, **fields: Any) -> None:
    """Operation `op` from `address` got `code` (`message`); `started` from time.monotonic().
    `search`: the request, whose base, scope and filter are logged (formatted only then)."""
    seconds = time.monotonic() - started
    result = RESULTS.get(code, str(code))
    metrics.observe("ldap", op, result, seconds)
    limit = refusal(code, message)
    if limit is not None:
        metrics.refused(limit)
    entries = fields.get("entries")
    if entries:
        metrics.entries_returned(entries)
    if accesslog.enabled():
        asked = search_fields(search) if search is not None else {}
        accesslog.write("ldap", address, {"op": op, **({"account": account} if account else {}), **asked,
                                          **fields, "result": result}, seconds)


def search_fields(req: m.SearchRequest) -> dict[str, Any]:
    """What the access line says of a search: base, scope and filter (bounded, no password)."""
    from annuaire.ldap.filters import to_string

    try:
        text = to_string(req.filter)
    except RecursionError:
        text = "(…)"
    return {"base": req.base, "scope": SCOPES.get(req.scope, str(req.scope)), "filter": accesslog.filter_text(text)}


def connection_refused(address: str) -> None:
    """Too many connections from one address: closed before any request."""
    metrics.refused("connections")
    if accesslog.enabled():
        accesslog.write("ldap", address, {"op": "connect", "result": "unavailable"}, 0.0)
