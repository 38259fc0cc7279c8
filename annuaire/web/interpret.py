"""Reading the one search box: which words are a name, a trade, a place or an address.

The box takes free text ("dupont", "cardiologue lyon", "infirmière 33",
"jean.martin@medecin.mssante.fr"). It is read left to right, longest phrase
first: an address when it holds '@'; else a profession or savoir-faire label;
a département code, name or a postcode; a city known to the store; and every
other word is part of a name. A place that is also somebody's exact family name
("Laval", "Vienne") alone in the box is read as a name. `as_name=True` reads
everything as a name (the "search this as a name" link of the results page).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from annuaire.store.keys import search_key
from annuaire.web.vocab import departement_code, vocabulary

POSTCODE = re.compile(r"^\d{5}$")
MAX_CITY_WORDS = 4

# (kind, label) of what was understood, in reading order, for the results page.
Understood = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Criteria:
    """What to look for, from the box and the filters; None = no constraint."""

    address: str | None = None  # lowercase text holding '@'
    name: tuple[str, ...] = ()  # search-key words of a name
    profession: str | None = None  # TRE_G15 code
    savoir_faire: str | None = None  # TRE_R38 code
    departement: str | None = None
    city_key: str | None = None
    postcode: str | None = None
    mailbox_type: str | None = None  # PER CAB ORG APP
    understood: Understood = field(default=())

    @property
    def empty(self) -> bool:
        return not (
            self.address or self.name or self.profession or self.savoir_faire
            or self.departement or self.city_key or self.postcode or self.mailbox_type
        )

    @property
    def interpreted(self) -> bool:
        """True when some words of the box were read as something else than a name."""
        return any(kind != "Nom" for kind, _ in self.understood)


# A city lookup: search key of a phrase -> the city's label, or None.
CityLookup = Callable[[str], str | None]
# A family-name lookup: does an active person bear exactly this family name key?
SurnameLookup = Callable[[str], bool]


def interpret(
    text: str,
    *,
    city: CityLookup,
    surname: SurnameLookup,
    as_name: bool = False,
) -> Criteria:
    """Read the box into criteria (filters are applied afterwards by `with_filters`)."""
    text = text.strip()
    if "@" in text:
        address = "".join(text.split()).lower()
        return Criteria(address=address, understood=(("Adresse MSSanté", address),))
    words = search_key(text).split()
    if as_name:
        return _name_only(words)
    found: dict[str, str] = {}
    understood: list[tuple[str, str]] = []
    name: list[str] = []
    from_place_name = False
    vocab = vocabulary()
    i = 0
    while i < len(words):
        step = _read_at(words, i, found, vocab.longest_phrase, city, inside_name=bool(name))
        if step is None:
            name.append(words[i])
            i += 1
            continue
        length, kind, value, label, by_name = step
        if kind == "city_key" and not name and _name_before_city(words, i + length, value, city, surname):
            name += words[i : i + length]  # "charmont rochois": Charmont in Rochois, not Rochois in Charmont
            i += length
            continue
        found[kind] = value
        understood.append((_KIND_LABELS[kind], label))
        from_place_name = from_place_name or by_name
        i += length
    place_kinds = {"departement", "city_key"}
    if from_place_name and not name and set(found) <= place_kinds and surname(" ".join(words)):
        return _name_only(words)
    if name:
        understood.append(("Nom", " ".join(name)))
    return Criteria(
        name=tuple(name),
        profession=found.get("profession"),
        savoir_faire=found.get("savoir_faire"),
        departement=found.get("departement"),
        city_key=found.get("city_key"),
        postcode=found.get("postcode"),
        understood=tuple(understood),
    )


_KIND_LABELS = {
    "profession": "Profession",
    "savoir_faire": "Savoir-faire",
    "departement": "Département",
    "city_key": "Ville",
    "postcode": "Code postal",
}


def _name_before_city(words: list[str], end: int, phrase: str, city: CityLookup, surname: SurnameLookup) -> bool:
    """A city at the start of the box (`phrase`, up to `end`) that is also a family name, with
    a city ending the box: people write "Nom Ville", so the first is the name."""
    if end >= len(words) or not surname(phrase):
        return False
    for length in range(min(MAX_CITY_WORDS, len(words) - end), 0, -1):
        tail = " ".join(words[len(words) - length :])
        if not tail.replace(" ", "").isdigit() and city(tail) is not None:
            return True
    return False


def _name_only(words: list[str]) -> Criteria:
    return Criteria(name=tuple(words), understood=(("Nom", " ".join(words)),) if words else ())


def _read_at(
    words: list[str], i: int, found: dict[str, str], longest: int, city: CityLookup, inside_name: bool
) -> tuple[int, str, str, str, bool] | None:
    """(words used, kind, value, label, read from a place name) of the phrase at i.

    A place named in words (not a code) must not cut a name in two: after
    name words, it must end the box ("de la lanin camille" is one name, even
    if Lanin is a town; "dupont lanin" is Dupont in Lanin).
    """
    vocab = vocabulary()
    has_place = bool({"departement", "city_key", "postcode"} & set(found))

    def place_fits(length: int) -> bool:
        return not has_place and (not inside_name or i + length == len(words))

    for length in range(min(longest, len(words) - i), 0, -1):
        phrase = " ".join(words[i : i + length])
        term = vocab.lookup(phrase)
        if term is not None and term.kind not in found:
            if term.kind != "departement":
                return length, term.kind, term.code, term.label, False
            if place_fits(length):
                return length, "departement", term.code, f"{term.code} – {term.label}", True
    word = words[i]
    if not has_place:
        code = departement_code(word)
        if code is not None:
            return 1, "departement", code, f"{code} – {vocab.departements[code]}", False
        if POSTCODE.match(word):
            return 1, "postcode", word, word, False
        for length in range(min(MAX_CITY_WORDS, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + length])
            if phrase.replace(" ", "").isdigit() or not place_fits(length):
                continue
            label = city(phrase)
            if label is not None:
                return length, "city_key", phrase, label, True
    return None


def with_filters(
    criteria: Criteria,
    *,
    profession: str | None,
    savoir_faire: str | None,
    departement: str | None,
    mailbox_type: str | None,
) -> Criteria:
    """The box's criteria with the form's filters; an explicit filter wins over the box."""
    vocab = vocabulary()
    changes: dict[str, object] = {}
    understood = list(criteria.understood)
    if profession:
        changes["profession"] = profession
        understood = _replace(understood, "Profession", vocab.professions.get(profession, profession))
    if savoir_faire:
        changes["savoir_faire"] = savoir_faire
        understood = _replace(understood, "Savoir-faire", vocab.skills.get(savoir_faire, savoir_faire))
    if departement:
        changes["departement"] = departement
        name = vocab.departements.get(departement, "")
        understood = _replace(understood, "Département", f"{departement} – {name}")
    if mailbox_type:
        changes["mailbox_type"] = mailbox_type
    return replace(criteria, understood=tuple(understood), **changes)  # type: ignore[arg-type]  # changes name fields of Criteria


def _replace(understood: list[tuple[str, str]], kind: str, label: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in understood if k != kind] + [(kind, label)]
