"""Liste rouge boxes never appear, whatever the filter, through the real server (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from ldap_support import BASE, SUFFIX, filters

from annuaire.ldap import messages as m
from annuaire.ldap.filters import to_string

ldap3 = pytest.importorskip("ldap3")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, base=pytest.importorskip("hypothesis.strategies").sampled_from([SUFFIX, BASE, ""]))
def test_hidden_boxes_never_returned(ldap_server, f: m.Filter, base: str) -> None:  # type: ignore[no-untyped-def]
    try:
        text = to_string(f)
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=ldap_server.port, get_info=ldap3.NONE),
                                auto_bind=True, raise_exceptions=False, check_names=False)
        conn.search(base, text, attributes=["mail", "cn"], size_limit=0)
    except (ldap3.core.exceptions.LDAPException, ValueError):
        return  # ldap3 cannot express every random filter; the server is not at stake
    found = {str(e.entry_dn).split(",", 1)[0].split("=", 1)[-1].lower() for e in conn.entries}
    assert not found & ldap_server.world.hidden, text
    assert conn.result["result"] in (0, 4, 18, 53), (text, conn.result)
    conn.unbind()
