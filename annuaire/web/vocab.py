"""The words the search box understands: professions, savoir-faire, départements.

Built once from the nomenclatures shipped with the package (the same tables the
importer copies into the store) and matched through `search_key`, so that
`Médecin`, `medecin` and `MÉDECINS` are the same word. Users name people by
their trade ("cardiologue", "kiné", "infirmière") while the tables name the
discipline ("Cardiologie et Maladies vasculaires", "Masseur-Kinésithérapeute",
"Infirmier"): a few derivation rules and synonyms bridge the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from annuaire.referential import nomenclatures
from annuaire.store.keys import search_key

PROFESSIONS = "TRE_G15-ProfessionSante"
SKILLS = "TRE_R38-SpecialiteOrdinale"
MAILBOX_TYPES = {
    "PER": "Personnelle",
    "CAB": "Cabinet",
    "ORG": "Organisationnelle",
    "APP": "Applicative",
}
# The badge of a box on the pages, in words (the type codes mean nothing to most readers).
BOX_LABELS = {
    "PER": "Boîte personnelle",
    "CAB": "Boîte de cabinet",
    "ORG": "Boîte organisationnelle",
    "APP": "Boîte applicative",
}

# What people type -> the key of the table label (profession or savoir-faire).
SYNONYMS = {
    "generaliste": "medecine generale",
    "medecin generaliste": "medecine generale",
    "kine": "masseur kinesitherapeute",
    "kinesitherapeute": "masseur kinesitherapeute",
    "dentiste": "chirurgien dentiste",
    "podologue": "pedicure podologue",
    "opticien": "opticien lunetier",
    "sage femme": "sage femme",
    "maieuticien": "sage femme",
    "gyneco": "gynecologie obstetrique",
    "gynecologue": "gynecologie obstetrique",
    "obstetricien": "gynecologie obstetrique",
    "anesthesiste": "anesthesie reanimation",
    "ophtalmo": "ophtalmologie",
    "ophtalmologiste": "ophtalmologie",
    "radiologue": "radio diagnostic",
    "urgentiste": "medecine d urgence",
    "medecin du travail": "medecine du travail",
    "manipulateur radio": "manipulateur erm",
    "orthodontiste": "orthopedie dento faciale",
}

# Trade suffix -> discipline suffix ("cardiologue" -> "cardiologie").
DERIVATIONS = (("ologue", "ologie"), ("ologiste", "ologie"), ("iatre", "iatrie"), ("ien", "ie"))
# Feminine and plural endings tried when a word does not match as typed.
ENDINGS = ("s", "es", "e", "ne", "nes")


@dataclass(frozen=True)
class Term:
    """A recognised label: what kind of filter it is, its code and its label."""

    kind: str  # "profession" | "savoir_faire" | "departement"
    code: str
    label: str


@dataclass(frozen=True)
class Vocabulary:
    professions: dict[str, str]  # code -> label, in table order
    skills: dict[str, str]
    departements: dict[str, str]
    phrases: dict[str, Term]  # search key of a phrase -> term

    def lookup(self, phrase: str) -> Term | None:
        """The term a phrase (already a search key) names, if any."""
        for candidate in _variants(phrase):
            term = self.phrases.get(candidate)
            if term is not None:
                return term
        return None

    @cached_property
    def longest_phrase(self) -> int:
        """(Read for every word of every box: computed once.)"""
        return max(len(p.split()) for p in self.phrases)


def _variants(phrase: str) -> list[str]:
    """The phrase, its synonym, and the phrase with its last word un-inflected."""
    out = [phrase]
    words = phrase.split()
    last = words[-1]
    for ending in ENDINGS:
        if last.endswith(ending) and len(last) - len(ending) >= 4:
            out.append(" ".join(words[:-1] + [last[: -len(ending)]]))
    for trade, discipline in DERIVATIONS:
        for form in list(out):
            w = form.split()
            if w[-1].endswith(trade):
                out.append(" ".join(w[:-1] + [w[-1][: -len(trade)] + discipline]))
    return out + [SYNONYMS[p] for p in out if p in SYNONYMS]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    tables = nomenclatures.tables()
    professions = dict(tables.get(PROFESSIONS, {}))
    skills = dict(tables.get(SKILLS, {}))
    departements = dict(nomenclatures.departements())
    phrases: dict[str, Term] = {}
    for code, label in skills.items():
        _add(phrases, label, Term("savoir_faire", code, label))
    for code, label in professions.items():  # professions win over savoir-faire
        _add(phrases, label, Term("profession", code, label))
    for code, name in departements.items():
        phrases.setdefault(search_key(name), Term("departement", code, name))
    for typed, target in SYNONYMS.items():
        if target in phrases:
            phrases.setdefault(typed, phrases[target])
    return Vocabulary(professions, skills, departements, phrases)


def _add(phrases: dict[str, Term], label: str, term: Term) -> None:
    """Register the full label and, for 'A et B' labels, the part before 'et'."""
    key = search_key(label)
    phrases[key] = term
    head = key.split(" et ")[0]
    if head != key:
        phrases.setdefault(head, term)


def departement_code(token: str) -> str | None:
    """The département a token names by its code ('75', '2a', '971'), if any."""
    code = token.upper()
    if len(code) == 1 and code.isdigit():
        code = "0" + code
    return code if code in vocabulary().departements else None
