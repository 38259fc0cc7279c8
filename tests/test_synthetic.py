"""The fictitious national data generator: layouts, determinism, churn, consistency."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from annuaire import formats
from annuaire.synthetic import generate, timestamp

N = 3000
SEED = 7


# Files whose every line (header included) ends with a trailing separator.
TRAILING_SEPARATOR = {formats.PERSONNE_ACTIVITE: True, formats.SAVOIR_FAIRE: True, formats.DIPLOMES: True,
                      formats.MSSANTE: False}


def luhn_valid(number: str) -> bool:
    """The Luhn check, written independently of the generator's `luhn_digit`."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _read(zip_path: Path, kind: str) -> tuple[str, list[str]]:
    """(header line, data lines) of the member of `kind` in a zip, checking the raw bytes."""
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if formats.parse_file_name(n)[0] == kind]
        assert len(names) == 1, archive.namelist()
        raw = archive.read(names[0])
    assert b"\r" not in raw
    text = raw.decode("utf-8")
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    return lines[0], lines[1:]


def _rows(zip_path: Path, kind: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    header, lines = _read(zip_path, kind)
    trailing = TRAILING_SEPARATOR[kind]
    names = header.split("|")[:-1] if trailing else header.split("|")
    assert tuple(names) == columns
    rows = []
    for line in lines:
        values = line.split("|")
        if trailing:
            assert values[-1] == "", line
            values = values[:-1]
        assert len(values) == len(columns), line
        rows.append(dict(zip(columns, values, strict=False)))
    return rows


class Output:
    def __init__(self, outdir: Path, day: int, seed: int = SEED, layout: str = "56") -> None:
        self.result = generate(outdir, N, seed, day=day, layout=layout)
        self.ps = self.result["ps_libre_acces"]
        self.ms = self.result["mssante"]
        cols = formats.PERSONNE_ACTIVITE_COLUMNS if layout == "56" else formats.PERSONNE_ACTIVITE_COLUMNS_OLD
        self.activities = _rows(self.ps, formats.PERSONNE_ACTIVITE, cols)
        self.savoir_faire = _rows(self.ps, formats.SAVOIR_FAIRE, formats.SAVOIR_FAIRE_COLUMNS)
        self.diplomas = _rows(self.ps, formats.DIPLOMES, formats.DIPLOMES_COLUMNS)
        self.boxes = _rows(self.ms, formats.MSSANTE, formats.MSSANTE_COLUMNS)


@pytest.fixture(scope="module")
def day0(tmp_path_factory) -> Output:
    return Output(tmp_path_factory.mktemp("day0"), 0)


@pytest.fixture(scope="module")
def day1(tmp_path_factory) -> Output:
    return Output(tmp_path_factory.mktemp("day1"), 1)


@pytest.fixture(scope="module")
def day20(tmp_path_factory) -> Output:
    return Output(tmp_path_factory.mktemp("day20"), 20)


# ------------------------------------------------------------------ layouts
def test_file_names_and_timestamps(day0: Output, day1: Output) -> None:
    assert timestamp(0) == "202601010300"
    assert timestamp(1) == "202601020300"
    assert timestamp(31) == "202602010300"
    assert day0.ps.name == "PS_LibreAcces_202601010300.zip"
    assert day0.ms.name == "Extraction_Correspondance_MSSante_202601010300.zip"
    assert day1.ps.name == "PS_LibreAcces_202601020300.zip"
    with zipfile.ZipFile(day0.ps) as archive:
        assert archive.namelist() == [
            "PS_LibreAcces_Personne_activite_202601010300.txt",
            "PS_LibreAcces_SavoirFaire_202601010300.txt",
            "PS_LibreAcces_Dipl_AutExerc_202601010300.txt",
        ]
        assert all(i.date_time == (2026, 1, 1, 3, 0, 0) for i in archive.infolist())
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    with zipfile.ZipFile(day0.ms) as archive:
        assert archive.namelist() == ["Extraction_Correspondance_MSSante_202601010300.txt"]


def test_headers_are_exactly_the_national_ones(day0: Output) -> None:
    expected = {
        formats.PERSONNE_ACTIVITE: formats.header_line(formats.PERSONNE_ACTIVITE_COLUMNS, True),
        formats.SAVOIR_FAIRE: formats.header_line(formats.SAVOIR_FAIRE_COLUMNS, True),
        formats.DIPLOMES: formats.header_line(formats.DIPLOMES_COLUMNS, True),
    }
    for kind, header in expected.items():
        assert _read(day0.ps, kind)[0] + "\n" == header
    header, lines = _read(day0.ms, formats.MSSANTE)
    assert header + "\n" == formats.header_line(formats.MSSANTE_COLUMNS, False)
    assert not header.endswith("|")
    assert all(len(line.split("|")) == 31 for line in lines)  # no trailing separator


def test_line_counts_match_result(day0: Output) -> None:
    r = day0.result
    assert r["personne_activite_lines"] == len(day0.activities)
    assert r["savoir_faire_lines"] == len(day0.savoir_faire)
    assert r["diplomes_lines"] == len(day0.diplomas)
    assert r["mssante_lines"] == len(day0.boxes) == r["per_boxes"] + r["org_boxes"]
    assert r["persons"] == len({row["Identification nationale PP"] for row in day0.activities}) == N


def test_old_52_column_layout(tmp_path: Path) -> None:
    old = Output(tmp_path, 0, layout="52")  # _rows checks the 52 names and the trailing `|`
    header, _ = _read(old.ps, formats.PERSONNE_ACTIVITE)
    assert header.endswith("Libellé section tableau pharmaciens|")
    assert len(old.activities) == old.result["personne_activite_lines"]


# ------------------------------------------------------------------ identifiers
def test_person_identifiers(day0: Output) -> None:
    persons = {}
    for row in day0.activities:
        t, ident, national = row["Type d'identifiant PP"], row["Identifiant PP"], row["Identification nationale PP"]
        assert national == t + ident
        if t == "8":
            assert re.fullmatch(r"[12]\d{10}", ident) and luhn_valid(ident)
        else:
            assert t == "0" and re.fullmatch(r"\d{9}", ident)
        persons[national] = t
    adeli = sum(1 for t in persons.values() if t == "0") / len(persons)
    assert 0.05 < adeli < 0.16
    # leading zeros survive: ADELI numbers of département 01-09 start with 0
    assert any(ident.startswith("00") for ident in persons)


def test_structure_identifiers(day0: Output) -> None:
    for row in day0.activities:
        tech, old = row["Identifiant technique de la structure"], row["Ancien identifiant de la structure"]
        if not tech:
            assert not old and not row["Raison sociale site"] and not row["Code mode exercice"]
            continue
        siret, siren, finess = row["Numéro SIRET site"], row["Numéro SIREN site"], row["Numéro FINESS site"]
        if tech[0] == "F":
            assert tech == "F" + finess and old == "1" + finess and len(finess) == 9
            assert row["Numéro FINESS établissement juridique"]
        elif tech[0] == "R":
            assert old == "4" + tech[1:] and re.fullmatch(r"\d{13}", tech[1:])
        else:
            assert tech[0] == "C"
            if siret:
                assert tech == "C" + siret and old == "3" + siret and siren == siret[:9] and luhn_valid(siret)
            else:
                assert old == "0" + tech[1:] and re.fullmatch(r"\d{9}", tech[1:])
        if siret:
            assert re.fullmatch(r"\d{14}", siret) and siren == siret[:9]


def test_structure_columns_identical_on_every_line(day20: Output) -> None:
    structure_cols = formats.PERSONNE_ACTIVITE_COLUMNS[19:47] + formats.PERSONNE_ACTIVITE_COLUMNS[48:50]
    seen: dict[str, tuple[str, ...]] = {}
    for row in day20.activities:
        tech = row["Identifiant technique de la structure"]
        if tech:
            values = tuple(row[c] for c in structure_cols)
            assert seen.setdefault(tech, values) == values, tech
    kinds = Counter(row["Code secteur d'activité"] for row in day20.activities)
    for sector in ("SA01", "SA07", "SA08", "SA17", "SA25", "SA33", "SA42"):
        assert kinds[sector] > 0, sector


def test_one_line_per_person_and_structure(day0: Output) -> None:
    pairs = Counter((r["Identification nationale PP"], r["Identifiant technique de la structure"])
                    for r in day0.activities if r["Identifiant technique de la structure"])
    assert max(pairs.values()) == 1


# ------------------------------------------------------------------ geography
def test_postcodes_communes_and_phones(day0: Output) -> None:
    depts = set()
    for row in day0.activities:
        if not row["Identifiant technique de la structure"]:
            continue
        cp, insee, dept = row["Code postal (coord. structure)"], row["Code commune (coord. structure)"], \
            row["Code Département (structure)"]
        depts.add(dept)
        assert re.fullmatch(r"\d{5}", cp) and len(insee) == 5 and cp != insee
        if dept == "2A":
            assert cp[:3] in ("200", "201") and insee.startswith("2A")
        elif dept == "2B":
            assert "202" <= cp[:3] <= "206" and insee.startswith("2B")
        else:
            assert cp.startswith(dept) and insee.startswith(dept)
        cedex = row["Bureau cedex (coord. structure)"]
        if cedex:
            assert cedex.startswith(cp + " ") and " CEDEX" in cedex
        for col in ("Téléphone (coord. structure)", "Télécopie (coord. structure)"):
            assert row[col] == "" or re.fullmatch(r"0\d{9}", row[col])
        assert row["Code type de voie (coord. structure)"] in ("R", "AV", "BD", "CHE", "PL", "ALL", "IMP", "RTE")
    assert len(depts) > 90  # spread over (almost) all 101 départements even at small scale
    assert {"01", "2A", "2B", "971", "974"} & depts


# ------------------------------------------------------------------ distributions
def test_profession_proportions(day0: Output) -> None:
    prof = {}
    for row in day0.activities:
        prof[row["Identification nationale PP"]] = row["Code profession"]
    share = {code: n / len(prof) for code, n in Counter(prof.values()).items()}
    assert 0.38 < share["60"] < 0.50
    assert 0.13 < share["10"] < 0.21
    assert 0.05 < share["70"] < 0.10
    assert 0.03 < share["21"] < 0.08
    assert 0.02 < share["40"] < 0.05
    lines = Counter(row["Code profession"] for row in day0.activities)
    persons = Counter(prof.values())
    assert 1.25 < lines["10"] / persons["10"] < 1.6
    assert 1.0 < lines["60"] / persons["60"] < 1.2
    total = len(day0.activities) / len(prof)
    assert 1.05 < total < 1.25
    inactive = {r["Identification nationale PP"] for r in day0.activities
                if not r["Identifiant technique de la structure"]}
    assert 0.05 < len(inactive) / len(prof) < 0.11


def test_savoir_faire_and_titles(day0: Output) -> None:
    gp = docs = 0
    for row in day0.activities:
        prof, sf, civex = row["Code profession"], row["Code savoir-faire"], row["Code civilité d'exercice"]
        if prof == "10":
            docs += 1
            assert sf.startswith("SM") and row["Code type savoir-faire"] == "S"
            gp += sf in ("SM54", "SM26", "SM53")
            assert civex in ("DR", "PR", "")
        elif prof == "40":
            assert sf == "" or sf.startswith("SCD")
        elif prof == "60":
            assert sf == "" or sf.startswith("SI")
        else:
            assert sf == ""
            if prof not in ("21",):
                assert civex == ""
        if prof == "21" and row["Identifiant technique de la structure"]:
            assert row["Code section tableau pharmaciens"] in ("A", "D", "E", "G", "H")
        elif prof != "21":
            assert row["Code section tableau pharmaciens"] == ""
        assert row["Code civilité"] in ("M", "MME")
    assert 0.33 < gp / docs < 0.52
    assert all(r["Code savoir-faire"] for r in day0.savoir_faire)
    assert {r["Code type diplôme obtenu"] for r in day0.diplomas} >= {"DE", "DES"}
    assert any(r["Code type autorisation"] for r in day0.diplomas)


def test_names_look_french_and_are_well_formed(day0: Output) -> None:
    last = {r["Nom d'exercice"] for r in day0.activities}
    first = {r["Prénom d'exercice"] for r in day0.activities}
    assert all(n == n.upper() and n.strip() == n and "|" not in n for n in last)
    assert any(re.search(r"[ÉÈÊËÏÎÔÛÜÇ]", n) for n in last)
    assert any("-" in n for n in last) and any(n.startswith(("LE ", "DE ", "DU ")) for n in last)
    assert any(re.search(r"[éèëïîôç]", n) for n in first)


# ------------------------------------------------------------------ mailboxes
def test_mailbox_addresses(day20: Output) -> None:
    addresses = [r["Adresse BAL"] for r in day20.boxes]
    assert len(addresses) == len({a.lower() for a in addresses})
    for a in addresses:
        local, domain = a.split("@")
        assert a == a.lower() and re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", local) and ".." not in local
        assert domain.endswith(".mssante.fr")
    types = Counter(r["Type de BAL"] for r in day20.boxes)
    assert set(types) == {"PER", "ORG"}
    assert 0.08 < types["ORG"] / len(addresses) < 0.45
    assert all(r["Dématérialisation"] in ("True", "False") for r in day20.boxes)
    per = types["PER"] / len({r["Identification nationale PP"] for r in day20.activities})
    assert 0.17 < per < 0.30


def test_mailbox_domains(day0: Output) -> None:
    domains = Counter(r["Adresse BAL"].split("@")[1] for r in day0.boxes)
    assert domains.most_common(1)[0][0] in ("medecin.mssante.fr", "infirmier.mssante.fr")
    for name in ("medecin.mssante.fr", "pharmacien.mssante.fr", "infirmier.mssante.fr"):
        assert domains[name] > 0
    sizes = sorted(domains.values())
    assert sizes[len(sizes) // 2] < 20  # heavy tail: many small establishment domains


def test_per_holders_are_active_and_structures_belong_to_them(day0: Output, day20: Output) -> None:
    for out in (day0, day20):
        activity: dict[str, set[str]] = {}
        for row in out.activities:
            if row["Identifiant technique de la structure"]:
                holder = row["Identification nationale PP"]
                activity.setdefault(holder, set()).add(row["Ancien identifiant de la structure"])
        left = 0
        for box in out.boxes:
            if box["Type de BAL"] != "PER":
                continue
            holder = box["Identification nationale PP"]
            assert holder == box["Type Identifiant PP"] + box["Identifiant PP"]
            if holder not in activity:
                left += 1  # "left professional" box kept after its holder departed
                continue
            if box["Identification Structure"]:
                assert box["Type identifiant structure"] + box["Identification Structure"] in activity[holder]
        assert left == out.result["left_professional_boxes"]
        assert left <= max(3, out.result["per_boxes"] // 50)
    assert day0.result["left_professional_boxes"] == 0


def test_per_columns_copied_from_referential(day0: Output) -> None:
    person = {r["Identification nationale PP"]: r for r in day0.activities}
    for box in day0.boxes:
        if box["Type de BAL"] != "PER":
            continue
        ref = person[box["Identification nationale PP"]]
        assert box["Nom d'exercice"] == ref["Nom d'exercice"] and box["Prénom d'exercice"] == ref["Prénom d'exercice"]
        assert box["Civilité d'exercice"] == ref["Code civilité d'exercice"]
        assert box["Code Profession"] == ref["Code profession"]
        assert box["Catégorie profession"] == ref["Code catégorie professionnelle"]
        assert box["Code savoir-faire"] == ref["Code savoir-faire"]


def test_org_structures_exist_with_same_address(day20: Output) -> None:
    structures = {}
    for row in day20.activities:
        if row["Ancien identifiant de la structure"]:
            structures[row["Ancien identifiant de la structure"]] = row
    orgs = [b for b in day20.boxes if b["Type de BAL"] == "ORG"]
    assert orgs
    for box in day20.boxes:
        sid = box["Type identifiant structure"] + box["Identification Structure"]
        if not sid:
            assert box["Type de BAL"] == "PER"
            continue
        if box["Type de BAL"] == "ORG":
            assert box["Identification nationale PP"] == "" and sid in structures
        ref = structures.get(sid)
        if ref is None:
            continue  # a left professional's box may keep a closed structure
        assert box["Type identifiant structure"] in ("0", "1", "3", "4")
        assert box["Raison Sociale structure BAL"] == ref["Raison sociale site"]
        assert box["Code postal structure BAL"] == ref["Code postal (coord. structure)"]
        assert box["Département structure BAL"] == ref["Code Département (structure)"]
        assert box["L4LIBELLEVOIE structure BAL"] == ref["Libellé Voie (coord. structure)"]
        assert box["Pays structure BAL"] == "FRANCE"
        l6 = box["L6LIGNEACHEMINEMENT structure BAL"]
        assert l6 == (ref["Bureau cedex (coord. structure)"] or l6) and l6.startswith(box["Code postal structure BAL"])


# ------------------------------------------------------------------ determinism and churn
def test_same_seed_and_day_give_identical_bytes(tmp_path: Path, day0: Output) -> None:
    again = generate(tmp_path, N, SEED, day=0)
    assert again["ps_libre_acces"].read_bytes() == day0.ps.read_bytes()
    assert again["mssante"].read_bytes() == day0.ms.read_bytes()


def test_bytes_do_not_depend_on_hash_seed(tmp_path: Path) -> None:
    """Two interpreters with different string hash seeds write the same bytes."""
    script = (
        "import sys; from pathlib import Path; from annuaire.synthetic import generate; "
        "generate(Path(sys.argv[1]), 400, 3, day=2)"
    )
    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, cwd=Path(__file__).parent.parent)
        digests.append(tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.zip"))))
    assert digests[0] == digests[1]


def test_other_seed_gives_other_world(tmp_path: Path, day0: Output) -> None:
    other = generate(tmp_path, N, SEED + 1, day=0)
    assert other["ps_libre_acces"].read_bytes() != day0.ps.read_bytes()
    assert other["mssante"].read_bytes() != day0.ms.read_bytes()


def test_day_one_is_day_zero_plus_small_churn(day0: Output, day1: Output) -> None:
    _, lines0 = _read(day0.ps, formats.PERSONNE_ACTIVITE)
    _, lines1 = _read(day1.ps, formats.PERSONNE_ACTIVITE)
    before, after = set(lines0), set(lines1)
    changed = len(before ^ after)
    assert 0 < changed < 0.05 * len(before)
    persons0 = {r["Identification nationale PP"] for r in day0.activities}
    persons1 = {r["Identification nationale PP"] for r in day1.activities}
    assert len(persons0 & persons1) > 0.99 * len(persons0)
    boxes0 = {b["Adresse BAL"] for b in day0.boxes}
    boxes1 = {b["Adresse BAL"] for b in day1.boxes}
    assert len(boxes0 ^ boxes1) < 0.03 * len(boxes0)


def test_churn_accumulates_day_after_day(day0: Output, day20: Output) -> None:
    r = day20.result
    assert r["churn_activity_changes"] > 100
    assert r["churn_arrivals"] > 0 and r["churn_departures"] > 0
    assert r["churn_boxes_created"] > 0 and r["churn_boxes_deleted"] > 0
    persons0 = {row["Identification nationale PP"] for row in day0.activities}
    persons20 = {row["Identification nationale PP"] for row in day20.activities}
    assert len(persons20 - persons0) == r["churn_arrivals"]
    assert len(persons0 - persons20) == r["churn_departures"]


def test_tiny_worlds_and_progress(tmp_path: Path) -> None:
    calls: list[tuple[str, object]] = []

    class Recorder:
        def start(self, label: str, total: int) -> None:
            calls.append(("start", label))

        def advance(self, amount: int) -> None:
            calls.append(("advance", amount))

        def done(self) -> None:
            calls.append(("done", None))

    for n in (1, 7):
        result = generate(tmp_path / str(n), n, 1, day=3, progress=Recorder())
        assert result["persons"] == len({r["Identification nationale PP"] for r in
                                         _rows(result["ps_libre_acces"], formats.PERSONNE_ACTIVITE,
                                               formats.PERSONNE_ACTIVITE_COLUMNS)})
    labels = [label for kind, label in calls if kind == "start"]
    assert "professionals" in labels and "Extraction_Correspondance_MSSante" in labels
    assert calls[-1] == ("done", None)


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, 0, 1)
    with pytest.raises(ValueError):
        generate(tmp_path, 10, 1, day=-1)
    with pytest.raises(ValueError):
        generate(tmp_path, 10, 1, layout="53")
