"""Structures found by any word of their name or city, and organisational boxes by their service.

"jalmont" must find "CHU DE JALMONT", "pharmacie jalmont" the pharmacies of
Jalmont, "ch beauval" the CH of Beauval, and "secretariat cardio jalmont" the
cardiology secretariat's box of the hospitals of Jalmont. A query is a list of
terms (its words, articles dropped, a few abbreviations expanded: "ch" is also
"centre hospitalier"); a structure matches when every term is the beginning of
a word of its name, of its city, or of one of its published ORG/APP boxes
(local part of the address, service, description).

Where the candidates come from (no new index: those of `annuaire.store.contains`,
kept by every writer, at no cost to the imports):
- the trigram index of structure names and cities (FTS5 on SQLite, pg_trgm GIN
  on PostgreSQL) finds the structures whose name or city holds every term of 3
  letters or more; shorter words are checked on the candidates;
- a term that is a word of the boxes' services or descriptions (the vocabulary
  of the published ORG/APP boxes: a few hundred words, read once an hour) may be
  meant for a box: the boxes holding the service words of the structures the
  other terms name (trigram index of structures; which structures show such boxes
  at all, and their boxes' ids, are read with the vocabulary), and with no other
  term, the owners of the boxes whose local part holds the service words (trigram
  index of local parts).
  Beside people too ("cardiologie jalmont": the cardiologists of Jalmont, and
  the cardiology secretariats of its hospitals beside them).
Candidates are read up to CAP rows, ranked in Python (below), and paged. A
query matching more than CAP structures ("cabinet", "pharmacie") names none in
particular: its results are read in name order from the name index, checked
word by word as they come (`_walk`), the exact name first.

Ranking, "the structure the query names comes first":
0. a name the query says entirely (every term a whole word of it, no other word) in
   a city it names; then a structure of a city the query names whose box holds every
   other term ("radiologie prelieu": a radiology box in Prélieu, before the hospitals
   named after Prélieu elsewhere: with a service asked, the city word reads as a
   city), the city typed most exactly first (Prélieu, then La Prélieu); then the others:
1. every term in the name, before terms matched by a box's service, before
   terms matched only by the city ("pharmacie jalmont": the pharmacies named
   after Jalmont before the pharmacies located there);
2. more terms matching whole words ("jalmont" before "jalmontais");
3. the city entirely named by the query before the others ("cardiologie
   beauval": Beauval's hospitals before Beauval-sur-Orve's; a query naming no
   city leaves them equal), then the name entirely named by the query ("CHU DE
   BEAUVAL" for "chu beauval") before names with other words;
4. larger structures first (active activities: the hospital before the EHPAD
   of the same town), then name order.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
)

from annuaire.store import contains
from annuaire.store.keys import prefix_upper_bound, search_key
from annuaire.store.schema import activity, mailbox, structure
from annuaire.store.select import among, prepared
from annuaire.web import plan
from annuaire.web.memo import remembered
from annuaire.web.search import (
    STRUCTURE_BOX_TYPES,
    legal_idnat,
    owner_idnats,
    published,
)
from annuaire.web.sql import placeholder

CAP = 3000  # candidate structures ranked in Python; beyond, the query names nothing in particular
WALK_CHUNK = 500
BOX_CAP = 300  # boxes read for service words ("secretariat cardio" alone: any 300 of them)
WALK_MAX = 60_000  # rows a name-order walk may read for one page
SIZE_WINDOW = 300  # candidates whose size (activities) is read to break ties
SIDE_CAP = 300  # candidates ranked for the few structures shown beside people
VOCABULARY_TTL = 3600.0
MIN_TRIGRAM = contains.MIN_FRAGMENT

# Words that name nothing: articles and prepositions of French names.
STOP_WORDS = frozenset(["de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux", "en", "sur", "sous", "un", "une"])
# Legal forms: matched when typed, never counted as a word the query left out.
LEGAL_FORMS = frozenset(["sa", "sas", "sasu", "sarl", "eurl", "selarl", "selas", "selafa", "selca", "sel", "scm", "scp", "sci", "snc", "gie", "eirl", "earl"])
# Abbreviations people type for words that names spell out (and the other way round).
ABBREVIATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ch": (("centre", "hospitalier"),),
    "chu": (("centre", "hospitalier", "universitaire"),),
    "chr": (("centre", "hospitalier", "regional"),),
    "chs": (("centre", "hospitalier", "specialise"),),
    "st": (("saint",),),
    "ste": (("sainte",),),
    "hopital": (("ch",), ("centre", "hospitalier")),
    "kine": (("kinesitherapie",),),
    "labo": (("laboratoire",),),
    "dr": (("docteur",), ("docteurs",)),
}
_LOCAL_SPLIT = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Term:
    """One word of the query: it matches when one of its alternatives does (all their words)."""

    word: str
    alternatives: tuple[tuple[str, ...], ...]

    def searchable(self) -> list[tuple[str, ...]] | None:
        """The alternatives as trigram-searchable words; None when some alternative has none
        (the term cannot narrow an index search: it is checked on the candidates)."""
        out = []
        for alt in self.alternatives:
            long = tuple(w for w in alt if len(w) >= MIN_TRIGRAM)
            if not long:
                return None
            out.append(long)
        return out


def terms(words: Sequence[str]) -> list[Term]:
    """The terms of a query's words (search keys); articles dropped unless nothing else is left."""
    kept = [w for w in words if w not in STOP_WORDS] or list(words)
    out: list[Term] = []
    for w in kept:
        alternatives = ((w,), *ABBREVIATIONS.get(w, ()))
        out.append(Term(w, alternatives))
    return out


