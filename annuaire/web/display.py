"""How stored values are shown to people: first names as they are written, phone numbers in pairs.

The national files carry first names in capitals ("BÉNÉDICTE", "JEAN-PIERRE");
people write them "Bénédicte", "Jean-Pierre". The stored values stay as
received (they are the referential's); only what is displayed changes, here,
in one place, so that every page (and the LDAP display attributes, which may
import `first_name`) writes a name the same way. Family names keep the
directory convention (capitals), as received.

No dependency on the web layer: plain functions of strings.
"""

from __future__ import annotations

import re

# A word of a first name, and what separates two words (kept as typed).
_SEPARATORS = re.compile(r"([\s\-‐‑'’]+)")
_PHONE_CHARS = re.compile(r"[\s.\-/()]")


def first_name(value: str | None) -> str:
    """A first name as people write it: "JEAN-PIERRE" -> "Jean-Pierre", "MARIE-ÈVE" -> "Marie-Ève".

    Names already written in mixed case ("Bénédicte", "McKenzie") are left as
    they are: their writer knew better. Only names in all capitals or all
    small letters are rewritten: each part (after a space, a hyphen or an
    apostrophe) gets a capital initial ("N'GOLO" -> "N'Golo").
    """
    if not value:
        return ""
    text = " ".join(value.split())
    if not (text.isupper() or text.islower()):
        return text
    parts = _SEPARATORS.split(text)
    return "".join(p if i % 2 else p[:1].upper() + p[1:].lower() for i, p in enumerate(parts))


def phone(value: str | None) -> str:
    """A French phone number in pairs of digits: "0123456789" -> "01 23 45 67 89".

    International forms keep their country code: "+33123456789" ->
    "+33 1 23 45 67 89". Anything else (short numbers, foreign numbers) is
    shown as received, spaces tidied.
    """
    if not value:
        return ""
    compact = _PHONE_CHARS.sub("", value)
    if len(compact) == 10 and compact.isdigit():
        return " ".join(compact[i : i + 2] for i in range(0, 10, 2))
    if compact.startswith("+33") and len(compact) == 12 and compact[1:].isdigit():
        rest = compact[4:]
        return f"+33 {compact[3]} " + " ".join(rest[i : i + 2] for i in range(0, 8, 2))
    if compact.startswith("0033") and len(compact) == 13 and compact.isdigit():
        return phone("+" + compact[2:])
    return " ".join(value.split())


def phone_link(value: str | None) -> str:
    """The `tel:` target of a phone number (digits and a leading +)."""
    if not value:
        return ""
    return "".join(c for c in value if c.isdigit() or c == "+")
