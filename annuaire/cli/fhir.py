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
@click.option("--expires", default=None, metavar="DATE",
              help="Expiry: a date (valid through the end of that day, UTC) or an ISO 8601 instant, "
                   "e.g. 2027-12-31. Default: no expiry.")
@pass_context
@handle_errors
def apikey_add(ctx: Context, name: str, rate_limit: int | None, expires: str | None) -> None:
    """Issue a key for NAME; the key is printed once, only its hash is kept.

    The key goes into the store the servers use, which must exist already: a
    mistyped --db is refused (exit 3), never created empty with the key in it.

    \b
    Example:
      annuaire apikey add "Hôpital fictif - messagerie" --rate-limit 50 --expires 2027-12-31
    """
    from annuaire.fhir import auth
    from annuaire.store.credentials import parse_expiry, shown_expiry

    key = auth.add_key(ctx.store, name, rate_limit, expires=expires)
    console.print(f"API key for {name!r} (expires: {shown_expiry(parse_expiry(expires) if expires else None)}; "
                  "shown once, keep it safe):", highlight=False)
    click.echo(key)


@apikey.command("list")
@pass_context
@handle_errors
def apikey_list(ctx: Context) -> None:
    """List keys (names, limits, state, expiry, last use; never the keys).

    The last use is recorded at most once a minute by each server process.

    \b
    Example:
      annuaire apikey list
    """
    from annuaire.cli.mailboxes import last_used
    from annuaire.fhir import auth
    from annuaire.store.credentials import expired, shown_expiry

    table = Table("name", "rate limit (req/s)", "active", "created", "expires", "last used")
    for k in auth.list_keys(ctx.store):
        state = "revoked" if not k.active else "expired" if expired(k.expires_at) else "yes"
        table.add_row(k.name, str(k.rate_limit or "default"), state, k.created_at[:19], shown_expiry(k.expires_at),
                      last_used(k.last_used_at))
    console.print(table)


@apikey.command("revoke")
@click.argument("name")
@pass_context
@handle_errors
def apikey_revoke(ctx: Context, name: str) -> None:
    """Revoke the key of NAME (effective within seconds); says when it was last used.

    \b
    Example:
      annuaire apikey revoke "Hôpital fictif - messagerie"
    """
    from annuaire.cli.mailboxes import last_used
    from annuaire.fhir import auth

    info = auth.revoke_key(ctx.store, name)
    console.print(f"revoked the API key of {name!r} (last used: {last_used(info.last_used_at)})", highlight=False)


@cli.group()
def fhir() -> None:
    """FHIR API maintenance.

    \b
    Example:
      annuaire fhir render --full
      annuaire fhir prune-history
    """


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


@fhir.command("prune-history")
@click.option("--days", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the versions superseded in the last N days (default: ANNUAIRE_FHIR_HISTORY_DAYS, 90).")
@pass_context
@handle_errors
def fhir_prune_history(ctx: Context, days: int | None) -> None:
    """Delete the FHIR versions superseded more than N days ago (`_history`, vread).

    A running server prunes by itself every hour; `_since` older than the kept
    period is refused, so that a mirror never misses a version silently.

    \b
    Example:
      annuaire fhir prune-history --days 30
    """
    from annuaire.config import Settings
    from annuaire.fhir import history

    kept = Settings.from_env().fhir_history_days if days is None else days
    with ctx.store.write() as conn:
        removed = history.prune(conn, kept)
    console.print(f"FHIR history: {removed:,} versions superseded more than {kept} days ago deleted", highlight=False)


def render_cache(ctx: Context, *, full: bool = False) -> None:
    """Render the FHIR cache now, with progress and a one-line summary (fhir render, import)."""
    counts: dict[str, int] = {}

    def progress(label: str, n: int) -> None:
        counts[label] = counts.get(label, 0) + n
        if not ctx.quiet and console.is_terminal:
            console.print(f"  {label}: {counts[label]:,}", end="\r", highlight=False)

    from annuaire.fhir.cache import refresh

    stats = refresh(ctx.store, full=full, progress=progress, parallel=True)
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
