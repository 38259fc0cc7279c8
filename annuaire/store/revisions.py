"""Schema revisions: where a store stands against the code, and upgrading it on request.

Migrations never run behind the operator's back: `annuaire db check` tells the
revisions a store lacks, `annuaire db upgrade` applies them, and the other
commands refuse a store whose schema is not the code's (annuaire.store.engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Migration:
    """One revision of the schema, as `db check` lists it."""

    revision: str
    title: str  # the first line of the revision's docstring

    def __str__(self) -> str:
        return f"{self.revision} {self.title}"


@dataclass(frozen=True)
class SchemaState:
    """A store's revision against the code's (`current` None: no schema at all)."""

    current: str | None
    head: str
    pending: tuple[Migration, ...]  # oldest first
    known: bool  # whether this code knows `current` (False: a newer version migrated the store)
    foreign_tables: tuple[str, ...] = ()  # tables of a database holding no store (another application's)

    @property
    def empty(self) -> bool:
        """No store in it: neither a schema revision nor any table."""
        return self.current is None and not self.foreign_tables

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config() -> Any:
    """Alembic's configuration for our revisions (the connection is handed over by the caller)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision the code expects."""
    revision = _scripts().get_current_head()
    assert revision is not None  # the revisions ship with the package
    return str(revision)


def _title(script: Any) -> str:
    return (script.doc or "").strip().splitlines()[0].rstrip(".") if script.doc else ""


def _pending(scripts: Any, top: str, current: str | None) -> tuple[Migration, ...]:
    return tuple(reversed([Migration(s.revision, _title(s)) for s in scripts.iterate_revisions(top, current or "base")]))


def nothing() -> SchemaState:
    """The state of a database holding nothing (every revision pending)."""
    top = head()
    return SchemaState(None, top, _pending(_scripts(), top, None), known=True)


def state(conn: Connection) -> SchemaState:
    """Where the store behind `conn` stands (reads only)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError
    from sqlalchemy import inspect

    scripts = _scripts()
    top = head()
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        tables = tuple(sorted(t for t in inspect(conn).get_table_names() if t != VERSION_TABLE))
        return SchemaState(None, top, _pending(scripts, top, None), known=True, foreign_tables=tables)
    try:
        scripts.get_revision(current)
    except CommandError:
        return SchemaState(current, top, (), known=False)
    return SchemaState(current, top, _pending(scripts, top, current), known=True)


def upgrade(engine: Engine) -> tuple[Migration, ...]:
    """Apply the pending revisions in one transaction; returns those applied (none when current)."""
    from alembic import command

    with engine.connect() as conn:
        before = state(conn)
    if before.up_to_date:
        return ()
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before.pending


def remove(engine: Engine) -> None:
    """Undo every revision and drop the version table: the database as it was before the store."""
    from alembic import command
    from sqlalchemy import text

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
