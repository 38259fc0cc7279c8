"""The national mirror: importing Extraction_Correspondance_MSSante files through the same diff."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from annuaire import formats
from annuaire.errors import Conflict, ImportFileError
from annuaire.mailboxes import operators
from annuaire.mailboxes.national import import_mssante_file
from annuaire.store.schema import domain, journal, mailbox, run
from tests.mailboxes.mailbox_fixtures import ALIX, CAMILLE, JEAN_PIERRE, Env, per

MED, CH = "medecin.mssante.fr", "ch-exemple.mssante.fr"


def line(kind: str, address: str, holder: str = "", structure: tuple[str, str] = ("", ""), service: str = "",
         demat: str = "True") -> dict[str, str]:
    return {
        "Type de BAL": kind, "Adresse BAL": address, "Type Identifiant PP": holder[:1], "Identifiant PP": holder[1:],
        "Identification nationale PP": holder, "Type identifiant structure": structure[0],
        "Identification Structure": structure[1], "Service de rattachement": service, "Nom d'exercice": "MARTIN",
        "Dématérialisation": demat, "Raison Sociale structure BAL": "CH EXEMPLE" if structure[0] else "",
    }


BASE = [
    line("PER", f"camille.martin@{MED}", CAMILLE),
    line("PER", f"alix.petit@{MED}", ALIX, ("3", "12345678900011")),
    line("ORG", f"secretariat.cardio@{CH}", structure=("1", "990000019"), service="Cardiologie", demat="False"),
    line("ORG", f"pediatrie@{CH}", structure=("1", "990000019"), service="Pédiatrie"),
]


def write(folder: Path, ts: str, rows: list[dict[str, str]], *, as_zip: bool = True, encoding: str = "utf-8",
          trailing: bool = False, raw_lines: list[str] | None = None) -> Path:
    end = "|" if trailing else ""
    text = "|".join(formats.MSSANTE_COLUMNS) + end + "\n"
    text += "".join("|".join(r.get(c, "") for c in formats.MSSANTE_COLUMNS) + end + "\n" for r in rows)
    text += "".join(raw_lines or [])
    name = formats.file_name(formats.MSSANTE, ts)
    data = text.encode(encoding)
    if not as_zip:
        path = folder / name
        path.write_bytes(data)
        return path
    path = folder / formats.file_name(formats.MSSANTE, ts, "zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path


def state(env: Env) -> tuple:
    with env.store.read() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar() for t in (mailbox, journal, run, domain))


def boxes(env: Env, name: str) -> dict[str, dict]:
    with env.store.read() as conn:
        rows = conn.execute(select(mailbox).where(mailbox.c.domain == name)).mappings()
        return {r["address"]: dict(r) for r in rows}


def test_first_import(env: Env, tmp_path: Path) -> None:
    path = write(tmp_path, "202611250300", BASE + [line("PER", "camille.martin@a.mssante.fr", CAMILLE)])
    summary = import_mssante_file(env.store, path)
    assert (summary["created"], summary["updated"], summary["deleted"], summary["unchanged"]) == (4, 0, 0, 0)
    assert summary["file_ts"] == "202611250300" and summary["run"]
    assert summary["by_domain"] == {CH: {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0},
                                    MED: {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0}}
    # A domain owned by a local operator is that operator's business.
    assert summary["skipped_domains"] == ["a.mssante.fr"]
    assert any("a.mssante.fr belongs to a local operator" in w for w in summary["warnings"])
    assert env.current("a.mssante.fr") == {}
    med = boxes(env, MED)
    assert med[f"alix.petit@{MED}"]["structure_idnat"] == "312345678900011"
    assert {b["source"] for b in med.values()} == {"national"}
    ch = boxes(env, CH)
    assert ch[f"pediatrie@{CH}"]["service"] == "Pédiatrie" and ch[f"secretariat.cardio@{CH}"]["dematerialisation"] is False
    with env.store.read() as conn:
        assert conn.execute(select(domain.c.operator_id, domain.c.version).where(domain.c.name == MED)).one() == (None, 1)
        rows = conn.execute(select(journal).where(journal.c.run_id == summary["run"])).mappings().all()
        assert {(r["entity"], r["change"], r["scope"]) for r in rows} == {("mailbox", "created", MED), ("mailbox", "created", CH)}
        assert conn.execute(select(run.c.kind, run.c.status).where(run.c.id == summary["run"])).one() == ("mssante", "ok")


def test_next_day_diff_and_absent_domains(env: Env, tmp_path: Path) -> None:
    import_mssante_file(env.store, write(tmp_path, "202611250300", BASE))
    day2 = [BASE[0], line("PER", f"alix.petit@{MED}", ALIX, ("3", "12345678900011"), demat="False"),
            line("PER", f"jp.durand@{MED}", JEAN_PIERRE)]  # CH is gone from the file
    journal_before = state(env)[1]
    summary = import_mssante_file(env.store, write(tmp_path, "202611260300", day2))
    assert (summary["created"], summary["updated"], summary["deleted"], summary["unchanged"]) == (1, 1, 2, 1)
    assert state(env)[1] == journal_before + 4  # the unchanged box wrote nothing
    assert {a: b["active"] for a, b in boxes(env, CH).items()} == {f"secretariat.cardio@{CH}": False, f"pediatrie@{CH}": False}
    assert boxes(env, MED)[f"alix.petit@{MED}"]["version"] == 2
    # The same file again: nothing changes.
    again = import_mssante_file(env.store, write(tmp_path, "202611260300", day2))
    assert (again["created"], again["updated"], again["deleted"], again["unchanged"]) == (0, 0, 0, 3)


def test_older_file_refused_unless_forced(env: Env, tmp_path: Path) -> None:
    import_mssante_file(env.store, write(tmp_path, "202611260300", BASE))
    older = write(tmp_path, "202611250300", BASE[:3])
    before = state(env)
    with pytest.raises(Conflict, match="older than the last imported"):
        import_mssante_file(env.store, older)
    assert state(env) == before
    assert import_mssante_file(env.store, older, force=True)["deleted"] == 1


def test_duplicates_case_trailing_separator_and_latin1(env: Env, tmp_path: Path) -> None:
    rows = BASE + [line("PER", f"Camille.MARTIN@{MED}", CAMILLE), line("PER", f"NEW.Box@{MED}", CAMILLE)]
    path = write(tmp_path, "202611250300", rows, as_zip=False, encoding="latin-1", trailing=True)
    summary = import_mssante_file(env.store, path)
    assert summary["created"] == 5
    assert summary["warning_counts"]["DUPLICATE_LINE"] == 1
    assert any("line 6" in w and "line 2" in w for w in summary["warnings"])
    assert f"new.box@{MED}" in boxes(env, MED)
    assert boxes(env, CH)[f"pediatrie@{CH}"]["service"] == "Pédiatrie"


def test_line_problems_are_warnings_not_failures(env: Env, tmp_path: Path) -> None:
    rows = BASE + [
        line("PER", f"inconnu@{MED}", "819999999999"),  # our referential does not know the holder yet
        line("PER", f"bad address@{MED}", CAMILLE),  # skipped
        line("XYZ", f"odd@{MED}", CAMILLE),  # skipped
    ]
    summary = import_mssante_file(env.store, write(tmp_path, "202611250300", rows))
    assert summary["created"] == 5 and summary["rejected"] == 2
    assert summary["warning_counts"] == {"HOLDER_UNKNOWN": 1, "ADDRESS_LOCAL_PART": 1, "TYPE_UNKNOWN": 1}
    assert boxes(env, MED)[f"inconnu@{MED}"]["active"] is True
    # A later file changing a box's type: that line is skipped, the box stays.
    rows[0] = line("ORG", f"camille.martin@{MED}", structure=("1", "990000019"))
    summary = import_mssante_file(env.store, write(tmp_path, "202611260300", rows))
    assert summary["warning_counts"].get("TYPE_IMMUTABLE") == 1
    assert boxes(env, MED)[f"camille.martin@{MED}"]["type"] == "PER"
    assert boxes(env, MED)[f"camille.martin@{MED}"]["active"] is True


@pytest.mark.parametrize("case", ["field_count", "header", "truncated_zip", "bad_utf8", "name", "empty"])
def test_malformed_file_changes_nothing(env: Env, tmp_path: Path, case: str) -> None:
    import_mssante_file(env.store, write(tmp_path, "202611250300", BASE))
    before = state(env)
    folder = tmp_path / "bad"
    folder.mkdir()
    ts = "202611260300"
    if case == "field_count":
        path = write(folder, ts, BASE[:2], raw_lines=["PER|x@medecin.mssante.fr|8\n"])
        expected = "line 4"
    elif case == "header":
        path = folder / formats.file_name(formats.MSSANTE, ts)
        path.write_text("Type de BAL|Adresse BAL\nPER|x@medecin.mssante.fr\n")
        expected = "header"
    elif case == "truncated_zip":
        good = write(folder, ts, BASE * 50)
        data = good.read_bytes()
        good.write_bytes(data[: len(data) // 2])
        path, expected = good, "zip"
    elif case == "bad_utf8":
        rows = [line("ORG", f"pediatrie@{CH}", structure=("1", "990000019"), service="Pédiatrie")]
        path = write(folder, ts, rows, raw_lines=["PER|x\xff@medecin.mssante.fr" + "|" * 30 + "\n"], as_zip=False,
                     encoding="utf-8")
        path.write_bytes(path.read_bytes().replace("x\xff".encode(), b"x\xff"))
        expected = "line 3"
    elif case == "name":
        path = folder / "mailboxes.txt"
        path.write_text("Type de BAL|Adresse BAL\n")
        expected = "not a national extraction file name"
    else:
        path = folder / formats.file_name(formats.MSSANTE, ts)
        path.write_bytes(b"")
        expected = "empty"
    with pytest.raises(ImportFileError, match=expected):
        import_mssante_file(env.store, path)
    assert state(env) == before


def test_mass_deletion_needs_force(env: Env, tmp_path: Path) -> None:
    many = BASE + [line("PER", f"pro{i}@{MED}", CAMILLE) for i in range(40)]
    import_mssante_file(env.store, write(tmp_path, "202611250300", many))
    truncated = write(tmp_path, "202611260300", many[:10])
    before = state(env)
    with pytest.raises(Conflict, match="truncated"):
        import_mssante_file(env.store, truncated)
    assert state(env) == before
    assert import_mssante_file(env.store, truncated, force=True)["deleted"] == 34


def test_operator_takes_over_a_national_domain(env: Env, tmp_path: Path) -> None:
    import_mssante_file(env.store, write(tmp_path, "202611250300", BASE))
    operators.add_domains(env.store, "alpha", [MED])
    try:
        report = env.put(MED, [per("camille.martin", domain=MED), per("jp.durand", holder=JEAN_PIERRE, domain=MED)]).json()
        # Same content, new source: updated; absent national box: deleted; new one created.
        assert (report["updated"], report["deleted"], report["created"]) == (1, 1, 1)
        assert {b["source"] for b in boxes(env, MED).values() if b["active"]} == {"operator"}
        summary = import_mssante_file(env.store, write(tmp_path, "202611260300", BASE))
        assert MED in summary["skipped_domains"]
        assert {a for a, b in boxes(env, MED).items() if b["active"]} == {f"camille.martin@{MED}", f"jp.durand@{MED}"}
    finally:
        operators.remove_domains(env.store, "alpha", [MED])


def test_import_command_dispatches_mssante_files(env: Env, tmp_path: Path) -> None:
    from annuaire.referential.importer import import_paths

    summaries = import_paths(env.store, [write(tmp_path, "202611250300", BASE)])
    assert [s.mailboxes["created"] for s in summaries] == [4]


def test_a_large_first_file_leaves_the_planner_statistics_of_the_boxes(env: Env, tmp_path: Path) -> None:
    """A first national file changes most of `mailbox`: its statistics are taken at once (the FHIR
    renderer's queries on PostgreSQL chose a plan reading every box for each range of holders
    when the planner believed the table held 150 of them)."""
    if not env.store.is_postgresql:
        pytest.skip("SQLite stores are planned without statistics (Store.analyze)")
    rows = [line("ORG", f"service{n}@{CH}", structure=("1", "990000019"), service=f"Service {n}") for n in range(1200)]
    import_mssante_file(env.store, write(tmp_path, "202611250300", rows))
    with env.store.read() as conn:
        assert conn.exec_driver_sql(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'mailbox'").scalar()
