"""The deployment files of deploy/ work as shipped: the systemd units pass `systemd-analyze verify`,
every command they, the image and the compose file run is a real command with real options, the daily
import script imports for real, a store backed up while it serves restores to the same answers, and the
compose example's primary and replica settings stream on the machine's PostgreSQL (docs/operations.md)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from annuaire.cli import cli
from tests.pg import create_pg_database, drop_pg_database, libpq, skip_or_fail_without_pg
from tests.processes import start_ready, stop

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OPERATIONS = ROOT / "docs" / "operations.md"
BIN = Path(sys.executable).parent  # the annuaire of this environment
INSTALLED = "/opt/annuaire/bin/"  # where the units, the image and docs/operations.md install it
SCRIPT = "annuaire-daily-import"
UNITS = sorted([*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")])
DROP_IN = DEPLOY / "annuaire-serve-tls.conf"  # annuaire-serve.service.d/tls.conf once installed
COMPOSE = DEPLOY / "compose.yaml"
CONTAINERFILE = DEPLOY / "Containerfile"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _annuaire(*args: str, db: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "annuaire"), "--db", db, "--quiet", *args], capture_output=True, text=True,
                          timeout=600, check=check, env=_env())


def _generate(outdir: Path, day: int, professionals: int = 300) -> None:
    subprocess.run([str(BIN / "annuaire"), "--quiet", "generate", str(outdir), "--professionals", str(professionals),
                    "--seed", "23", "--day", str(day)], check=True, capture_output=True, timeout=300)


# --- the commands each file runs ----------------------------------------------------------------------


def _unit_commands(path: Path) -> Iterator[list[str]]:
    """The argv of each non-empty ExecStart= of a unit or drop-in (`ExecStart=` alone resets the list)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            value = line.split("=", 1)[1].strip()
            if value:
                yield shlex.split(value.lstrip("-+!@:"))


def _image_entrypoint() -> list[str]:
    """The Containerfile's ENTRYPOINT, in its exec (JSON) form."""
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", CONTAINERFILE.read_text(encoding="utf-8"), re.M)
    assert match, "deploy/Containerfile has no ENTRYPOINT in exec form"
    return json.loads(match.group(1))


def _image_cmd() -> list[str]:
    match = re.search(r"^CMD\s+(\[.*\])\s*$", CONTAINERFILE.read_text(encoding="utf-8"), re.M)
    assert match, "deploy/Containerfile has no CMD in exec form"
    return json.loads(match.group(1))


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _annuaire_services() -> dict[str, dict]:
    """The compose services that run the annuaire image."""
    image = _compose()["x-annuaire"]["image"]
    return {name: service for name, service in _compose()["services"].items() if service.get("image") == image}


def _commands() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every command the deployment files run with annuaire's programs."""
    for path in [*UNITS, DROP_IN]:
        for argv in _unit_commands(path):
            yield path.name, argv
    yield "Containerfile", [*_image_entrypoint(), *_image_cmd()]
    for name, service in _annuaire_services().items():
        entrypoint = service.get("entrypoint", _image_entrypoint())
        yield f"compose.yaml: {name}", [*entrypoint, *service.get("command", _image_cmd())]


def _resolve(tokens: list[str]) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], str]]]:
    """The subcommand path `annuaire tokens…` reaches, and each option named, with the path it was
    given to (a global option before the subcommand belongs to `annuaire` itself)."""
    command: click.Command = cli
    path: tuple[str, ...] = ()
    options: list[tuple[tuple[str, ...], str]] = []
    for token in tokens:
        if token.startswith("--") or re.fullmatch(r"-[a-zA-Z]", token):
            options.append((path, token.split("=", 1)[0]))
        elif isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
            path = (*path, token)
    return path, options


def _script_commands() -> list[list[str]]:
    """The `"$annuaire" SUBCOMMAND …` lines of the daily import script."""
    text = (DEPLOY / SCRIPT).read_text(encoding="utf-8")
    return [shlex.split(m.group(1)) for m in re.finditer(r'^\s*"\$annuaire"\s+(.*)$', text, re.M)]


def _annuaire_invocations() -> Iterator[tuple[str, list[str]]]:
    """(where, arguments after `annuaire`) of every annuaire run, the script's included."""
    for where, argv in _commands():
        program = Path(argv[0]).name
        if program == "annuaire":
            yield where, argv[1:]
        elif program == SCRIPT:
            for args in _script_commands():
                yield f"{where} via {SCRIPT}", args
        else:
            raise AssertionError(f"{where}: runs {argv[0]}, neither annuaire nor {SCRIPT}")


