"""`GET /metrics`: the whole server's metrics in the Prometheus text format (docs/observability.md).

Whichever HTTP worker answers, the numbers are the server's: every process's
files of the run directory added up (annuaire.observability.metrics), then
what is read from the store at the scrape (annuaire.observability.scrape).
Nothing secret is in it (counts and durations); expose it to the monitoring
network only, as a reverse proxy does for any internal endpoint.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from annuaire.config import Settings
from annuaire.observability import metrics
from annuaire.observability.scrape import ServerCollector
from annuaire.store import Store


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    """`/metrics`, for annuaire.http.app.PROVIDERS."""
    collector = ServerCollector(store)

    async def scrape(request: Request) -> Response:
        body = await run_in_threadpool(metrics.exposition, [collector])
        return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return [Route("/metrics", scrape, methods=["GET"])]
