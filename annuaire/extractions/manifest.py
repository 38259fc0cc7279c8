"""Writing an extraction's manifest `<name>_<ts>.json`, after its zip.

The manifest itself (fields, parsing, checks) is the readers' too:
`annuaire/nationalfiles/manifest.py`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from annuaire.extractions.package import ArchiveInfo, atomic_write_bytes
from annuaire.nationalfiles.manifest import Manifest


def publish(outdir: Path, name: str, ts: str, generated_at: str, archive: ArchiveInfo,
            journal_cursor: str = "") -> Manifest:
    """Describe the finished `archive` and write its manifest beside it, atomically: an
    extraction exists (`catalog`) once its manifest does."""
    manifest = Manifest(
        name=name,
        timestamp=ts,
        generated_at=generated_at,
        zip={"name": archive.name, "bytes": archive.bytes, "sha256": archive.sha256},
        files=[asdict(m) for m in archive.members],
        journal_cursor=journal_cursor,
    )
    atomic_write_bytes(Path(outdir) / manifest.file_name, manifest.to_json())
    return manifest
