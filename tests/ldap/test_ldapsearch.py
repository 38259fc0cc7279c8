"""OpenLDAP's ldapsearch (and friends) against the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess

import pytest
from ldap_support import BASE, HAVE_LDAPSEARCH, SUFFIX, ldapsearch

from annuaire.store.keys import search_key

pytestmark = pytest.mark.skipif(not HAVE_LDAPSEARCH, reason="ldap-utils not installed (apt-get install ldap-utils)")

CLIENT_FILTERS = {
    "thunderbird autocomplete": "(|(cn=jean*dup*)(mail=jean*dup*)(sn=jean*dup*))",
    "thunderbird address book": "(|(mail=*dup*)(cn=*dup*)(givenName=*dup*)(sn=*dup*))",
    "outlook": "(&(mail=*)(|(mail=dup*)(cn=dup*)(sn=dup*)(givenName=dup*)))",
    "apple / evolution": "(|(givenName=dup*)(sn=dup*)(cn=dup*)(mail=dup*))",
}


def expected(world, predicate) -> set[str]:  # type: ignore[no-untyped-def]
    return {a for a, exp in world.published.items() if predicate(a, exp)}


def test_thunderbird_autocomplete(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, CLIENT_FILTERS["thunderbird autocomplete"], "cn", "mail")
    assert r.rc == 0, r.stderr
    assert set(r.mails) == {"jean.dupont@medecin.mssante.fr", "jeanne.dupond@medecin.mssante.fr",
                            "jean-pierre.dupontel@ch-exemple.mssante.fr"}
    # Best matches first: cn "Jean DUPONT" sorts before the longer names.
    assert r.mails[0] == "jean.dupont@medecin.mssante.fr"


def test_thunderbird_address_book_contains(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, CLIENT_FILTERS["thunderbird address book"], "cn", "mail", "sn", "givenName")
    assert r.rc == 0, r.stderr
    want = {a for a in ldap_server.world.published if "dup" in a}
    # and the boxes named after their structure, "CENTRE HOSPITALIER DE DUPONTVILLE"
    want |= expected(ldap_server.world, lambda a, exp: "dup" in search_key(exp.get("cn", "")))
    assert "secretariat.dupuytren@ch-exemple.mssante.fr" in want
    assert set(r.mails) == want
    assert not set(r.mails) & ldap_server.world.hidden
    # exact, then prefix, then contains: sn=DUPOND/DUPONT... start with "dup"; "jean-pierre" only contains it.
    positions = {m: i for i, m in enumerate(r.mails)}
    assert positions["jeanne.dupond@medecin.mssante.fr"] < positions["secretariat.dupuytren@ch-exemple.mssante.fr"]


@pytest.mark.parametrize("client", ["outlook", "apple / evolution"])
def test_prefix_clients(ldap_server, client: str) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, CLIENT_FILTERS[client], "cn", "mail", "displayName")
    assert r.rc == 0, r.stderr
    people = {"jean.dupont@medecin.mssante.fr", "jeanne.dupond@medecin.mssante.fr",
              "jean-pierre.dupontel@ch-exemple.mssante.fr", "philippe.dupuis@medecin.mssante.fr"}
    # Boxes whose names have a word starting with "dup" ("CENTRE HOSPITALIER DE DUPONTVILLE"), after the people.
    boxes = expected(ldap_server.world, lambda a, exp: "cn" in exp and "idnat" not in exp
                     and any(w.startswith("dup") for w in search_key(exp["cn"]).split()))
    assert len(boxes) > 3
    assert set(r.mails[:4]) == people and set(r.mails[4:]) == boxes


def test_accent_and_case_insensitive(ldap_server) -> None:  # type: ignore[no-untyped-def]
    for filt in ("(sn=lefevre)", "(sn=LEFÈVRE)", "(cn=helene lef*)", "(givenName=HÉLÈNE)"):
        r = ldapsearch(ldap_server.uri, filt, "cn", "mail")
        assert r.rc == 0, (filt, r.stderr)
        assert "helene.lefevre@medecin.mssante.fr" in r.mails, filt
    r = ldapsearch(ldap_server.uri, "(mail=helene.lefevre@medecin.mssante.fr)", "cn", "sn")
    assert r.entries[0]["cn"] == ["Hélène LEFÈVRE"] and r.entries[0]["sn"] == ["LEFÈVRE"]


def test_exact_address_lookup_and_entry_attributes(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(mail=Jean.Dupont@MEDECIN.mssante.fr)")
    assert r.rc == 0, r.stderr
    assert len(r.entries) == 1
    e = r.entries[0]
    assert e["dn"] == [f"mail=jean.dupont@medecin.mssante.fr,{SUFFIX}"]
    assert e["cn"] == ["Jean DUPONT"] and e["sn"] == ["DUPONT"] and e["givenName"] == ["Jean"]
    assert e["displayName"] == ["Dr Jean DUPONT (Médecin - Médecine générale)"]
    assert e["title"] == ["Médecin - Médecine générale"]
    assert e["o"] == ["CH EXEMPLE"] and e["postalCode"] == ["75010"] and e["l"] == ["PARIS"]
    assert e["mssBalType"] == ["PER"] and e["mssProfessionCode"] == ["10"] and e["mssDepartement"] == ["75"]
    assert set(e["objectClass"]) == {"top", "person", "organizationalPerson", "inetOrgPerson", "mssMailbox"}
    assert "responsible" not in str(e) and "secret.responsable" not in r.stdout


def test_organisational_box(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(mail=cardiologie@ch-exemple.mssante.fr)", "cn", "sn", "displayName", "ou")
    e = r.entries[0]
    assert e["cn"] == ["Cardiologie - CH EXEMPLE"] and e["sn"] == ["Cardiologie - CH EXEMPLE"]
    assert e["displayName"] == ["Cardiologie - CH EXEMPLE"] and e["ou"] == ["Cardiologie"]


def test_lookups_by_national_id_profession_departement(ldap_server) -> None:  # type: ignore[no-untyped-def]
    idnat = ldap_server.world.published["jean.dupont@medecin.mssante.fr"]["idnat"]
    r = ldapsearch(ldap_server.uri, f"(mssIdNatPS={idnat})", "mail")
    assert r.mails == ["jean.dupont@medecin.mssante.fr"]
    r = ldapsearch(ldap_server.uri, "(&(mssProfessionCode=10)(mssDepartement=75)(sn=dup*))", "mail")
    assert set(r.mails) == {"jean.dupont@medecin.mssante.fr", "jean-pierre.dupontel@ch-exemple.mssante.fr"}
    # Alone, low-cardinality codes are not enough to search.
    r = ldapsearch(ldap_server.uri, "(mssDepartement=75)", "mail")
    assert r.rc == 53 and "significant characters" in r.stderr + r.stdout


def test_attribute_selection(ldap_server) -> None:  # type: ignore[no-untyped-def]
    f = "(mail=jean.dupont@medecin.mssante.fr)"
    only_dn = ldapsearch(ldap_server.uri, f, "1.1").entries[0]
    assert set(only_dn) == {"dn"}
    oper = ldapsearch(ldap_server.uri, f, "+").entries[0]
    assert oper["structuralObjectClass"] == ["inetOrgPerson"] and oper["subschemaSubentry"] == ["cn=Subschema"]
    assert "cn" not in oper
    both = ldapsearch(ldap_server.uri, f, "*", "+").entries[0]
    assert "cn" in both and "entryDN" in both
    types = ldapsearch(ldap_server.uri, f, "cn", "mail", options=("-A",))
    assert types.rc == 0 and "cn" in types.stdout and "Jean DUPONT" not in types.stdout


def test_scopes_and_base_reads(ldap_server) -> None:  # type: ignore[no-untyped-def]
    dn = f"mail=jean.dupont@medecin.mssante.fr,{SUFFIX}"
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", "cn", base=dn, scope="base")
    assert r.rc == 0 and r.entries[0]["cn"] == ["Jean DUPONT"]
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", base=dn, scope="one")
    assert r.rc == 0 and r.entries == []
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", base=BASE, scope="base")
    assert r.rc == 0 and r.entries[0]["dn"] == [BASE]
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", base=BASE, scope="one")
    assert r.rc == 0 and [e["dn"][0] for e in r.entries] == [SUFFIX]
    r = ldapsearch(ldap_server.uri, "(cn=jean dupont)", "mail", base=BASE, scope="sub")
    assert r.mails == ["jean.dupont@medecin.mssante.fr"]
    # A liste rouge box cannot be read by its DN either.
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", base=f"mail=jean.dupont.secret@hopital-nord.mssante.fr,{SUFFIX}",
                   scope="base")
    assert r.rc == 32 and r.entries == []
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", base="o=elsewhere", scope="base")
    assert r.rc == 32


def test_root_dse_and_subschema(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(objectClass=*)", "+", base="", scope="base")
    root = r.entries[0]
    assert root["namingContexts"] == [BASE] and root["supportedLDAPVersion"] == ["3"]
    assert "1.2.840.113556.1.4.319" in root["supportedControl"]
    assert "1.3.6.1.4.1.1466.20037" in root["supportedExtension"]
    assert root["subschemaSubentry"] == ["cn=Subschema"]
    r = ldapsearch(ldap_server.uri, "(objectClass=subschema)", "attributeTypes", "objectClasses",
                   base="cn=Subschema", scope="base")
    sub = r.entries[0]
    assert any("'mssIdNatPS'" in t for t in sub["attributeTypes"])
    assert any("'mssMailbox'" in c and "AUXILIARY" in c for c in sub["objectClasses"])


def test_minimum_significant_characters(ldap_server) -> None:  # type: ignore[no-untyped-def]
    for filt in ("(objectClass=*)", "(cn=du*)", "(mail=*)", "(|(cn=dup*)(o=*))", "(!(cn=dupont))", "(cn=*)",
                 "(sn>=a)"):
        r = ldapsearch(ldap_server.uri, filt, "cn")
        assert r.rc == 53, (filt, r.stdout, r.stderr)
        assert r.entries == []
        assert "at least 3 significant characters" in r.stderr + r.stdout


def test_size_limit(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(|(mail=*mssante*)(cn=*mssante*))", "mail", options=("-z", "5"))
    assert r.rc == 4, r.stderr  # sizeLimitExceeded
    assert len(r.entries) == 5
    # Server side limit for anonymous users: 100.
    r = ldapsearch(ldap_server.uri, "(mail=*mssante*)", "mail")
    assert r.rc == 4 and len(r.entries) == 100


def test_paged_results(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(mail=*mssante*)", "mail", options=("-E", "pr=40/noprompt", "-z", "90"))
    assert len(r.entries) == 90
    assert len(set(r.mails)) == 90
    assert r.stdout.count("# pagedresults") >= 2 or r.stdout.count("pagedresults") >= 2 or r.rc in (0, 4)
    # All pages of a full paged search: capped at 500 for anonymous users, here fewer entries exist.
    r = ldapsearch(ldap_server.uri, "(mail=*mssante*)", "mail", options=("-E", "pr=50/noprompt"))
    assert r.rc == 0, r.stderr
    assert set(r.mails) == set(ldap_server.world.published)


def test_unknown_critical_control(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(cn=jean dupont)", "mail", options=("-e", "!1.2.3.4.5"))
    assert r.rc == 12, r.stderr  # unavailableCriticalExtension
    r = ldapsearch(ldap_server.uri, "(cn=jean dupont)", "mail", options=("-e", "1.2.3.4.5"))
    assert r.rc == 0 and r.mails == ["jean.dupont@medecin.mssante.fr"]


def test_extensible_and_approx(ldap_server) -> None:  # type: ignore[no-untyped-def]
    r = ldapsearch(ldap_server.uri, "(cn:1.2.3.4:=dupont)", "mail")
    assert r.rc == 18, r.stderr  # inappropriateMatching
    r = ldapsearch(ldap_server.uri, "(sn:caseIgnoreMatch:=dupont)", "mail")
    assert r.rc == 0 and "jean.dupont@medecin.mssante.fr" in r.mails
    r = ldapsearch(ldap_server.uri, "(sn~=dupon)", "mail")
    assert r.rc == 0 and {"jean.dupont@medecin.mssante.fr", "jeanne.dupond@medecin.mssante.fr"} <= set(r.mails)


def test_writes_are_refused(ldap_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ldif = tmp_path / "add.ldif"
    ldif.write_text(f"dn: mail=x@medecin.mssante.fr,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: x\nsn: x\n")
    add = subprocess.run(["ldapadd", "-x", "-H", ldap_server.uri, "-f", str(ldif)], capture_output=True, text=True)
    assert add.returncode == 53 and "read-only" in add.stderr + add.stdout
    dn = f"mail=jean.dupont@medecin.mssante.fr,{SUFFIX}"
    delete = subprocess.run(["ldapdelete", "-x", "-H", ldap_server.uri, dn], capture_output=True, text=True)
    assert delete.returncode == 53
    mod = tmp_path / "mod.ldif"
    mod.write_text(f"dn: mail=jean.dupont@medecin.mssante.fr,{SUFFIX}\nchangetype: modify\nreplace: cn\ncn: y\n")
    modify = subprocess.run(["ldapmodify", "-x", "-H", ldap_server.uri, "-f", str(mod)], capture_output=True, text=True)
    assert modify.returncode == 53
    # Still there, unchanged.
    still = ldapsearch(ldap_server.uri, "(mail=jean.dupont@medecin.mssante.fr)", "cn")
    assert still.entries[0]["cn"] == ["Jean DUPONT"]


def test_starttls_and_ldaps(ldap_server) -> None:  # type: ignore[no-untyped-def]
    env = {"LDAPTLS_CACERT": str(ldap_server.cert), "LDAPTLS_REQCERT": "demand"}
    uri = f"ldap://localhost:{ldap_server.port}"
    r = ldapsearch(uri, "(cn=jean dupont)", "mail", options=("-ZZ",), env=env)
    assert r.rc == 0, r.stderr
    assert r.mails == ["jean.dupont@medecin.mssante.fr"]
    r = ldapsearch(ldap_server.ldaps_uri, "(cn=jean dupont)", "mail", env=env)
    assert r.rc == 0, r.stderr
    assert r.mails == ["jean.dupont@medecin.mssante.fr"]
    # Paged results over TLS too.
    r = ldapsearch(ldap_server.ldaps_uri, "(mail=*medecin*)", "mail", options=("-E", "pr=7/noprompt"), env=env)
    assert r.rc == 0 and len(r.mails) == len({a for a in ldap_server.world.published if "medecin" in a})


def test_liste_rouge_never_visible_with_client_filters(ldap_server) -> None:  # type: ignore[no-untyped-def]
    hidden = ldap_server.world.hidden
    for filt in list(CLIENT_FILTERS.values()) + ["(|(mail=*secret*)(cn=*dupontier*))", "(mail=*confidentiel*)",
                                                 "(sn=duponti*)", "(mail=jean.dupont.secret@hopital-nord.mssante.fr)"]:
        r = ldapsearch(ldap_server.uri, filt, "mail")
        assert r.rc == 0, (filt, r.stderr)
        assert not set(r.mails) & hidden, filt
