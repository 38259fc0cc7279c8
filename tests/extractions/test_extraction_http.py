"""Download endpoints over real HTTP: headers, caching, conditional and range requests."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from io import BytesIO

import httpx
import pytest
from starlette.applications import Starlette

from annuaire.config import Settings
from annuaire.extractions.generate import generate
from annuaire.extractions.http import routes

from .live import serve
from .sample_data import populate

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
MSSANTE_URL = "/extractions/Extraction_Correspondance_MSSante"


@pytest.fixture
def site(tmp_path):
    """A store with two days of extractions, served by a real uvicorn server."""
    from annuaire.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    populate(store)
    outdir = tmp_path / "extractions"
    generate(store, outdir, now=NOW - timedelta(days=1))
    manifests = generate(store, outdir, now=NOW)
    settings = Settings(extractions_dir=str(outdir), extractions_keep_days=7)
    app = Starlette(routes=routes(store, settings))
    with serve(app) as url, httpx.Client(base_url=url) as client:
        yield client, manifests, outdir, store
    store.dispose()


def test_latest_zip_with_its_headers(site):
    client, manifests, _outdir, _ = site
    response = client.get(MSSANTE_URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == "attachment; filename=Extraction_Correspondance_MSSante_202611250300.zip"
    assert response.headers["etag"] == f'"{manifests[0].zip["sha256"]}"'
    assert response.headers["last-modified"] == "Wed, 25 Nov 2026 02:00:00 GMT"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["link"] == (
        '</extractions/Extraction_Correspondance_MSSante_202611250300.json>; rel="describedby"; type="application/json"'
    )
    assert hashlib.sha256(response.content).hexdigest() == manifests[0].zip["sha256"]
    assert zipfile.ZipFile(BytesIO(response.content)).namelist() == ["Extraction_Correspondance_MSSante_202611250300.txt"]
    ps = client.get("/extractions/PS_LibreAcces")
    assert ps.status_code == 200 and "PS_LibreAcces_202611250300.zip" in ps.headers["content-disposition"]


def test_head_gives_the_timestamp_without_the_body(site):
    client, manifests, _, _ = site
    response = client.head(MSSANTE_URL)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == manifests[0].zip["bytes"]
    assert "Extraction_Correspondance_MSSante_202611250300.zip" in response.headers["content-disposition"]


def test_conditional_requests(site):
    client, manifests, _, _ = site
    etag = f'"{manifests[0].zip["sha256"]}"'
    same = client.get(MSSANTE_URL, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert client.get(MSSANTE_URL, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert client.get(MSSANTE_URL, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.head(MSSANTE_URL, headers={"If-None-Match": etag}).status_code == 304
    later = format_datetime(NOW + timedelta(hours=1), usegmt=True)
    earlier = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    exactly = format_datetime(NOW, usegmt=True)
    assert client.get(MSSANTE_URL, headers={"If-Modified-Since": later}).status_code == 304
    assert client.get(MSSANTE_URL, headers={"If-Modified-Since": exactly}).status_code == 304
    assert client.get(MSSANTE_URL, headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get(MSSANTE_URL, headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110).
    assert client.get(MSSANTE_URL, headers={"If-None-Match": '"other"', "If-Modified-Since": later}).status_code == 200


def test_a_new_extraction_changes_the_etag(site):
    client, _manifests, outdir, store = site
    first = client.get(MSSANTE_URL)
    from annuaire.store.schema import mailbox

    with store.write() as conn:
        conn.execute(mailbox.update().where(mailbox.c.address == "noel.petit@infirmier.mssante.fr").values(active=False))
    generate(store, outdir, now=NOW + timedelta(days=1))
    second = client.get(MSSANTE_URL, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    assert "202611260300" in second.headers["content-disposition"]
    assert b"noel.petit" not in zipfile.ZipFile(BytesIO(second.content)).read(
        "Extraction_Correspondance_MSSante_202611260300.txt"
    )


def test_range_requests_resume_a_download(site):
    client, manifests, _, _ = site
    whole = client.get(MSSANTE_URL).content
    etag = f'"{manifests[0].zip["sha256"]}"'
    part = client.get(MSSANTE_URL, headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    assert whole[:100] + part.content == whole
    middle = client.get(MSSANTE_URL, headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == whole[10:20]
    # If-Range: the part is only sent if the file is still the same, else the whole file.
    assert client.get(MSSANTE_URL, headers={"Range": "bytes=100-", "If-Range": etag}).status_code == 206
    changed = client.get(MSSANTE_URL, headers={"Range": "bytes=100-", "If-Range": '"older"'})
    assert changed.status_code == 200 and changed.content == whole
    beyond = client.get(MSSANTE_URL, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole)}"


def test_listing_json_and_html(site):
    client, manifests, _, _ = site
    listing = client.get("/extractions/").json()
    assert listing["keep_days"] == 7
    assert listing["latest"] == {
        "Extraction_Correspondance_MSSante": "/extractions/Extraction_Correspondance_MSSante",
        "PS_LibreAcces": "/extractions/PS_LibreAcces",
    }
    assert [(e["name"], e["timestamp"]) for e in listing["extractions"]] == [
        ("PS_LibreAcces", "202611250300"),
        ("Extraction_Correspondance_MSSante", "202611250300"),
        ("PS_LibreAcces", "202611240300"),
        ("Extraction_Correspondance_MSSante", "202611240300"),
    ]
    first = listing["extractions"][1]
    assert first["sha256"] == manifests[0].zip["sha256"]
    dated = client.get(first["url"])
    assert dated.status_code == 200 and dated.headers["cache-control"].startswith("public")
    assert hashlib.sha256(dated.content).hexdigest() == first["sha256"]
    manifest = client.get(first["manifest_url"])
    assert manifest.status_code == 200 and manifest.json()["files"][0]["lines"] == 6  # (robot@: its structure is unknown, so hidden)
    page = client.get("/extractions/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text and "Extractions publiques quotidiennes" in page.text
    assert "/extractions/Extraction_Correspondance_MSSante_202611240300.zip" in page.text


def test_unknown_and_missing_extractions_are_404(site, tmp_path):
    client, _, _, _ = site
    for path in ("/extractions/Nope", "/extractions/PS_LibreAcces_209901010000.zip", "/extractions/annuaire.sqlite"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/extractions/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_no_extraction_yet(tmp_path):
    settings = Settings(extractions_dir=str(tmp_path / "empty"))
    app = Starlette(routes=routes(None, settings))  # type: ignore[arg-type]
    with serve(app) as url:
        response = httpx.get(url + MSSANTE_URL)
        assert response.status_code == 404
        assert "generated" in response.json()["detail"]
        assert httpx.get(url + "/extractions/").json()["extractions"] == []
