"""`annuaire db check|upgrade`: schema migrations run when the operator asks, and the line
naming the store every command opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context

if TYPE_CHECKING:
    from annuaire.store import Store


def describe(store: Store) -> str:
    """Which store a command works on, told before it does: its URL (no password; an SQLite
    file by its absolute path), engine, schema revision and last national import."""
    from sqlalchemy import func, select

    from annuaire.store.opening import display_url
    from annuaire.store.revisions import head
    from annuaire.store.schema import run

    engine = store.engine_name
    if store.created:
        return f"{display_url(store.url)} ({engine}, new store at schema {head()})"
    with store.read() as conn:
        last = conn.execute(
            select(func.max(run.c.file_ts)).where(run.c.kind == "referential", run.c.status == "ok")
        ).scalar()
    imported = f"national file of {last[:4]}-{last[4:6]}-{last[6:8]} {last[8:10]}:{last[10:12]}" if last \
        else "no national import yet"
    return f"{display_url(store.url)} ({engine}, schema {head()}, {imported})"


@cli.group()
def db() -> None:
    """The store's schema: check it against this version of annuaire, upgrade it.

    Migrations run only here: after installing a new version, back the store up,
    then run `annuaire db upgrade` (every other command, `serve` included, refuses a
    store behind the code and names this command).

    \b
    Example:
      annuaire db check
      annuaire --db postgresql+psycopg://annuaire@127.0.0.1/annuaire db upgrade
    """


@db.command("check")
@pass_context
@handle_errors
def db_check(ctx: Context) -> None:
    """Exit 0 when the store's schema is the code's; else list the pending migrations and exit 5
    (3: no store there).

    \b
    Example:
      annuaire --db sqlite:///demo/annuaire.sqlite db check
    """
    from annuaire.store.opening import check_state, display_url, schema_state

    found, shown = schema_state(ctx.db_url), display_url(ctx.db_url)
    if found.up_to_date:
        click.echo(f"{shown}: schema {found.current}, current")
        return
    if found.known and found.current is not None:
        click.echo(f"{shown}: schema {found.current}, {len(found.pending)} pending migration(s):")
        for migration in found.pending:
            click.echo(f"  {migration}")
    check_state(found, shown)  # refuses, with the command to run


@db.command("upgrade")
@click.option("--create", is_flag=True,
              help="Create the schema when there is no store yet (an empty PostgreSQL database, a new "
                   "SQLite file); without it a missing store is refused, as a mistyped --db may be.")
@pass_context
@handle_errors
def db_upgrade(ctx: Context, create: bool) -> None:
    """Apply the pending schema migrations, in one transaction (nothing when current).

    Back the store up first, and stop the servers: they refuse to start on a store
    behind the code, and those already running expect the schema they started with.

    \b
    Example:
      annuaire --db sqlite:///demo/annuaire.sqlite db upgrade
      annuaire --db postgresql+psycopg://annuaire@127.0.0.1/annuaire db upgrade --create
    """
    from annuaire.errors import DirectoryError
    from annuaire.store import open_store
    from annuaire.store.opening import check_state, display_url, schema_state
    from annuaire.store.revisions import upgrade

    found, shown = schema_state(ctx.db_url), display_url(ctx.db_url)
    if not (found.empty and create or found.known and found.current is not None):
        check_state(found, shown)  # no store (without --create), another application's tables, a newer schema
    if found.up_to_date:
        click.echo(f"{shown}: schema {found.current}, already current")
        return
    store = open_store(ctx.db_url, upgrade=False)
    try:
        applied = upgrade(store.engine)
    except Exception as exc:
        raise DirectoryError(f"cannot upgrade the store at {shown} (nothing was changed): {exc}") from exc
    finally:
        store.dispose()
    if not ctx.quiet:
        for migration in applied:
            console.print(f"  applied {migration}", highlight=False)
    click.echo(f"{shown}: {'created at' if found.empty else 'upgraded to'} schema {found.head}")
