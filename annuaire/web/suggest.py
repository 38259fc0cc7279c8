"""Typing mistakes: "Vouliez-vous dire …" from the indexes, when a search finds nothing (or little).

A word of the box is *known* when something begins with it: a family name or a
first name (their b-tree indexes), a city or a word of a structure's name (the
trigram index of structures), a profession or savoir-faire word of the
nomenclatures, a word of the boxes' services. Each unknown word gets the
nearest known words:

- names and cities: every spelling at one edit from the word (a letter
  deleted, added, replaced, or two letters swapped: about 54 per letter) is
  looked up at once on the family-name, first-name and city indexes (`IN`,
  one index probe each: a few hundred probes, a few milliseconds at national
  scale), also joined to the word before or after it ("le gof" -> "le goff");
  the most frequent wins, but a name borne with the other words of the box, or a
  word of a structure's name found with them ("masion sante saulieu": MAISON
  DE SANTE in Saulieu, not Marion), wins over any other;
- professions, savoir-faire ("cardiolgue" -> "cardiologue") and service words,
  a few thousand words in memory: Damerau-Levenshtein distance 1 (2 for words
  of 8 letters or more).

The suggestions are the box with each unknown word replaced (best first).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, exists, or_, select

from annuaire.store.keys import search_key
from annuaire.store.prefix import starts_with
from annuaire.store.schema import person, structure
from annuaire.store.select import prepared, select_in
from annuaire.web import words as structure_words
from annuaire.web.memo import remembered
from annuaire.web.sql import placeholder
from annuaire.web.vocab import DERIVATIONS, ENDINGS, SYNONYMS, departement_code, vocabulary

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
MAX_WORDS = 10  # a structure's name and city typed whole ("cabinet dentarie dr emmanuel pere sainte leval")
EACH_WORD_MAX = 6  # every word tried in turn (nothing unknown): up to this many words
MIN_LENGTH = 3  # shorter words are never corrected
VOCABULARY_WEIGHT = 10**7  # a profession word beats any name
SERVICE_WEIGHT = 10**6
CITY_WEIGHT = 20  # a city's structures count more than one person with a name
STRUCTURE_WEIGHT = 5
TOGETHER_WEIGHT = 10**8  # a name borne with the other words of the box beats anything
TOGETHER_CHECKED = 12
STRUCTURES_CHECKED = 5  # words of structure names checked with the other words of the box
SWAPPED_UP_TO = 6  # longer words keep a piece whole whatever two neighbours are swapped
SAMPLE = 150  # structure names read per piece of a typed word, for the words near it
_WORD = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class Correction:
    word: str  # what replaces the typed word (may hold a space: "le goff")
    distance: int
    weight: int
    spans_previous: bool = False  # replaces the word before too
    spans_next: bool = False  # replaces the word after too


def edits1(word: str) -> set[str]:
    """Every string at one edit (deletion, transposition, substitution, insertion) from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    swaps = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in ALPHABET if c != b[0]]
    inserts = [a + c + b for a, b in splits for c in ALPHABET]
    return set(deletes + swaps + replaces + inserts) - {word}