def test_the_deployment_files_exist() -> None:
    names = {p.name for p in DEPLOY.iterdir()}
    assert {"annuaire-serve.service", "annuaire-import.service", "annuaire-import.timer", "annuaire-extract.service",
            "annuaire-extract.timer", "Containerfile", "compose.yaml", SCRIPT} <= names
    assert os.access(DEPLOY / SCRIPT, os.X_OK)


def test_every_command_run_is_a_real_command_with_real_options() -> None:
    """Each subcommand answers `annuaire … --help` (run for real) and lists every option given to it."""
    helps: dict[tuple[str, ...], str] = {}
    seen = 0
    for where, args in _annuaire_invocations():
        path, options = _resolve(args)
        assert path, f"{where}: `annuaire {' '.join(args)}` names no subcommand"
        for wanted in {path, *(p for p, _ in options)}:
            if wanted not in helps:
                run = subprocess.run([str(BIN / "annuaire"), *wanted, "--help"], capture_output=True, text=True,
                                     timeout=60, env=_env())
                assert run.returncode == 0, f"{where}: `annuaire {' '.join(wanted)} --help` failed:\n{run.stderr}"
                helps[wanted] = run.stdout
        for given_to, option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", helps[given_to]), (
                f"{where}: `annuaire {' '.join(given_to)}` has no option {option}")
        seen += 1
    assert seen >= 6  # serve (unit, drop-in, image, fronts), extract, import, generate


def test_the_units_programs_are_where_the_image_and_the_docs_install_them() -> None:
    """The units run /opt/annuaire/bin/…, the image's virtual environment and docs/operations.md's."""
    for path in [*UNITS, DROP_IN]:
        for argv in _unit_commands(path):
            assert argv[0] in (INSTALLED + "annuaire", INSTALLED + SCRIPT), f"{path.name}: {argv[0]}"
    text = CONTAINERFILE.read_text(encoding="utf-8")
    assert "python -m venv /opt/annuaire" in text and f"/opt/annuaire/bin/{SCRIPT}" in text
    assert "/opt/annuaire/bin/pip install" in OPERATIONS.read_text(encoding="utf-8")


def test_every_timer_starts_a_shipped_oneshot_service() -> None:
    timers = sorted(DEPLOY.glob("*.timer"))
    assert [t.stem for t in timers] == ["annuaire-extract", "annuaire-import"]
    for timer in timers:
        text = timer.read_text(encoding="utf-8")
        assert re.search(r"^OnCalendar=.+$", text, re.M) and re.search(r"^Persistent=true$", text, re.M)
        service = (DEPLOY / f"{timer.stem}.service").read_text(encoding="utf-8")
        assert "Type=oneshot" in service


