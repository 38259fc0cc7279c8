"""Which mailbox lines of the national extraction an establishment keeps.

Values of one filter are alternatives (OR); different filters must all hold
(AND); an empty filter does not constrain. Fields are taken by position in
the validated line, whose layout is `db.NATIONAL_FIELDS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from annuaire.errors import InvalidInput
from annuaire.localsync.db import NATIONAL_FIELDS
from annuaire.referential import nomenclatures

_I = {name: i for i, name in enumerate(NATIONAL_FIELDS)}

# Filter -> (command-line option, code table). Values of these filters must be codes of their table:
# a mistyped code selects nothing, and the next run would remove every contact it had selected.
OPTIONS = {
    "departements": "--departement", "professions": "--profession", "savoir_faire": "--savoir-faire",
    "domains": "--domain", "structures": "--structure", "types": "--type",
}
CODE_TABLES = {
    "departements": "departements", "professions": "TRE_G15-ProfessionSante",
    "savoir_faire": "TRE_R38-SpecialiteOrdinale", "types": "TRE_R257-TypeBAL",
}
_WHAT = {
    "departements": "département code (01 to 95, 2A, 2B, 971 to 976)",
    "professions": "profession code (TRE_G15, e.g. 10 Médecin, 21 Pharmacien, 60 Infirmier)",
    "savoir_faire": "savoir-faire code (TRE_R38, e.g. SM54 Médecine générale)",
    "types": "mailbox type (TRE_R257: PER, ORG, APP or CAB)",
}
_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_STRUCTURE = re.compile(r"^[A-Za-z0-9]{1,30}$")


def codes(name: str) -> dict[str, str]:
    """{code: label} of the table a filter's values come from (`departements`, `professions`, …)."""
    table = CODE_TABLES[name]
    if table == "departements":
        return nomenclatures.departements()
    return nomenclatures.tables()[table]


def _departement(code: str) -> str:
    code = code.strip().upper()
    return code.zfill(2) if code.isdigit() and len(code) < 2 else code


def _check(name: str, items: list[str]) -> None:
    """InvalidInput naming the option, the bad values and where the valid ones are listed."""
    option = OPTIONS[name]
    if name in CODE_TABLES:
        table = codes(name)
        bad = [v for v in items if v not in table]
        if bad:
            raise InvalidInput(
                f"{option} {', '.join(repr(v) for v in bad)}: not a {_WHAT[name]}; "
                f"list the valid codes with `annuaire local-sync codes {option[2:]}`"
            )
    elif name == "domains":
        bad = [v for v in items if not _DOMAIN.match(v)]
        if bad:
            raise InvalidInput(f"{option} {bad[0]!r} is not a mail domain (e.g. ch-exemple.mssante.fr)")
    elif name == "structures":
        bad = [v for v in items if not _STRUCTURE.match(v)]
        if bad:
            raise InvalidInput(
                f"{option} {bad[0]!r} is not a structure id (Identification Structure: letters and digits, "
                "e.g. 1690000019)"
            )


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
        """Normalise user input (comma-separated values accepted); InvalidInput on a value no line can have."""
        clean: dict[str, tuple[str, ...]] = {}
        for name, raw in values.items():
            items = [v.strip() for value in raw or () for v in value.split(",") if v.strip()]
            if name == "departements":
                items = [_departement(v) for v in items]
            elif name == "domains":
                items = [v.lower().lstrip("@.") for v in items]
            elif name in ("types", "savoir_faire"):
                items = [v.upper() for v in items]
            _check(name, items)
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
