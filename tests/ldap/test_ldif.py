"""LDIF export: OpenLDAP's slapadd loads it with our schema, and slapd answers like our server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest
from ldap_support import SUFFIX, ldapsearch, start_server, stop_server

from annuaire.ldap.ldif import slapd_config
from annuaire.ldap.schema import openldap_schema

needs_slapd = pytest.mark.skipif(not (shutil.which("slapadd") and shutil.which("slapd") and shutil.which("ldapsearch")),
                                 reason="slapd / ldap-utils not installed (apt-get install slapd ldap-utils)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schema_file_shape() -> None:
    text = openldap_schema()
    assert text.count("attributetype ") == 9 and text.count("objectclass ") == 1
    assert "NAME 'mssIdNatPS'" in text and "AUXILIARY" in text


@needs_slapd
def test_slapd_loads_the_export_and_answers_the_same(sqlite_world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, world = sqlite_world
    out = tmp_path / "annuaire.ldif"
    conf = tmp_path / "slapd.conf"
    done = subprocess.run([sys.executable, "-m", "annuaire", "--db", url, "export-ldif", str(out),
                           "--slapd-conf", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(world.published):,} mailbox entries" in done.stdout
    text = out.read_text()
    for hidden in world.hidden:
        assert hidden not in text
    assert "secret.responsable" not in text
    conf.write_text(slapd_config(tmp_path, tmp_path / "mssante.schema", size_limit=1000))
    (tmp_path / "data").mkdir()
    load = subprocess.run(["slapadd", "-q", "-f", str(conf), "-l", str(out)], capture_output=True, text=True)
    assert load.returncode == 0, load.stderr
    port = free_port()
    slapd = subprocess.Popen(["slapd", "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ours = start_server(url, tmp_path, world, tls=False, workers=1)
    try:
        deadline = time.monotonic() + 20
        while ldapsearch(f"ldap://127.0.0.1:{port}", "(objectClass=*)", base=SUFFIX, scope="base").rc != 0:
            assert time.monotonic() < deadline and slapd.poll() is None, slapd.stderr.read() if slapd.stderr else ""
            time.sleep(0.1)
        for filt in ("(|(cn=jean*dup*)(mail=jean*dup*)(sn=jean*dup*))",
                     "(|(mail=*dup*)(cn=*dup*)(givenName=*dup*)(sn=*dup*))",
                     "(&(mail=*)(|(mail=mar*)(cn=mar*)(sn=mar*)(givenName=mar*)))",
                     "(&(mssProfessionCode=10)(mssDepartement=75)(sn=dup*))"):
            theirs = ldapsearch(f"ldap://127.0.0.1:{port}", filt, "mail")
            mine = ldapsearch(ours.uri, filt, "mail")
            assert theirs.rc == mine.rc == 0, (filt, theirs.stderr, mine.stderr)
            assert sorted(theirs.mails) == sorted(mine.mails), filt
        exact = "(mail=jean.dupont@medecin.mssante.fr)"
        theirs = ldapsearch(f"ldap://127.0.0.1:{port}", exact).entries[0]
        mine = ldapsearch(ours.uri, exact).entries[0]
        assert theirs == mine
    finally:
        stop_server(ours)
        slapd.terminate()
        slapd.wait(timeout=20)
