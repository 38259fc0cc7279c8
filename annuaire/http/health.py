"""Liveness and readiness, for load balancers and service managers.

- `/healthz`: the HTTP process answers (it reads nothing): 200 `ok`.
- `/readyz`: 200 only when the store answers, the FHIR cache is within its
  freshness bound (`fhir.cache.Status.unservable`: rendered, and no more
  changes behind than a refresh renders in a few seconds) and, when the
  server runs LDAP, every LDAP worker has confirmed its index current within
  its bound (`observability.ldapstatus`: 5 s plus one refresh interval; the
  workers report through the server's run directory); else 503 with
  `Retry-After` and the reason of each failed check (`store`, `fhir`, `ldap`,
  and `replica` when the front reads a hot standby: annuaire.store.replica),
  so that a balancer sends no traffic to a front whose answers would be
  missing or late. The same FHIR bound makes FHIR searches answer 503
  (docs/architecture.md, "How fresh each view is"); the LDAP index also
  reports its lag in its root DSE (`annuaireBehindSeconds`).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from annuaire.config import Settings
from annuaire.store import Store

log = logging.getLogger("annuaire.http")
RETRY_AFTER = "5"


def readiness(store: Store) -> dict[str, str]:
    """The failed checks and why (empty: ready)."""
    from annuaire.fhir.cache import status
    from annuaire.observability import ldapstatus

    failed: dict[str, str] = {}
    head: int | None = None
    try:
        state = status(store)
    except Exception as exc:  # noqa: BLE001 - any failure of the store is a reason not to be ready
        log.warning("readiness: the store does not answer: %s", exc)
        failed["store"] = f"the store does not answer ({exc.__class__.__name__})"
    else:
        head = state.head
        reason = state.unservable()
        if reason:
            failed["fhir"] = reason
    ldap = ldapstatus.read()
    late = ldap.behind(head) if ldap is not None else None
    if late:
        failed["ldap"] = late
    from annuaire.store import replica

    behind = replica.unavailable(store)  # `serve --read-db`: the replica down, paused or lagging
    if behind:
        failed["replica"] = behind
    return failed


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """`/healthz` and `/readyz`, for annuaire.http.app.PROVIDERS."""

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        failed = await run_in_threadpool(readiness, store)
        if failed:
            return JSONResponse({"status": "unavailable", "failed": failed}, status_code=503,
                                headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"})
        return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]), Route("/readyz", readyz, methods=["GET", "HEAD"])]
