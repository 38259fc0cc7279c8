"""The extractions available in a directory: listing, latest, pruning.

An extraction is available once BOTH its zip and its manifest are in place
(the manifest is written last), so a listing never offers a file that is still
being written. Temporary files start with a dot and are ignored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.extractions.snapshot import PARIS
from annuaire.nationalfiles.manifest import Manifest

KINDS = (formats.MSSANTE, formats.PS_LIBRE_ACCES)


@dataclass(frozen=True)
class PublishedExtraction:
    name: str
    ts: str
    zip_path: Path
    manifest_path: Path

    def manifest(self) -> Manifest:
        return _read_manifest(self.manifest_path, self.manifest_path.stat().st_mtime_ns)


_MANIFEST_CACHE: dict[tuple[Path, int], Manifest] = {}


def _read_manifest(path: Path, mtime_ns: int) -> Manifest:
    key = (path, mtime_ns)
    cached = _MANIFEST_CACHE.get(key)
    if cached is None:
        if len(_MANIFEST_CACHE) > 256:
            _MANIFEST_CACHE.clear()
        cached = _MANIFEST_CACHE[key] = Manifest.read(path)
    return cached


def list_extractions(outdir: Path, name: str | None = None) -> list[PublishedExtraction]:
    """Complete extractions (zip + manifest), oldest first."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    found = []
    for child in os.scandir(outdir):
        if child.name.startswith(".") or not child.name.endswith(".zip"):
            continue
        parsed = formats.parse_file_name(child.name)
        if parsed is None or parsed[0] not in KINDS or (name and parsed[0] != name):
            continue
        manifest_path = outdir / formats.file_name(parsed[0], parsed[1], "json")
        if manifest_path.exists():
            found.append(PublishedExtraction(parsed[0], parsed[1], Path(child.path), manifest_path))
    found.sort(key=lambda e: (e.ts, e.name))
    return found


def latest(outdir: Path, name: str) -> PublishedExtraction | None:
    """The newest complete extraction of `name`, whose manifest is readable."""
    for entry in reversed(list_extractions(outdir, name)):
        try:
            entry.manifest()
        except (ImportFileError, OSError):
            continue
        return entry
    return None


def prune(outdir: Path, keep_days: int, now: datetime | None = None) -> list[Path]:
    """Remove extractions older than `keep_days` (the newest of each kind always stays)."""
    now = (now or datetime.now(PARIS)).astimezone(PARIS)
    limit = (now - timedelta(days=keep_days)).strftime(formats.TIMESTAMP_FORMAT)
    removed: list[Path] = []
    for kind in KINDS:
        entries = list_extractions(outdir, kind)
        for entry in entries[:-1]:
            if entry.ts < limit:
                for path in (entry.manifest_path, entry.zip_path):  # manifest first: no longer offered
                    path.unlink(missing_ok=True)
                    removed.append(path)
    # Leftovers of an interrupted writer (a day old: surely not being written).
    if Path(outdir).is_dir():
        for child in os.scandir(outdir):
            stale = child.name.startswith(".") and ".tmp-" in child.name
            if stale and child.stat().st_mtime < time.time() - 86400:
                Path(child.path).unlink(missing_ok=True)
                removed.append(Path(child.path))
    return removed
