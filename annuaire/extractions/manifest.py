"""The small JSON file describing one extraction: `<name>_<ts>.json`.

`generated_at` (UTC, stored timestamp format) is the instant the extraction's
read snapshot was taken; `journal_cursor` is the exact point of that snapshot in
the journal: a consumer asking "what changed since this extraction" passes it
to the publication API's domain history (`…/history?cursor=…`). The
SHA-256 of the zip and of each text file, and each file's line count, let a
consumer detect a truncated or corrupt download before using it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.extractions.package import (
    ArchiveInfo,
    MemberInfo,
    atomic_write_bytes,
    sha256_file,
)

FORMAT_VERSION = 1


@dataclass
class Manifest:
    name: str  # Extraction_Correspondance_MSSante | PS_LibreAcces
    timestamp: str  # YYYYMMDDhhmm, Paris time, as in the file names
    generated_at: str  # UTC; the "changes since" point of this extraction
    zip: dict[str, Any]  # name, bytes, sha256
    files: list[dict[str, Any]] = field(default_factory=list)  # name, lines, bytes, sha256
    format: int = FORMAT_VERSION
    journal_cursor: str = ""  # "changes since": …/history?cursor=<this> (exact, see extractions.snapshot)

    @property
    def file_name(self) -> str:
        return formats.file_name(self.name, self.timestamp, "json")

    @classmethod
    def from_archive(cls, name: str, ts: str, generated_at: str, archive: ArchiveInfo,
                     journal_cursor: str = "") -> Manifest:
        return cls(
            name=name,
            timestamp=ts,
            generated_at=generated_at,
            zip={"name": archive.name, "bytes": archive.bytes, "sha256": archive.sha256},
            files=[asdict(m) for m in archive.members],
            journal_cursor=journal_cursor,
        )

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n").encode()

    def write(self, outdir: Path) -> Path:
        path = Path(outdir) / self.file_name
        atomic_write_bytes(path, self.to_json())
        return path

    @classmethod
    def parse(cls, data: bytes, label: str) -> Manifest:
        """Read a manifest; a malformed one is an ImportFileError naming `label`."""
        try:
            raw = json.loads(data)
            manifest = cls(
                name=str(raw["name"]),
                timestamp=str(raw["timestamp"]),
                generated_at=str(raw["generated_at"]),
                zip=dict(raw["zip"]),
                files=[dict(f) for f in raw["files"]],
                format=int(raw.get("format", FORMAT_VERSION)),
                journal_cursor=str(raw.get("journal_cursor", "")),
            )
            for f in manifest.files:
                str(f["name"]), int(f["lines"]), str(f["sha256"])
            str(manifest.zip["sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ImportFileError(label, f"not a valid extraction manifest ({exc})") from exc
        return manifest

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.parse(Path(path).read_bytes(), Path(path).name)

    def member(self, name: str) -> MemberInfo | None:
        for f in self.files:
            if f["name"] == name:
                return MemberInfo(f["name"], int(f["lines"]), int(f.get("bytes", 0)), f["sha256"])
        return None


def manifest_path_for(zip_path: Path) -> Path:
    """`X_<ts>.zip` -> `X_<ts>.json` beside it."""
    return Path(zip_path).with_suffix(".json")


def verify_archive(zip_path: Path, manifest: Manifest) -> None:
    """Check a downloaded zip against its manifest; ImportFileError on mismatch."""
    label = Path(zip_path).name
    actual = sha256_file(zip_path)
    if actual != manifest.zip["sha256"]:
        raise ImportFileError(
            label,
            f"SHA-256 {actual[:16]}… does not match the manifest {manifest.file_name} "
            f"({str(manifest.zip['sha256'])[:16]}…): truncated or corrupt download",
        )


def verify_member(zip_path: Path, member: str, manifest: Manifest) -> None:
    """Check one text member's SHA-256 against the manifest (streamed)."""
    expected = manifest.member(member)
    label = f"{Path(zip_path).name}:{member}"
    if expected is None:
        raise ImportFileError(label, f"not listed in the manifest {manifest.file_name}")
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(zip_path) as archive, archive.open(member) as stream:
            while block := stream.read(1 << 20):
                h.update(block)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFileError(label, f"corrupt or truncated archive ({exc})") from exc
    if h.hexdigest() != expected.sha256:
        raise ImportFileError(label, f"SHA-256 does not match the manifest {manifest.file_name}")
