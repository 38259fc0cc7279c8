"""The demo's sample list is accepted as is by the API (no rejection, no warning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from annuaire.mailboxes.sample import DEMO_DOMAIN, prepare_demo
from tests.mailboxes.mailbox_fixtures import make_env


def test_sample_list_publishes_cleanly(store: Any, tmp_path: Path) -> None:
    with make_env(store) as env:
        demo = prepare_demo(store, tmp_path, env.url)
        again = prepare_demo(store, tmp_path, env.url)  # idempotent: a new token, same operator and domain
        assert again["token"] != demo["token"]
        body = Path(demo["file"]).read_bytes()
        r = env.client.put(f"/api/v1/domains/{DEMO_DOMAIN}/mailboxes", content=body,
                           headers={"Authorization": f"Bearer {again['token']}", "Content-Type": "application/json"})
        report = r.json()
        assert r.status_code == 200 and report["rejected"] == [] and report["warnings"] == []
        assert report["created"] == len(orjson.loads(body)["mailboxes"]) >= 2
        assert demo["command"].startswith(f"annuaire publish {DEMO_DOMAIN} ")
