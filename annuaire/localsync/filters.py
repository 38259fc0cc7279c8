"""Which mailbox lines of the national extraction an establishment keeps.

Values of one filter are alternatives (OR); different filters must all hold
(AND); an empty filter does not constrain. Fields are taken by position in
the validated line, whose layout is `db.NATIONAL_FIELDS`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from annuaire.errors import InvalidInput
from annuaire.localsync.db import NATIONAL_FIELDS

_I = {name: i for i, name in enumerate(NATIONAL_FIELDS)}
TYPES = ("PER", "ORG", "APP", "CAB")


def _departement(code: str) -> str:
    code = code.strip().upper()
    return code.zfill(2) if code.isdigit() and len(code) < 2 else code


@dataclass(frozen=True)
class Filters:
    departements: tuple[str, ...] = ()
    professions: tuple[str, ...] = ()
    savoir_faire: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()  # "Identification Structure", with or without its type digit
    types: tuple[str, ...] = ()

    @classmethod
    def build(cls, **values: tuple[str, ...] | list[str] | None) -> Filters:
        """Normalise user input (comma-separated values accepted); InvalidInput on a bad type."""
        clean: dict[str, tuple[str, ...]] = {}
        for name, raw in values.items():
            items = [v.strip() for value in raw or () for v in value.split(",") if v.strip()]
            if name == "departements":
                items = [_departement(v) for v in items]
            elif name == "domains":
                items = [v.lower().lstrip("@.") for v in items]
            elif name in ("types", "savoir_faire"):
                items = [v.upper() for v in items]
            if name == "types":
                bad = [v for v in items if v not in TYPES]
                if bad:
                    raise InvalidInput(f"--type {bad[0]!r} is not a mailbox type (one of {', '.join(TYPES)})")
            clean[name] = tuple(sorted(set(items)))
        return cls(**clean)

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        parts = [f"{k}={','.join(v)}" for k, v in asdict(self).items() if v]
        return "; ".join(parts) or "none (the whole extraction)"

    def bytes_matcher(self, encoding: str):
        """A predicate on the raw fields (bytes) of a line, or None when nothing is filtered.

        The reader keeps lines as bytes (see reader.py): filter values are
        encoded once instead of decoding every line.
        """
        if self.empty:
            return None
        enc = {name: tuple(v.encode(encoding) for v in values) for name, values in asdict(self).items()}

        def match(fields: list[bytes]) -> bool:
            if enc["types"] and fields[_I["bal_type"]] not in enc["types"]:
                return False
            if enc["departements"] and fields[_I["departement"]].upper() not in enc["departements"]:
                return False
            if enc["professions"] and fields[_I["profession_code"]] not in enc["professions"]:
                return False
            if enc["savoir_faire"] and fields[_I["skill_code"]].upper() not in enc["savoir_faire"]:
                return False
            if enc["structures"]:
                sid = fields[_I["structure_id"]]
                if not sid or (sid not in enc["structures"] and fields[_I["structure_type"]] + sid not in enc["structures"]):
                    return False
            if enc["domains"]:
                domain = fields[_I["address"]].rsplit(b"@", 1)[-1].strip().lower()
                if not any(domain == d or domain.endswith(b"." + d) for d in enc["domains"]):
                    return False
            return True

        return match
