"""Commands cannot surprise: a mistyped store is refused (never created empty), every command
says which store it opened, and migrations run only through `annuaire db upgrade` (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text

from annuaire.cli import cli
from annuaire.store import open_store
from annuaire.store.opening import display_url
from annuaire.store.revisions import alembic_config, head

# Commands that read, or that write into a store which must already exist (keys, accounts and
# operators belong to a served store): none may create one.
NEEDS_A_STORE = [
    ["stats"],
    ["stats", "--json"],
    ["quality"],
    ["whitelist"],
    ["apikey", "list"],
    ["apikey", "add", "Logiciel fictif"],
    ["apikey", "revoke", "Logiciel fictif"],
    ["operator", "list"],
    ["operator", "add", "op", "--domain", "ch-fictif.mssante.fr"],
    ["ldap-account", "list"],
    ["export-ldif", "{tmp}/out.ldif"],
    ["extract", "{tmp}/extractions"],
    ["fhir", "render"],
    ["serve", "--ldap-port", "0", "--http-port", "0"],
    ["ldap", "--ldap-port", "auto"],
    ["db", "check"],
    ["db", "upgrade"],
]


def run(url: str, *args: str, quiet: bool = False) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, [*(["-q"] if quiet else []), "--db", url, *args])


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def at_revision(url: str, revision: str) -> None:
    """A store left at `revision` by an earlier version (the revisions are frozen)."""
    from alembic import command

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


@pytest.mark.parametrize("args", NEEDS_A_STORE, ids=" ".join)
def test_a_mistyped_sqlite_path_is_refused_and_not_created(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "annuaire.sqlitte"
    result = run(f"sqlite:///{typo}", *(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 3, result.output
    assert f"no store at sqlite:///{typo}" in " ".join(result.stderr.split())
    assert "annuaire import" in result.stderr
    assert not typo.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_refused_and_left_empty(pg_database: str) -> None:
    from tests.conftest import reset_pg_database

    reset_pg_database(pg_database)
    for args in (["stats"], ["apikey", "add", "Logiciel fictif"], ["serve", "--ldap-port", "0"], ["db", "check"],
                 ["db", "upgrade"]):
        result = run(pg_database, *args)
        assert result.exit_code == 3, (args, result.output)
        assert "no store at postgresql+psycopg://" in result.stderr
    assert tables(pg_database) == set()


def test_db_upgrade_create_builds_an_empty_store_at_the_current_schema(store_url: str) -> None:
    created = run(store_url, "db", "upgrade", "--create")
    assert created.exit_code == 0, created.output
    assert f"created at schema {head()}" in created.stdout
    assert run(store_url, "db", "check").exit_code == 0
    again = run(store_url, "db", "upgrade", "--create")
    assert again.exit_code == 0 and "already current" in again.stdout
    stats = run(store_url, "stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert '"persons":0' in stats.stdout


def test_every_command_names_its_store_on_stderr_unless_quiet(store_url: str) -> None:
    open_store(store_url).dispose()
    result = run(store_url, "stats", "--json")
    assert result.exit_code == 0
    line = [x for x in result.stderr.splitlines() if x.startswith("store: ")]
    assert line == [f"store: {display_url(store_url)} ({'SQLite' if 'sqlite' in store_url else 'PostgreSQL'}, "
                    f"schema {head()}, no national import yet)"]
    assert "store:" not in result.stdout  # the JSON stays clean
    quiet = run(store_url, "stats", "--json", quiet=True)
    assert quiet.exit_code == 0 and quiet.stderr == ""


@pytest.mark.postgres
def test_the_store_line_never_shows_the_password(pg_database: str) -> None:
    from tests.conftest import reset_pg_database

    reset_pg_database(pg_database)
    open_store(pg_database).dispose()
    user, rest = pg_database.split("://", 1)[1].split("@", 1)
    with_password = f"postgresql+psycopg://{user}:s3cr3t-pw@{rest}"  # (trust authentication: accepted)
    result = run(with_password, "apikey", "list")
    assert result.exit_code == 0, result.output
    assert "s3cr3t-pw" not in result.output and f"store: postgresql+psycopg://{user}:***@{rest}" in result.stderr
    refused = run(with_password.rsplit("/", 1)[0] + "/annuaire_no_such_database", "stats")
    assert refused.exit_code != 0 and "s3cr3t-pw" not in refused.output


def test_a_store_behind_the_code_is_refused_until_db_upgrade(store_url: str) -> None:
    """A store left at 0010: `db check` lists what is pending (exit 5), commands and `serve` refuse
    with the exact command to run, and nothing is migrated until `db upgrade` is run."""
    at_revision(store_url, "0010")
    shown = display_url(store_url)
    check = run(store_url, "db", "check")
    assert check.exit_code == 5, check.output
    assert "0011 Credentials" in check.stdout and "0012 LDAP accounts" in check.stdout
    for args in (["stats"], ["serve", "--ldap-port", "0"], ["import", "missing.zip"]):
        refused = run(store_url, *args)
        assert refused.exit_code == 5, (args, refused.output)
        assert f"run: annuaire --db {shown} db upgrade" in " ".join(refused.stderr.split())
    assert "ldap_account" in tables(store_url)
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0010"
    finally:
        engine.dispose()
    upgraded = run(store_url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "applied 0011" in upgraded.stderr and f"upgraded to schema {head()}" in upgraded.stdout
    assert run(store_url, "db", "check").exit_code == 0
    assert run(store_url, "stats").exit_code == 0


def test_a_store_from_a_newer_version_is_refused(store_url: str) -> None:
    open_store(store_url).dispose()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for args in (["db", "check"], ["db", "upgrade"], ["stats"]):
        result = run(store_url, *args)
        assert result.exit_code == 5, (args, result.output)
        assert "revision 9999, newer than this version" in " ".join(result.stderr.split())


def test_a_database_of_another_application_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    for args in (["stats"], ["import", "missing.zip"], ["db", "upgrade", "--create"]):
        result = run(f"sqlite:///{other}", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "not an annuaire store" in result.stderr and "invoices" in result.stderr
    assert tables(f"sqlite:///{other}") == {"invoices"}


def _world(folder: Path) -> list[Path]:
    from annuaire.synthetic import generate

    generate(folder, professionals=60, seed=3)
    return sorted(folder.glob("*.zip"))


def test_import_creates_a_new_store_and_a_failed_first_import_leaves_none(store_url: str, tmp_path: Path) -> None:
    files = _world(tmp_path / "data")
    broken = tmp_path / "PS_LibreAcces_202601010300.zip"
    broken.write_bytes(b"not a zip")
    failed = run(store_url, "import", str(broken))
    assert failed.exit_code == 2, failed.output
    assert "removed again" in failed.stderr
    if store_url.startswith("sqlite"):
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    else:
        assert tables(store_url) == set()
    done = run(store_url, "import", "--no-render", *map(str, files))
    assert done.exit_code == 0, done.output
    assert f"store: {display_url(store_url)} (" in done.stderr and f"new store at schema {head()}" in done.stderr
    stats = run(store_url, "stats")
    assert stats.exit_code == 0
    assert "national file of 20" in stats.stderr  # the store line tells the last import
    assert run(store_url, "db", "check").exit_code == 0
