"""A Python LDAP client library (ldap3) against the real server: schema, paging, binds, TLS."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest
from ldap_support import BASE, SUFFIX

ldap3 = pytest.importorskip("ldap3")


def connect(server, **kw):  # type: ignore[no-untyped-def]
    return ldap3.Connection(ldap3.Server("127.0.0.1", port=server.port, get_info=kw.pop("info", ldap3.NONE)),
                            auto_bind=True, **kw)


def test_schema_and_root_dse(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server, info=ldap3.ALL)
    info = conn.server.info
    assert BASE in info.naming_contexts
    assert "1.2.840.113556.1.4.319" in [c[0] for c in info.supported_controls]
    schema = conn.server.schema
    assert "mssIdNatPS" in schema.attribute_types
    assert "mssMailbox" in schema.object_classes
    # Schema-aware search: attributes are checked against the published schema.
    conn.search(SUFFIX, "(mssIdNatPS=" + ldap_server.world.published["jean.dupont@medecin.mssante.fr"]["idnat"] + ")",
                attributes=["cn", "mail", "mssDematerialisation"])
    assert len(conn.entries) == 1
    entry = conn.entries[0]
    assert entry.cn.value == "Jean DUPONT"
    assert entry.mssDematerialisation.value is True
    conn.unbind()


def test_client_filters(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server)
    conn.search(SUFFIX, "(|(givenName=hél*)(sn=hél*)(cn=hél*)(mail=hél*))", attributes=["mail"])
    mails = {e.mail.value for e in conn.entries}
    assert "helene.lefevre@medecin.mssante.fr" in mails
    assert all(m.startswith("helene") for m in mails)
    assert not mails & ldap_server.world.hidden
    conn.search(SUFFIX, "(mail=zoe.etienne@hopital-nord.mssante.fr)", attributes=[ldap3.ALL_ATTRIBUTES])
    assert conn.entries[0].givenName.value == "Zoé"
    conn.unbind()


def test_paged_search(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server)
    entries = list(conn.extend.standard.paged_search(SUFFIX, "(mail=*mssante*)", attributes=["mail"], paged_size=25,
                                                     generator=True))
    mails = [e["attributes"]["mail"][0] if isinstance(e["attributes"]["mail"], list) else e["attributes"]["mail"]
             for e in entries if e["type"] == "searchResEntry"]
    assert len(mails) == len(set(mails)) == len(ldap_server.world.published)
    conn.unbind()


def test_size_limit_result(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server)
    conn.search(SUFFIX, "(cn=*mar*)", attributes=["mail"], size_limit=3)
    assert len(conn.entries) == 3
    assert conn.result["result"] == 4  # sizeLimitExceeded
    conn.unbind()


def test_account_bind_and_whoami(ldap_server) -> None:  # type: ignore[no-untyped-def]
    password = "correct horse battery staple"
    subprocess.run([sys.executable, "-m", "annuaire", "--db", ldap_server.url, "ldap-account", "add",
                    f"proxy-{ldap_server.port}", "--password-stdin", "--size-limit", "150"],
                   input=password + "\n", text=True, check=True, capture_output=True)
    dn = f"cn=proxy-{ldap_server.port},ou=accounts,{BASE}"
    server = ldap3.Server("127.0.0.1", port=ldap_server.port)
    bad = ldap3.Connection(server, dn, "wrong password!")
    assert not bad.bind()
    assert bad.result["result"] == 49  # invalidCredentials
    # The account appears within the refresh interval.
    import time

    deadline = time.monotonic() + 15
    while True:
        conn = ldap3.Connection(server, dn, password)
        if conn.bind():
            break
        assert time.monotonic() < deadline, conn.result
        time.sleep(0.3)
    assert conn.extend.standard.who_am_i() == f"dn:{dn}"
    # Higher limit than anonymous users (100): 150 entries in one search.
    conn.search(SUFFIX, "(mail=*mssante*)", attributes=["mail"], size_limit=0)
    assert len(conn.entries) == min(150, len(ldap_server.world.published))
    conn.unbind()
    anonymous = connect(ldap_server)
    anonymous.search(SUFFIX, "(mail=*mssante*)", attributes=["mail"])
    assert len(anonymous.entries) == 100 and anonymous.result["result"] == 4
    assert anonymous.extend.standard.who_am_i() in (None, "")


def test_starttls_with_ldap3(ldap_server) -> None:  # type: ignore[no-untyped-def]
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ldap_server.cert))
    server = ldap3.Server("localhost", port=ldap_server.port, tls=tls)
    conn = ldap3.Connection(server)
    assert conn.open() is None or True
    assert conn.start_tls()
    assert conn.bind()
    conn.search(SUFFIX, "(cn=jean dupont)", attributes=["mail"])
    assert [e.mail.value for e in conn.entries] == ["jean.dupont@medecin.mssante.fr"]
    conn.unbind()
    secure = ldap3.Connection(ldap3.Server("localhost", port=ldap_server.ldaps_port, use_ssl=True, tls=tls),
                              auto_bind=True)
    secure.search(SUFFIX, "(sn=noel)", attributes=["mail"])
    assert [e.mail.value for e in secure.entries] == ["eric.noel@pharmacie.mssante.fr"]
    secure.unbind()


def test_write_operations_refused(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server)
    dn = f"mail=jean.dupont@medecin.mssante.fr,{SUFFIX}"
    assert not conn.modify(dn, {"cn": [(ldap3.MODIFY_REPLACE, ["x"])]})
    assert conn.result["result"] == 53 and conn.result["type"] == "modifyResponse"
    assert not conn.add(f"mail=x@y.fr,{SUFFIX}", "inetOrgPerson", {"cn": "x", "sn": "x"})
    assert conn.result["result"] == 53 and conn.result["type"] == "addResponse"
    assert not conn.delete(dn)
    assert conn.result["type"] == "delResponse"
    assert not conn.modify_dn(dn, "mail=z@y.fr")
    assert conn.result["type"] == "modDNResponse"
    conn.compare(dn, "cn", "Jean DUPONT")
    assert conn.result["result"] == 53 and conn.result["type"] == "compareResponse"
    # The connection is still usable.
    conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["cn"])
    assert conn.entries[0].cn.value == "Jean DUPONT"
    conn.unbind()


def test_abandon_is_accepted(ldap_server) -> None:  # type: ignore[no-untyped-def]
    conn = connect(ldap_server)
    conn.abandon(12345)
    conn.search(SUFFIX, "(sn=dupond)", attributes=["mail"])
    assert [e.mail.value for e in conn.entries] == ["jeanne.dupond@medecin.mssante.fr"]
    conn.unbind()
