"""The index: complete answers (property-based oracle), best matches first, no full scans."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from ldap_support import SUFFIX, filters

from annuaire.ldap import messages as m
from annuaire.ldap.backend import load_index
from annuaire.ldap.directory import MAILBOX_OCS, PLAN_CACHE, Directory
from annuaire.ldap.entries import entry_dn
from annuaire.ldap.filters import compile_filter, parse
from annuaire.ldap.index import DirectoryIndex
from annuaire.store import open_store


def _search(f: m.Filter, size: int = 0) -> m.SearchRequest:
    return m.SearchRequest(SUFFIX, 2, 0, size, 0, False, f, [])


@pytest.fixture(scope="module")
def directory(sqlite_world) -> Directory:  # type: ignore[no-untyped-def]
    url, _ = sqlite_world
    store = open_store(url)
    index, _ = load_index(store, SUFFIX)
    store.dispose()
    return Directory(index)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters)
def test_answers_are_complete_and_never_hidden(directory, sqlite_world, f) -> None:  # type: ignore[no-untyped-def]
    _, world = sqlite_world
    found = directory.collect(_search(f), 10**6, time.monotonic() + 30)
    if found.error is not None:
        assert found.error.code in (m.UNWILLING_TO_PERFORM, m.INAPPROPRIATE_MATCHING)
        return
    got = {directory.index.entries[r][0][1] for r in found.refs if isinstance(r, int)}
    assert not got & world.hidden
    # Oracle: evaluate the filter on every published entry.
    matcher = compile_filter(f, MAILBOX_OCS)
    want = {e[0][1] for e in directory.index.entries if e is not None and matcher(e[0]) is True}
    assert got == want


def _records(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    firsts = ["Jean", "Marie", "Pierre", "Camille", "Hélène", "Léa", "Louis", "Chloé", "Éric", "Inès"] * 3
    firsts += [f"Prenom{i}" for i in range(300)]
    lasts = [f"{rng.choice(['DU', 'MAR', 'LE', 'BER', 'MOR', 'GAR', 'PE', 'RO'])}"
             f"{rng.choice(['PONT', 'TIN', 'FEVRE', 'NARD', 'EAU', 'CIA', 'TIT', 'UX'])}{i % 700}" for i in range(3000)]
    out = []
    for i in range(n):
        first, last = rng.choice(firsts), rng.choice(lasts)
        out.append({"address": f"{first.lower()}.{last.lower()}.{i}@d{i % 50}.mssante.fr", "type": "PER",
                    "first_name": first, "last_name": last, "holder": f"8{i:011d}",
                    "profession_code": rng.choice(["10", "21", "60"]), "dept_code": f"{rng.randint(1, 95):02d}"})
    out.append({"address": "lea.mar@x.mssante.fr", "type": "PER", "first_name": "Léa", "last_name": "MAR"})
    out.append({"address": "omar.benali@x.mssante.fr", "type": "PER", "first_name": "Omar", "last_name": "BENALI"})
    return out


@pytest.fixture(scope="module")
def big() -> Directory:
    return Directory(DirectoryIndex.build(_records(30_000), SUFFIX))


CLIENT_FILTERS = [
    "(|(cn={a}*{b}*)(mail={a}*{b}*)(sn={a}*{b}*))",
    "(|(mail=*{a}*)(cn=*{a}*)(givenName=*{a}*)(sn=*{a}*))",
    "(&(mail=*)(|(mail={a}*)(cn={a}*)(sn={a}*)(givenName={a}*)))",
    "(|(givenName={a}*)(sn={a}*)(cn={a}*)(mail={a}*))",
    "(mail=jean.dupont42.17@d17.mssante.fr)",
    "(mssIdNatPS=800000001234)",
    "(&(mssProfessionCode=10)(mssDepartement=75)(sn={a}*))",
]


@pytest.mark.parametrize("template", CLIENT_FILTERS)
@pytest.mark.parametrize("a,b", [("jean", "dup"), ("mar", "tin"), ("dupont1", "x"), ("zzz", "qqq"), ("rou", "x5")])
def test_client_filters_never_scan(big: Directory, template: str, a: str, b: str) -> None:
    f = parse(template.format(a=a, b=b))
    index = big.index
    examined = 0
    original = index.candidates

    def counting(plan):  # type: ignore[no-untyped-def]
        nonlocal examined
        for eid in original(plan):
            examined += 1
            yield eid

    index.candidates = counting  # type: ignore[method-assign]
    try:
        found = big.collect(_search(f), 50, time.monotonic() + 10)
    finally:
        del index.candidates
    assert found.error is None
    assert examined <= 0.05 * index.live, (template, a, b, examined)


def test_best_matches_first(big: Directory) -> None:
    f = parse("(|(mail=*mar*)(cn=*mar*)(givenName=*mar*)(sn=*mar*))")
    found = big.collect(_search(f), 50, time.monotonic() + 10)
    norms = [big.index.entries[r][0] for r in found.refs]
    assert norms[0][3] == "mar"  # exact (sn)
    # then values starting with "mar" (mail, cn, sn or givenName), before mere "contains"
    assert all(any((n[s] or "").startswith("mar") for s in (1, 2, 3, 4)) for n in norms[1:50])
    f = parse("(|(cn=*omar*)(sn=*omar*))")
    found = big.collect(_search(f), 50, time.monotonic() + 10)
    assert [entry_dn(big.index.entries[r][1]).split(",")[0] for r in found.refs] == ["mail=omar.benali@x.mssante.fr"]


def test_plan_cache_stays_small(big: Directory) -> None:
    """Cached plans hold candidate lists: many of them make every GC pass long."""
    first = None
    for i in range(3 * PLAN_CACHE):
        f = parse(f"(sn=a{i:03d}*)")
        req = m.SearchRequest(SUFFIX, 2, 0, 0, 0, False, f, [], filter_raw=f"(sn=a{i:03d}*)".encode())
        found = big.collect(req, 50, time.monotonic() + 10)
        first = found.refs if i == 0 else first
        assert len(big._plans) <= PLAN_CACHE
    req = m.SearchRequest(SUFFIX, 2, 0, 0, 0, False, parse("(sn=a000*)"), [], filter_raw=b"(sn=a000*)")
    assert big.collect(req, 50, time.monotonic() + 10).refs == first  # evicted plans are rebuilt alike


def test_update_and_remove_keep_answers_exact(big: Directory) -> None:
    index = big.index
    index.upsert({"address": "nouveau.venu@x.mssante.fr", "type": "PER", "first_name": "Nouveau",
                  "last_name": "VENU-DUPONT"}, SUFFIX)
    found = big.collect(_search(parse("(sn=venu*)")), 50, time.monotonic() + 1)
    assert [index.entries[r][0][1] for r in found.refs] == ["nouveau.venu@x.mssante.fr"]
    index.upsert({"address": "nouveau.venu@x.mssante.fr", "type": "PER", "first_name": "Nouveau",
                  "last_name": "ARRIVANT"}, SUFFIX)
    assert big.collect(_search(parse("(sn=venu*)")), 50, time.monotonic() + 1).refs == []
    found = big.collect(_search(parse("(cn=*arrivant*)")), 50, time.monotonic() + 1)
    assert len(found.refs) == 1
    assert index.remove("nouveau.venu@x.mssante.fr")
    assert big.collect(_search(parse("(cn=*arrivant*)")), 50, time.monotonic() + 1).refs == []


def test_bitset_intersections_are_complete(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With tiny bitset thresholds, contains answers still equal the brute-force oracle."""
    import annuaire.ldap.index as index_module

    monkeypatch.setattr(index_module, "BIG_POSTING", 300)
    small = Directory(DirectoryIndex.build(_records(6000, seed=9), SUFFIX))
    assert small.index.bits, "some trigram lists should be large enough for a bitset"
    small.index.upsert({"address": "zz.nouveau@x.mssante.fr", "type": "PER", "first_name": "Jean",
                        "last_name": "MARTINET"}, SUFFIX)
    for fragment in ("mart", "arti", "ean", "rtin", "dupont1", "eau", "jean mar", "perti"):
        f = parse(f"(|(mail=*{fragment}*)(cn=*{fragment}*)(givenName=*{fragment}*)(sn=*{fragment}*))")
        found = small.collect(_search(f), 10**6, time.monotonic() + 30)
        if found.error is not None:
            continue
        matcher = compile_filter(f, MAILBOX_OCS)
        want = {i for i, e in enumerate(small.index.entries) if e is not None and matcher(e[0]) is True}
        assert set(found.refs) == want, fragment
