"""What `/metrics` reads when it is asked: the store's runs, the followers' lags.

Publications and imports are rows of the store's `run` table, whoever made
them (this server's API or console, `annuaire import` run by a timer, another
front on the same primary): counting them there gives the directory's
numbers, not one process's, and they survive restarts.

- `annuaire_publications_total{outcome}`: ok, dry_run, refused…;
- `annuaire_imports_total{kind,outcome}`: referential (PS_LibreAcces),
  mssante (the national MSSanté file);
- `annuaire_runs_in_progress{kind}`, `annuaire_run_last_finished_timestamp_seconds{kind,outcome}`;
- `annuaire_journal_head`: the last change of the store;
- `annuaire_follower_behind_changes{view,worker}`: FHIR cache (`worker=""`) and each
  LDAP worker, changes of the journal not yet applied;
- `annuaire_follower_lag_seconds{view="ldap",worker}`: since the worker last
  confirmed its index current (annuaire.observability.ldapstatus);
- `annuaire_store_up`: 0 when the store did not answer this scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from annuaire.observability import ldapstatus
from annuaire.store import Store
from annuaire.store.clock import from_stored
from annuaire.store.schema import run

log = logging.getLogger("annuaire.http")
IMPORT_KINDS = ("referential", "mssante")


class ServerCollector(Collector):
    """Collected at each scrape, from the store and the LDAP workers' status files."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("annuaire_store_up", "1 when the store answered this scrape.")
        try:
            yield from self._store_metrics()
        except Exception as exc:  # noqa: BLE001 - a scrape reports a failing store, it does not fail
            log.warning("metrics: the store does not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

    def _store_metrics(self) -> Iterator[Metric]:
        from annuaire.fhir.cache import status

        with self.store.read() as conn:
            rows = conn.execute(select(run.c.kind, run.c.status, func.count(), func.max(run.c.finished_at))
                                .group_by(run.c.kind, run.c.status)).all()
        publications = CounterMetricFamily("annuaire_publications", "Publications of mailbox lists, by outcome.",
                                           labels=["outcome"])
        imports = CounterMetricFamily("annuaire_imports", "Imports of national files, by kind and outcome.",
                                      labels=["kind", "outcome"])
        running = GaugeMetricFamily("annuaire_runs_in_progress", "Imports and publications running now.",
                                    labels=["kind"])
        last = GaugeMetricFamily("annuaire_run_last_finished_timestamp_seconds",
                                 "When the last run of a kind ended with an outcome (Unix time).",
                                 labels=["kind", "outcome"])
        in_progress = dict.fromkeys(("publication", *IMPORT_KINDS), 0)
        for kind, outcome, count, finished in rows:
            if outcome == "running":
                in_progress[kind] = in_progress.get(kind, 0) + count
                continue
            if kind == "publication":
                publications.add_metric([outcome], count)
            else:
                imports.add_metric([kind, outcome], count)
            if finished:
                last.add_metric([kind, outcome], from_stored(finished).timestamp())
        for kind, count in in_progress.items():
            running.add_metric([kind], count)
        yield from (publications, imports, running, last)

        fhir = status(self.store)
        head = GaugeMetricFamily("annuaire_journal_head", "The store's last change (journal id).")
        head.add_metric([], fhir.head)
        yield head
        behind = GaugeMetricFamily("annuaire_follower_behind_changes",
                                   "Changes of the journal a view has not applied yet.", labels=["view", "worker"])
        behind.add_metric(["fhir", ""], fhir.backlog if fhir.rendered or not fhir.head else fhir.head)
        lag = GaugeMetricFamily("annuaire_follower_lag_seconds",
                                "Seconds since an LDAP worker last confirmed its index current.",
                                labels=["view", "worker"])
        ldap = ldapstatus.read()
        if ldap is not None:
            for n, state in sorted(ldap.states.items()):
                behind.add_metric(["ldap", str(n)], max(0, fhir.head - state.position))
                lag.add_metric(["ldap", str(n)], state.age)
        yield behind
        yield lag
