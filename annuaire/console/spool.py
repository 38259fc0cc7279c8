"""Uploaded lists kept between their dry run and the operator's confirmation.

Why files: the confirmation may reach another worker process of the same
server, so the list waits in a private directory (mode 0700) under a random
name, with who may publish it, for which domain and at which version (the
version shown in the dry run is the If-Match of the publication). An upload
older than KEEP seconds is refused and removed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from annuaire.errors import Gone, InternalError

KEEP = 30 * 60


@dataclass(frozen=True)
class Upload:
    ident: str
    operator_id: int
    domain: str
    version: int
    media: str
    body: bytes


class Spool:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.gettempdir()) / f"annuaire-console-{os.getuid()}"

    def _dir(self) -> Path:
        """The directory, private to this user (one made by someone else is never used)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.directory.lstat()
        if info.st_uid != os.getuid() or not self.directory.is_dir() or self.directory.is_symlink():
            raise InternalError(f"the console's upload directory {self.directory} belongs to another user")
        if info.st_mode & 0o077:
            self.directory.chmod(0o700)
        return self.directory

    def put(self, operator_id: int, domain: str, version: int, media: str, body: bytes) -> str:
        self.sweep()
        ident = secrets.token_urlsafe(18)
        base = self._dir()
        (base / f"{ident}.list").write_bytes(body)
        meta = {"o": operator_id, "d": domain, "v": version, "m": media}
        (base / f"{ident}.json").write_bytes(orjson.dumps(meta))
        return ident

    def get(self, ident: str, operator_id: int, domain: str) -> Upload:
        """The upload `ident` of this operator and domain; Gone when unknown, expired or another's."""
        missing = Gone("cette liste envoyée n'est plus disponible (plus de 30 minutes, déjà publiée ou "
                       "inconnue) : envoyez le fichier à nouveau ; rien n'a été publié")
        if not ident or not ident.replace("-", "").replace("_", "").isalnum() or len(ident) > 40:
            raise missing
        meta_path, list_path = self.directory / f"{ident}.json", self.directory / f"{ident}.list"
        try:
            if time.time() - meta_path.stat().st_mtime > KEEP:
                self.drop(ident)
                raise missing
            meta = orjson.loads(meta_path.read_bytes())
            body = list_path.read_bytes()
        except (OSError, ValueError) as exc:
            raise missing from exc
        if meta["o"] != operator_id or meta["d"] != domain:
            raise missing
        return Upload(ident, meta["o"], meta["d"], int(meta["v"]), meta["m"], body)

    def drop(self, ident: str) -> None:
        for suffix in (".json", ".list"):
            (self.directory / f"{ident}{suffix}").unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove uploads older than KEEP (called at each upload)."""
        if not self.directory.exists():
            return
        limit = time.time() - KEEP
        for path in self.directory.iterdir():
            try:
                if path.stat().st_mtime < limit:
                    path.unlink(missing_ok=True)
            except OSError:
                continue
