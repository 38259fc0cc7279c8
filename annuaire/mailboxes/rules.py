"""The publication rules: THE one place deciding whether a mailbox line is acceptable.

Each rule has a stable code (what clients test), a French and an English
message. Errors reject the line (it is applied nowhere; an existing box with
that address stays as it was); warnings (good practice) are reported only.

Checks run in three stages, all in bulk so that a 62k-line list validates
quickly: each line on its own (syntax, lengths), the list as a whole
(duplicates), and against the referential (holders, structures, activities,
names) with a few batched queries. Checks that need the current mailboxes
(type immutable, address owned by another domain) run inside the write
transaction, in `publication`, with the same catalogue.

The national mirror uses the same rules with `strict=False`: the national
file is authoritative, so referential mismatches (a holder our referential
does not know yet) become warnings instead of rejections.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection

from annuaire.config import Settings
from annuaire.mailboxes import bulk_reads
from annuaire.mailboxes.entries import Entry
from annuaire.mailboxes.model import PERSONAL_TYPES, STRUCTURE_TYPES, TYPES, Mailbox
from annuaire.store.keys import search_key


@dataclass(frozen=True)
class Rule:
    code: str
    fr: str
    en: str
    warning: bool = False


_RULES = [
    # --- the address
    Rule("ADDRESS_MISSING", "adresse manquante", "address missing"),
    Rule("ADDRESS_SYNTAX", "adresse {value!r} invalide : attendu partie-locale@domaine avec un seul @",
         "address {value!r} is invalid: expected local-part@domain with exactly one @"),
    Rule("ADDRESS_LOCAL_PART", "partie locale {value!r} invalide : caractères permis a-z 0-9 . _ -, "
         "sans point au début, à la fin ni deux points de suite",
         "local part {value!r} is invalid: allowed characters are a-z 0-9 . _ -, no leading or trailing dot, no '..'"),
    Rule("ADDRESS_TOO_LONG", "adresse trop longue : {what} de {length} caractères (maximum {max})",
         "address too long: {what_en} of {length} characters (maximum {max})"),
    Rule("ADDRESS_DOMAIN_SYNTAX", "domaine {value!r} invalide", "domain {value!r} is invalid"),
    Rule("ADDRESS_DOMAIN_MISMATCH", "l'adresse est dans le domaine {value!r}, la publication porte sur {domain!r}",
         "the address is in domain {value!r}, the publication is for {domain!r}"),
    Rule("ADDRESS_IN_OTHER_DOMAIN", "l'adresse est déjà publiée dans le domaine {value!r}",
         "the address is already published in domain {value!r}"),
    Rule("DUPLICATE_ADDRESS", "adresse présente {count} fois dans la liste (toutes les occurrences sont rejetées)",
         "address appears {count} times in the list (every occurrence is rejected)"),
    # --- the type
    Rule("TYPE_UNKNOWN", "type de BAL {value!r} inconnu (PER, ORG, APP ou CAB)",
         "unknown mailbox type {value!r} (PER, ORG, APP or CAB)"),
    Rule("TYPE_IMMUTABLE", "le type d'une BAL ne change pas : {address} est de type {old}, la liste dit {value} "
         "(choisir une autre adresse)",
         "a mailbox type cannot change: {address} is {old}, the list says {value} (use another address)"),
    # --- the holder (PER, CAB)
    Rule("HOLDER_MISSING", "une BAL {type} doit avoir un titulaire (identifiant national du professionnel)",
         "a {type} mailbox needs a holder (national id of the professional)"),
    Rule("HOLDER_SYNTAX", "identifiant de titulaire {value!r} invalide : attendu 8 + RPPS (11 chiffres) "
         "ou 0 + ADELI (9 caractères)",
         "holder id {value!r} is invalid: expected 8 + RPPS (11 digits) or 0 + ADELI (9 characters)"),
    Rule("HOLDER_NOT_APPLICABLE", "une BAL {type} est rattachée à une structure, pas à un titulaire ({value!r})",
         "a {type} mailbox is attached to a structure, not to a holder ({value!r})"),
    Rule("HOLDER_UNKNOWN", "titulaire {value} inconnu du référentiel", "holder {value} is not in the referential"),
    Rule("HOLDER_INACTIVE", "titulaire {value} inactif dans le référentiel", "holder {value} is inactive in the referential"),
    Rule("PROFESSION_NOT_AUTHORISED", "la profession {profession} du titulaire {value} n'est pas habilitée MSSanté",
         "profession {profession} of holder {value} is not authorised for MSSanté"),
    # --- the structure
    Rule("STRUCTURE_MISSING", "une BAL {type} doit être rattachée à une structure",
         "a {type} mailbox must be attached to a structure"),
    Rule("STRUCTURE_SYNTAX", "identifiant de structure {value!r} invalide : attendu type + identifiant "
         "(1+FINESS, 3+SIRET, 4+RPPS rang, 0+ADELI) ou identifiant technique (F…, C…, R…)",
         "structure id {value!r} is invalid: expected type + id (1+FINESS, 3+SIRET, 4+RPPS rang, 0+ADELI) "
         "or technical id (F…, C…, R…)"),
    Rule("STRUCTURE_UNKNOWN", "structure {value} inconnue du référentiel", "structure {value} is not in the referential"),
    Rule("STRUCTURE_INACTIVE", "structure {value} fermée dans le référentiel", "structure {value} is closed in the referential"),
    # --- other fields
    Rule("FIELD_NOT_TEXT", "le champ {field} doit être du texte", "field {field} must be text"),
    Rule("FIELD_BAD_CHARACTER", "le champ {field} contient un caractère interdit ('|', saut de ligne ou caractère de contrôle)",
         "field {field} contains a forbidden character ('|', line break or control character)"),
    Rule("FIELD_TOO_LONG", "le champ {field} a {length} caractères (maximum {max})",
         "field {field} has {length} characters (maximum {max})"),
    Rule("FIELD_NOT_BOOLEAN", "le champ {field} doit valoir vrai ou faux (true/false, 1/0, O/N), reçu {value!r}",
         "field {field} must be true or false (true/false, 1/0, O/N), got {value!r}"),
    Rule("RANK_INVALID", "le rang doit être un entier de 1 à 999, reçu {value!r}",
         "rank must be an integer from 1 to 999, got {value!r}"),
    # --- good practice (warnings)
    Rule("ADDRESS_LOWERCASED", "adresse mise en minuscules", "address converted to lower case", True),
    Rule("FIELD_NOT_APPLICABLE", "le champ {field} ne s'applique pas à une BAL {type}",
         "field {field} does not apply to a {type} mailbox", True),
    Rule("NAMING_PER_UNRELATED", "la partie locale {value!r} ne ressemble pas au nom du titulaire ({name})",
         "local part {value!r} does not look like the holder's name ({name})", True),
    Rule("NAMING_ORG_LIKE_PERSON", "BAL {type} nommée comme un professionnel enregistré ({value!r})",
         "{type} mailbox named like a registered professional ({value!r})", True),
    Rule("HOLDER_LEFT_STRUCTURE", "le titulaire {value} n'a pas d'activité en cours dans la structure {structure}",
         "holder {value} has no current activity in structure {structure}", True),
    Rule("HOLDER_SEVERAL_PER", "le titulaire {value} a {count} BAL PER dans ce domaine",
         "holder {value} has {count} PER mailboxes in this domain", True),
    Rule("DUPLICATE_LINE", "adresse déjà vue ligne {first} : cette ligne est ignorée",
         "address already seen on line {first}: this line is ignored", True),
    Rule("BOX_HIDDEN", "la BAL existante reste enregistrée mais n'est pas publiée : {reasons}",
         "the existing box stays recorded but is not published: {reasons_en}", True),
]
RULES: dict[str, Rule] = {rule.code: rule for rule in _RULES}

MAX_LOCAL = 64
MAX_ADDRESS = 254
TEXT_LIMITS = {"service": 300, "description": 500, "responsible": 300}
STRUCTURE_ID_TYPES = ("0", "1", "2", "3", "4", "40", "41")  # TRE_G07

_LOCAL_RE = re.compile(r"[a-z0-9._-]+")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# A valid lowercase address, local part of at most 64 characters (the fast path of check_line).
_GOOD_ADDRESS = re.compile(rf"(?=[^@]{{1,64}}@)[a-z0-9_-]+(?:\.[a-z0-9_-]+)*@{_LABEL}(?:\.{_LABEL})+")
_HOLDER_RE = re.compile(r"8[0-9]{11}|0[0-9A-Z]{9}")
_TECH_ID_RE = re.compile(r"[FCR][0-9A-Za-z]{1,39}")
_IDNAT_RE = re.compile(r"[0-9][0-9A-Za-z]{1,44}")
_STRUCTURE_ID_RE = re.compile(r"[0-9A-Za-z]{1,40}")
_BAD_CHARS = re.compile(r"[|\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TRUE = frozenset({"true", "1", "o", "oui", "y", "yes", "vrai"})
_FALSE = frozenset({"false", "0", "n", "non", "no", "faux", ""})


@dataclass(slots=True)
class Finding:
    """One rejected line or one warning, as reported to the publisher."""

    code: str
    index: int
    address: str | None
    message: str  # French
    message_en: str
    line: int | None = None

    @property
    def warning(self) -> bool:
        return RULES[self.code].warning

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "address": self.address, "code": self.code,
                               "message": self.message, "message_en": self.message_en}
        if self.line is not None:
            out["line"] = self.line
        return out


def finding(code: str, entry: Entry, address: str | None, **values: Any) -> Finding:
    rule = RULES[code]
    values.setdefault("address", address)
    return Finding(code, entry.index, address, rule.fr.format(**values), rule.en.format(**values), entry.line)


def valid_domain(name: str) -> bool:
    """A syntactically valid lowercase mail domain with at least two labels."""
    return len(name) <= 253 and _DOMAIN_RE.fullmatch(name) is not None


def normalise_domain(name: str) -> str:
    return name.strip().lower().rstrip(".")


# --- stage 1: each line on its own -------------------------------------------------


@dataclass(slots=True)
class Line:
    """A line that passed its own checks, waiting for the referential."""

    entry: Entry
    mailbox: Mailbox
    structure_ref: tuple[str, str] | None = None  # ("tech", "F…") or ("idnat", "1…")
    person: bulk_reads.Person | None = None
    structure: bulk_reads.Structure | None = None


def _text(entry: Entry, name: str, address: str) -> tuple[str | None, Finding | None]:
    value = getattr(entry, name)
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, finding("FIELD_NOT_TEXT", entry, address, field=name)
    value = value.strip()
    if _BAD_CHARS.search(value):
        return None, finding("FIELD_BAD_CHARACTER", entry, address, field=name)
    limit = TEXT_LIMITS.get(name)
    if limit is not None and len(value) > limit:
        return None, finding("FIELD_TOO_LONG", entry, address, field=name, length=len(value), max=limit)
    return value or None, None


def _boolean(entry: Entry, name: str, address: str) -> tuple[bool | None, Finding | None]:
    value = getattr(entry, name)
    if value is None or isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return (None if text == "" else False), None
    return None, finding("FIELD_NOT_BOOLEAN", entry, address, field=name, value=value)


def _rank(entry: Entry, address: str) -> tuple[int | None, Finding | None]:
    value = entry.rank
    if value is None or value == "":
        return None, None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= 999:
        return None, finding("RANK_INVALID", entry, address, value=value)
    return number, None


def _address(entry: Entry, domain: str | None) -> tuple[str | None, Finding | None, list[Finding]]:
    raw = entry.address
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, finding("ADDRESS_MISSING", entry, None), []
    if not isinstance(raw, str):
        return None, finding("FIELD_NOT_TEXT", entry, None, field="address"), []
    text = raw.strip()
    address = text.lower()
    warnings = [finding("ADDRESS_LOWERCASED", entry, address)] if address != text else []
    local, at, dom = address.rpartition("@")
    if not at or not local or "@" in local or not dom:
        return None, finding("ADDRESS_SYNTAX", entry, address, value=address), warnings
    if len(local) > MAX_LOCAL:
        return None, finding("ADDRESS_TOO_LONG", entry, address, what="partie locale", what_en="local part",
                             length=len(local), max=MAX_LOCAL), warnings
    if len(address) > MAX_ADDRESS:
        return None, finding("ADDRESS_TOO_LONG", entry, address, what="adresse", what_en="address",
                             length=len(address), max=MAX_ADDRESS), warnings
    if not _LOCAL_RE.fullmatch(local) or local[0] == "." or local[-1] == "." or ".." in local:
        return None, finding("ADDRESS_LOCAL_PART", entry, address, value=local), warnings
    if not valid_domain(dom):
        return None, finding("ADDRESS_DOMAIN_SYNTAX", entry, address, value=dom), warnings
    if domain is not None and dom != domain:
        return None, finding("ADDRESS_DOMAIN_MISMATCH", entry, address, value=dom, domain=domain), warnings
    return address, None, warnings


def _structure(entry: Entry, address: str) -> tuple[tuple[str, str] | None, str | None, str | None, Finding | None]:
    """(reference to resolve, provisional type, provisional id, error)."""
    raw, kind = entry.structure, entry.structure_type
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None, None, None
    if not isinstance(raw, str) or (kind is not None and not isinstance(kind, str)):
        return None, None, None, finding("FIELD_NOT_TEXT", entry, address, field="structure")
    value = raw.strip()
    if kind is not None and kind.strip():  # the text layout: type and id in two columns
        kind = kind.strip()
        if kind not in STRUCTURE_ID_TYPES or not _STRUCTURE_ID_RE.fullmatch(value):
            return None, None, None, finding("STRUCTURE_SYNTAX", entry, address, value=kind + value)
        return ("idnat", kind + value), kind, value, None
    if _TECH_ID_RE.fullmatch(value):
        prefix, ident = value[0], value[1:]
        provisional = {"F": "1", "R": "4"}.get(prefix) or ("3" if len(ident) == 14 else "0")
        return ("tech", value), provisional, ident, None
    if _IDNAT_RE.fullmatch(value):
        return ("idnat", value), value[0], value[1:], None
    return None, None, None, finding("STRUCTURE_SYNTAX", entry, address, value=value)


_NO_TEXT: Mapping[str, None] = MappingProxyType(dict.fromkeys(TEXT_LIMITS))  # a line without text fields


def check_line(entry: Entry, domain: str | None) -> tuple[Line | None, Finding | None, list[Finding]]:
    """A line on its own: (line, None, warnings) or (None, the first error, warnings)."""
    raw = entry.address
    if (type(raw) is str and len(raw) <= MAX_ADDRESS and _GOOD_ADDRESS.fullmatch(raw)
            and (domain is None or raw.endswith(domain) and raw[-len(domain) - 1] == "@")):
        address: str | None = raw  # the common case, decided by one regex
        warnings: list[Finding] = []
    else:
        address, error, warnings = _address(entry, domain)
        if error:
            return None, error, warnings
    assert address is not None
    kind = entry.type
    if kind not in TYPES:
        if not isinstance(kind, str) or kind.strip().upper() not in TYPES:
            return None, finding("TYPE_UNKNOWN", entry, address, value=kind), warnings
        kind = kind.strip().upper()
    holder = entry.holder
    if holder is not None and not isinstance(holder, str):
        return None, finding("FIELD_NOT_TEXT", entry, address, field="holder"), warnings
    holder = (holder or "").strip().upper() or None
    if kind in PERSONAL_TYPES:
        if holder is None:
            return None, finding("HOLDER_MISSING", entry, address, type=kind), warnings
        if not _HOLDER_RE.fullmatch(holder):
            return None, finding("HOLDER_SYNTAX", entry, address, value=holder), warnings
    elif holder is not None:
        return None, finding("HOLDER_NOT_APPLICABLE", entry, address, type=kind, value=holder), warnings
    ref, s_type, s_id, error = _structure(entry, address)
    if error:
        return None, error, warnings
    if kind in STRUCTURE_TYPES and ref is None:
        return None, finding("STRUCTURE_MISSING", entry, address, type=kind), warnings
    values: Mapping[str, str | None] = _NO_TEXT
    if entry.service is not None or entry.description is not None or entry.responsible is not None:
        texts: dict[str, str | None] = {}
        for name in TEXT_LIMITS:
            texts[name], error = _text(entry, name, address)
            if error:
                return None, error, warnings
        values = texts
    liste_rouge = entry.liste_rouge
    if liste_rouge is not None and type(liste_rouge) is not bool:
        liste_rouge, error = _boolean(entry, "liste_rouge", address)
        if error:
            return None, error, warnings
    demat = entry.dematerialisation
    if demat is not None and type(demat) is not bool:
        demat, error = _boolean(entry, "dematerialisation", address)
        if error:
            return None, error, warnings
    rank = None
    if entry.rank is not None:
        rank, error = _rank(entry, address)
        if error:
            return None, error, warnings
    if values is not _NO_TEXT:
        not_applicable = ("service", "description", "responsible") if kind == "PER" else ("service",) if kind == "CAB" else ()
        for name in not_applicable:
            if values[name] is not None:
                warnings.append(finding("FIELD_NOT_APPLICABLE", entry, address, field=name, type=kind))
    # Positional, in the order of Mailbox's fields (keywords cost 0.5 µs a line).
    mailbox = Mailbox(address, kind, holder, s_type, s_id, values["service"], values["description"],
                      values["responsible"], bool(liste_rouge), rank, demat)
    return Line(entry, mailbox, ref), None, warnings


# --- stages 2 and 3: the list and the referential -------------------------------------


@dataclass
class Validation:
    """The outcome of validating a list: accepted lines and findings."""

    accepted: list[Line] = field(default_factory=list)
    rejected: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def rejected_addresses(self) -> set[str]:
        """Addresses of rejected lines: existing boxes with these addresses are kept as they are."""
        return {f.address for f in self.rejected if f.address}


def authorised_professions(settings: Settings) -> frozenset[str] | None:
    """The configured professions, or None for "every profession of the referential"."""
    codes = {c.strip() for c in settings.authorised_professions.split(",") if c.strip()}
    return frozenset(codes) or None


def looks_like_name(local: str, last_name: str | None) -> bool:
    """Whether a PER local part contains the holder's last name (or a significant part of it)."""
    key = search_key(last_name)
    if not key:
        return True
    compact = local.replace(".", "").replace("_", "").replace("-", "")  # local parts are [a-z0-9._-]
    if key.replace(" ", "") in compact:
        return True
    return any(len(token) >= 3 and token in compact for token in key.split())


