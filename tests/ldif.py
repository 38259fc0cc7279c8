"""Reading what `ldapsearch -LLL` prints: entries as {attribute: [values]}, in answer order."""

from __future__ import annotations

import base64


def parse_ldif(text: str) -> list[dict[str, list[str]]]:
    """Entries with a dn; folded lines joined, base64 values (`attr::`) decoded."""
    entries: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] | None = None
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    for line in lines:
        if not line.strip():
            current = None
            continue
        if line.startswith("#") or ":" not in line:
            continue
        attr, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value.strip()
        if current is None:
            current = {}
            entries.append(current)
        current.setdefault(attr, []).append(value)
    return [e for e in entries if "dn" in e]
