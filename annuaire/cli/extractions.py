"""`annuaire extract`: write the daily public extractions from the current state."""

from __future__ import annotations

import time
from pathlib import Path

import click

from annuaire import formats
from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.progress import reporter

_ONLY = {"mssante": formats.MSSANTE, "ps": formats.PS_LIBRE_ACCES}


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--only",
    type=click.Choice(sorted(_ONLY)),
    multiple=True,
    help="Write only this extraction (mssante: Extraction_Correspondance_MSSante, ps: PS_LibreAcces). Repeatable.",
)
@click.option("--keep-days", type=int, default=None, help="Then remove extractions older than N days (the newest stays).")
@pass_context
@handle_errors
def extract(ctx: Context, outdir: Path, only: tuple[str, ...], keep_days: int | None) -> None:
    """Write Extraction_Correspondance_MSSante_<ts>.zip and PS_LibreAcces_<ts>.zip,
    each with its manifest <name>_<ts>.json (generation time, line counts, SHA-256).

    Files appear atomically: a reader never sees a partial file.

    \b
    Example:
      annuaire extract /var/lib/annuaire/extractions --keep-days 7
    """
    from annuaire.extractions.generate import generate

    names = tuple(_ONLY[o] for o in only) or (formats.MSSANTE, formats.PS_LIBRE_ACCES)
    started = time.perf_counter()
    manifests = generate(ctx.store, outdir, names, keep_days=keep_days, progress=reporter(console, ctx.quiet, "extract"))
    for manifest in manifests:
        lines = ", ".join(f"{f['name']}: {f['lines']:,} lines" for f in manifest.files)
        click.echo(f"{outdir / manifest.zip['name']} ({manifest.zip['bytes']:,} bytes) — {lines}")
    if not ctx.quiet:
        console.print(f"done in {time.perf_counter() - started:.1f} s")
