"""Core commands: generate, import, stats."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from rich.table import Table

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.progress import reporter


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--professionals", "-n", type=int, default=20_000, show_default=True, help="Number of professionals.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed: same seed and day, same bytes.")
@click.option("--day", type=int, default=0, show_default=True, help="Day of the same world (daily churn applied).")
@pass_context
@handle_errors
def generate(ctx: Context, outdir: Path, professionals: int, seed: int, day: int) -> None:
    """Write fictitious national files (PS_LibreAcces and MSSanté zips) in the real layouts.

    \b
    Example:
      annuaire generate data/ --professionals 1950000 --seed 1 --day 1
    """
    from annuaire.synthetic import generate as run_generator

    result = run_generator(outdir, professionals=professionals, seed=seed, day=day,
                           progress=reporter(console, ctx.quiet, "generate"))
    for key, value in result.items():
        console.print(f"{key}: {value}", highlight=False)


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True,
              help="Import anyway: a file older than the last imported one, dated in the future, a part of a "
                   "day's referential, or one that deactivates more than the allowed share (a truncated file?).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--no-render", is_flag=True,
              help="Do not bring the FHIR cache up to date before returning (bulk scripts); the command "
                   "then says how far behind it is.")
@pass_context
@handle_errors
def import_(ctx: Context, paths: tuple[Path, ...], force: bool, as_json: bool, no_render: bool) -> None:
    """Import national files: PS_LibreAcces zip (or its .txt files) and Extraction_Correspondance_MSSante.

    The referential REPLACES the current state: new records are created,
    changed ones updated, missing ones deactivated, all journaled. All the
    files named are imported in ONE transaction: on any error (a malformed
    MSSanté file included) the store is left exactly as it was.

    A file that would deactivate more than 5 % of the active persons,
    activities or structures (ANNUAIRE_REFERENTIAL_MAX_DEACTIVATION), a file
    dated in the future, or a referential without its three files is refused
    unless --force.

    The store is created when there is none yet (at the current schema); a
    store behind this version of annuaire is refused (`annuaire db upgrade`).

    Before it reports success the FHIR cache is brought up to date (a first
    national import renders everything: minutes), so that no server answers
    from a cache behind the import; `--no-render` skips that.

    \b
    Example:
      annuaire import PS_LibreAcces_202611250300.zip Extraction_Correspondance_MSSante_202611250300.zip
    """
    from annuaire.cli.fhir import render_cache, report_cache_lag
    from annuaire.config import Settings
    from annuaire.referential.importer import import_paths, summary_json

    settings = Settings.from_env()
    with ctx.filling_store() as store:  # a new store is created; removed again if this first import fails
        summaries = import_paths(store, list(paths), force=force, progress=reporter(console, ctx.quiet, "import"),
                                 max_deactivation=settings.referential_max_deactivation, settings=settings)
    if no_render:
        report_cache_lag(ctx)
    else:
        render_cache(ctx)
    if as_json:
        sys.stdout.buffer.write(summary_json(summaries) + b"\n")
        return
    for summary in summaries:
        if summary.counts:
            table = Table(title=f"Referential {summary.file_ts} (run {summary.run_id})")
            for column in ("entity", "created", "updated", "deactivated", "unchanged"):
                table.add_column(column, justify="left" if column == "entity" else "right")
            for entity, counts in summary.counts.items():
                c = counts.as_dict()
                table.add_row(entity, *(f"{c[k]:,}" for k in ("created", "updated", "deactivated", "unchanged")))
            console.print(table)
        if summary.mailboxes is not None:
            m = summary.mailboxes
            console.print(
                f"MSSanté mailboxes {summary.file_ts}: "
                + ", ".join(f"{k} {m[k]:,}" for k in ("created", "updated", "deleted", "unchanged") if k in m),
                highlight=False,
            )
        warnings = summary.warnings + (summary.mailboxes or {}).get("warnings", [])
        for warning in warnings[:50]:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        if len(warnings) > 50:
            console.print(f"[yellow]… and {len(warnings) - 50} more warnings[/]")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@pass_context
@handle_errors
def stats(ctx: Context, as_json: bool) -> None:
    """Counts per entity (active and inactive), per profession and per mailbox type.

    \b
    Example:
      annuaire stats
      annuaire --db postgresql+psycopg://annuaire@127.0.0.1/annuaire stats --json
    """
    from annuaire.referential.stats import collect

    data = collect(ctx.store)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
        return
    table = Table(title="Directory")
    table.add_column("entity")
    table.add_column("active", justify="right")
    table.add_column("inactive", justify="right")
    for name in ("persons", "activities", "structures", "mailboxes"):
        table.add_row(name, f"{data[name]:,}", f"{data[name + '_inactive']:,}")
    console.print(table)
    prof = Table(title="Active persons per profession")
    prof.add_column("profession")
    prof.add_column("persons", justify="right")
    for label, n in data["professions"].items():
        prof.add_row(label, f"{n:,}")
    console.print(prof)
    console.print("Mailboxes per type: " + ", ".join(f"{t} {n:,}" for t, n in data["mailbox_types"].items()), highlight=False)
