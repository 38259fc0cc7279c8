"""The server's metrics: defined once here, recorded by every process, added up when scraped.

Recorded where requests are answered (`observe`, `refused`, `entries_returned`):

- `annuaire_requests_total{interface,kind,status}` and
  `annuaire_request_duration_seconds{interface,kind}` (histogram): interface
  `http` (publication API, console, extractions, health), `fhir`, `web` or
  `ldap`; kind the route template (`/fhir/v2/{type}`) or the LDAP operation;
  status the HTTP status or the LDAP result (`success`, `adminLimitExceeded`…);
- `annuaire_ldap_entries_returned_total`;
- `annuaire_ldap_limit_refusals_total{limit}` (annuaire.observability.ldap).

In a server (`rundir.attach`), every process writes its values in its own
memory-mapped files of the run directory (prometheus_client's multiprocess
files, in a directory given here rather than through
`PROMETHEUS_MULTIPROC_DIR`: processes get their configuration explicitly);
`exposition` adds up every file, so the numbers are the whole server's, and a
worker that died and was replaced keeps its counts. Elsewhere (tests, an app
embedded on its own) the values live in this process. Gauges read at scrape
time (follower lags, runs) come from `annuaire.observability.scrape`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a sub-millisecond LDAP lookup to a slow FHIR search or a large publication.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Instruments:
    requests: Counter
    duration: Histogram
    entries: Counter
    refusals: Counter

    def all(self) -> tuple[Any, ...]:
        return (self.requests, self.duration, self.entries, self.refusals)


_lock = threading.Lock()
_instruments: Instruments | None = None
_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # (interface, kind, status): the labelled series
_directory: str | None = None


def _make() -> Instruments:
    return Instruments(
        requests=Counter("annuaire_requests", "Requests answered, by interface, kind and status (LDAP: result).",
                         ["interface", "kind", "status"], registry=None),
        duration=Histogram("annuaire_request_duration_seconds", "Time to answer a request, by interface and kind.",
                           ["interface", "kind"], registry=None, buckets=BUCKETS),
        entries=Counter("annuaire_ldap_entries_returned", "Entries returned by LDAP searches.", registry=None),
        refusals=Counter("annuaire_ldap_limit_refusals",
                         "LDAP requests refused or cut short by a limit (anti-extraction, size, time, binds, "
                         "connections).", ["limit"], registry=None),
    )


def instruments() -> Instruments:
    """This process's instruments (made at first use, after `use_directory` when in a server)."""
    global _instruments
    if _instruments is None:
        with _lock:
            if _instruments is None:
                _instruments = _make()
    return _instruments


def use_directory(path: str) -> None:
    """Record this process's values (and its forked children's) in files of `path`."""
    global _directory, _instruments
    with _lock:
        _directory = path
        values.ValueClass = _file_values(path)
        _instruments = None  # made again, on files
        _children.clear()


def observe(interface: str, kind: str, status: str, seconds: float) -> None:
    key = (interface, kind, status)
    pair = _children.get(key)
    if pair is None:
        i = instruments()
        pair = _children[key] = (i.requests.labels(*key), i.duration.labels(interface, kind))
    pair[0].inc()
    pair[1].observe(seconds)


def refused(limit: str) -> None:
    instruments().refusals.labels(limit).inc()


def entries_returned(count: int) -> None:
    if count:
        instruments().entries.inc(count)


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of the whole server: every process's files (or this process's values),
    then the `extra` collectors read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if _directory is not None and os.path.isdir(_directory):
        MultiProcessCollector(registry, path=_directory)
    else:
        for metric in instruments().all():
            registry.register(metric)
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def _file_values(directory: str) -> type:
    """prometheus_client's multiprocess value class (values.MultiProcessValue), writing in
    `directory`: one file per process and metric type, `<type>_<pid>.db`. A forked child
    notices its new pid at its next write and starts files of its own (from zero)."""
    files: dict[str, MmapedDict] = {}
    made: list[Any] = []
    owner = {"pid": os.getpid(), "forked": False}
    locks = [threading.Lock()]  # replaced in a forked child (another thread may have held it at the fork)

    def forked() -> None:
        owner["forked"] = True
        locks[0] = threading.Lock()

    os.register_at_fork(after_in_child=forked)

    class FileValue:
        _multiprocess = True

        def __init__(self, typ: str, metric_name: str, name: str, labelnames: Any, labelvalues: Any,
                     help_text: str, multiprocess_mode: str = "", **_kwargs: Any) -> None:
            self._params = (typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode)
            with locks[0]:
                self._forked()
                self._open()
                made.append(self)

        def _open(self) -> None:
            typ, metric_name, name, labelnames, labelvalues, help_text, mode = self._params
            prefix = f"{typ}_{mode}" if typ == "gauge" else typ
            if prefix not in files:
                files[prefix] = MmapedDict(os.path.join(directory, f"{prefix}_{owner['pid']}.db"))
            self._file = files[prefix]
            self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
            self._value, self._timestamp = self._file.read_value(self._key)

        def _forked(self) -> None:
            if owner["forked"]:
                owner["pid"], owner["forked"] = os.getpid(), False
                for f in files.values():
                    f.close()
                files.clear()
                for value in made:
                    value._open()

        def inc(self, amount: float) -> None:
            with locks[0]:
                self._forked()
                self._value += amount
                self._file.write_value(self._key, self._value, 0.0)

        def set(self, value: float, timestamp: float | None = None) -> None:
            with locks[0]:
                self._forked()
                self._value = value
                self._file.write_value(self._key, value, timestamp or 0.0)

        def set_exemplar(self, _exemplar: Any) -> None:
            return

        def get(self) -> float:
            with locks[0]:
                self._forked()
                return self._value

        def get_exemplar(self) -> None:
            return None

    return FileValue