def distance(a: str, b: str, limit: int = 2) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, or limit + 1 beyond `limit`."""
    if abs(len(a) - len(b)) > limit or len(set(a) ^ set(b)) > 2 * limit:
        return limit + 1  # (an edit changes the letters used by two at most)
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=1)
def trade_words() -> frozenset[str]:
    """The words of the professions and savoir-faire, as labels and as trades ("cardiologue")."""
    vocab = vocabulary()
    out: set[str] = set()
    for phrase in [*vocab.phrases, *SYNONYMS]:
        for w in phrase.split():
            if len(w) >= MIN_LENGTH:
                out.add(w)
                for trade, discipline in DERIVATIONS:
                    if w.endswith(discipline):
                        out.add(w[: -len(discipline)] + trade)
    return frozenset(out)


@lru_cache(maxsize=1)
def _trade_words_sorted() -> tuple[str, ...]:
    return tuple(sorted(trade_words()))


def _begins_a_trade_word(word: str) -> bool:
    words = _trade_words_sorted()
    i = bisect.bisect_left(words, word)
    return i < len(words) and words[i].startswith(word)


@lru_cache(maxsize=1)
def _trade_words_by_length() -> dict[int, tuple[str, ...]]:
    """The trade words by length: a word is compared with those of a length near its own only."""
    out: dict[int, list[str]] = {}
    for w in trade_words():
        out.setdefault(len(w), []).append(w)
    return {n: tuple(sorted(ws)) for n, ws in out.items()}


def known(conn: Connection, word: str, services: list[str]) -> bool:
    """Does something of the directory begin with this word (see the module docstring)?"""
    if len(word) < MIN_LENGTH or not _WORD.match(word) or word in structure_words.STOP_WORDS:
        return True
    if departement_code(word) or _begins_a_trade_word(word):
        return True
    if structure_words.is_service_word(services, word):
        return True
    if _begins(conn, [(col, word) for col in (person.c.last_name_key, person.c.first_name_key, structure.c.city_key)]):
        return True
    return _in_structure_names(conn, word)


def _begins(conn: Connection, prefixes: Sequence[tuple[Any, str]]) -> bool:
    """Does some value of a column begin with its prefix? (One statement, a b-tree probe each.)"""
    columns = [col for col, _ in prefixes]

    def build() -> Select:
        return select(*(exists(select(col).where(starts_with(col, placeholder(f"p{i}")))) for i, col in enumerate(columns)))

    shape = "begins " + " ".join(str(col) for col in columns)
    return any(prepared(conn, shape, build, {f"p{i}": prefix for i, (_, prefix) in enumerate(prefixes)})[0])


def absent(conn: Connection, words: Sequence[str], i: int) -> bool:
    """An unknown word (`known`) held nowhere, not even inside a name, a city, a structure's
    name or a box's address: a box holding it finds nothing, and its corrections may be
    searched first. (An unknown word may be found otherwise: "verotoy" ends the family name
    TESNIOL VEROTOY, "cardiologues" is "cardiologue" in the plural.)"""
    word = words[i]
    if len(word) < MIN_LENGTH or not _WORD.match(word):
        return False
    stems = [word[: -len(e)] for e in ENDINGS if word.endswith(e) and len(word) - len(e) >= MIN_LENGTH]
    if any(_begins_a_trade_word(stem) for stem in stems):
        return False
    phrases = [" ".join(words[j : i + 1]) for j in range(max(0, i - 2), i)]  # the end of a name of 2 or 3 words
    names = (person.c.last_name_key, person.c.first_name_key)
    if phrases and _begins(conn, [(col, phrase) for phrase in phrases for col in names]):
        return False
    return not structure_words.held(conn, word)


def _in_structure_names(conn: Connection, word: str) -> bool:
    """A word of a structure's name or city begins so (trigram index, then checked)."""
    pattern = re.compile(r"(?:^| )" + re.escape(word))
    rows = structure_words.names_holding(conn, word, structure_words.NAME_OR_CITY, 50)
    return any(pattern.search(n or "") or pattern.search(c or "") for n, c in rows)


def _probe(conn: Connection, column: Any, values: Sequence[str]) -> dict[str, int]:
    """How many rows bear each of these exact values (from the column's index alone: inactive
    records count too, a frequency is all that is asked). The values are one parameter
    (`select_in`): a statement of a thousand placeholders costs more to build than to run."""
    sql = f"SELECT {column.name}, count(*) FROM {column.table.name} WHERE {{in}} GROUP BY {column.name}"
    return {row[0]: row[1] for row in select_in(conn, sql, column.name, values)}


def _structure_words(conn: Connection, word: str, limit: int) -> dict[str, int]:
    """Words of structure names near `word`, with how often they came.

    One typo leaves whole its first three letters or its last three (and, in a long
    word, one of its halves): the names holding each of those pieces are read from the
    trigram index (SAMPLE of them per piece) and their words compared with `word`.
    Two letters swapped in the middle of a word of up to 6 letters leave no such piece
    ("masion" for "maison"): the word with each pair of neighbours swapped back is a
    piece too.
    """
    k = max(MIN_LENGTH, (len(word) + 1) // 2)
    pieces = {word[:MIN_LENGTH], word[-MIN_LENGTH:], word[:k], word[-k:]}
    if len(word) <= SWAPPED_UP_TO:
        pieces |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(1, len(word) - 2)}
    out: dict[str, int] = {}
    far: set[str] = set()  # words already compared and too far ("centre" comes in many names)
    for piece in sorted(pieces):
        for (name,) in structure_words.names_holding(conn, piece, structure_words.NAME_ONLY, SAMPLE):
            for w in set((name or "").split()):
                if w in out:
                    out[w] += 1
                elif w not in far:
                    if abs(len(w) - len(word)) <= limit and distance(word, w, limit) <= limit:
                        out[w] = 1
                    else:
                        far.add(w)
    return out


def _together(conn: Connection, column: Any, found: dict[str, int], others: Sequence[str]) -> set[str]:
    """The names of `found` that somebody bears with another word of the box as the other name
    ("isabelle lamolex": Isabelle Lamoleix exists, Isabelle Lamolel does not): one index probe
    per name, the most frequent TOGETHER_CHECKED names only."""
    if not others or not found:
        return set()
    other = person.c.first_name_key if column is person.c.last_name_key else person.c.last_name_key
    checked = sorted(found, key=lambda v: -found[v])[:TOGETHER_CHECKED]

    def build() -> Select:
        return select(*(
            exists(select(person.c.id).where(column == placeholder(f"v{i}"), or_(*(
                starts_with(other, placeholder(f"w{j}")) for j in range(len(others))
            ))))
            for i in range(len(checked))
        ))

    values = {**{f"v{i}": v for i, v in enumerate(checked)}, **{f"w{j}": w for j, w in enumerate(others)}}
    borne = prepared(conn, f"together {column} {len(checked)} {len(others)}", build, values)[0]
    return {value for value, yes in zip(checked, borne, strict=True) if yes}


