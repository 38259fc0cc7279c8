"""The one encoding rule of the national files, and the NUL-byte check.

The files are UTF-8; old national extractions are latin-1 (the spec: "accept
latin-1 as a fallback when reading"). The file's first line that is not ASCII
decides: valid UTF-8, the file is UTF-8; not, the whole file is latin-1. An
invalid UTF-8 byte AFTER valid multi-byte UTF-8 characters is neither: a
UTF-8 file damaged on the way (a latin-1 file almost never holds valid UTF-8
sequences such as "Ã©"). Reading it as latin-1 would silently garble every
accented name of the file, so it is an error naming the file, the line and
the byte. The decision is per line, so reading a block of lines at once and
reading the same lines one by one decide alike.
"""

from __future__ import annotations

from collections.abc import Callable

from annuaire.errors import ImportFileError

CHECK_BLOCK = 1 << 20  # bytes decoded at once by `Decoding.check` (not the whole file twice in memory)


class Undecodable(Exception):
    """A line of a block not decoded is not in the encoding decided so far."""


def check_nul(data: bytes, label: str, lines_before: int = 0) -> None:
    """NUL bytes never occur in a text file: a binary or corrupt one, named with its line."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line_no = lines_before + data.count(b"\n", 0, nul) + 1
        raise ImportFileError(label, "NUL byte in the line (binary or corrupt file)", line_no)


class Decoding:
    """The encoding of one file, decided as its lines are decoded in file order."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.encoding = "utf-8"
        self.seen_multibyte = False  # a valid multi-byte UTF-8 character was decoded

    def decode(self, data: bytes, lines_before: int = 0) -> str:
        """Decode whole lines (`lines_before` lines of the file come before them)."""
        if self.encoding != "utf-8":
            return data.decode("latin-1")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = exc.start
            self._not_utf8(data, 0, at, lambda: lines_before + data.count(b"\n", 0, at))
            return data.decode("latin-1")
        if not self.seen_multibyte and not text.isascii():  # (str.isascii costs nothing)
            self.seen_multibyte = True
        return text

    def check(self, data: bytes) -> str:
        """Check a whole file's bytes without keeping the text; the encoding.
        Decoded block by block, each cut at a line end."""
        view = memoryview(data)
        start = 0
        while start < len(data) and self.encoding == "utf-8":
            end = data.find(b"\n", start + CHECK_BLOCK) + 1 or len(data)
            try:
                text = str(view[start:end], "utf-8")
            except UnicodeDecodeError as exc:
                at = start + exc.start
                self._not_utf8(data, start, at, lambda: data.count(b"\n", 0, at))  # noqa: B023 (called at once)
                break
            if not self.seen_multibyte and not text.isascii():
                self.seen_multibyte = True
            start = end
        return self.encoding

    def _not_utf8(self, data: bytes, since: int, at: int, lines_before: Callable[[], int]) -> None:
        """The byte at `at` is not UTF-8: latin-1 if nothing before its line (from `since`,
        and in what was decoded before) is multi-byte UTF-8, else the error."""
        line_start = data.rfind(b"\n", since, at) + 1 or since
        if self.seen_multibyte or not data[since:line_start].isascii():
            raise ImportFileError(
                self.label,
                f"invalid UTF-8 byte 0x{data[at]:02x} at column {at - line_start + 1} in a file "
                "with UTF-8 characters before it: corrupt file (neither UTF-8 nor latin-1)",
                lines_before() + 1,
            )
        self.encoding = "latin-1"
