"""Reading a published list, JSON or the `|`-separated MSSanté layout, into raw entries.

Parsing only checks the SHAPE of the document (valid JSON, items are objects,
fields and columns are known, every line has the header's field count) and
fails as a whole with the position of the problem. VALUES are checked by
`rules`, so that one bad value rejects one line, not the whole list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from annuaire import formats
from annuaire.errors import ListFormatError

JSON_FIELDS = (
    "address", "type", "holder", "structure", "service", "description", "responsible",
    "liste_rouge", "rank", "dematerialisation",
)

# Columns operators may add to the national layout (not in the national file).
EXTRA_COLUMNS = {"Liste rouge": "liste_rouge", "Description": "description", "Responsable": "responsible", "Rang": "rank"}
# National columns the engine reads; the others (names, labels, addresses) are copies of the referential.
READ_COLUMNS = {
    "Type de BAL": "type",
    "Adresse BAL": "address",
    "Type identifiant structure": "structure_type",
    "Identification Structure": "structure",
    "Service de rattachement": "service",
    "Dématérialisation": "dematerialisation",
}
REQUIRED_COLUMNS = ("Type de BAL", "Adresse BAL")
KNOWN_COLUMNS = frozenset(formats.MSSANTE_COLUMNS) | frozenset(EXTRA_COLUMNS)


@dataclass(slots=True)
class Entry:
    """One line of a published list, values as received (checked by `rules`)."""

    index: int  # position in the list, 0-based
    line: int | None = None  # line number in a text document (header = 1)
    address: Any = None
    type: Any = None
    holder: Any = None
    structure: Any = None
    structure_type: Any = None  # only in the text layout (its own column)
    service: Any = None
    description: Any = None
    responsible: Any = None
    liste_rouge: Any = None
    rank: Any = None
    dematerialisation: Any = None


# Top-level fields a GET of the list adds: a PUT accepts them back (the caller checks them).
READ_ONLY_FIELDS = ("domain", "version")


@dataclass(slots=True)
class ListBody:
    """A published list: its entries and the read-only fields a JSON list carried (None when absent)."""

    entries: list[Entry]
    domain: str | None = None
    version: int | None = None


def parse_json_list(body: bytes) -> ListBody:
    """`{"mailboxes": [...]}`, optionally with what a GET adds (`domain`, `version`), so that
    a list read from the API can be sent back unchanged."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ListFormatError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos}): {exc.msg}", exc.lineno
        ) from exc
    if not isinstance(document, dict):
        raise ListFormatError('the JSON body must be an object {"mailboxes": [...]}')
    unknown = sorted(set(document) - {"mailboxes", *READ_ONLY_FIELDS})
    if unknown:
        raise ListFormatError(f"unknown top-level field(s) {', '.join(map(repr, unknown))}; expected 'mailboxes' "
                              f"(and, as a GET returns them, {' and '.join(map(repr, READ_ONLY_FIELDS))})")
    domain, version = document.get("domain"), document.get("version")
    if domain is not None and type(domain) is not str:
        raise ListFormatError("'domain' must be the domain's name as a string (or be left out)")
    if version is not None and (type(version) is not int or version < 0):
        raise ListFormatError("'version' must be the domain's version as a non-negative integer (or be left out)")
    items = document.get("mailboxes")
    if not isinstance(items, list):
        raise ListFormatError("'mailboxes' is missing or is not a list (send an empty list to delete every mailbox)")
    entries: list[Entry] = []
    known = frozenset(JSON_FIELDS)
    for index, item in enumerate(items):
        if type(item) is not dict:
            raise ListFormatError(f"mailboxes[{index}] is not an object", index=index)
        if not item.keys() <= known:
            extra = set(item) - known
            raise ListFormatError(
                f"mailboxes[{index}]: unknown field(s) {', '.join(map(repr, sorted(extra)))} "
                f"(known: {', '.join(JSON_FIELDS)})",
                index=index,
            )
        entries.append(Entry(index, None, **item))
    return ListBody(entries, domain, version)


def decode_text(body: bytes, charset: str | None = None) -> str:
    """Bytes of a text list: the declared charset, else UTF-8 with latin-1 as fallback."""
    if charset:
        try:
            return body.decode(charset)
        except LookupError as exc:
            raise ListFormatError(f"unknown charset {charset!r}") from exc
        except UnicodeDecodeError as exc:
            line = body.count(b"\n", 0, exc.start) + 1
            raise ListFormatError(f"line {line} is not valid {charset}: byte 0x{body[exc.start]:02x}", line) from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


class TextColumns:
    """Where each value is in a line of the text layout (read by header name)."""

    def __init__(self, header: list[str], *, strict: bool) -> None:
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            if name in index:
                raise ListFormatError(f"column {name!r} appears twice in the header", 1)
            if strict and name not in KNOWN_COLUMNS:
                raise ListFormatError(
                    f"unknown column {name!r} in the header (columns of {formats.MSSANTE}, "
                    f"plus {', '.join(map(repr, EXTRA_COLUMNS))})",
                    1,
                )
            index[name] = i
        missing = [c for c in REQUIRED_COLUMNS if c not in index]
        if missing:
            raise ListFormatError(
                f"the header lacks the column(s) {', '.join(map(repr, missing))} "
                f"(the first line must be the header, fields separated by '|')",
                1,
            )
        self.width = len(header)
        self.fields = [(index[c], f) for c, f in {**READ_COLUMNS, **EXTRA_COLUMNS}.items() if c in index]
        self.holder = index.get("Identification nationale PP")
        self.holder_type = index.get("Type Identifiant PP")
        self.holder_id = index.get("Identifiant PP")

    def entry(self, index: int, line: int, values: list[str]) -> Entry:
        entry = Entry(index, line)
        for i, name in self.fields:
            value = values[i]
            if value:
                setattr(entry, name, value)
        holder = values[self.holder] if self.holder is not None else ""
        if not holder and self.holder_id is not None and values[self.holder_id]:
            kind = values[self.holder_type] if self.holder_type is not None else ""
            holder = kind + values[self.holder_id]
        entry.holder = holder or None
        return entry


def split_header(line: str) -> list[str]:
    names = line.lstrip("\ufeff").split(formats.SEPARATOR)
    if len(names) > 1 and names[-1] == "":
        names.pop()  # tolerated trailing separator
    return [n.strip() for n in names]


def parse_text(text: str) -> list[Entry]:
    """The `Extraction_Correspondance_MSSante` layout (+ optional columns) into entries."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if not lines or not lines[0].strip():
        raise ListFormatError("empty list: the first line must be the header (e.g. 'Type de BAL|Adresse BAL|…')", 1)
    columns = TextColumns(split_header(lines[0]), strict=True)
    entries: list[Entry] = []
    width = columns.width
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        values = line.split(formats.SEPARATOR)
        if len(values) != width:
            if len(values) == width + 1 and values[-1] == "":
                values.pop()
            else:
                raise ListFormatError(f"line {number} has {len(values)} fields, the header has {width}", number)
        entries.append(columns.entry(len(entries), number, [v.strip() for v in values]))
    return entries
