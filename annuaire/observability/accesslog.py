"""The access log: one line per HTTP request and per LDAP operation, never a secret.

Each line: the time (UTC), the interface (`http`, `fhir`, `web`, `ldap`),
the client address, what was asked (method and path with its query; LDAP
operation, base, scope and filter, bind DN), the status or LDAP result, the
duration in milliseconds. `text` writes `key=value` pairs (logfmt), `json`
one JSON object per line. Destination: `-` (stderr, the default), a file
(appended to by every process of the server), or `off`; written by a thread
of each process, so that a slow reader never holds a request (`logwriter`).

Left out, always: headers (Authorization, cookies, ESANTE-API-KEY), request
bodies, LDAP bind passwords; the values of query parameters whose name
speaks of a key, token, password, secret, session or signature (`?key=…`)
and of filter assertions on a password attribute are written `***`.
"""

from __future__ import annotations

import atexit
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

from annuaire.errors import InvalidInput
from annuaire.observability.logwriter import LineWriter

FORMATS = ("text", "json")
OFF = "off"
STDERR = "-"
HIDDEN = "***"
SENSITIVE = re.compile(r"key|token|pass|secret|session|cookie|auth|sig", re.IGNORECASE)
PASSWORD_ASSERTION = re.compile(r"(\(\s*[^()=~<>:]*pass[^()=~<>:]*(?::[^()=~<>]*)?[~<>:]?=)[^)]*", re.IGNORECASE)
MAX_FIELD = 1000  # characters of a field (path, DN, filter): a line stays within one atomic write

_writer: LineWriter | None = None  # None: no access log in this process
_format: Callable[[dict[str, Any]], str]


def check(destination: str, fmt: str) -> None:
    """InvalidInput naming the option when the format is unknown or the file cannot be appended to."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--log-format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if destination not in (STDERR, OFF, ""):
        try:
            with open(destination, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise InvalidInput(f"--access-log: cannot append to {destination}: {exc.strerror or exc}") from exc


def configure(destination: str, fmt: str) -> None:
    """Send this process's access lines to `destination` in `fmt` (forked children inherit it)."""
    global _writer, _format
    check(destination, fmt)
    if _writer is not None:
        _writer.close()
        _writer = None
    if destination == OFF:
        return
    _format = json_line if fmt == "json" else text_line

    def dropped(count: int) -> str:
        return _format({"time": _timestamp(time.time()), "interface": "log", "op": "dropped", "lines": count})

    if destination in (STDERR, ""):
        _writer = LineWriter(sys.stderr, dropped)
    else:
        _writer = LineWriter(open(destination, "a", encoding="utf-8"), dropped, owned=True)  # O_APPEND
    atexit.register(_writer.flush)  # the last lines of a process that stops (a second at most)


def enabled() -> bool:
    return _writer is not None


def write(interface: str, client: str, fields: dict[str, Any], seconds: float) -> None:
    """One line: `fields` between the client and the duration, in this order."""
    if _writer is None:
        return
    line: dict[str, Any] = {"time": _timestamp(time.time()), "interface": interface, "client": client}
    for key, value in fields.items():  # what a client chose (a path, a DN, a filter): bounded
        line[key] = value[:MAX_FIELD] if isinstance(value, str) else value
    line["duration_ms"] = round(seconds * 1000, 3)
    _writer.put(_format(line))


def path_with_query(path: str, query: bytes | str) -> str:
    """The path and its query, sensitive values hidden (`?key=***`)."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if not text:
        return path[:MAX_FIELD]
    pairs = parse_qsl(text, keep_blank_values=True)
    shown = "&".join(f"{quote(k, safe='')}={HIDDEN if SENSITIVE.search(k) else quote(v, safe='*,:/@')}"
                     for k, v in pairs)
    return f"{path}?{shown}"[:MAX_FIELD]


def filter_text(text: str) -> str:
    """An LDAP filter as logged: assertions on password attributes hidden, length bounded."""
    return PASSWORD_ASSERTION.sub(lambda m: m.group(1) + HIDDEN, text)[:MAX_FIELD]


_second: tuple[int, str] = (-1, "")  # the last second formatted: a busy server logs hundreds a second


def _timestamp(now: float) -> str:
    global _second
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(now % 1 * 1000):03d}Z"


def text_line(fields: dict[str, Any]) -> str:
    """`time interface key=value …` (logfmt: values with spaces, quotes or `=` in double quotes)."""
    parts = [str(fields.get("time")), str(fields.get("interface", "-"))]
    for key, value in fields.items():
        if key in ("time", "interface") or value is None:
            continue
        text = str(value)
        if not text or any(c in text for c in ' "=\\') or not text.isprintable():
            text = orjson.dumps(text).decode()
        parts.append(f"{key}={text}")
    return " ".join(parts)


def json_line(fields: dict[str, Any]) -> str:
    return orjson.dumps(fields).decode()
