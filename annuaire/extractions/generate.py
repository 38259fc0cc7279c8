"""Generating the daily extractions from the current state of the store.

`generate(store, outdir)` writes each extraction from its own consistent
snapshot, zip first and manifest last (see catalog: an extraction exists once
its manifest does), then prunes old ones. Also runnable as a module, which is
how the server's scheduler runs it in a separate process:
`python -m annuaire.extractions.generate OUTDIR` (store from ANNUAIRE_DB).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from annuaire import formats
from annuaire.extractions import catalog, mssante, pace, ps_libreacces
from annuaire.extractions.manifest import publish
from annuaire.extractions.package import AtomicArchive
from annuaire.extractions.snapshot import snapshot
from annuaire.nationalfiles.manifest import Manifest
from annuaire.progress import Reporter, Steps, steps
from annuaire.store import Store

WRITERS: dict[str, Callable[[Connection, AtomicArchive], object]] = {
    formats.MSSANTE: mssante.write,
    formats.PS_LIBRE_ACCES: ps_libreacces.write,
}


def generate_one(store: Store, outdir: Path, name: str, now: datetime | None = None, progress: Steps | None = None,
                 expected: dict[str, int] | None = None) -> Manifest:
    """Write `<name>_<ts>.zip` and its manifest; return the manifest (`progress`: a step per
    member file of `expected` lines)."""
    if name not in WRITERS:
        raise ValueError(f"unknown extraction {name!r} (known: {', '.join(WRITERS)})")
    with snapshot(store, now) as snap, AtomicArchive(Path(outdir), name, snap.ts, progress, expected) as archive:
        WRITERS[name](snap.conn, archive)
    return publish(Path(outdir), name, snap.ts, snap.generated_at, archive.info, snap.journal_cursor)


def generate(
    store: Store,
    outdir: Path,
    names: tuple[str, ...] = catalog.KINDS,
    keep_days: int | None = None,
    now: datetime | None = None,
    progress: Reporter | None = None,
) -> list[Manifest]:
    """Write every requested extraction, then remove those older than `keep_days`."""
    steps_ = steps(progress)
    unknown = [name for name in names if name not in WRITERS]
    expected: dict[str, int] = {}
    if progress is not None and not unknown:  # (the lines counted first: the overall time left)
        with store.read() as conn:
            expected = pace.expected_lines(conn, names)
        steps_.plan(sum(pace.weight(kind, lines) for kind, lines in expected.items()))
    manifests = [generate_one(store, outdir, name, now, steps_, expected) for name in names]
    steps_.done()
    if keep_days is not None:
        catalog.prune(Path(outdir), keep_days)
    return manifests


def main(argv: list[str]) -> int:
    """Entry point of the scheduler's subprocess: OUTDIR [KEEP_DAYS]."""
    from annuaire.errors import DirectoryError
    from annuaire.store import open_store

    outdir = Path(argv[0])
    keep_days = int(argv[1]) if len(argv) > 1 else None
    try:
        store = open_store()
        try:
            for manifest in generate(store, outdir, keep_days=keep_days):
                lines = sum(f["lines"] for f in manifest.files)
                print(f"{manifest.zip['name']}: {lines} lines", flush=True)
        finally:
            store.dispose()
    except DirectoryError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
