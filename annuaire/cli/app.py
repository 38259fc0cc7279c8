"""The click group, the global `--db` option and the one CLI error mapping."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import update_wrapper
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from annuaire.errors import DirectoryError

if TYPE_CHECKING:
    from annuaire.store import Store

# Logs and pipes get long lines rather than tables cut at 80 columns.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class Context:
    """What every command receives: the store URL and a lazily opened store."""

    def __init__(self, db_url: str, quiet: bool) -> None:
        self.db_url = db_url
        self.quiet = quiet
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The store named by --db / ANNUAIRE_DB, which must exist at the code's schema:
        a mistyped path is refused, never created empty (annuaire.store.opening)."""
        return self.open_store()

    def open_store(self, *, create: bool = False) -> Store:
        """The store, opened once; `create`: build a missing one (commands that fill it).
        Says which store on stderr (hidden by --quiet)."""
        if self._store is None:
            from annuaire.store.opening import open_existing

            self._store = open_existing(self.db_url, create=create)
            if not self.quiet:
                from annuaire.cli.db import describe

                console.print(f"store: {describe(self._store)}", highlight=False, soft_wrap=True)
        return self._store

    @contextmanager
    def filling_store(self) -> Iterator[Store]:
        """The store, created if missing; a store created here is removed again when the work
        given it fails, so a refused first import leaves no empty store behind."""
        store = self.open_store(create=True)
        try:
            yield store
        except BaseException:
            if store.created:
                from annuaire.store.opening import discard

                discard(store)
                self._store = None
                if not self.quiet:
                    console.print("store: removed again, the command failed", highlight=False)
            raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Store URL: sqlite:///file.sqlite (default: ./annuaire.sqlite) or "
    "postgresql+psycopg://user@host/db. Environment: ANNUAIRE_DB.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output, nor the line naming the store used.")
@click.version_option(package_name="annuaire")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, quiet: bool) -> None:
    """National health directory for MSSanté secure messaging.

    \b
    Example:
      annuaire generate data/ --professionals 20000 --seed 1
      annuaire import data/PS_LibreAcces_*.zip data/Extraction_Correspondance_MSSante_*.zip
      annuaire stats
    """
    from annuaire.config import store_url

    ctx.obj = Context(db_url or store_url(), quiet)


pass_context = click.make_pass_decorator(Context)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DirectoryError into a clear message and the class's exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DirectoryError as exc:
            console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
            sys.exit(exc.exit_code)

    return update_wrapper(wrapper, func)


def main() -> None:
    cli(prog_name="annuaire")
