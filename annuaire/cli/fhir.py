"""FHIR API commands: `apikey add|list|revoke` and `fhir render`."""

from __future__ import annotations

import click
from rich.table import Table

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context


@cli.group()
def apikey() -> None:
    """API keys of the FHIR API (header ESANTE-API-KEY).

    \b
    Example:
      annuaire apikey add "Logiciel de cabinet X"
      annuaire apikey list
      annuaire apikey revoke "Logiciel de cabinet X"
    """


@apikey.command("add")
@click.argument("name")
@click.option("--rate-limit", type=int, default=None, metavar="N",
              help="Requests per second for this key (default: ANNUAIRE_FHIR_RATE_LIMIT, 17).")
@pass_context
@handle_errors
def apikey_add(ctx: Context, name: str, rate_limit: int | None) -> None:
    """Issue a key for NAME; the key is printed once, only its hash is kept.

    \b
    Example:
      annuaire apikey add "Hôpital fictif - messagerie" --rate-limit 50
    """
    from annuaire.fhir import auth

    key = auth.add_key(ctx.store, name, rate_limit)
    console.print(f"API key for {name!r} (shown once, keep it safe):", highlight=False)
    click.echo(key)


@apikey.command("list")
@pass_context
@handle_errors
def apikey_list(ctx: Context) -> None:
    """List keys (names, limits, state; never the keys)."""
    from annuaire.fhir import auth

    table = Table("name", "rate limit (req/s)", "active", "created")
    for k in auth.list_keys(ctx.store):
        table.add_row(k.name, str(k.rate_limit or "default"), "yes" if k.active else "revoked", k.created_at[:19])
    console.print(table)


@apikey.command("revoke")
@click.argument("name")
@pass_context
@handle_errors
def apikey_revoke(ctx: Context, name: str) -> None:
    """Revoke the key of NAME (effective within seconds)."""
    from annuaire.fhir import auth

    auth.revoke_key(ctx.store, name)
    console.print(f"revoked the API key of {name!r}", highlight=False)


@cli.group()
def fhir() -> None:
    """FHIR API maintenance."""


@fhir.command("render")
@click.option("--full", is_flag=True, help="Re-render every resource (unchanged ones are not rewritten).")
@pass_context
@handle_errors
def fhir_render(ctx: Context, full: bool) -> None:
    """Bring the rendered FHIR resources up to date with the store.

    The server does this by itself every second; run it after a national
    import to have it done before serving.

    \b
    Example:
      annuaire fhir render
    """
    render_cache(ctx, full=full)


def render_cache(ctx: Context, *, full: bool = False) -> None:
    """Render the FHIR cache now, with progress and a one-line summary (fhir render, import)."""
    counts: dict[str, int] = {}

    def progress(label: str, n: int) -> None:
        counts[label] = counts.get(label, 0) + n
        if not ctx.quiet and console.is_terminal:
            console.print(f"  {label}: {counts[label]:,}", end="\r", highlight=False)

    from annuaire.fhir.cache import refresh

    stats = refresh(ctx.store, full=full, progress=progress)
    if not ctx.quiet:
        console.print(
            f"FHIR cache: rendered {stats.rendered:,} resources, {stats.changed:,} changed"
            f"{' (full pass)' if stats.full else ''}, {stats.journal_rows:,} journal rows followed",
            highlight=False,
        )


def report_cache_lag(ctx: Context) -> None:
    """After `--no-render`: say how far behind the FHIR cache is, and how to catch up."""
    from annuaire.fhir.cache import status

    state = status(ctx.store)
    if state.behind:
        console.print(
            f"[yellow]FHIR cache behind the store by {state.backlog:,} journal rows[/]: a running server "
            "answers 503 until it has caught up; run `annuaire fhir render` to do it now.", highlight=False)