def _verify_copy(tmp_path: Path) -> Path:
    """The units (and the TLS drop-in) with the installed paths replaced by this checkout's programs,
    which `systemd-analyze verify` wants to find."""
    folder = tmp_path / "units"
    (folder / "annuaire-serve.service.d").mkdir(parents=True)

    def local(text: str) -> str:
        return text.replace(INSTALLED + SCRIPT, str(DEPLOY / SCRIPT)).replace(INSTALLED + "annuaire",
                                                                             str(BIN / "annuaire"))

    for unit in UNITS:
        (folder / unit.name).write_text(local(unit.read_text(encoding="utf-8")), encoding="utf-8")
    (folder / "annuaire-serve.service.d" / "tls.conf").write_text(local(DROP_IN.read_text(encoding="utf-8")),
                                                                  encoding="utf-8")
    return folder


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (Debian: systemd)")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """No error and no warning (an unknown or mistyped option is only a warning: rc stays 0)."""
    folder = _verify_copy(tmp_path)
    names = [p.name for p in sorted(folder.glob("*.service")) + sorted(folder.glob("*.timer"))]
    run = subprocess.run(["systemd-analyze", "verify", *(str(folder / n) for n in names)], capture_output=True,
                         text=True, timeout=120, cwd=folder)
    ours = [line for line in (run.stdout + run.stderr).splitlines()
            if str(folder) in line or any(n in line for n in names)]
    assert run.returncode == 0 and not ours, run.stdout + run.stderr
    # The check is real: a mistyped option in the drop-in is reported.
    broken = folder / "annuaire-serve.service.d" / "tls.conf"
    broken.write_text(broken.read_text(encoding="utf-8") + "AmbientCapabilites=CAP_NET_BIND_SERVICE\n")
    run = subprocess.run(["systemd-analyze", "verify", str(folder / "annuaire-serve.service")], capture_output=True,
                         text=True, timeout=120, cwd=folder)
    assert "AmbientCapabilites" in run.stdout + run.stderr


def test_the_shell_scripts_parse() -> None:
    scripts = [DEPLOY / SCRIPT, *sorted((DEPLOY / "postgres").glob("*.sh"))]
    for script in scripts:
        run = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, f"{script.name}: {run.stderr}"
        assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n") and os.access(script, os.X_OK)


# --- the container image and the compose example ------------------------------------------------------


def test_the_image_copies_files_that_exist() -> None:
    for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"Containerfile: {line!r}: no {source}"
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for kept in (line[1:].rstrip("/") for line in ignore if line.startswith("!")):
        assert (ROOT / kept).exists(), f"Containerfile.dockerignore keeps {kept}, which does not exist"


def test_the_compose_example_holds_together() -> None:
    """Primary, replica, two fronts reading the replica; every path, service and port it names exists once."""
    compose = _compose()
    services = compose["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).resolve() == CONTAINERFILE, name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name}: mounts {source}, which does not exist"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed}, no such service"
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), f"host ports used twice: {published}"
    fronts = {n: s for n, s in _annuaire_services().items() if s.get("command", _image_cmd())[0] == "serve"}
    assert len(fronts) == 2
    for front in fronts.values():
        env = front["environment"]
        assert "db-primary" in env["ANNUAIRE_DB"] and "db-replica" in env["ANNUAIRE_READ_DB"]
    replica = " ".join(services["db-replica"]["command"])
    primary = " ".join(services["db-primary"]["command"])
    assert "hot_standby=on" in replica and "hot_standby_feedback=on" in replica and "wal_level=replica" in primary


def _variables_set_by_deploy() -> set[str]:
    found: set[str] = set()
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            found.update(re.findall(r"\bANNUAIRE_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    return found


def test_every_variable_the_deployment_files_use_is_documented() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    missing = sorted(v for v in _variables_set_by_deploy() if f"`{v}`" not in text)
    assert missing == []


# --- the daily import ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_daily_import_imports_the_newest_files_and_moves_them(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", f"sqlite:///{tmp_path / 'annuaire.sqlite'}"
    run = [str(DEPLOY / SCRIPT), str(inbox)]
    env = _env(ANNUAIRE_DB=db)
    inbox.mkdir()
    empty = subprocess.run(run, capture_output=True, text=True, timeout=60, env=env)
    assert empty.returncode == 1 and "nothing to import" in empty.stderr
    _generate(inbox, day=0)
    _generate(inbox, day=1)
    first = subprocess.run(run, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    day0, day1 = "202601010300", "202601020300"
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted(
        f"{kind}_{ts}.zip" for kind in ("Extraction_Correspondance_MSSante", "PS_LibreAcces") for ts in (day0, day1))
    assert not list(inbox.glob("*.zip"))
    # Only the newest was imported: the store is day 1's, as a direct import of day 1 gives.
    direct = f"sqlite:///{tmp_path / 'direct.sqlite'}"
    _annuaire("import", str(inbox / "done" / f"PS_LibreAcces_{day1}.zip"),
              str(inbox / "done" / f"Extraction_Correspondance_MSSante_{day1}.zip"), db=direct)
    stats = json.loads(_annuaire("stats", "--json", db=db).stdout)
    assert stats["persons"] > 0 and stats == json.loads(_annuaire("stats", "--json", db=direct).stdout)
    # A damaged delivery: refused, left in the inbox, the store unchanged.
    _generate(tmp_path / "day2", day=2)
    damaged = inbox / "PS_LibreAcces_202601030300.zip"
    good = (tmp_path / "day2" / damaged.name).read_bytes()
    damaged.write_bytes(good[: len(good) // 2])
    refused = subprocess.run(run, capture_output=True, text=True, timeout=600, env=env)
    assert refused.returncode != 0 and damaged.name in refused.stderr + refused.stdout
    assert damaged.exists() and json.loads(_annuaire("stats", "--json", db=db).stdout) == stats


# --- backups and restore ------------------------------------------------------------------------------


def _world(tmp_path: Path) -> list[Path]:
    files = tmp_path / "national"
    _generate(files, day=0, professionals=400)
    return sorted(files.glob("*.zip"))


def _answers(db: str, tmp_path: Path, label: str) -> tuple[dict, str]:
    """What a store answers: its statistics and its whole LDAP tree (LDIF export)."""
    ldif = tmp_path / f"{label}.ldif"
    _annuaire("export-ldif", str(ldif), db=db)
    return json.loads(_annuaire("stats", "--json", db=db).stdout), ldif.read_text(encoding="utf-8")


def _ldap(db: str, tmp_path: Path, label: str) -> tuple[subprocess.Popen, int]:
    ready = tmp_path / f"{label}-ready.json"
    process, info = start_ready([str(BIN / "annuaire"), "--db", db, "ldap", "--ldap-port", "auto", "--ldap-workers",
                                 "1", "--ready-file", str(ready)], ready, tmp_path / f"{label}.log", env=_env())
    return process, info["port"]


def _search(port: int, filt: str) -> str:
    run = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", f"ldap://127.0.0.1:{port}",
                          "-b", "o=annuaire-sante,c=fr", filt], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sqlite3") is None or shutil.which("ldapsearch") is None,
                    reason="needs the sqlite3 and ldapsearch programs (Debian: sqlite3, ldap-utils)")
def test_an_sqlite_store_backed_up_while_serving_restores_to_the_same_answers(tmp_path: Path) -> None:
    """docs/operations.md: `sqlite3 … .backup` and `VACUUM INTO` while the server runs, then restore."""
    live = tmp_path / "live" / "annuaire.sqlite"
    live.parent.mkdir()
    db = f"sqlite:///{live}"
    _annuaire("import", *map(str, _world(tmp_path)), db=db)
    before, tree = _answers(db, tmp_path, "live")
    mails = re.findall(r"^mail: (.+)$", tree, re.M)
    assert before["mailboxes"] > 0 and len(mails) >= 3
    server, port = _ldap(db, tmp_path, "live")
    backups = tmp_path / "backups"
    backups.mkdir()
    try:
        # The two ways of docs/operations.md, while the store is open and answering.
        subprocess.run(["sqlite3", str(live), f".backup '{backups / 'online.sqlite'}'"], check=True, timeout=300)
        subprocess.run(["sqlite3", str(live), f"VACUUM INTO '{backups / 'vacuumed.sqlite'}'"], check=True, timeout=300)
        expected = {m: _search(port, f"(mail={m})") for m in mails[:3]}
    finally:
        stop(server)
    for backup in sorted(backups.iterdir()):
        check = sqlite3.connect(backup)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()
        restored = tmp_path / f"restored-{backup.stem}" / "annuaire.sqlite"
        restored.parent.mkdir()
        shutil.copyfile(backup, restored)  # the restore: the file in place, the server stopped
        url = f"sqlite:///{restored}"
        assert _answers(url, tmp_path, f"restored-{backup.stem}") == (before, tree), backup.name
        server, port = _ldap(url, tmp_path, f"restored-{backup.stem}")
        try:
            for mail, answer in expected.items():
                assert f"mail: {mail}" in answer and _search(port, f"(mail={mail})") == answer
        finally:
            stop(server)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
                    reason="needs pg_dump and pg_restore (Debian: postgresql-client)")
def test_a_postgresql_store_dumped_and_restored_gives_the_same_answers(tmp_path: Path) -> None:
    """docs/operations.md: `pg_dump --format=custom`, then `pg_restore` into a new database."""
    skip_or_fail_without_pg()
    source, source_name = create_pg_database("annuaire_backup")
    target, target_name = create_pg_database("annuaire_restore")
    try:
        _annuaire("import", *map(str, _world(tmp_path)), db=source)
        before = _answers(source, tmp_path, "source")
        dump = tmp_path / "annuaire.dump"
        subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", libpq(source)], check=True,
                       timeout=300)
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(target)}", str(dump)],
                       check=True, timeout=300)
        assert _answers(target, tmp_path, "restored") == before
        assert _annuaire("db", "check", db=target).returncode == 0
    finally:
        drop_pg_database(source_name)
        drop_pg_database(target_name)


# --- the compose example's replication, without a container engine ------------------------------------

_PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
PG_BIN = _PG_BINS[-1].parent if _PG_BINS else None


def _as_postgres(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as the `postgres` user when we are root (initdb refuses root), else as we are."""
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    run = subprocess.run([*prefix, "env", *extra, *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(args[:3])}: {run.stdout}{run.stderr}"
    return run


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(sockets: Path, port: int, sql: str) -> str:
    run = subprocess.run(["psql", "-X", "-At", "-h", str(sockets), "-p", str(port), "-U", "annuaire", "-d", "annuaire",
                          "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@pytest.mark.slow
@pytest.mark.skipif(PG_BIN is None, reason="needs the PostgreSQL server programs (Debian: postgresql)")
@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("runuser") is None, reason="needs runuser to run initdb")
def test_the_compose_primary_lets_a_hot_standby_stream_from_its_slot() -> None:
    """deploy/postgres/primary-init.sh on a primary started with compose.yaml's settings admits the
    replication role (its pg_hba line alone: initdb's own replication lines are removed), and a replica
    cloned as replica-entrypoint.sh does (pg_basebackup -R from the slot) and started with compose.yaml's
    settings is a hot standby that streams the primary's writes. (The two scripts' calls to the postgres
    image's entrypoint and gosu need the image: not run here.)"""
    assert PG_BIN is not None
    services = _compose()["services"]
    init_env = {k: services["db-primary"]["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_DB",
                                                                      "REPLICATION_PASSWORD")}
    assert init_env["POSTGRES_USER"] == init_env["POSTGRES_DB"] == "annuaire"
    work = Path(tempfile.mkdtemp(prefix="annuaire-replication-"))  # not under pytest's 0700 folders
    primary, replica, sockets = work / "primary", work / "replica", work / "run"
    ports = {primary: _free_port(), replica: _free_port()}
    started: list[Path] = []
    try:
        work.chmod(0o755)
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam("postgres")
            os.chown(work, account.pw_uid, account.pw_gid)
        _as_postgres("mkdir", str(sockets))
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-U", "annuaire", "--auth-local=trust",
                     "--auth-host=scram-sha-256")
        hba = primary / "pg_hba.conf"
        hba.write_text("".join(line for line in hba.read_text().splitlines(keepends=True)
                               if not (line.startswith("host") and " replication " in line)))

        def start(data: Path, settings: list[str]) -> None:
            options = " ".join([f"-p {ports[data]}", f"-k {sockets}", "-c listen_addresses=127.0.0.1", *(
                f"-c {s}" for s in settings[1::2])])
            assert settings[0::2] == ["-c"] * (len(settings) // 2)
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(work / f"{data.name}.log"), "-w",
                         "-o", options, "start")
            started.append(data)

        start(primary, services["db-primary"]["command"][1:])
        _as_postgres(str(PG_BIN / "createdb"), "-h", str(sockets), "-p", str(ports[primary]), "-U", "annuaire",
                     "annuaire")
        _as_postgres("sh", str(DEPLOY / "postgres" / "primary-init.sh"),
                     env={**init_env, "PGDATA": str(primary), "PGHOST": str(sockets), "PGPORT": str(ports[primary])})
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(primary), "reload")
        replica_env = services["db-replica"]["environment"]
        _as_postgres(str(PG_BIN / "pg_basebackup"), f"--pgdata={replica}", "--host=127.0.0.1",
                     f"--port={ports[primary]}", "--username=replicator", "--wal-method=stream",
                     "--write-recovery-conf", f"--slot={replica_env['REPLICATION_SLOT']}", "--checkpoint=fast",
                     env={"PGPASSWORD": replica_env["REPLICATION_PASSWORD"]})
        start(replica, services["db-replica"]["command"][1:])
        _psql(sockets, ports[primary], "CREATE TABLE written_on_the_primary (x int); "
                                       "INSERT INTO written_on_the_primary VALUES (42)")
        deadline = time.monotonic() + 10
        while True:
            try:
                seen = _psql(sockets, ports[replica], "SELECT pg_is_in_recovery(), "
                                                      "current_setting('hot_standby_feedback'), "
                                                      "(SELECT x FROM written_on_the_primary)")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert seen == "t|on|42"
        assert _psql(sockets, ports[primary], "SELECT slot_name, active FROM pg_replication_slots") == "replica1|t"
    finally:
        for data in reversed(started):
            subprocess.run([*(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
                            str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
