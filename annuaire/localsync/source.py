"""Getting the extraction to integrate: a local file, or a download.

A download is conditional: the validators of the last successful sync
(ETag, Last-Modified) are sent back, and a 304 means there is nothing to do.
An interrupted download is resumed with a Range request guarded by If-Range,
so a file that changed meanwhile is downloaded again whole. The manifest is
found through the `Link: <…>; rel="describedby"` header (or beside a local
file) and lets the reader check the SHA-256 before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urljoin

import httpx

from annuaire import formats
from annuaire.errors import SourceUnavailable
from annuaire.nationalfiles.manifest import Manifest, manifest_path_for, sha256_file

TIMEOUT = httpx.Timeout(30.0, read=120.0)
_LINK = re.compile(r'<([^>]+)>\s*;[^,]*rel="?describedby"?', re.IGNORECASE)
_FILENAME = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.IGNORECASE)


@dataclass
class Acquired:
    """An extraction ready to read, and what to remember if the sync succeeds."""

    path: Path | None  # None when not modified
    label: str  # what the user gave: URL or file, for messages
    manifest: Manifest | None = None
    remember: dict[str, str | None] = field(default_factory=dict)  # meta to store after success
    not_modified: bool = False
    temporary: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.temporary:
            path.unlink(missing_ok=True)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def acquire(source: str, workdir: Path, previous: dict[str, str], conditional: bool, manifest: Path | None) -> Acquired:
    if is_url(source):
        return _download(source, workdir, previous, conditional)
    return _local(Path(source), manifest)


def _local(path: Path, manifest_path: Path | None) -> Acquired:
    if not path.is_file():
        raise SourceUnavailable(f"{path}: no such file")
    manifest = None
    candidate = manifest_path or manifest_path_for(path)
    if manifest_path is not None and not manifest_path.is_file():
        raise SourceUnavailable(f"{manifest_path}: no such manifest file")
    if candidate.is_file() and candidate != path:
        manifest = Manifest.read(candidate)
    return Acquired(path, str(path), manifest, {"source": str(path), "source_sha256": sha256_file(path)})


def _download(url: str, workdir: Path, previous: dict[str, str], conditional: bool) -> Acquired:
    part = workdir / ".localsync-download.part"
    part_meta = workdir / ".localsync-download.json"
    headers = {"Accept": "application/zip"}
    if conditional and previous.get("source") == url:
        if previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        if previous.get("last_modified"):
            headers["If-Modified-Since"] = previous["last_modified"]
    resume_from = _resumable(part, part_meta, url)
    if resume_from:
        headers["Range"] = f"bytes={resume_from}-"
        headers["If-Range"] = json.loads(part_meta.read_text())["etag"]
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return Acquired(None, url, not_modified=True)
                if response.status_code not in (200, 206):
                    raise SourceUnavailable(f"{url} answered {response.status_code} {response.reason_phrase}")
                etag = response.headers.get("etag")
                append = response.status_code == 206
                if etag and not etag.startswith("W/"):
                    part_meta.write_text(json.dumps({"url": url, "etag": etag}))
                with open(part, "ab" if append else "wb") as fh:
                    fh.writelines(response.iter_bytes(1 << 20))
                final_url = str(response.url)
                resp_headers = response.headers
            manifest = _fetch_manifest(client, final_url, resp_headers)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"cannot download {url}: {exc.__class__.__name__}: {exc}") from exc
    name = _filename(resp_headers.get("content-disposition", ""))
    path = workdir / f".localsync-download-{name or 'extraction.zip'}"
    part.replace(path)
    part_meta.unlink(missing_ok=True)
    remember = {
        "source": url,
        "etag": resp_headers.get("etag"),
        "last_modified": resp_headers.get("last-modified") or formatdate(usegmt=True),
        "source_sha256": sha256_file(path),
    }
    return Acquired(path, url, manifest, remember, temporary=[path])


def _resumable(part: Path, part_meta: Path, url: str) -> int:
    """Bytes already downloaded of the same URL, when a strong ETag guards them."""
    try:
        meta = json.loads(part_meta.read_text())
        size = part.stat().st_size
    except (OSError, ValueError):
        return 0
    return size if meta.get("url") == url and meta.get("etag") and size > 0 else 0


def _filename(disposition: str) -> str | None:
    m = _FILENAME.search(disposition)
    if not m:
        return None
    name = Path(m.group(1)).name  # never a path from the network
    return name if formats.parse_file_name(name) else None


def _fetch_manifest(client: httpx.Client, url: str, headers: httpx.Headers) -> Manifest | None:
    link = None
    for value in headers.get_list("link"):
        m = _LINK.search(value)
        if m:
            link = urljoin(url, m.group(1))
    if link is None:
        name = _filename(headers.get("content-disposition", ""))
        if name is None:
            return None
        link = urljoin(url, name.rsplit(".", 1)[0] + ".json")
        declared = False
    else:
        declared = True
    response = client.get(link)
    if response.status_code == 404 and not declared:
        return None
    if response.status_code != 200:
        raise SourceUnavailable(f"manifest {link} answered {response.status_code} {response.reason_phrase}")
    return Manifest.parse(response.content, link)