# --- what a structure's words are --------------------------------------------------


@lru_cache(maxsize=4096)
def _patterns(word: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(beginning of a word, whole word) of a search-key text."""
    w = re.escape(word)
    return re.compile(r"(?:^| )" + w), re.compile(r"(?:^| )" + w + r"(?: |$)")


_IGNORED = re.compile(r"(?:^| )(?:" + "|".join(sorted(STOP_WORDS | LEGAL_FORMS)) + r")(?= |$)")


class Query:
    """Terms compiled for ranking many candidates: regular expressions built once."""

    def __init__(self, query: Sequence[Term], typed: Sequence[str] = ()) -> None:
        self.terms = list(query)
        # every word typed (articles too: "la prelieu" names La Prélieu exactly) and the words of its abbreviations
        self.typed = frozenset(typed) | {w for t in query for alt in t.alternatives for w in alt}
        self.alts = [[tuple(_patterns(w) for w in alt) for alt in t.alternatives] for t in query]
        words = sorted({w for t in query for alt in t.alternatives for w in alt}, key=len, reverse=True)
        self.named = re.compile(r"(?:^| )(?:" + "|".join(re.escape(w) for w in words) + ")")

    def __len__(self) -> int:
        return len(self.terms)


def _strength(alt: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...], text: str) -> int:
    out = 2
    for starts, whole in alt:
        if not starts.search(text):
            return 0
        if out == 2 and not whole.search(text):
            out = 1
    return out


def _either(alt: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...], name: str, city: str) -> int:
    """As `_strength`, each word in the name or in the city."""
    out = 2
    for pair in alt:
        s = max(_strength((pair,), name), _strength((pair,), city))
        if s == 0:
            return 0
        out = min(out, s)
    return out


@dataclass
class Candidate:
    id: int
    name_key: str
    city_key: str
    idnat: str | None = None
    finess_ej: str | None = None
    boxes: list[tuple[str, str]] = field(default_factory=list)  # (address, its words) of its ORG/APP boxes
    size: int = 0
    key: tuple = ()  # `score`'s: the rank, then the number of other words of the name (last)
    whole: bool = False  # every term in the name, which has no other word
    matched_boxes: set[str] = field(default_factory=set)


NAME, BOX, CITY = 3, 2, 1


def score(c: Candidate, q: Query) -> tuple | None:
    """The ranking key of a candidate (smaller first), or None when some term matches nothing."""
    name = c.name_key
    worst = NAME
    exact = 0
    box_alts: list[int] = []
    for i, alts in enumerate(q.alts):
        best = 0
        for alt in alts:
            s = _strength(alt, name)
            if s > best:
                best = s
                if s == 2:
                    break
        where = NAME
        if not best:
            where = CITY
            for alt in alts:
                best = max(best, _either(alt, name, c.city_key))
            if c.boxes and any(_strength(alt, words) for alt in alts for _, words in c.boxes):
                where, best = BOX, 1
                box_alts.append(i)
            if not best:
                return None
        worst = min(worst, where)
        exact += best == 2
    if box_alts:
        def named(words: str, i: int) -> bool:
            return any(_strength(alt, words) for alt in q.alts[i])

        every = {a for a, words in c.boxes if all(named(words, i) for i in box_alts)}
        c.matched_boxes = every or {a for a, words in c.boxes if any(named(words, i) for i in box_alts)}
    extra = _unnamed(name, q)
    elsewhere = _unnamed(c.city_key, q) > 0
    c.whole = worst == NAME and not extra
    group, missing, covered = OTHER, 0, 0
    if c.whole and exact == len(q.terms) and not elsewhere:
        group = NAMED
    else:
        located = _located(c, q)
        if located is not None:
            group = LOCATED
            missing, covered, c.matched_boxes = located
    return (group, missing, -covered, -worst, -exact, elsewhere, extra > 0, extra)


NAMED, LOCATED, OTHER = 0, 1, 2  # ranking groups (see the module docstring)
_IGNORED_WORDS = STOP_WORDS | LEGAL_FORMS
_DISTRICT = re.compile(r"^(?:\d+(?:er|e)?|arrondissement)$")  # "lyon" names Lyon 3e Arrondissement


def _located(c: Candidate, q: Query) -> tuple[int, int, set[str]] | None:
    """A structure of the city the query names publishing a box that holds every other term
    ("radiologie prelieu": a radiology box in Prélieu): (the city's words not typed, those typed,
    those boxes: Prélieu before La Prélieu, and for "... la prelieu" the other way round); None
    otherwise. The city word then reads as a city, not as a structure's name."""
    if not c.boxes or not c.city_key:
        return None
    city = c.city_key.split()
    if any(w not in q.typed for w in city if w not in _IGNORED_WORDS and not _DISTRICT.match(w)):
        return None
    in_city = set(city)
    rest = [i for i, t in enumerate(q.terms) if not any(all(w in in_city for w in alt) for alt in t.alternatives)]
    if not rest:
        return None
    boxes = {a for a, words in c.boxes if all(any(_strength(alt, words) for alt in q.alts[i]) for i in rest)}
    if not boxes:
        return None
    typed = sum(w in q.typed for w in city)
    return len(city) - typed, typed, boxes


def _unnamed(text: str, q: Query) -> int:
    """How many significant words of `text` (a name or a city) the query does not name."""
    significant = text.count(" ") + 1 - len(_IGNORED.findall(text)) if text else 0
    return max(0, significant - len(q.named.findall(text)))


# --- the vocabulary of the boxes' services --------------------------------------------


@dataclass(frozen=True)
class _Boxes:
    """What the service words are searched with (`_Vocabulary`)."""

    read: float  # time.monotonic() when read
    marks: tuple[int, str, int]  # the largest structure id and last change, the largest mailbox id then
    words: list[str]  # sorted
    showing: frozenset[int]  # ids of the structures showing ORG/APP boxes
    owned: dict[str, list[int]]  # national id of an owner -> ids of its ORG/APP boxes
    texts: _Texts  # the names and cities of the structures showing ORG/APP boxes


class _Texts:
    """The names and cities of some structures, searched as the trigram index is (a word anywhere
    inside a word of the name or the city): the distinct words, one line each, by the C string
    search, then the structures bearing the words found. A town's structures showing boxes are
    found in a millisecond, where the trigram index lists every structure of the town first
    (ten thousand for "beauval")."""

    def __init__(self, rows: Iterable[tuple[int, str | None, str | None]]) -> None:
        self.ids: list[int] = []
        bearing: dict[str, set[int]] = {}
        for sid, name, city in rows:
            line = len(self.ids)
            self.ids.append(sid)
            for w in f"{name or ''} {city or ''}".split():
                bearing.setdefault(w, set()).add(line)
        self.words = list(bearing)
        self.bearing = [bearing[w] for w in self.words]
        self.starts = []
        at = 0
        for w in self.words:
            self.starts.append(at)
            at += len(w) + 1
        self.text = "\n".join(self.words)

    def holding(self, word: str) -> set[int]:
        """Positions (in `ids`) of the structures a word of which holds `word` (one word)."""
        out: set[int] = set()
        text, starts = self.text, self.starts
        i = text.find(word)
        while i >= 0:
            n = bisect.bisect_right(starts, i) - 1
            out |= self.bearing[n]
            end = starts[n + 1] if n + 1 < len(starts) else len(text)
            i = text.find(word, end)
        return out

    def named(self, query: Sequence[Term]) -> list[int] | None:
        """Ids whose name or city holds every searchable term (`_fts_match`'s rule); None when no
        term is searchable."""
        found: set[int] | None = None
        for term in query:
            alts = term.searchable()
            if alts is None:
                continue
            either: set[int] = set()
            for alt in alts:
                every: set[int] | None = None
                for w in alt:
                    every = self.holding(w) if every is None else every & self.holding(w)
                either |= every or set()
            found = either if found is None else found & either
        if found is None:
            return None
        return [self.ids[i] for i in sorted(found)]


def _marks(conn: Connection) -> tuple[int, str, int]:
    """The largest structure id and last change of a structure, the largest mailbox id: three
    index probes in one statement (each is the last entry of an index)."""
    def build() -> Select:
        return select(*(select(func.max(c)).scalar_subquery() for c in (structure.c.id, structure.c.last_updated, mailbox.c.id)))

    sid, changed, mid = prepared(conn, "largest ids", build, {})[0]
    return sid or 0, changed or "", mid or 0


class _Vocabulary:
    """Per store: the words of the services and descriptions of the published ORG/APP boxes, and
    the structures that show such boxes (their site's or their legal entity's, in whatever state:
    a box un-hidden shows again) with their names and cities, read again when a structure or a
    box is added (their largest ids), when a structure changes (its last change: a name or a city
    searched here is never older than the store's) and at least once an hour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, _Boxes] = {}

    def get(self, conn: Connection) -> list[str]:
        return self._boxes(conn).words

    def owned(self, conn: Connection, owners: Iterable[str]) -> list[int]:
        """Ids of the ORG/APP boxes of these owners (national ids): read by id, the many
        personal boxes of a hospital's structure id are not read with them."""
        owned = self._boxes(conn).owned
        return [i for owner in owners for i in owned.get(owner, ())]

    def named(self, conn: Connection, query: Sequence[Term]) -> list[int] | None:
        """Ids of the structures showing ORG/APP boxes whose name or city holds every searchable
        term (as the trigram index would find them); None when no term is searchable."""
        return self._boxes(conn).texts.named(query)

    def _boxes(self, conn: Connection) -> _Boxes:
        key = conn.engine.url.render_as_string()
        marks = remembered(("largest ids", key), lambda: _marks(conn))
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and hit.marks == marks and now - hit.read < VOCABULARY_TTL:
                return hit
        query = (
            select(mailbox.c.service, mailbox.c.description)
            .where(published(STRUCTURE_BOX_TYPES), or_(mailbox.c.service.is_not(None), mailbox.c.description.is_not(None)))
            .distinct()
        )
        words: set[str] = set()
        for r in conn.execute(query):
            words.update(search_key(r.service).split())
            words.update(search_key(r.description).split())
        owned: dict[str, list[int]] = {}
        for box_id, owner in conn.execute(
            select(mailbox.c.id, mailbox.c.structure_idnat).where(mailbox.c.type.in_(STRUCTURE_BOX_TYPES))
        ):
            if owner:
                owned.setdefault(owner, []).append(box_id)
        owners = select(mailbox.c.structure_idnat).where(mailbox.c.type.in_(STRUCTURE_BOX_TYPES))
        rows = conn.execute(
            select(structure.c.id, structure.c.name_key, structure.c.city_key)
            .where(or_(structure.c.idnat.in_(owners), legal_idnat().in_(owners)))
            .order_by(structure.c.id)
        ).all()
        showing = frozenset(r[0] for r in rows)
        value = _Boxes(now, marks, sorted(w for w in words if w not in STOP_WORDS), showing, owned, _Texts(rows))
        with self._lock:
            self._values[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


SERVICES = _Vocabulary()


def is_service_word(vocabulary: list[str], word: str) -> bool:
    """Is `word` a word (or the beginning of a word, of 3 letters or more) of the boxes' services?"""
    if len(word) < MIN_TRIGRAM or word in ABBREVIATIONS:
        return False
    i = bisect.bisect_left(vocabulary, word)
    return i < len(vocabulary) and vocabulary[i].startswith(word)


def box_words(address: str, service: str | None, description: str | None) -> str:
    """The words a box is found by: its local part's, its service's and its description's."""
    local = address.split("@", 1)[0]
    parts = [w for w in _LOCAL_SPLIT.split(local) if w]
    return " ".join([*parts, search_key(service), search_key(description)]).strip()


# --- candidates --------------------------------------------------------------------


NAME_ONLY = ("name_key",)
NAME_OR_CITY = ("name_key", "city_key")


def fts_phrase(word: str, where: tuple[str, ...] = NAME_OR_CITY) -> str:
    """SQLite: the FTS5 query of the structure trigram index for one word inside these columns."""
    return contains.fts_phrase("structure.name_key", word, where)


def like_in(where: tuple[str, ...], pattern: Any) -> ColumnElement[bool]:
    """PostgreSQL (pg_trgm): one of a structure's `where` columns is LIKE `pattern` (text, or a placeholder)."""
    return or_(*(structure.c[col].like(pattern) for col in where))


def local_part() -> Any:
    """PostgreSQL: a box address's local part, as its trigram index holds it."""
    return func.split_part(mailbox.c.address, "@", 1)


def names_holding(conn: Connection, word: str, where: tuple[str, ...], limit: int) -> list[tuple]:
    """The `where` columns of up to `limit` structures whose `where` columns hold `word` (trigram
    index): a statement compiled once per shape, the word given when it runs."""
    fts = bool(contains.fts_tables(conn))
    values = {"match": fts_phrase(word, where)} if fts else {"inside": f"%{word}%"}
    return prepared(conn, f"names holding {fts} {where} {limit}", partial(_names_holding, fts, where, limit), values)


def _names_holding(fts: bool, where: tuple[str, ...], limit: int) -> Select:
    columns = [structure.c[col] for col in where]
    if fts:
        ids = contains.fts_rowids("structure.name_key", "").limit(limit)  # (the match given when it runs)
        return select(*columns).where(structure.c.id.in_(ids))
    return select(*columns).where(like_in(where, placeholder("inside"))).limit(limit)


def _fts_match(query: Sequence[Term], where: tuple[str, ...] = NAME_OR_CITY) -> str | None:
    """SQLite: the FTS5 query of the structure trigram index for these terms (None: no term narrows)."""
    parts = []
    for term in query:
        alts = term.searchable()
        if alts is None:
            continue
        ors = [" AND ".join(fts_phrase(w, where) for w in alt) for alt in alts]
        parts.append("(" + " OR ".join(f"({o})" for o in ors) + ")")
    return " AND ".join(parts) if parts else None


def _like_condition(query: Sequence[Term], where: tuple[str, ...] = NAME_OR_CITY) -> ColumnElement[bool] | None:
    """PostgreSQL: the same as LIKE conditions, which the pg_trgm GIN indexes answer."""
    parts = []
    for term in query:
        alts = term.searchable()
        if alts is None:
            continue
        ors = [and_(*(like_in(where, f"%{w}%") for w in alt)) for alt in alts]
        parts.append(or_(*ors))
    return and_(*parts) if parts else None


def _fts_ids(query: Sequence[Term], where: tuple[str, ...] = NAME_OR_CITY) -> Any:
    """SQLite: SELECT of the rowids (structure ids) of the trigram index matching the terms, or None."""
    match = _fts_match(query, where)
    if match is None:
        return None
    return contains.fts_rowids("structure.name_key", match)


def _in_name(name: str, query: Sequence[Term], city: str | None = None) -> bool:
    """Would the trigram index find this name (and city) for these terms (`_fts_match` on the
    name alone, or on the name and the city)?"""
    texts = (name,) if city is None else (name, city)
    for term in query:
        alts = term.searchable()
        if alts is not None and not any(all(any(w in t for t in texts) for w in alt) for alt in alts):
            return False
    return True


_COLUMNS = (structure.c.id, structure.c.name_key, structure.c.city_key, structure.c.idnat, structure.c.finess_ej)


def _filters(departement: str | None, postcode: str | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [structure.c.active == true()]
    if departement:
        conds.append(structure.c.dept_code == departement)
    if postcode:
        conds.append(structure.c.postcode == postcode)
    return conds


class _TooMany(list):
    """More than the cap: the rows were not read."""


def _named(
    conn: Connection,
    query: Sequence[Term],
    filters: list[ColumnElement[bool]],
    where: tuple[str, ...] = NAME_OR_CITY,
    cap: int = CAP,
) -> list[Candidate] | None:
    """Structures whose name (or city) holds every term; None when no term narrows.

    More than `cap` of them: an empty `_TooMany` (its length is cap + 1), their rows unread.
    """
    if contains.fts_tables(conn):
        indexed, common = _split_common(conn, query)
        match = _fts_match(indexed, where)
        if match is None:
            return None
        values = {"match": match, **{f"c{i}": f"%{w}%" for i, w in enumerate(common)}}
        shape = f"structures holding ({cap}) {where} {len(common)} common"
        ids = [r[0] for r in prepared(conn, shape, lambda: _holding(cap, where, len(common)), values)]
        if len(ids) > cap:
            return _TooMany([None] * (cap + 1))
        if not ids:
            return []
        stmt = select(*_COLUMNS).where(among(conn, structure.c.id, ids), *filters)
    else:
        cond = _like_condition(query, where)
        if cond is None:
            return None
        stmt = select(*_COLUMNS).where(cond, *filters).limit(cap + 1)
    rows = conn.execute(stmt).all()
    if len(rows) > cap:
        return _TooMany([None] * (cap + 1))
    return [Candidate(i, n or "", c or "", idnat, ej) for i, n, c, idnat, ej in rows]


def _holding(cap: int, where: tuple[str, ...], common: int) -> Select:
    """SQLite: the first cap + 1 structure ids the trigram index finds for a match given when it
    runs, whose `where` columns also hold the `common` words `c0`… (LIKE patterns, checked on the
    rows the index found)."""
    ids = contains.fts_rowids("structure.name_key", "")
    if not common:
        return ids.limit(cap + 1)
    held = [like_in(where, placeholder(f"c{i}")) for i in range(common)]
    return select(structure.c.id).where(structure.c.id.in_(ids), *held).limit(cap + 1)


COMMON = 2000  # a word in more structure names or cities than this is checked on the rows, not in the index
# When every word is common (from ALL_COMMON_WORDS words on: a few structures named by them all, the
# usual case), those in more than VERY_COMMON names (then counted up to it) are checked on the rows
# the others find, when one of those is in fewer than NARROW names (the rows checked: ~2.5 us each)
VERY_COMMON = 20_000
ALL_COMMON_WORDS = 3
NARROW = 8000


def _split_common(conn: Connection, query: Sequence[Term]) -> tuple[list[Term], list[str]]:
    """(terms the trigram index searches, words checked on the rows it finds). The index intersects
    the lists of every trigram of every word: a word in tens of thousands of names ("cabinet",
    "infirmier") costs it ~10 ms, against ~0.3 ms to check it on the few hundred rows the other
    words find. Only when a plain word known to be rare stays in the index, so that the rows checked
    are few (an abbreviation's alternatives, "kine" for "kinesitherapie", may be in as many names).
    When every plain word is common, the very common ones are checked on the rows a narrower one
    finds ("cabinet infirmier centre orve": 26 -> 3 ms at national scale; two words, "pharmacie
    paris", name hundreds of structures, found faster together, as "paris arrondissement", in the
    same 13,382 rows)."""
    plain = [t for t in query if t.alternatives == ((t.word,),) and len(t.word) >= MIN_TRIGRAM]
    if len(plain) < 2:
        return list(query), []  # (no other plain word to narrow the index's query)
    counts = {t: _frequency(conn, t.word, COMMON) for t in plain}
    common = [t for t, n in counts.items() if n >= COMMON]
    if len(common) == len(plain) >= ALL_COMMON_WORDS:
        counts = {t: _frequency(conn, t.word, VERY_COMMON) for t in plain}
        if min(counts.values()) < NARROW:
            common = [t for t in common if counts[t] >= VERY_COMMON]
    if not common or len(common) == len(plain):
        return list(query), []
    return [t for t in query if t not in common], [t.word for t in common]


def _frequency(conn: Connection, word: str, cap: int) -> int:
    """How many structures' names or cities hold `word` (up to `cap`), cached as the plan's counts
    are (`plan.COUNTS`): a plan choice only, the answer does not depend on it. (Asked for every word
    of every reading of the box: a prepared statement, built once.)"""

    def count() -> int:
        return int(prepared(conn, f"structure word count {cap}", partial(_holding_count, cap), {"match": fts_phrase(word)})[0][0])

    return plan.COUNTS.remember(conn, ("structure word", word, cap), count)


def _holding_count(cap: int) -> Select:
    """SQLite: how many structure ids (up to cap) the trigram index finds for a match given when it runs."""
    return select(func.count()).select_from(contains.fts_rowids("structure.name_key", "").limit(cap).subquery())


def _box_owners(
    conn: Connection,
    words: Sequence[str],
    types: Sequence[str],
    filters: list[ColumnElement[bool]],
) -> list[Candidate]:
    """Structures publishing a box whose local part holds every word of 3 letters or more (the
    trigram index of local parts), each with those boxes."""
    long = [w for w in words if len(w) >= MIN_TRIGRAM]
    if not long:
        return []
    boxes = conn.execute(
        select(mailbox.c.structure_idnat, mailbox.c.address, mailbox.c.service, mailbox.c.description)
        .where(_in_local_part(conn, long), published(types))
        .limit(BOX_CAP)
    ).all()
    by_owner: dict[str, list[tuple[str, str]]] = {}
    for idnat, address, service, description in boxes:
        by_owner.setdefault(idnat, []).append((address, box_words(address, service, description)))
    out: dict[int, Candidate] = {}
    owners = list(by_owner)
    legal = [i[1:] for i in owners if i.startswith("1")]
    for column, keys in ((structure.c.idnat, owners), (structure.c.finess_ej, legal)):
        for i in range(0, len(keys), 2000):
            for sid, n, c, idnat, ej in conn.execute(
                select(*_COLUMNS).where(column.in_(keys[i : i + 2000]), *filters)
            ).all():
                cand = out.setdefault(sid, Candidate(sid, n or "", c or "", idnat, ej))
                for key in owner_idnats(idnat, ej):
                    for box in by_owner.get(key, ()):
                        if box not in cand.boxes:
                            cand.boxes.append(box)
    return list(out.values())


def _in_local_part(conn: Connection, words: Sequence[str]) -> ColumnElement[bool]:
    """The box's local part holds every word (of 3 letters or more: the trigram index)."""
    if contains.fts_tables(conn):
        match = " AND ".join(f'"{w}"' for w in words)
        return mailbox.c.id.in_(contains.fts_rowids("mailbox.address", match))
    return and_(*(local_part().like(f"%{w}%") for w in words))


def _named_boxes(
    conn: Connection,
    others: Sequence[Term],
    words: Sequence[str],
    types: Sequence[str],
    filters: list[ColumnElement[bool]],
) -> list[Candidate] | None:
    """Structures named by the other terms (name or city, as the trigram index finds them) publishing a box
    that holds every service word (local part, service or description), each with those boxes;
    None when no other term narrows.

    Of the structures named ("cardiologie beauval": ten thousand in Beauval at national scale),
    only those that show ORG/APP boxes at all (about a tenth: `SERVICES.named` finds them in
    memory, the trigram index would list all ten thousand first) are read, then
    their owners' ORG/APP boxes (their site's and their legal entity's, each owner once: a legal
    entity's boxes are shown by each of its sites) by their ids (`SERVICES.owned`: a hospital's
    personal boxes, under the same structure id, are not read), filtered on the words, 2 * BOX_CAP
    boxes at most.
    """
    ids = SERVICES.named(conn, others)
    if ids is None:
        return None
    if not ids:
        return []
    holds = [
        or_(mailbox.c.address.like(f"%{w}%"), mailbox.c.service.ilike(_loose(w)), mailbox.c.description.ilike(_loose(w)))
        for w in words
    ]
    sites = conn.execute(select(*_COLUMNS).where(among(conn, structure.c.id, ids), *filters)).all()
    by_owner: dict[str, list[Candidate]] = {}
    for sid, n, c, idnat, ej in sites:
        cand = Candidate(sid, n or "", c or "", idnat, ej)
        for key in owner_idnats(idnat, ej):
            by_owner.setdefault(key, []).append(cand)
    # each owner's boxes read once (a legal entity's boxes are shown by each of its sites)
    boxes = conn.execute(
        select(mailbox.c.structure_idnat, mailbox.c.address, mailbox.c.service, mailbox.c.description)
        .where(among(conn, mailbox.c.id, SERVICES.owned(conn, by_owner)), published(types), *holds)
        .limit(2 * BOX_CAP)
    ).all()
    out: dict[int, Candidate] = {}
    for owner, address, service, description in boxes:
        box = (address, box_words(address, service, description))
        for cand in by_owner.get(owner, ()):  # (a box given to another owner since the ids were read)
            if box not in cand.boxes:
                cand.boxes.append(box)
            out[cand.id] = cand
    return list(out.values())


def _loose(word: str) -> str:
    """A LIKE pattern of a search-key word that also matches it accented and in capitals
    ("pediatrie" finds "Pédiatrie"): every vowel and c may be any letter."""
    return "%" + re.sub(r"[aeiouyc]", "_", word) + "%"


def load_boxes(conn: Connection, candidates: Sequence[Candidate], types: Sequence[str]) -> None:
    """Give each candidate its published boxes of `types`, with their words."""
    owners: dict[str, list[Candidate]] = {}
    for c in candidates:
        for idnat in owner_idnats(c.idnat, c.finess_ej):
            owners.setdefault(idnat, []).append(c)
    if not owners:
        return
    rows = conn.execute(
        select(mailbox.c.structure_idnat, mailbox.c.address, mailbox.c.service, mailbox.c.description)
        .where(among(conn, mailbox.c.structure_idnat, owners), published(types))
    ).all()
    for idnat, address, service, description in rows:
        box = (address, box_words(address, service, description))
        for c in owners[idnat]:
            c.boxes.append(box)


def _sizes(conn: Connection, candidates: Sequence[Candidate]) -> None:
    """Each candidate's number of active activities (the (structure, active, person) index alone)."""
    by_id = {c.id: c for c in candidates}
    if not by_id:
        return
    for sid, n in conn.execute(
        select(activity.c.structure_id, func.count())
        .where(among(conn, activity.c.structure_id, by_id), activity.c.active == true())
        .group_by(activity.c.structure_id)
    ).all():
        by_id[sid].size = n


def _one_named(conn: Connection, query: Sequence[Term]) -> ColumnElement[bool] | None:
    """A condition on `structure` that some structure whose name or city holds every term meets
    (the trigram index: on SQLite its first match only); None when no term narrows."""
    if contains.fts_tables(conn):
        ids = _fts_ids(query)
        return None if ids is None else structure.c.id.in_(ids.limit(1))
    return _like_condition(query)


def held(conn: Connection, word: str) -> bool:
    """Does some structure's name or city, or some box's local part, hold `word`, even inside
    a word (trigram indexes)?"""
    query = terms([word])
    if query[0].searchable() is None:
        return True
    if len(query[0].alternatives) > 1:  # an abbreviation ("chu"): its words spelled out too
        named = exists(select(structure.c.id).where(_one_named(conn, query)))  # type: ignore[arg-type]  # (searchable: not None)
        boxed = exists(select(mailbox.c.id).where(_in_local_part(conn, [word])))
        return any(conn.execute(select(named, boxed)).one())
    if contains.fts_tables(conn):
        # one match for both trigram tables: the word in any column of each (a structure's name or city)
        return any(prepared(conn, "held (fts)", _held_fts, {"match": f'"{word}"'})[0])
    return any(prepared(conn, "held (like)", _held_like, {"inside": f"%{word}%"})[0])


def _held_fts() -> Select:
    named = structure.c.id.in_(contains.fts_rowids("structure.name_key", "").limit(1))
    boxed = mailbox.c.id.in_(contains.fts_rowids("mailbox.address", ""))
    return select(exists(select(structure.c.id).where(named)), exists(select(mailbox.c.id).where(boxed)))


def _held_like() -> Select:
    inside = placeholder("inside")
    named, boxed = like_in(NAME_OR_CITY, inside), local_part().like(inside)
    return select(exists(select(structure.c.id).where(named)), exists(select(mailbox.c.id).where(boxed)))


def named_together(conn: Connection, near: dict[str, int], others: Sequence[str], checked: int) -> set[str]:
    """The words of `near` (the `checked` most frequent) that some structure's name or city
    holds with every other word of the box (trigram index: the structures the other words name,
    read once when they are few, else one probe per word): corrections of a typed structure name
    that make the whole box name something."""
    rest = [t for t in terms(others) if t.searchable() is not None]
    if not rest:
        return set()
    checking = sorted(near, key=lambda w: -near[w])[:checked]
    if not checking:
        return set()
    named = _named(conn, rest, [], NAME_OR_CITY, SIDE_CAP) or []
    if len(named) <= SIDE_CAP:  # the structures the other words name, all read: each word checked on them
        return {w for w in checking if any(_in_name(c.name_key, terms([w]), c.city_key) for c in named)}
    out = set()
    for word in checking:
        cond = _one_named(conn, [*terms([word]), *rest])
        if cond is not None and conn.execute(select(structure.c.id).where(cond).limit(1)).first() is not None:
            out.add(word)
    return out


# --- the search ---------------------------------------------------------------------


@dataclass
class Found:
    """One page of structures: ids in rank order, whether more exist, and the boxes the query named."""

    ids: list[int]
    has_next: bool
    boxes: dict[int, set[str]] = field(default_factory=dict)  # structure id -> addresses its service words name
    exact: bool = False  # the first one is named by every term and nothing else


def search(
    conn: Connection,
    words: Sequence[str],
    *,
    page: int = 1,
    size: int = 20,
    departement: str | None = None,
    postcode: str | None = None,
    types: Sequence[str] = STRUCTURE_BOX_TYPES,
    require_boxes: bool = False,
    side: bool = False,
) -> Found | None:
    """Structures matching the words, ranked; None when the words hold no term an index can narrow.

    `side`: a few structures beside people (the first page only, SIDE_CAP candidates at most:
    a name many structures bear is not the name of one of them).
    """
    query = terms(words)
    if not query:
        return None
    q = Query(query, words)
    cap = SIDE_CAP if side else CAP
    filters = _filters(departement, postcode)
    wanted = page * size + 1
    # 1. Structures named by every term (in their names alone), read with those of the town the
    # query names (step 3) when they are not too many: one search of the trigram index.
    located = _named(conn, query, filters, NAME_OR_CITY, cap)
    if located is None:
        return None
    if len(located) > cap:
        named = _named(conn, query, filters, NAME_ONLY, cap) or []
        if len(named) > cap:
            return _big(conn, query, q, words, page, size, filters, types, require_boxes)
        located = []  # (more than cap: the town's structures are none in particular)
    else:
        named = [c for c in located if _in_name(c.name_key, query)]
    candidates = {c.id: c for c in named}
    ranked = _rank(conn, candidates.values(), q, types, require_boxes, wanted)
    # 2. Terms that may be meant for a box's service ("secretariat cardio jalmont"): the boxes so
    # named of the structures the other terms name, or of any structure.
    vocabulary = SERVICES.get(conn) if len(ranked) < wanted else []
    services = [t for t in query if is_service_word(vocabulary, t.word)]
    if services:
        others = [t for t in query if t not in services]
        service_words = [t.word for t in services]
        found = _named_boxes(conn, others, service_words, types, filters) if others else None
        if found is None:
            found = _box_owners(conn, service_words, types, filters)
        for c in found:
            candidates.setdefault(c.id, c).boxes = c.boxes
        ranked = _rank(conn, candidates.values(), q, types, require_boxes, wanted)
    # 3. Structures of the town the query names, when the page is not full yet.
    if len(ranked) < wanted:
        fresh = {c.id: c for c in located if c.id not in candidates}
        if fresh:
            candidates.update(fresh)
            ranked = _rank(conn, candidates.values(), q, types, require_boxes, wanted)
    start = (page - 1) * size
    chosen = ranked[start : start + size]
    return Found(
        [c.id for c in chosen],
        len(ranked) > start + size,
        {c.id: c.matched_boxes for c in chosen if c.matched_boxes},
        exact=bool(ranked) and ranked[0].whole,
    )


def _rank(
    conn: Connection,
    candidates: Iterable[Candidate],
    q: Query,
    types: Sequence[str],
    require_boxes: bool,
    wanted: int,
) -> list[Candidate]:
    """The candidates matching every term, best first.

    Within a rank (`score`'s key but the number of other words), larger structures
    first: their sizes are read for the ranks the page reaches (SIZE_WINDOW at most).
    """
    if require_boxes:
        load_boxes(conn, [c for c in candidates if not c.boxes], types)
    ranked = []
    for c in candidates:
        key = score(c, q)
        if key is None or (require_boxes and not c.boxes):
            continue
        c.key = key
        ranked.append(c)
    ranked.sort(key=lambda c: c.key)
    reached = {c.key[:-1] for c in ranked[:wanted]}
    sized = [c for c in ranked if c.key[:-1] in reached][:SIZE_WINDOW]
    if len(sized) > 1:
        _sizes(conn, [c for c in sized if not c.size])
    ranked.sort(key=lambda c: (c.key[:-1], -c.size, c.key[-1], c.name_key, c.id))
    return ranked


def _big(
    conn: Connection,
    query: Sequence[Term],
    q: Query,
    words: Sequence[str],
    page: int,
    size: int,
    filters: list[ColumnElement[bool]],
    types: Sequence[str],
    require_boxes: bool,
) -> Found:
    """A query naming more than CAP structures ("pharmacie") names none in particular: the name
    typed exactly, then the names beginning so (name index, in name order), then the others in
    the trigram index's order, each checked as it is read, up to the page asked."""
    wanted = page * size + 1
    conds = list(filters)
    if require_boxes:
        boxes = [published(types)]
        conds.append(or_(
            select(mailbox.c.id).where(mailbox.c.structure_idnat == structure.c.idnat, *boxes).exists(),
            select(mailbox.c.id).where(mailbox.c.structure_idnat == legal_idnat(), *boxes).exists(),
        ))
    phrase = " ".join(words)
    found: list[int] = []
    seen: set[int] = set()

    def take(rows: Iterable[Any], check: bool) -> None:
        for sid, n, c, *_ in rows:
            if sid not in seen and (not check or score(Candidate(sid, n or "", c or ""), q) is not None):
                seen.add(sid)
                found.append(sid)

    take(conn.execute(select(*_COLUMNS).where(structure.c.name_key == phrase, *conds).limit(wanted)).all(), False)
    if len(found) < wanted:
        starting = and_(structure.c.name_key > phrase, structure.c.name_key < prefix_upper_bound(phrase + " "))
        take(conn.execute(
            select(*_COLUMNS).where(starting, *conds).order_by(structure.c.name_key, structure.c.id).limit(wanted)
        ).all(), True)
    last, read = 0, 0
    while len(found) < wanted and read < WALK_MAX:
        if contains.fts_tables(conn):
            ids = _fts_ids(query)
            assert ids is not None
            chunk = [r[0] for r in conn.execute(
                ids.where(literal_column("rowid") > last).order_by(literal_column("rowid")).limit(WALK_CHUNK)
            ).all()]
            if not chunk:
                break
            last, read = chunk[-1], read + len(chunk)
            rows = conn.execute(select(*_COLUMNS).where(among(conn, structure.c.id, chunk), *conds).order_by(structure.c.id)).all()
        else:
            cond = _like_condition(query)
            rows = conn.execute(
                # None (no searchable term) renders as WHERE NULL: no row
                select(*_COLUMNS).where(cond, structure.c.id > last, *conds)  # type: ignore[arg-type]  # see the comment above
                .order_by(structure.c.id).limit(WALK_CHUNK)
            ).all()
            if not rows:
                break
            last, read = rows[-1][0], read + len(rows)
        take(rows, True)
    start = (page - 1) * size
    return Found(found[start : start + size], len(found) > start + size)


def ordered_boxes(boxes: Iterable[Any], matched: set[str], limit: int) -> tuple[list[Any], int]:
    """The boxes the query named first, then the others; at most `limit`, and how many were left out."""
    boxes = list(boxes)
    boxes.sort(key=lambda b: b.address not in matched)
    return boxes[:limit], max(0, len(boxes) - limit)
