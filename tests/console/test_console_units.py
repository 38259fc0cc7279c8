"""The console's small parts without a server: signed sessions, the upload spool, origins."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from starlette.requests import Request

from annuaire.config import Settings
from annuaire.console import session as sessions
from annuaire.console.spool import KEEP, Spool
from annuaire.console.views import Console
from annuaire.errors import Gone


def test_sessions_are_signed_and_expire() -> None:
    signer = sessions.Signer(b"k" * 32)
    live = sessions.new_session(7, signer.fingerprint("token:x"))
    value = signer.sign(live)
    assert signer.read(value) == live
    assert sessions.Signer(b"other key").read(value) is None
    data, mac = value.split(".")
    assert signer.read(data[:-1] + ("A" if data[-1] != "A" else "B") + "." + mac) is None
    assert signer.read(value, now=live.seen + sessions.IDLE + 1) is None
    old = sessions.Session(7, live.credential, live.csrf, time.time() - sessions.LIFETIME - 1, time.time())
    assert signer.read(signer.sign(old)) is None
    assert signer.read(None) is None and signer.read("") is None and signer.read("a.b.c") is None
    assert sessions.same("abc", "abc") and not sessions.same("abc", "abd") and not sessions.same("", "")


def test_spool_keeps_an_upload_for_its_operator_and_domain_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    ident = spool.put(1, "a.mssante.fr", 3, "text/csv", b"list")
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    upload = spool.get(ident, 1, "a.mssante.fr")
    assert (upload.version, upload.media, upload.body) == (3, "text/csv", b"list")
    for args in ((ident, 2, "a.mssante.fr"), (ident, 1, "b.mssante.fr"), ("../etc", 1, "a.mssante.fr"), ("", 1, "x")):
        with pytest.raises(Gone):
            spool.get(*args)
    old = time.time() - KEEP - 1
    os.utime(tmp_path / "spool" / f"{ident}.json", (old, old))
    with pytest.raises(Gone):
        spool.get(ident, 1, "a.mssante.fr")
    assert list((tmp_path / "spool").iterdir()) == []


def _request(scheme: str = "http") -> Request:
    return Request({"type": "http", "method": "POST", "path": "/operateurs/connexion", "root_path": "",
                    "query_string": b"", "headers": [(b"host", b"10.0.0.5:8080")], "scheme": scheme,
                    "server": ("10.0.0.5", 8080)})


def test_behind_a_tls_proxy_the_public_origin_and_secure_cookies(tmp_path: Path) -> None:
    console = Console(None, Settings(public_url="https://annuaire.example/sante"), Spool(tmp_path))  # type: ignore[arg-type]
    assert console._origins(_request()) == {"http://10.0.0.5:8080", "https://annuaire.example"}
    assert console._secure(_request())
    plain = Console(None, Settings(), Spool(tmp_path))  # type: ignore[arg-type]
    assert not plain._secure(_request()) and plain._secure(_request("https"))
