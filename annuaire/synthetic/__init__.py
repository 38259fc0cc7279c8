"""Fictitious national-scale data in the exact layouts of the national files.

`generate(outdir, professionals, seed, day)` writes, for the timestamp of day
`day` (2026-01-01 03:00 + day days):

- `PS_LibreAcces_<ts>.zip` (Personne_activite, SavoirFaire, Dipl_AutExerc);
- `Extraction_Correspondance_MSSante_<ts>.zip`.

Everything is invented (names assembled from syllables, fictitious phone
ranges) and deterministic: same (professionals, seed, day), same bytes. Day D
is day 0 plus D days of churn, never a different world.

Modules: tables (codes and national calibration), names, geo (communes,
addresses), ids (RPPS, FINESS, SIRET...), structures, world (persons and
activities), mailboxes, churn, writer.
"""

from __future__ import annotations

import time
from pathlib import Path

from annuaire import formats
from annuaire.progress import Reporter, steps

__all__ = ["build_world", "generate", "timestamp"]


def build_world(professionals: int, seed: int, day: int = 0, progress: Reporter | None = None):
    """The in-memory world of `day` (for tests and benchmarks)."""
    from annuaire.synthetic.churn import apply_days
    from annuaire.synthetic.world import build_world as build

    if professionals < 1:
        raise ValueError("professionals must be at least 1")
    if day < 0:
        raise ValueError("day must be >= 0")
    progress = steps(progress)  # (the steps below say what they weigh)
    world = build(professionals, seed, progress)
    world.churn_totals = apply_days(world, day, progress)
    return world


def timestamp(day: int) -> str:
    """YYYYMMDDhhmm of day D (2026-01-01 03:00 + D days)."""
    from annuaire.synthetic.writer import timestamp as ts

    return ts(day)


def generate(outdir: Path, professionals: int, seed: int, day: int = 0, progress: Reporter | None = None,
             layout: str = "56") -> dict:
    """Write the two national zips of day `day`; return their paths, line counts and world figures.

    layout: "56" (current Personne_activite layout) or "52" (2021-2022 layout).
    progress: an annuaire.progress.Reporter (start/advance/done), optional.
    """
    from annuaire.synthetic.writer import write_mssante, write_ps_libre_acces

    if layout not in ("56", "52"):
        raise ValueError("layout must be '56' (current) or '52' (2021-2022)")
    from annuaire.synthetic import pace

    started = time.perf_counter()
    progress = steps(progress)
    progress.plan(pace.whole(professionals, day))
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    world = build_world(professionals, seed, day, progress)
    built = time.perf_counter()
    ts = timestamp(day)
    ps_path = outdir / formats.file_name(formats.PS_LIBRE_ACCES, ts, "zip")
    ms_path = outdir / formats.file_name(formats.MSSANTE, ts, "zip")
    lines = write_ps_libre_acces(world, ps_path, ts, layout, progress)
    lines["mssante"] = write_mssante(world, ms_path, ts, progress)
    progress.done()
    st = world.structures
    result = {
        "timestamp": ts,
        "ps_libre_acces": ps_path,
        "mssante": ms_path,
        "personne_activite_lines": lines["personne_activite"],
        "savoir_faire_lines": lines["savoir_faire"],
        "diplomes_lines": lines["diplomes"],
        "mssante_lines": lines["mssante"],
        "persons": world.alive_persons(),
        "structures": sum(1 for n in st.nact if n > 0),
    }
    result.update(world.boxes.counts())
    result.update({f"churn_{k}": v for k, v in sorted(world.churn_totals.items())})
    result["seconds_build"] = round(built - started, 1)
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result
