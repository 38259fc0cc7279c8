"""One public directory: every view shows the same mailboxes, equal to the visibility rule on the store.

A differential, property-based test on SQLite and PostgreSQL. A real server
(`annuaire serve`: HTTP and LDAP worker processes) runs over a small generated
world; hypothesis drives random sequences of

- referential imports (a professional departs, comes back; a structure closes, reopens),
- publications through the operator API (create, update, delete, liste rouge toggled,
  a type change, which the rules refuse),
- national MSSanté file imports (lines dropped, restored),

and after each step, once the views say they have caught up (LDAP's root DSE
`annuaireJournalPosition`, FHIR's `X-Journal-Position` with a 200; the web
pages, the MSSanté extraction and the LDIF export read the store), the
publicly visible addresses of LDAP (ldapsearch), FHIR (HTTP), the web search
(HTTP), the MSSanté extraction and the LDIF export are the same, and equal to
`store.visibility.visible` evaluated on the store. Liste rouge never appears.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from annuaire.store.schema import journal, mailbox
from annuaire.store.visibility import visible

pytestmark = pytest.mark.slow

if shutil.which("ldapsearch") is None:
    pytest.skip("needs OpenLDAP's ldapsearch (Debian ldap-utils)", allow_module_level=True)

SUFFIX = "ou=mailboxes,o=annuaire-sante,c=fr"
DOMAIN = "consistance.mssante.fr"
PASSWORD = "mot-de-passe-de-test"
STEPS = int(os.environ.get("CONSISTENCY_STEPS", "7"))
EXAMPLES = int(os.environ.get("CONSISTENCY_EXAMPLES", "2"))
PICK = st.integers(min_value=0, max_value=1 << 16)
_WEB_BOX = re.compile(r'href="mailto:([^"]+)"')


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the national files, edited as the days go by ----------------------------------------------


@dataclass
class NationalFiles:
    """The generated day-0 files, and the edits the steps make to them."""

    folder: Path
    referential: dict[str, list[str]] = field(default_factory=dict)  # member -> lines (header first)
    mssante: list[str] = field(default_factory=list)
    departed: set[str] = field(default_factory=set)  # national ids left out of the referential
    closed: set[str] = field(default_factory=set)  # structure technical ids left out
    dropped: set[str] = field(default_factory=set)  # national MSSanté lines left out (by address)
    minute: int = 0

    @classmethod
    def load(cls, folder: Path) -> NationalFiles:
        files = cls(folder)
        with zipfile.ZipFile(next(folder.glob("PS_LibreAcces_*.zip"))) as z:
            for name in z.namelist():
                files.referential[name] = z.read(name).decode("utf-8").splitlines()
        with zipfile.ZipFile(next(folder.glob("Extraction_Correspondance_MSSante_*.zip"))) as z:
            files.mssante = z.read(z.namelist()[0]).decode("utf-8").splitlines()
        return files

    def _column(self, member: str, name: str) -> int:
        return self.referential[member][0].split("|").index(name)

    @property
    def activities(self) -> list[list[str]]:
        member = next(m for m in self.referential if "Personne_activite" in m)
        return [line.split("|") for line in self.referential[member][1:]]

    def persons(self) -> list[str]:
        return sorted({f[2] for f in self.activities})

    def structures(self) -> list[str]:
        member = next(m for m in self.referential if "Personne_activite" in m)
        tech = self._column(member, "Identifiant technique de la structure")
        return sorted({f[tech] for f in self.activities if f[tech]})

    def _stamp(self) -> str:
        self.minute += 1
        return f"20260102{self.minute // 60:02d}{self.minute % 60:02d}"

    def write(self, out: Path, *, mirror: bool) -> list[Path]:
        """Today's files: the referential without the departed and the closed, and (when `mirror`)
        the MSSanté file without its dropped lines."""
        ts = self._stamp()
        out.mkdir(parents=True, exist_ok=True)
        ps = out / f"PS_LibreAcces_{ts}.zip"
        with zipfile.ZipFile(ps, "w", zipfile.ZIP_DEFLATED) as z:
            for member, lines in self.referential.items():
                kept = [lines[0]]
                tech = self._column(member, "Identifiant technique de la structure") \
                    if "Personne_activite" in member else None
                for line in lines[1:]:
                    fields = line.split("|")
                    if fields[2] in self.departed or (tech is not None and fields[tech] in self.closed):
                        continue
                    kept.append(line)
                z.writestr(re.sub(r"_\d{12}\.txt$", f"_{ts}.txt", member), "\n".join(kept) + "\n")
        paths = [ps]
        if mirror:
            ms = out / f"Extraction_Correspondance_MSSante_{ts}.zip"
            kept = [self.mssante[0]] + [ln for ln in self.mssante[1:] if ln.split("|")[1] not in self.dropped]
            with zipfile.ZipFile(ms, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"Extraction_Correspondance_MSSante_{ts}.txt", "\n".join(kept) + "\n")
            paths.append(ms)
        return paths


# --- the server and its clients --------------------------------------------------------------


@dataclass
class Directory:
    url: str
    tmp: Path
    files: NationalFiles
    http: httpx.Client
    ldap_port: int
    token: str
    key: str
    process: subprocess.Popen
    store: Any

    def run(self, *args: str) -> str:
        """A command of the CLI, in this process (as a script would run it, without the start-up)."""
        from click.testing import CliRunner

        import annuaire.cli.ldap  # noqa: F401 - registers export-ldif
        from annuaire.cli.app import cli

        result = CliRunner().invoke(cli, ["--quiet", "--db", self.url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def head(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(journal.c.id), 0))).scalar_one())

    # --- what the store's rule says

    def rule(self) -> tuple[set[str], set[str], set[str]]:
        """(visible addresses, every address ever stored, active liste rouge addresses)."""
        with self.store.read() as conn:
            shown = set(conn.execute(select(mailbox.c.address).where(visible())).scalars())
            every = set(conn.execute(select(mailbox.c.address)).scalars())
            rouge = set(conn.execute(select(mailbox.c.address).where(mailbox.c.liste_rouge)).scalars())
        return shown, every, rouge

    # --- waiting for the views, by their own freshness signal

    def caught_up(self, head: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ldap = self.ldap_position()
            fhir = self.http.get("/fhir/v2/Practitioner", params={"_count": "1"}, headers={"ESANTE-API-KEY": self.key})
            fhir_position = int(fhir.headers.get("X-Journal-Position", "-1"))
            if ldap >= head and fhir.status_code == 200 and fhir_position >= head:
                return
            assert fhir.status_code in (200, 503), fhir.text
            if fhir.status_code == 503:
                assert fhir.headers["Retry-After"] and fhir.json()["resourceType"] == "OperationOutcome"
            assert time.monotonic() < deadline, f"views behind journal {head}: LDAP {ldap}, FHIR {fhir_position}"
            time.sleep(0.1)

    def ldapsearch(self, base: str, scope: str, filt: str, *attrs: str) -> str:
        args = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", f"ldap://127.0.0.1:{self.ldap_port}",
                "-D", "cn=consistance,ou=accounts,o=annuaire-sante,c=fr", "-w", PASSWORD, "-b", base, "-s", scope,
                "-z", "0", filt, *attrs]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (filt[:200], result.stdout[-500:], result.stderr)
        return result.stdout

    def ldap_position(self) -> int:
        out = self.ldapsearch("", "base", "(objectClass=*)", "annuaireJournalPosition")
        found = re.search(r"^annuaireJournalPosition: (\d+)$", out, re.MULTILINE)
        assert found, out
        return int(found.group(1))

    # --- what each view shows

    def ldap_view(self, candidates: set[str]) -> set[str]:
        found: set[str] = set()
        ordered = sorted(candidates)
        for i in range(0, len(ordered), 150):
            filt = "(|" + "".join(f"(mail={a})" for a in ordered[i:i + 150]) + ")"
            out = self.ldapsearch(SUFFIX, "one", filt, "mail")
            found.update(m.lower() for m in re.findall(r"^mail: (.+)$", out, re.MULTILINE))
        return found

    def fhir_view(self) -> set[str]:
        found: set[str] = set()
        for rtype in ("Practitioner", "PractitionerRole", "Organization"):
            url: str | None = f"/fhir/v2/{rtype}?_count=1000"
            while url:
                r = self.http.get(url, headers={"ESANTE-API-KEY": self.key})
                assert r.status_code == 200, r.text
                bundle = r.json()
                for entry in bundle.get("entry", []):
                    resource = entry["resource"]
                    if resource.get("active") is False:
                        assert "telecom" not in resource or not any(
                            t.get("system") == "email" and "@" in t.get("value", "") and "mssante" in t["value"]
                            for t in resource["telecom"]), resource["id"]
                        continue
                    found.update(t["value"] for t in resource.get("telecom", [])
                                 if t.get("system") == "email" and t.get("extension"))
                url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        return found

    def web_view(self, candidates: set[str]) -> set[str]:
        found: set[str] = set()
        for address in sorted(candidates):
            r = self.http.get("/", params={"q": address})
            assert r.status_code == 200, (address, r.status_code)
            if address in set(_WEB_BOX.findall(r.text)):
                found.add(address)
        return found

    def extraction_view(self) -> set[str]:
        from annuaire import formats
        from annuaire.extractions.generate import generate_one

        out = self.tmp / f"extractions-{time.monotonic_ns()}"
        manifest = generate_one(self.store, out, formats.MSSANTE)
        with zipfile.ZipFile(out / manifest.zip["name"]) as z:
            lines = z.read(z.namelist()[0]).decode("utf-8").splitlines()[1:]
        shutil.rmtree(out)
        return {line.split("|")[1] for line in lines}

    def ldif_view(self) -> set[str]:
        out = self.tmp / "export.ldif"
        self.run("export-ldif", str(out))
        return set(re.findall(r"^mail: (.+)$", out.read_text(), re.MULTILINE))


def _start(url: str, tmp: Path, store: Any) -> Directory:
    from annuaire.fhir import auth
    from annuaire.ldap.accounts import add_account
    from annuaire.mailboxes.operators import add_operator
    from annuaire.synthetic import generate

    folder = tmp / "day0"
    generate(folder, professionals=300, seed=11)
    files = NationalFiles.load(folder)
    result = subprocess.run([sys.executable, "-m", "annuaire", "--quiet", "--db", url, "import",
                             *map(str, sorted(folder.glob("*.zip")))], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    _, token = add_operator(store, "Opérateur de cohérence", [DOMAIN])
    key = auth.add_key(store, "coherence", rate_limit=100_000)
    add_account(store, "consistance", PASSWORD, size_limit=5000, entries_per_minute=10_000_000)
    http_port, ldap_port = _free_port(), _free_port()
    env = dict(os.environ, ANNUAIRE_EXTRACTIONS_TIME="off", ANNUAIRE_EXTRACTIONS_DIR=str(tmp / "served"),
               ANNUAIRE_LDAP_WORKERS="2")
    log = open(tmp / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "annuaire", "--db", url, "serve", "--http-port", str(http_port),
         "--ldap-port", str(ldap_port)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group: every worker is stopped with it
    http = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60)
    directory = Directory(url, tmp, files, http, ldap_port, token, key, process, store)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, (tmp / "serve.log").read_text()
        try:
            if http.get("/fhir/v2/metadata").status_code == 200 and directory.ldap_position() >= 0:
                break
        except (httpx.TransportError, AssertionError):
            pass
        assert time.monotonic() < deadline, (tmp / "serve.log").read_text()
        time.sleep(0.2)
    return directory


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def directory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    from annuaire.store import open_store
    from tests.pg import create_pg_database, drop_pg_database, skip_or_fail_without_pg

    tmp = tmp_path_factory.mktemp(f"consistency-{request.param}")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'annuaire.sqlite'}"
    else:
        skip_or_fail_without_pg()
        url, name = create_pg_database("annuaire_consistency")
    store = open_store(url)
    directory = _start(url, tmp, store)
    try:
        yield directory
    finally:
        from tests.processes import stop_group

        stop_group(directory.process)
        directory.http.close()
        store.dispose()
        if name:
            drop_pg_database(name)


# --- the steps ------------------------------------------------------------------------------------


class Steps(RuleBasedStateMachine):
    """Random days of the directory; after each, every view must agree with the rule."""

    d: Directory  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.list: dict[str, dict[str, Any]] = {}  # the operator's current list, by address
        self.serial = 0
        self.persons = self.d.files.persons()
        self.structures = self.d.files.structures()

    # referential

    def _import(self, *, mirror: bool = False) -> None:
        paths = self.d.files.write(self.d.tmp / f"day-{time.monotonic_ns()}", mirror=mirror)
        self.d.run("import", *map(str, paths))

    # Every rule draws plain numbers and maps them onto the current state: what hypothesis draws
    # never depends on the state the earlier examples left on the server.

    @rule(pick=PICK)
    def professional_departs(self, pick: int) -> None:
        present = [p for p in self.persons if p not in self.d.files.departed]
        self.d.files.departed.add(present[pick % len(present)])
        self._import()

    @rule(pick=PICK)
    def professional_comes_back(self, pick: int) -> None:
        if self.d.files.departed:
            gone = sorted(self.d.files.departed)
            self.d.files.departed.discard(gone[pick % len(gone)])
            self._import()

    @rule(pick=PICK)
    def structure_closes_or_reopens(self, pick: int) -> None:
        self.d.files.closed ^= {self.structures[pick % len(self.structures)]}
        self._import()

    @rule(picks=st.lists(PICK, min_size=1, max_size=3))
    def national_file_changes(self, picks: list[int]) -> None:
        addresses = [ln.split("|")[1] for ln in self.d.files.mssante[1:]]
        self.d.files.dropped ^= {addresses[p % len(addresses)] for p in picks}
        self._import(mirror=True)

    # publications

    def _publish(self, expect_rejected: bool = False) -> None:
        r = self.d.http.put(f"/api/v1/domains/{DOMAIN}/mailboxes", json={"mailboxes": list(self.list.values())},
                            headers={"Authorization": f"Bearer {self.d.token}"},
                            params={"confirm_mass_delete": "true"})
        assert r.status_code == 200, r.text
        report = r.json()
        if expect_rejected:
            assert report["rejected"], report

    def _listed(self, pick: int, kind: str | None = None) -> str | None:
        addresses = sorted(a for a, b in self.list.items() if kind is None or b["type"] == kind)
        return addresses[pick % len(addresses)] if addresses else None

    @rule(pick=PICK, personal=st.booleans(), rouge=st.booleans())
    def operator_creates_a_box(self, pick: int, personal: bool, rouge: bool) -> None:
        self.serial += 1
        if personal:
            holder = self.persons[pick % len(self.persons)]
            box = {"type": "PER", "address": f"pro{self.serial}@{DOMAIN}", "holder": holder}
        else:
            tech = self.structures[pick % len(self.structures)]
            box = {"type": "ORG", "address": f"service{self.serial}@{DOMAIN}", "structure": tech,
                   "service": f"Service {self.serial}"}
        box["liste_rouge"] = rouge
        self.list[box["address"]] = box
        self._publish()

    @rule(pick=PICK)
    def operator_updates_a_box(self, pick: int) -> None:
        address = self._listed(pick)
        if address:
            box = self.list[address]
            if box["type"] == "ORG":
                box["service"] = f"Service renommé {self.serial}"
            box["dematerialisation"] = not box.get("dematerialisation", False)
            self._publish()

    @rule(pick=PICK)
    def operator_toggles_liste_rouge(self, pick: int) -> None:
        address = self._listed(pick)
        if address:
            self.list[address]["liste_rouge"] = not self.list[address]["liste_rouge"]
            self._publish()

    @rule(pick=PICK)
    def operator_deletes_a_box(self, pick: int) -> None:
        address = self._listed(pick)
        if address:
            del self.list[address]
            self._publish()

    @rule(pick=PICK)
    def operator_tries_a_type_change(self, pick: int) -> None:
        address = self._listed(pick, "PER")
        if address:
            previous = self.list[address]
            self.list[address] = {**previous, "type": "CAB"}  # refused: the type of a box never changes
            self._publish(expect_rejected=True)
            self.list[address] = previous

    @invariant()
    def every_view_shows_the_rule(self) -> None:
        d = self.d
        d.caught_up(d.head())
        shown, every, rouge = d.rule()
        views = {"LDAP": d.ldap_view(every), "FHIR": d.fhir_view(), "web": d.web_view(every),
                 "extraction": d.extraction_view(), "LDIF": d.ldif_view()}
        for name, found in views.items():
            assert not found & rouge, f"{name} shows liste rouge boxes: {sorted(found & rouge)[:5]}"
            assert found == shown, (f"{name}: missing {sorted(shown - found)[:5]}, "
                                    f"extra {sorted(found - shown)[:5]}")


def test_every_view_shows_the_same_public_mailboxes(directory: Directory) -> None:
    Steps.d = directory
    run_state_machine_as_test(Steps, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
