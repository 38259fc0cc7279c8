"""`Lines`: one national file read in blocks of whole lines, every line checked.

Blocks, not lines, are read and decoded (per-line decoding costs 1 µs a line,
2.2 M lines in `Personne_activite`); the header (line 1) is checked before
the rest is read, and every data line's field count against it. Raw (bytes)
blocks serve readers that select lines before decoding them (the
referential's refresh, `referential/selected.py`). Every problem raises
ImportFileError naming the file and the line.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from annuaire.errors import ImportFileError
from annuaire.nationalfiles.encoding import Decoding, Undecodable, check_nul
from annuaire.nationalfiles.layouts import parse_header
from annuaire.nationalfiles.sources import Source

BLOCK = 1 << 22  # bytes read and decoded at once
# The longest legitimate line: 56 fields of at most a few hundred characters (the longest line of
# a national Personne_activite is under 1.5 KB). Anything longer is not a national file, and a
# file without line ends must not be read into memory whole.
MAX_LINE = 64 << 10


class Lines:
    """Decoded, split lines of one source, checked against its header (`encoding.py`
    for the encoding rule)."""

    def __init__(self, source: Source, progress: Callable[[int], None] | None = None) -> None:
        self.source = source
        self.progress = progress
        self.header: tuple[str, ...] = ()
        self.header_line = ""
        self.trailing = False
        self._decoding = Decoding(source.label)

    def read_header(self) -> str:
        """The header line, read (and checked) before the rest: it decides how the rest is read."""
        if not self.header:
            for _ in self.blocks():
                break
        return self.header_line

    def column_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.header)}

    @property
    def encoding(self) -> str:
        """The encoding the lines read so far were decoded with."""
        return self._decoding.encoding

    def _blocks(self, stream: io.BufferedIOBase, decode: bool = True) -> Iterator[tuple[int, bytes, str | None]]:
        """(lines before, raw bytes, decoded text) of blocks of whole lines. Decoding a block
        checks its encoding; line ends are normalised to "\\n" in the text. Without `decode`
        only the first block (the header's) is decoded: the others' text is None."""
        label = self.source.label
        lines_before = 0
        rest = b""
        while True:
            block = stream.read(BLOCK)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end in a whole block
                    raise self._too_long(lines_before + 1, len(data))
                data, rest = data[:cut], data[cut:]
                if len(rest) > MAX_LINE:
                    raise self._too_long(lines_before + data.count(b"\n") + 1, len(rest))
            if not data:
                return
            if self.progress:
                self.progress(len(block))
            check_nul(data, label, lines_before)
            text = None
            if decode or lines_before == 0:
                text = self._decoding.decode(data, lines_before)
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
            yield lines_before, data, text
            lines_before += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            if not block:
                return

    def _too_long(self, line_no: int, size: int) -> ImportFileError:
        return ImportFileError(self.source.label, f"line longer than {MAX_LINE:,} characters (at least {size:,}): "
                                                  "not a national extraction file", line_no)

    def blocks(self, raw: bool = False, decode: bool = True) -> Iterator[tuple[list, Sequence[int]]]:
        """(lines, line numbers) of the data lines of each block, as text or as raw bytes
        (after the header, line 1, which is checked); empty lines are left out. The whole
        block is decoded (that checks its encoding) unless raw lines are asked without
        `decode`. `fields` checks a line."""
        label = self.source.label
        try:
            stream = self.source.open()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportFileError(label, f"cannot open ({exc})") from exc
        empty = (b"", b"\r") if raw else ("",)
        with stream:
            line_no = 0
            try:
                for lines_before, data, text in self._blocks(stream, decode or not raw):
                    # bytes lines when raw, else str lines (text is decoded whenever raw is False)
                    lines: list[Any] = data.split(b"\n") if raw else text.split("\n")  # type: ignore[union-attr]  # see the line above
                    if data.endswith(b"\n"):
                        lines.pop()  # the empty string after the block's last line end
                    elif not raw and lines[-1].endswith("\r"):
                        lines[-1] = lines[-1][:-1]
                    first = lines_before + 1  # line number of lines[0]
                    if lines_before == 0:
                        self._read_header(text.split("\n", 1)[0].rstrip("\r"))  # type: ignore[union-attr]  # the first block is always decoded
                        lines, first = lines[1:], 2
                    line_no = first + len(lines) - 1
                    numbers: Sequence[int] = range(first, line_no + 1)
                    if any(map(lines.__contains__, empty)):  # empty lines are left out
                        keep = [i for i, line in enumerate(lines) if line not in empty]
                        lines = [lines[i] for i in keep]
                        numbers = [first + i for i in keep]
                    yield lines, numbers
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ImportFileError(label, f"corrupt or truncated archive ({exc})", line_no + 1) from exc
            if line_no == 0 and not self.header:
                raise ImportFileError(label, "empty file (no header line)")

    def text(self, raw: bytes) -> str:
        """A raw line of this file, decoded like its block was (or, for a line of a block not
        decoded, checked here: `Undecodable` if it is not in the file's encoding so far)."""
        try:
            text = raw.decode(self._decoding.encoding)
        except UnicodeDecodeError as exc:
            raise Undecodable from exc
        return text.removesuffix("\r")

    def checked_text(self, raw: bytes, line_no: int) -> str:
        """A raw line of a block not decoded, decoded and checked as a block of one line
        (each line is decoded once: 0.4 µs, as much again as decoding its block)."""
        text = self._decoding.decode(raw, line_no - 1)
        return text.removesuffix("\r")

    def fields(self, text: str, line_no: int) -> list[str]:
        """The fields of a data line, checked against the header.

        The list has one more, empty, element after the last column: pickers
        read it for columns that an older layout lacks.
        """
        if len(text) > MAX_LINE:
            raise self._too_long(line_no, len(text))
        fields = text.split("|")
        expected = len(self.header) + (1 if self.trailing else 0)
        if len(fields) != expected:
            # A trailing separator is tolerated on files that do not require it.
            if not (len(fields) == expected + 1 and not self.trailing and fields[-1] == ""):
                raise ImportFileError(self.source.label, f"{len(fields)} fields where the header has {expected}", line_no)
        elif self.trailing:
            if fields[-1] != "":
                raise ImportFileError(self.source.label, "missing the trailing '|' of this layout", line_no)
        else:
            fields.append("")
        return fields

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (line number, fields) for every data line; line 1 is the header."""
        for texts, numbers in self.blocks():
            for line_no, text in zip(numbers, texts, strict=False):
                yield line_no, self.fields(text, line_no)

    def _read_header(self, text: str) -> None:
        self.header_line = text.lstrip("\ufeff")
        header = parse_header(text, self.source.kind, self.source.label)
        self.header, self.trailing = header.names, header.trailing
