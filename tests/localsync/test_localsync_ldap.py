"""The one-account LDAP endpoint, queried with OpenLDAP's ldapsearch.

A real national LDAP server (`annuaire ldap`) serves a store; a local
address book is synchronised from that store's extraction and holds local
contacts; `annuaire local-sync serve-ldap` merges both for one mail client.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annuaire.extractions.generate import generate
from annuaire.localsync.db import LocalBase
from annuaire.localsync.filters import Filters
from annuaire.localsync.local import add_contact
from annuaire.localsync.sync import sync

from ..extractions.sample_data import populate
from ..ldif import parse_ldif
from ..processes import start_ready, stop

BASE = "o=annuaire-sante,c=fr"
AUTOCOMPLETE = "(|(cn=camil*)(mail=camil*)(sn=camil*))"

pytestmark = [
    pytest.mark.skipif(shutil.which("ldapsearch") is None, reason="ldapsearch (ldap-utils) is not installed"),
    pytest.mark.xdist_group("one-account-ldap"),  # one national server and endpoint for the module
]


def _start(args: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen, int]:
    proc, info = start_ready([sys.executable, "-m", *args, "--ready-file", str(ready)], ready, log, timeout=60)
    return proc, info["port"]


def ldapsearch(port: int, flt: str, *attrs: str, base: str = BASE, scope: str = "sub", size: int = 0):
    """(exit code, entries in answer order, stderr) of `ldapsearch -x -LLL`."""
    cmd = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", f"ldap://127.0.0.1:{port}", "-b", base,
           "-s", scope, "-z", str(size), flt, *attrs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode, parse_ldif(proc.stdout), proc.stderr


def _mails(entries) -> list[str]:
    return [e["mail"][0] for e in entries if "mail" in e]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """National store + national LDAP server (size limit 3) + local base synced with ORG boxes only."""
    from annuaire.store import open_store

    tmp = tmp_path_factory.mktemp("one-account")
    url = f"sqlite:///{tmp / 'national.sqlite'}"
    store = open_store(url)
    populate(store)
    manifests = generate(store, tmp / "extractions")
    store.dispose()
    national, national_port = _start(
        ["annuaire", "--db", url, "ldap", "--ldap-port", "auto", "--ldap-workers", "1",
         "--limit", "anonymous_size_limit=3"],
        tmp / "national.json", tmp / "national.log",
    )
    local_db = tmp / "carnet.sqlite"
    sync(local_db, str(tmp / "extractions" / manifests[0].zip["name"]), Filters.build(types=["ORG"]))
    with LocalBase.open(local_db) as base:
        # Same address as a national box that the local sync did not keep (PER): returned once, the local one.
        add_contact(base, {"address": "camille.martin@medecin.mssante.fr", "first_name": "Camille",
                           "last_name": "MARTIN", "phone": "04 11 22 33 44"})
        add_contact(base, {"address": "dr.camille.martin@cabinet.example", "first_name": "Camille",
                           "last_name": "Martin-Local", "organisation": "Cabinet du Parc"})
    proxy, port = _start(
        ["annuaire", "local-sync", "serve-ldap", "--local", str(local_db), "--national",
         f"ldap://127.0.0.1:{national_port}", "--port", "auto"],
        tmp / "proxy.json", tmp / "proxy.log",
    )
    try:
        yield {"port": port, "national_port": national_port, "local_db": local_db, "tmp": tmp}
    finally:
        stop(proxy)
        stop(national)


def test_local_contacts_first_then_national_each_address_once(world):
    rc, entries, err = ldapsearch(world["port"], AUTOCOMPLETE, "mail", "cn", "telephoneNumber", size=10)
    mails = _mails(entries)
    assert len(mails) == len(set(mails)), f"an address returned twice: {mails}"
    assert set(mails[:2]) == {"camille.martin@medecin.mssante.fr", "dr.camille.martin@cabinet.example"}
    assert mails[2:] == ["camille.martin@ch-exemple.mssante.fr"]
    local_twin = entries[mails.index("camille.martin@medecin.mssante.fr")]
    assert local_twin["telephoneNumber"] == ["04 11 22 33 44"], "the local contact must win over its national twin"
    assert rc == 0, err


def test_national_size_limit_is_passed_on(world):
    # The national server answers at most 3 entries to anonymous users.
    rc, entries, err = ldapsearch(world["port"], "(objectClass=*)", "mail")
    assert rc == 53 and "refused" in err  # not restrictive enough: refused as the national server would
    rc, entries, err = ldapsearch(world["port"], "(|(mail=cam*)(mail=sec*)(mail=hel*)(mail=noe*)(mail=pha*)(mail=rob*))", "mail")
    mails = _mails(entries)
    assert rc == 4, err  # sizeLimitExceeded from the national side
    local = {"camille.martin@medecin.mssante.fr", "secretariat.cardio@ch-exemple.mssante.fr",
             "pharmacie.eglise@pharmacie.mssante.fr"}
    assert set(mails[:3]) == local
    assert len(mails) - 3 <= 3 and len(mails) == len(set(mails))  # at most the national limit added


def test_exact_lookup_and_root_dse(world):
    rc, entries, _ = ldapsearch(world["port"], "(mail=helene.durand-leger@pharmacien.mssante.fr)", "cn", "mail")
    assert rc == 0 and entries[0]["cn"] == ["Hélène DURAND-LÉGER"]
    rc, entries, _ = ldapsearch(world["port"], "(objectClass=*)", "namingContexts", base="", scope="base")
    assert rc == 0 and entries[0]["namingContexts"] == [BASE]
    # A local-only entry read by its DN (the national server does not know it).
    rc, entries, err = ldapsearch(world["port"], "(objectClass=*)", "cn", scope="base",
                                  base=f"mail=dr.camille.martin@cabinet.example,ou=mailboxes,{BASE}")
    assert rc == 0, err
    assert entries[0]["cn"] == ["Camille MARTIN-LOCAL"]
    rc, _, _ = ldapsearch(world["port"], "(objectClass=*)", scope="base", base=f"mail=nobody@nowhere.fr,ou=mailboxes,{BASE}")
    assert rc == 32  # noSuchObject


def test_accent_insensitive_search_reaches_both_sides(world):
    rc, entries, _ = ldapsearch(world["port"], "(|(cn=helene*)(sn=helene*)(mail=helene*))", "mail")
    assert rc == 0 and _mails(entries) == ["helene.durand-leger@pharmacien.mssante.fr"]


def test_a_contact_added_while_serving_is_found(world):
    with LocalBase.open(world["local_db"]) as base:
        add_contact(base, {"address": "zelie.nouvelle@clinique.example", "first_name": "Zélie", "last_name": "Nouvelle"})
    deadline = time.monotonic() + 15
    mails: list[str] = []
    while time.monotonic() < deadline:
        _, entries, _ = ldapsearch(world["port"], "(|(cn=zelie*)(mail=zelie*))", "mail")
        mails = _mails(entries)
        if mails:
            break
        time.sleep(0.3)
    assert mails == ["zelie.nouvelle@clinique.example"]


def test_unreachable_national_still_answers_locally(world, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    proxy, port = _start(
        ["annuaire", "local-sync", "serve-ldap", "--local", str(world["local_db"]), "--national",
         f"ldap://127.0.0.1:{closed}", "--port", "auto"],
        tmp_path / "ready.json", tmp_path / "proxy.log",
    )
    try:
        rc, entries, err = ldapsearch(port, AUTOCOMPLETE, "mail")
        assert rc == 0, err
        assert set(_mails(entries)) == {"camille.martin@medecin.mssante.fr", "dr.camille.martin@cabinet.example"}
        assert "local results only: national directory unavailable" in err
    finally:
        stop(proxy)


def test_bad_national_url_is_a_clear_error(world):
    proc = subprocess.run(
        [sys.executable, "-m", "annuaire", "local-sync", "serve-ldap", "--local", str(world["local_db"]),
         "--national", "http://example.invalid", "--port", "auto"],
        capture_output=True, text=True, timeout=30, env=dict(os.environ, COLUMNS="200"), check=False,
    )
    assert proc.returncode == 2 and "must be an LDAP URL" in proc.stderr
