"""Search keys: the ONE normalisation used by every search in the system.

A key is lowercase ASCII letters and digits separated by single spaces:
diacritics stripped (`Hélène` -> `helene`), ligatures expanded (`Œ` -> `oe`),
punctuation collapsed (`Saint-Étienne` -> `saint etienne`). Keys are computed
at write time, stored in indexed columns and compared with the same function
applied to what the user typed, so LDAP, FHIR and the web give the same people.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ø": "o", "Ø": "o", "đ": "d", "ł": "l"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65536)
def search_key(value: str | None) -> str:
    """Casefold, strip diacritics and collapse everything else to single spaces."""
    if not value:
        return ""
    if value.isascii():
        text = value.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
        text = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NON_ALNUM.sub(" ", text).strip()


def prefix_upper_bound(key: str) -> str:
    """Smallest string greater than every string starting with `key`.

    Prefix searches use `key <= column < prefix_upper_bound(key)`, which both
    SQLite and PostgreSQL (C collation) answer from a b-tree index.
    """
    return key + "\x7f"
