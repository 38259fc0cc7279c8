"""Opening the store an operator named (`--db`, ANNUAIRE_DB): never created or migrated by surprise.

A mistyped path must not become an empty store that commands then read as zeros,
nor a new version's code silently migrate a production database: commands refuse,
saying which store and what to run (`annuaire import`, `annuaire db upgrade`).
"""

from __future__ import annotations

from pathlib import Path

from annuaire.errors import Conflict, DirectoryError, InvalidInput, NotFound
from annuaire.store import revisions, sqlitedriver
from annuaire.store.engine import Store, _safe, open_store
from annuaire.store.url import default_url, normalise_url


def open_existing(url: str | None = None, *, create: bool = False) -> Store:
    """Open the store an operator named, refusing what would surprise them.

    A missing store (a mistyped path, an empty database) is refused, not created empty,
    unless `create` (`annuaire import`: it is built at the code's schema); a store behind
    the code, or migrated by a newer version, is refused with the command to run (migrations
    are `annuaire db upgrade`'s job); so is a database that holds something else. Nothing is
    written when refused: an SQLite file is not even created.
    """
    url = normalise_url(url or default_url())
    shown = display_url(url)
    found = schema_state(url)
    if not (found.empty and create):
        check_state(found, shown)
    store = open_store(url, upgrade=False)
    if found.empty:
        try:
            revisions.upgrade(store.engine)
        except Exception as exc:
            store.dispose()
            raise DirectoryError(f"cannot create the store at {shown}: {exc}") from exc
        store.created = True
    return store


def schema_state(url: str) -> revisions.SchemaState:
    """Where the store at `url` stands against the code, read without writing anything (a
    missing SQLite file is not created: it reads as an empty database)."""
    url = normalise_url(url)
    path = sqlite_path(url)
    if path is not None and not _sqlite_file(path):
        return revisions.nothing()
    if path is not None:
        found = _sqlite_state(path)
        if found is not None:
            return found
    store = open_store(url, upgrade=False)
    try:
        with store.read() as conn:
            return revisions.state(conn)
    except Exception as exc:
        raise DirectoryError(f"cannot open the store at {display_url(url)}: {getattr(exc, 'orig', None) or exc}") from exc
    finally:
        store.dispose()


def _sqlite_state(path: Path) -> revisions.SchemaState | None:
    """The state of an SQLite file read through a read-only connection: a file that is not a
    store is left exactly as it was (the store's engine would switch it to WAL). None when
    SQLite cannot open it read-only (the store's engine then reads it)."""
    from urllib.parse import quote

    from sqlalchemy import create_engine

    engine = create_engine("sqlite://", module=sqlitedriver.driver,
                           creator=lambda: sqlitedriver.connect(f"file:{quote(str(path))}?mode=ro", uri=True))
    try:
        with engine.connect() as conn:
            return revisions.state(conn)
    except Exception:  # noqa: BLE001 - e.g. a WAL file whose shared memory cannot be created read-only
        return None
    finally:
        engine.dispose()


def discard(store: Store) -> None:
    """Remove a store this process just created (`Store.created`) and whose first filling failed:
    the SQLite file and its companions, or every object of the schema on PostgreSQL."""
    assert store.created, "only a store created by this process is discarded"
    path = sqlite_path(store.url)
    if path is None:
        revisions.remove(store.engine)
    store.dispose()
    if path is not None:
        for name in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            name.unlink(missing_ok=True)


def check_state(found: revisions.SchemaState, shown: str) -> None:
    """Refuse a store whose schema is not the code's, saying why and what to run; `shown`
    names it (`display_url`)."""
    if found.empty:
        raise NotFound(no_store_message(shown))
    if found.current is None:
        listed = ", ".join(found.foreign_tables[:5]) + (", …" if len(found.foreign_tables) > 5 else "")
        raise InvalidInput(f"{shown} is not an annuaire store: it holds other tables ({listed}) "
                           "and no schema revision; check --db / ANNUAIRE_DB")
    if not found.known:
        raise Conflict(f"the store at {shown} is at schema revision {found.current}, newer than this version of "
                       f"annuaire knows (up to {found.head}): run a version of annuaire as recent as the one that "
                       "upgraded it")
    if not found.up_to_date:
        pending = ", ".join(m.revision for m in found.pending)
        raise Conflict(f"the store at {shown} is at schema revision {found.current}, behind this version of "
                       f"annuaire (pending migrations: {pending}; `annuaire db check` lists them). Back it up, "
                       f"then run: {upgrade_command(shown)}")


def no_store_message(shown: str) -> str:
    return (f"no store at {shown} (a mistyped --db or ANNUAIRE_DB?); nothing was created. Run `annuaire import` "
            "first to create and fill it, or `annuaire db upgrade --create` for an empty one (with the same --db)")


def upgrade_command(shown: str) -> str:
    """The exact command that brings this store to the code's schema."""
    return f"annuaire --db {shown} db upgrade"


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (absolute); None for a server or an in-memory database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().absolute()


def _sqlite_file(path: Path) -> bool:
    """Whether an SQLite database is there: a file not empty (SQLite creates one on connecting)."""
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def display_url(url: str) -> str:
    """The URL to show: without its password; an SQLite file by its absolute path."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path}"
    return _safe(normalise_url(url))
