"""One encoding rule for every reader of the national files: the referential import, the
national mailbox mirror and local-sync accept and refuse the same files, with the same error."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from annuaire import formats
from annuaire.errors import ImportFileError
from annuaire.localsync.filters import Filters
from annuaire.localsync.sync import sync
from annuaire.nationalfiles.encoding import Decoding
from annuaire.referential.importer import import_paths

HEADER = "Nom|Prénom\n".encode()
CORRUPT = "invalid UTF-8 byte 0xff at column 1 in a file with UTF-8 characters before it"


def _decide(data: bytes) -> tuple[str, int | None]:
    """(encoding, error line) three ways: the whole buffer, in blocks of lines, line by line."""
    answers = set()
    for how in ("check", "block", "lines"):
        decoding = Decoding("f.txt")
        try:
            if how == "check":
                decoding.check(data)
            elif how == "block":
                decoding.decode(data)
            else:
                for n, line in enumerate(data.splitlines(keepends=True)):
                    decoding.decode(line, n)
            answers.add((decoding.encoding, None))
        except ImportFileError as exc:
            assert "in a file with UTF-8 characters before it" in exc.detail
            answers.add(("error", exc.line))
    assert len(answers) == 1, answers  # the three ways decide alike
    return answers.pop()


@pytest.mark.parametrize(("data", "expected"), [
    (HEADER + "MARTIN|Hélène\n".encode(), ("utf-8", None)),
    ("Nom|Prénom\nMARTIN|Hélène\n".encode("latin-1"), ("latin-1", None)),  # an old file, header included
    (b"Nom|Prenom\nMARTIN|H\xe9l\xe8ne\n", ("latin-1", None)),  # latin-1, ASCII header
    (HEADER + b"MARTIN|H\xe9l\xe8ne\n", ("error", 2)),  # invalid UTF-8 after UTF-8 characters
    (HEADER + "A|É\n".encode() * 3 + b"\xffB|C\n", ("error", 5)),
    (b"Nom|Prenom\nA|B\n" + "C|É\n".encode() + b"D|\xe9\n", ("error", 4)),
    (b"A|B\r\nC|\xe9\r\n", ("latin-1", None)),
])
def test_one_decision_however_the_file_is_read(data: bytes, expected: tuple[str, int | None]) -> None:
    assert _decide(data) == expected


def test_check_reads_a_large_buffer_in_blocks() -> None:
    """`check` (local-sync's whole buffer) cuts blocks at line ends and names the right line."""
    data = HEADER + "DUPONT|Élise\n".encode() * 200_000 + b"X|\xff\n" + b"Y|Z\n"
    with pytest.raises(ImportFileError) as err:
        Decoding("f.txt").check(data)
    assert (err.value.line, "column 3" in err.value.detail) == (200_002, True)


def _rewrite(source: Path, target: Path, member: str, edit: Callable[[bytes], bytes]) -> Path:
    """A copy of a national zip, the text of its `member` kind edited."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, edit(data) if info.filename.startswith(member) else data)
    return target


def _corrupt_line_3(data: bytes) -> bytes:
    """An invalid UTF-8 byte at the start of line 3, after the UTF-8 header (é, ç…)."""
    lines = data.split(b"\n")
    lines[2] = b"\xff" + lines[2]
    return b"\n".join(lines)


def _latin1(data: bytes) -> bytes:
    return data.decode("utf-8").encode("latin-1", "replace")


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small generated world: its PS_LibreAcces and MSSanté zips."""
    from annuaire.synthetic import generate

    out = tmp_path_factory.mktemp("national")
    generate(out, professionals=60, seed=3)
    return {kind: next(out.glob(f"{kind}_*.zip")) for kind in (formats.PS_LIBRE_ACCES, formats.MSSANTE)}


def _three_readers(store, national: dict[str, Path], folder: Path, edit: Callable[[bytes], bytes]) -> dict:
    """What each reader makes of the national files edited by `edit`: None (read) or its error."""
    ps = _rewrite(national[formats.PS_LIBRE_ACCES], folder / national[formats.PS_LIBRE_ACCES].name,
                  formats.PERSONNE_ACTIVITE, edit)
    mss = _rewrite(national[formats.MSSANTE], folder / national[formats.MSSANTE].name, formats.MSSANTE, edit)
    outcomes: dict[str, ImportFileError | None] = {}
    for reader, run in {
        "referential": lambda: import_paths(store, [ps]),
        "mirror": lambda: import_paths(store, [mss]),
        "local-sync": lambda: sync(folder / "local.sqlite", str(mss), Filters()),
    }.items():
        try:
            run()
            outcomes[reader] = None
        except ImportFileError as exc:
            outcomes[reader] = exc
    return outcomes


def test_invalid_utf8_after_utf8_is_the_same_error_everywhere(store, national, tmp_path) -> None:
    outcomes = _three_readers(store, national, tmp_path, _corrupt_line_3)
    assert all(outcomes.values()), outcomes
    assert {(e.line, e.detail) for e in outcomes.values()} == {  # type: ignore[union-attr]
        (3, f"{CORRUPT}: corrupt file (neither UTF-8 nor latin-1)")
    }
    assert outcomes["referential"].path.startswith(national[formats.PS_LIBRE_ACCES].name)  # type: ignore[union-attr]
    member = rf"{formats.MSSANTE}_\d{{12}}"
    for reader in ("mirror", "local-sync"):  # the zip and its member are named
        assert re.fullmatch(rf"{member}\.zip:{member}\.txt", outcomes[reader].path), outcomes[reader]  # type: ignore[union-attr]


def test_a_latin1_file_is_read_everywhere(store, national, tmp_path) -> None:
    assert _three_readers(store, national, tmp_path, _latin1) == dict.fromkeys(["referential", "mirror", "local-sync"])