def person_like(local: str) -> tuple[str, str] | None:
    """(first, last) search keys when a local part reads `prenom.nom`, else None."""
    parts = local.split(".")
    if len(parts) != 2 or any(ch.isdigit() for ch in local):
        return None
    first, last = search_key(parts[0]), search_key(parts[1])
    return (first, last) if first and last else None


class Validator:
    """Validates whole lists against one store's referential."""

    def __init__(self, settings: Settings, *, strict: bool = True, good_practice: bool = True) -> None:
        self.professions = authorised_professions(settings)
        self.strict = strict
        self.good_practice = good_practice

    def validate(self, conn: Connection, entries: list[Entry], domain: str | None, *, duplicates: bool = True) -> Validation:
        """All checks that need no lock. `domain` None: each address's own domain (national file)."""
        result = Validation()
        for _ in self.parts(conn, entries, domain, result, duplicates=duplicates):
            pass
        if self.good_practice:
            self.advise(conn, result)
        result.rejected.sort(key=lambda f: f.index)
        result.warnings.sort(key=lambda f: f.index)
        return result

    def parts(self, conn: Connection, entries: list[Entry], domain: str | None, result: Validation, *,
              size: int | None = None, duplicates: bool = True) -> Iterator[list[Line]]:
        """Validate `size` entries at a time (all at once by default), yielding the lines each part
        accepts as soon as they are known: a caller may write them while the next part is checked.
        Findings gather in `result` (unsorted); addresses given twice are counted over the whole
        list first."""
        twice = _given_twice(entries) if duplicates else {}
        size = size or len(entries) or 1
        warn, reject = result.warnings.extend, result.rejected.append
        for start in range(0, len(entries), size):
            lines: list[Line] = []
            accept = lines.append
            for entry in entries[start : start + size]:
                line, error, warnings = check_line(entry, domain)
                if warnings:
                    warn(warnings)
                if error:
                    reject(error)
                elif twice and line.mailbox.address in twice:  # type: ignore[union-attr]  # line is set when there is no error
                    address = line.mailbox.address  # type: ignore[union-attr]  # line is set when there is no error
                    reject(finding("DUPLICATE_ADDRESS", entry, address, count=twice[address]))
                else:
                    accept(line)  # type: ignore[arg-type]  # line is set when there is no error
            lines = self._referential(conn, lines, result)
            result.accepted.extend(lines)
            yield lines

    def advise(self, conn: Connection, result: Validation) -> None:
        """Add the good-practice warnings of the accepted lines (they never change what is applied)."""
        self._good_practice(conn, result.accepted, result)
        result.warnings.sort(key=lambda f: f.index)

    def _referential(self, conn: Connection, lines: list[Line], result: Validation) -> list[Line]:
        holders = {ln.mailbox.holder for ln in lines if ln.mailbox.holder}
        people = bulk_reads.persons(conn, holders) if holders else {}
        techs = {ln.structure_ref[1] for ln in lines if ln.structure_ref and ln.structure_ref[0] == "tech"}
        idnats = {ln.structure_ref[1] for ln in lines if ln.structure_ref and ln.structure_ref[0] == "idnat"}
        by_tech, by_idnat = bulk_reads.structures(conn, techs, idnats) if (techs or idnats) else ({}, {})
        # A `1`+FINESS may be known only by its technical id `F`+FINESS (and so on).
        fallback = {v: _tech_of_idnat(v) for v in idnats if v not in by_idnat}
        missing = {t for t in fallback.values() if t and t not in by_tech}
        if missing:
            by_tech.update(bulk_reads.structures(conn, missing, ())[0])
        kept = []
        for line in lines:
            problem = self._check_referential(line, people, by_tech, by_idnat, fallback)
            if problem is None:
                kept.append(line)
            elif self.strict:
                result.rejected.append(problem)
            else:
                result.warnings.append(problem)
                kept.append(line)
        return kept

    def _check_referential(self, line: Line, people: dict, by_tech: dict, by_idnat: dict, fallback: dict) -> Finding | None:
        mb, entry = line.mailbox, line.entry
        problem = None
        if mb.type in PERSONAL_TYPES and mb.holder:
            person = people.get(mb.holder)
            line.person = person
            if person is None:
                problem = finding("HOLDER_UNKNOWN", entry, mb.address, value=mb.holder)
            elif not person.active:
                problem = finding("HOLDER_INACTIVE", entry, mb.address, value=mb.holder)
            elif self.professions is not None and person.profession_code not in self.professions:
                problem = finding("PROFESSION_NOT_AUTHORISED", entry, mb.address, value=mb.holder,
                                  profession=person.profession_code or "?")
        if line.structure_ref is not None:
            kind, value = line.structure_ref
            found = by_tech.get(value) if kind == "tech" else (by_idnat.get(value) or by_tech.get(fallback.get(value) or ""))
            line.structure = found
            if found is not None and found.idnat and _IDNAT_RE.fullmatch(found.idnat):
                # Store the structure under its national id, whichever form the publisher used.
                given = entry.structure_type.strip() if isinstance(entry.structure_type, str) else ""
                s_type = given if given and found.idnat.startswith(given) else found.idnat[0]
                mb.structure_type, mb.structure = s_type, found.idnat[len(s_type):]
            if problem is None:
                if found is None:
                    problem = finding("STRUCTURE_UNKNOWN", entry, mb.address, value=value)
                elif not found.active:
                    problem = finding("STRUCTURE_INACTIVE", entry, mb.address, value=value)
        return problem

    def _good_practice(self, conn: Connection, lines: list[Line], result: Validation) -> None:
        warnings = result.warnings
        # PER local part vs. the holder's name.
        for line in lines:
            mb, person = line.mailbox, line.person
            if mb.type == "PER" and person is not None and not looks_like_name(mb.local_part, person.last_name):
                name = " ".join(x for x in (person.first_name, person.last_name) if x)
                warnings.append(finding("NAMING_PER_UNRELATED", line.entry, mb.address, value=mb.local_part, name=name))
        # ORG/APP boxes named `prenom.nom` of a registered professional.
        candidates = {}
        for line in lines:
            if line.mailbox.type in STRUCTURE_TYPES:
                pair = person_like(line.mailbox.local_part)
                if pair:
                    candidates[id(line)] = pair
        if candidates:
            known = bulk_reads.person_name_keys(conn, {pair[1] for pair in candidates.values()})
            for line in lines:
                pair = candidates.get(id(line))
                if pair and pair in known:
                    warnings.append(finding("NAMING_ORG_LIKE_PERSON", line.entry, line.mailbox.address,
                                            type=line.mailbox.type, value=line.mailbox.local_part))
        # Personal boxes attached to a structure where the holder no longer works.
        attached = [ln for ln in lines if ln.mailbox.type in PERSONAL_TYPES and ln.person and ln.structure]
        if attached:
            sites = bulk_reads.active_activities(conn, {ln.person.id for ln in attached})  # type: ignore[union-attr]  # attached lines have a person
            for line in attached:
                if line.structure.id not in sites[line.person.id]:  # type: ignore[union-attr]  # attached lines have a person and a structure
                    warnings.append(finding("HOLDER_LEFT_STRUCTURE", line.entry, line.mailbox.address,
                                            value=line.mailbox.holder, structure=line.mailbox.structure_idnat))
        # Several PER boxes for one holder in the list.
        per_holder = Counter(ln.mailbox.holder for ln in lines if ln.mailbox.type == "PER")
        for line in lines:
            n = per_holder.get(line.mailbox.holder, 0) if line.mailbox.type == "PER" else 0
            if n > 1:
                warnings.append(finding("HOLDER_SEVERAL_PER", line.entry, line.mailbox.address,
                                        value=line.mailbox.holder, count=n))


def _given_twice(entries: list[Entry]) -> dict[str, int]:
    """Addresses given more than once, with their count: every copy is rejected (which one is
    right?), even copies rejected for another reason. Normalised as `_address` does."""
    counts = Counter(e.address.strip().lower() for e in entries if type(e.address) is str)
    if max(counts.values(), default=1) == 1:
        return {}  # the usual case
    return {address: n for address, n in counts.items() if n > 1 and address}


def _tech_of_idnat(idnat: str) -> str | None:
    """The technical id a structure known by `type+id` would have (`1`+FINESS -> `F`+FINESS)."""
    kind, ident = idnat[0], idnat[1:]
    if kind == "1":
        return "F" + ident
    if kind in ("0", "3"):
        return "C" + ident
    if kind == "4":
        return "R" + ident
    return None
