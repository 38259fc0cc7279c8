"""`annuaire ldap` (the address book alone) writes the access log as `annuaire serve` does: one
line per operation, JSON with `--log-format json`, never the bind password; a bad log option is
refused before it listens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ldap.ldap_support import ldapsearch
from tests.processes import start_ready, stop

pytestmark = pytest.mark.skipif(subprocess.run(["which", "ldapsearch"], capture_output=True).returncode != 0,
                                reason="ldapsearch missing (apt-get install ldap-utils)")


def test_the_ldap_command_logs_each_operation_without_the_password(sqlite_world, tmp_path: Path) -> None:
    url, _world = sqlite_world
    log = tmp_path / "access.log"
    ready = tmp_path / "ready.json"
    process, ports = start_ready(
        [sys.executable, "-m", "annuaire", "--db", url, "ldap", "--ldap-port", "auto", "--ldap-workers", "1",
         "--ready-file", str(ready), "--access-log", str(log), "--log-format", "json"],
        ready, tmp_path / "server.log")
    try:
        uri = f"ldap://127.0.0.1:{ports['port']}"
        assert ldapsearch(uri, "(sn=dup*)", "mail").rc == 0
        secret = "mot-de-passe-tres-secret"
        wrong = subprocess.run(["ldapsearch", "-x", "-H", uri, "-D", "cn=personne,ou=accounts,o=annuaire-sante,c=fr",
                                "-w", secret, "-b", "o=annuaire-sante,c=fr", "(sn=dup*)"], capture_output=True)
        assert wrong.returncode == 49  # invalidCredentials
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and '"op":"bind"' not in (log.read_text() if log.exists() else ""):
            time.sleep(0.1)
    finally:
        stop(process)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(x["interface"] == "ldap" and x["op"] == "search" for x in lines), lines
    assert any(x["interface"] == "ldap" and x["op"] == "bind" and x["result"] != "success" for x in lines), lines
    assert secret not in text and secret not in (tmp_path / "server.log").read_text()


def test_a_bad_log_option_is_refused_before_listening(sqlite_world, tmp_path: Path) -> None:
    url, _world = sqlite_world
    done = subprocess.run([sys.executable, "-m", "annuaire", "--db", url, "ldap", "--ldap-port", "auto",
                           "--access-log", "/nonexistent-dir/access.log"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "/nonexistent-dir/access.log" in done.stderr
