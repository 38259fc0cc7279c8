"""Several operators' clients publishing at once, through the real server, on both engines.

Publications of one domain are serialised: every request succeeds, the final
list is exactly one of the lists sent (the last one applied), and replaying
the domain's journal gives the final state. Reports agree with applying the
lists one after the other in publication order.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from annuaire.store.schema import journal
from tests.mailboxes.mailbox_fixtures import ALIX, CAMILLE, JEAN_PIERRE, Env, org, per

A, B = "a.mssante.fr", "b.mssante.fr"
CLIENTS = 6


def _lists(domain: str) -> list[list[dict]]:
    """Overlapping lists: shared addresses with different contents, and addresses only some lists hold."""
    holders = [CAMILLE, JEAN_PIERRE, ALIX]
    out = []
    for n in range(CLIENTS):
        boxes = [org("accueil", domain=domain, service=f"Accueil {n}"),
                 per("camille.martin", domain=domain, rank=1 + n % 3)]
        boxes += [org(f"service{k}", domain=domain) for k in range(n, n + 4)]
        boxes.append(per(f"pro{n}", holder=holders[n % 3], domain=domain))
        out.append(boxes)
    return out


def _publish_all(env: Env, jobs: list[tuple[str, list[dict]]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def send(i: int, domain: str, boxes: list[dict]) -> None:
        with httpx.Client(base_url=env.url, timeout=120) as client:
            barrier.wait()
            try:
                results[i] = client.put(
                    f"/api/v1/domains/{domain}/mailboxes", content=orjson.dumps({"mailboxes": boxes}),
                    params={"confirm_mass_delete": "true"},
                    headers={"Authorization": f"Bearer {env.tokens['alpha']}", "Content-Type": "application/json"},
                )
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results[i] = exc

    threads = [threading.Thread(target=send, args=(i, d, b)) for i, (d, b) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    for r in results:
        assert isinstance(r, httpx.Response) and r.status_code == 200, r if not isinstance(r, httpx.Response) else r.text
    return results


def _view(box: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in box.items() if k not in ("responsible", "active", "source")))


def _replay(env: Env, domain: str) -> dict[str, tuple]:
    state: dict[str, tuple] = {}
    with env.store.read() as conn:
        for row in conn.execute(select(journal).where(journal.c.scope == domain).order_by(journal.c.id)).mappings():
            if row["change"] == "deleted":
                del state[row["key"]]
            else:
                state[row["key"]] = _view(orjson.loads(row["data"]))
    return state


def _simulate(lists_in_order: list[list[dict]]) -> list[tuple[int, int, int, int]]:
    """(created, updated, deleted, unchanged) of applying the lists one after the other."""
    state: dict[str, dict] = {}
    counts = []
    for boxes in lists_in_order:
        new = {b["address"]: b for b in boxes}
        created = sum(1 for a in new if a not in state)
        updated = sum(1 for a in new if a in state and state[a] != new[a])
        unchanged = sum(1 for a in new if a in state and state[a] == new[a])
        deleted = sum(1 for a in state if a not in new)
        counts.append((created, updated, deleted, unchanged))
        state = new
    return counts


def test_concurrent_publications_of_one_domain(env: Env) -> None:
    lists = _lists(A)
    for _ in range(3):
        responses = _publish_all(env, [(A, boxes) for boxes in lists])
        reports = [r.json() for r in responses]
        assert all(r["rejected"] == [] for r in reports)
        order = sorted(range(CLIENTS), key=lambda i: reports[i]["publication"])
        # The final list is the one applied last, exactly.
        final = env.current(A)
        last = lists[order[-1]]
        assert set(final) == {b["address"] for b in last}
        assert final[f"accueil@{A}"]["service"] == last[0]["service"]
        # The journal replays to the final state.
        assert _replay(env, A) == {a: _view(b) for a, b in final.items()}
        # Versions grow by one per publication that changed something.
        versions = [reports[i]["version"] for i in order]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        env.put(A, [], params={"confirm_mass_delete": "true"})
    # Reports match applying the lists in publication order (last round, from an empty domain).
    expected = _simulate([lists[i] for i in order])
    assert [(reports[i]["created"], reports[i]["updated"], reports[i]["deleted"], reports[i]["unchanged"])
            for i in order] == expected


def test_concurrent_publications_of_different_domains(env: Env) -> None:
    jobs = [(A, boxes) for boxes in _lists(A)[:3]] + [(B, boxes) for boxes in _lists(B)[:3]]
    _publish_all(env, jobs)
    assert len(env.current(A)) == 7 and len(env.current(B)) == 7
    assert set(_replay(env, A)) == set(env.current(A))
    assert set(_replay(env, B)) == set(env.current(B))
