"""The click group, the global `--db` option and the one CLI error mapping."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
        if self._store is None:
            from annuaire.store import open_store

            self._store = open_store(self.db_url)
        return self._store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Store URL: sqlite:///file.sqlite (default: ./annuaire.sqlite) or "
    "postgresql+psycopg://user@host/db. Environment: ANNUAIRE_DB.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
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