def candidates(conn: Connection, words: Sequence[str], i: int, services: list[str]) -> list[Correction]:
    """The nearest known spellings of words[i], best first."""
    word = words[i]
    out: dict[tuple[str, bool, bool], Correction] = {}

    def offer(c: Correction) -> None:
        key = (c.word, c.spans_previous, c.spans_next)
        best = out.get(key)
        if best is None or (c.distance, -c.weight) < (best.distance, -best.weight):
            out[key] = c

    limit = 2 if len(word) >= 8 else 1
    by_length = _trade_words_by_length()
    for w in (w for n in range(len(word) - limit, len(word) + limit + 1) for w in by_length.get(n, ())):
        d = distance(word, w, limit)
        if d <= limit:
            offer(Correction(w, d, VOCABULARY_WEIGHT))
    for w in services:
        d = distance(word, w, limit)
        if d <= limit:
            offer(Correction(w, d, SERVICE_WEIGHT))
    variants = sorted(edits1(word))
    before = words[i - 1] if i > 0 else ""
    after = words[i + 1] if i + 1 < len(words) else ""
    probes = list(variants)
    if before:
        probes += [f"{before} {v}" for v in variants]
    if after:
        probes += [f"{v} {after}" for v in variants]
    others = [w for j, w in enumerate(words) if j != i and len(w) >= 2 and w not in structure_words.STOP_WORDS]
    for column, weight in ((person.c.last_name_key, 1), (person.c.first_name_key, 1), (structure.c.city_key, CITY_WEIGHT)):
        found = _probe(conn, column, probes)
        together = _together(conn, column, found, others) if column is not structure.c.city_key else set()
        for value, n in found.items():
            spans_previous = bool(before) and value.startswith(before + " ") and value[len(before) + 1 :] in variants
            spans_next = bool(after) and value.endswith(" " + after) and value[: -len(after) - 1] in variants
            boost = TOGETHER_WEIGHT if value in together else 0
            offer(Correction(value, 1, n * weight + boost, spans_previous, spans_next and not spans_previous))
    near = _structure_words(conn, word, limit)
    named = structure_words.named_together(conn, near, others, STRUCTURES_CHECKED) if others else set()
    for w, n in near.items():
        offer(Correction(w, distance(word, w, limit), n * STRUCTURE_WEIGHT + (TOGETHER_WEIGHT if w in named else 0)))
    return sorted(out.values(), key=lambda c: (c.distance, -c.weight, c.word))


def corrections(
    conn: Connection,
    box: str,
    *,
    limit: int = 3,
    is_known: Callable[[str], bool] | None = None,
    any_word: bool = False,
    if_absent: bool = False,
) -> list[str]:
    """Corrected forms of the box (search keys), best first; [] when every word is known.

    `any_word` (the box found nothing): when every word is known, each word of 4 letters or
    more may be the wrong one ("ludivine bers": BERS* exists, but not with that first name).
    `if_absent` (the box is not searched yet): [] unless some unknown word is `absent`, the
    box then surely finding nothing.
    """
    typed = search_key(box).split()
    if not typed or len(typed) > MAX_WORDS or "@" in box:
        return []
    services = structure_words.SERVICES.get(conn)
    check = is_known or (lambda w: remembered(("known", w), lambda: known(conn, w, services)))
    unknown = [i for i, w in enumerate(typed) if not check(w)]
    if if_absent and not any(absent(conn, typed, i) for i in unknown):
        return []
    if not unknown and any_word and len(typed) <= EACH_WORD_MAX:
        return _each_word(conn, typed, services, limit)
    if not unknown:
        return []
    options = {}
    for i in unknown:
        found = candidates(conn, typed, i, services)
        # only the nearest: a second letter changed is no suggestion beside a first one
        options[i] = [c for c in found if c.distance == found[0].distance][:limit] if found else []
    if not any(options.values()):
        return []
    out: list[str] = []
    for rank in range(limit):
        words = list(typed)
        changed = False
        for i in reversed(unknown):  # right to left: spans replace neighbours without shifting the rest
            choices = options[i]
            if not choices:
                continue
            c = choices[min(rank, len(choices) - 1)] if i == unknown[0] else choices[0]
            start, end = i - c.spans_previous, i + 1 + c.spans_next
            words[start:end] = [c.word]
            changed = True
        suggestion = " ".join(words)
        if changed and suggestion not in out and suggestion != " ".join(typed):
            out.append(suggestion)
    return out


def _each_word(conn: Connection, typed: list[str], services: list[str], limit: int) -> list[str]:
    """Corrections of one word at a time, the most frequent spellings first."""
    options: list[tuple[int, int, str]] = []
    for i, w in enumerate(typed):
        if len(w) < 4 or not _WORD.match(w) or w in trade_words():
            continue
        for c in candidates(conn, typed, i, services)[:limit]:
            words = list(typed)
            words[i - c.spans_previous : i + 1 + c.spans_next] = [c.word]
            options.append((c.distance, -c.weight, " ".join(words)))
    options.sort()
    out: list[str] = []
    for _, _, suggestion in options:
        if suggestion not in out and suggestion != " ".join(typed):  # (a word of a structure's name as typed)
            out.append(suggestion)
    return out[:limit]
