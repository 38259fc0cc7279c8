"""The small JSON file describing one of our extractions: `<name>_<ts>.json`, read side.

`generated_at` (UTC, stored timestamp format) is the instant the extraction's
read snapshot was taken; `journal_cursor` is the exact point of that snapshot in
the journal: a consumer asking "what changed since this extraction" passes it
to the publication API's domain history (`…/history?cursor=…`). The
SHA-256 of the zip and of each text file, and each file's line count, let a
consumer detect a truncated or corrupt download before using it. Written by
`annuaire/extractions/manifest.py`; read here by whoever checks a download.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annuaire import formats
from annuaire.errors import ImportFileError

FORMAT_VERSION = 1
HASH_BLOCK = 1 << 20


@dataclass
class MemberInfo:
    """What the manifest says about one text file of the archive."""

    name: str
    lines: int = 0  # data lines, header excluded
    bytes: int = 0
    sha256: str = ""


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

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n").encode()

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


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed (hashlib releases the GIL: another thread can work)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


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


def expected_member(path: Path, member: str | None, manifest: Manifest, kind: str, label: str) -> MemberInfo:
    """What `manifest` announces for the text file at `path` (alone, or `member` of the zip
    at `path`), after checking what can be checked before reading it: the kind, the zip's
    SHA-256, or the lone text file's. The member's own line count is the reader's to check."""
    if manifest.name != kind:
        raise ImportFileError(label, f"the manifest describes a {manifest.name} extraction")
    if member is not None:
        verify_archive(path, manifest)
    expected = manifest.member(member or path.name)
    if expected is None:
        raise ImportFileError(label, f"{member or path.name} is not listed in its manifest {manifest.file_name}")
    if member is None and sha256_file(path) != expected.sha256:
        raise ImportFileError(label, f"SHA-256 does not match the manifest {manifest.file_name}: corrupt or truncated")
    return expected
