"""The in-memory index of published mailboxes, and the planning of filters on it.

Structures (entry ids are positions in `entries`; a replaced or removed entry
leaves None behind and its id is never reused, so every posting list stays
sorted by appending):

- `by_mail`: address -> id (exact lookup, base-scope reads);
- sorted keys per prefix-indexed attribute (mail, cn, sn, givenName): a
  sorted list of normalised values with the parallel ids, searched with
  bisect for equality and prefix ranges, plus a small sorted delta for the
  entries added since the last rebuild;
- token posting lists over the search keys of mail, cn, sn and givenName
  for contains (`*dup*`) and any/final components: the trigrams inside each
  word (`dup`, `upo`…) and two "boundary" tokens per pair of adjacent words
  of a key (`jean dupont` -> `n du`, `an d`), so that a fragment made of
  short words (`*e-ma*`, `*a.b.c*`, `*1 2 3*`) has tokens too;
- exact dicts for identifiers and codes (mssIdNatPS, profession, département, type…);
- a phonetic word index over cn for approximate matches (`~=`);
- sorted "name word" keys of organisational boxes (every word onwards of their
  names, filters.name_word_keys), so that `(cn=jalmont*)` finds the boxes of
  "CENTRE HOSPITALIER DE JALMONT".

`plan()` turns a filter into candidate sources in four tiers — exact
matches, then prefix matches, then contains matches, then boxes matched by a
word of their names (after every entry matched by its own name: when a size
limit cuts the answer, the people whose names match come first) — and `candidates()`
walks them lazily, so the caller stops as soon as it has enough results:
answering a 50-entry autocomplete touches about 50 entries, whatever the
size of the directory.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from sys import intern

from annuaire.gcpause import gc_paused
from annuaire.ldap import messages as m
from annuaire.ldap.entries import Entry, Record, make_entry
from annuaire.ldap.filters import (
    NAME_WORD_SLOTS,
    approx_word,
    approx_words,
    name_word_initial,
    name_word_keys,
    normalise,
    post_order,
    significant,
    without_stop_words,
)
from annuaire.ldap.schema import (
    BY_NAME,
    EXACT_INDEXED,
    PREFIX_INDEXED,
    RESTRICTING,
    SLOT,
    TRIGRAM_INDEXED,
    canonical,
)
from annuaire.store.keys import prefix_upper_bound, search_key

_PREFIX_SLOTS = [SLOT[a] for a in PREFIX_INDEXED]
_TRIGRAM_SLOTS = [SLOT[a] for a in TRIGRAM_INDEXED]
_EXACT_SLOTS = [SLOT[a] for a in EXACT_INDEXED]
_MAIL = SLOT["mail"]
_CN = SLOT["cn"]
_RESTRICTING = {SLOT[a] for a in RESTRICTING}
_EMPTY = array("I")


class SortedKeys:
    """Sorted (key, id) pairs: an immutable base plus a small sorted delta."""

    __slots__ = ("delta", "ids", "keys")

    def __init__(self, pairs: list[tuple[str, int]]) -> None:
        pairs.sort()
        self.keys = [k for k, _ in pairs]
        self.ids = array("I", (i for _, i in pairs))
        self.delta: list[tuple[str, int]] = []

    def add(self, key: str, eid: int) -> None:
        insort(self.delta, (key, eid))

    def bounds(self, lo: str, hi: str, inclusive_hi: bool = False) -> tuple[int, int, int, int]:
        keys = self.keys
        a = bisect_left(keys, lo)
        b = bisect_right(keys, hi) if inclusive_hi else bisect_left(keys, hi)
        d = self.delta
        if d:
            da = bisect_left(d, (lo,))
            db = bisect_right(d, (hi, 2**32)) if inclusive_hi else bisect_left(d, (hi,))
        else:
            da = db = 0
        return a, b, da, db

    def count(self, lo: str, hi: str, inclusive_hi: bool = False) -> int:
        a, b, da, db = self.bounds(lo, hi, inclusive_hi)
        return (b - a) + (db - da)

    def iter_range(self, lo: str, hi: str, inclusive_hi: bool = False) -> Iterator[int]:
        a, b, da, db = self.bounds(lo, hi, inclusive_hi)
        yield from self.ids[a:b]
        for _, i in self.delta[da:db]:
            yield i


class RangeSource:
    """A lazily walked key range (equality when `exact`, else prefix)."""

    __slots__ = ("exact", "index", "key")

    def __init__(self, index: SortedKeys, key: str, exact: bool) -> None:
        self.index, self.key, self.exact = index, key, exact

    def __iter__(self) -> Iterator[int]:
        if self.exact:
            return self.index.iter_range(self.key, self.key, True)
        return self.index.iter_range(self.key, prefix_upper_bound(self.key))

    def count(self) -> int:
        if self.exact:
            return self.index.count(self.key, self.key, True)
        return self.index.count(self.key, prefix_upper_bound(self.key))


class FilteredSource:
    """A key range walked in order, keeping only ids of an allowed set."""

    __slots__ = ("allowed", "source")

    def __init__(self, source: RangeSource, allowed: set[int]) -> None:
        self.source, self.allowed = source, allowed

    def __iter__(self) -> Iterator[int]:
        allowed = self.allowed
        return (i for i in self.source if i in allowed)


TIERS = 4  # exact, prefix, contains, name words of organisational boxes
NAME_WORD_KEY_CHARS = 32  # name word keys are indexed cut to this length (prefix ranges stay complete)


def _tiers() -> tuple[list, list, list, list]:
    return ([], [], [], [])


@dataclass
class FilterPlan:
    """Candidate sources by tier (0 exact, 1 prefix, 2 contains, 3 name words of boxes) and an
    estimate of their size."""

    estimate: int
    restricting: bool
    tiers: tuple[list, list, list, list] = field(default_factory=_tiers)


_WORD_TRIGRAMS: dict[str, tuple[str, ...]] = {}


def word_trigrams(word: str) -> tuple[str, ...]:
    """Trigrams inside one word of a search key (cached: names and domains repeat a lot)."""
    t = _WORD_TRIGRAMS.get(word)
    if t is None:
        t = tuple({word[i:i + 3] for i in range(len(word) - 2)})
        if len(_WORD_TRIGRAMS) < 2_000_000:
            _WORD_TRIGRAMS[word] = t
    return t


# Boundary tokens, for every pair of adjacent words (a, b) of one key: `a[-1] b[:2]` and
# `a[-2:] b[0]` (`jean dupont` -> `n du`, `an d`; next to a one-letter word they are `x y`).
# They hold a space, so they never collide with the trigrams inside words; two characters on
# one side keep fragments like `ie-fe` or `e.ma` from walking every entry with `e f` or `e m`.
# sn and givenName are usually inside cn (and then add nothing).
_OTHER_NAME_SLOTS = [s for s in _TRIGRAM_SLOTS if s not in (_MAIL, _CN)]


def _fragment_boundaries(words: list[str], out: set[str]) -> None:
    """Add the boundary tokens every key holding the fragment `words` holds.

    The first word of a fragment may end a longer word of the key and its last one start a
    longer one; the others are whole words. `a[-1] b[:2]` needs two letters of b, `a[-2:] b[0]`
    two letters of a; `x y` between one-letter words is indexed only when one of them is a
    whole word of the key, that is unless the fragment is just `x y` (two significant characters).
    """
    last = len(words) - 1
    for i, (a, b) in enumerate(pairwise(words)):
        if len(b) > 1:
            out.add(a[-1] + " " + b[:2])
        if len(a) > 1:
            out.add(a[-2:] + " " + b[0])
        elif len(b) == 1 and (i > 0 or i + 1 < last):
            out.add(a + " " + b)


def key_trigrams(key: str) -> set[str]:
    """Indexed tokens of a (normalised) fragment: the trigrams inside its words and its word boundaries.

    Every fragment with at least 3 significant characters has one: a one-word fragment has a
    trigram, a fragment of several words a boundary token. An entry whose key holds the
    fragment holds all of its tokens.
    """
    out: set[str] = set()
    words = key.split()
    for w in words:
        out.update(word_trigrams(w))
    if len(words) > 1:
        _fragment_boundaries(words, out)
    return out


def _entry_tokens(norm: tuple) -> set[str]:
    """Words and boundary tokens of the search keys of mail, cn, sn and givenName.

    Words become their trigrams at build time (one step per distinct word); boundary tokens
    (with a space) are kept as they are. Boundaries are taken inside each key, never across
    two keys; a key found inside another one (sn and givenName inside cn, usually) adds nothing.
    """
    cn = norm[_CN] or ""
    parts = [cn]
    for s in _OTHER_NAME_SLOTS:
        v = norm[s]
        if v and v not in cn and v not in parts:
            parts.append(v)
    mail = norm[_MAIL]
    if mail:
        parts.append(search_key(mail))
    out: set[str] = set()
    for key in parts:
        words = key.split()
        out.update(words)
        for a, b in pairwise(words):  # the boundary tokens (inline: 536,000 entries)
            out.add(a[-1] + " " + b[:2])
            out.add(a[-2:] + " " + b[0])
    return out


def _name_word_index_keys(norm: tuple) -> set[str]:
    """The name word keys of an organisational box as indexed: cut to NAME_WORD_KEY_CHARS, and
    interned (the boxes of one structure share most of them: "chu beauval", "beauval")."""
    return {intern(k[:NAME_WORD_KEY_CHARS]) for k in name_word_keys(norm)}


def token_trigrams(token: str) -> tuple[str, ...]:
    """What one entry token is indexed as: a word as its trigrams, a boundary token as itself."""
    return (token,) if " " in token else word_trigrams(token)


BIG_POSTING = 20_000  # trigrams with more ids also get a bitset (a Python int) for fast AND
SMALL_POSTING = 2_000  # a rarest list this short is walked as it is (no intersection)
_BITS_OF_BYTE = [tuple(k for k in range(8) if b >> k & 1) for b in range(256)]
_NONZERO = re.compile(rb"[^\x00]")


def bitset(ids: Iterable[int], size: int) -> int:
    buf = bytearray((size >> 3) + 1)
    for i in ids:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


class BitsetSource:
    """The ids of a bitset, produced lazily in increasing order (walks stop at the size limit)."""

    __slots__ = ("bits", "size")

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.size = bits.bit_count()

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        data = self.bits.to_bytes((self.bits.bit_length() >> 3) + 1, "little")
        for mo in _NONZERO.finditer(data):
            pos = mo.start()
            base = pos << 3
            for k in _BITS_OF_BYTE[data[pos]]:
                yield base + k


class MaskedSource:
    """Ids of a sorted list kept only where a bitset mask is set (lazily)."""

    __slots__ = ("ids", "mask")

    def __init__(self, ids: array | list[int], mask: bytes) -> None:
        self.ids, self.mask = ids, mask

    def __len__(self) -> int:
        return len(self.ids)  # an upper bound: good enough for planning

    def __iter__(self) -> Iterator[int]:
        mask = self.mask
        n = len(mask)
        return (i for i in self.ids if (i >> 3) < n and mask[i >> 3] >> (i & 7) & 1)


class DirectoryIndex:
    def __init__(self) -> None:
        self.entries: list[Entry | None] = []
        self.by_mail: dict[str, int] = {}
        self.sorted: dict[int, SortedKeys] = {}
        self.trigram: dict[str, array] = {}
        self.bits: dict[str, int] = {}  # bitsets of the largest trigram lists
        self.exact: dict[int, dict[str, array]] = {s: {} for s in _EXACT_SLOTS}
        self.approx: dict[str, array] = {}
        self.words = SortedKeys([])  # name word keys of organisational boxes (cut), with their ids
        self.live = 0
        self.dead = 0
        self.generation = 0  # bumped by every change (plan caches key on it)
        self._approx_cache: dict[str, str] = {}

    # --- building and updating ------------------------------------------------------

    @classmethod
    def build(cls, records: Iterable[Record], suffix: str) -> DirectoryIndex:
        """Index every record (the cyclic GC is paused: millions of small objects, no cycles)."""
        with gc_paused():
            return cls._build(records, suffix)

    @classmethod
    def _build(cls, records: Iterable[Record], suffix: str) -> DirectoryIndex:
        index = cls()
        entries = index.entries
        for rec in records:
            address = (rec.get("address") or "").lower()
            if not address or address in index.by_mail:
                continue
            index.by_mail[address] = len(entries)
            entries.append(make_entry(rec, suffix))
        index.live = len(entries)
        index._build_structures()
        return index

    def _build_structures(self) -> None:
        pairs: dict[int, list[tuple[str, int]]] = {s: [] for s in _PREFIX_SLOTS}
        words: defaultdict[str, list[int]] = defaultdict(list)  # word or boundary token -> ids
        exact: dict[int, dict[str, list[int]]] = {s: {} for s in _EXACT_SLOTS}
        approx: dict[str, list[int]] = {}
        words_pairs: list[tuple[str, int]] = []
        for eid, entry in enumerate(self.entries):
            if entry is None:
                continue
            norm = entry[0]
            for s in _PREFIX_SLOTS:
                v = norm[s]
                if v:
                    pairs[s].append((v, eid))
            for w in _entry_tokens(norm):
                words[w].append(eid)
            for s in _EXACT_SLOTS:
                v = norm[s]
                if v:
                    exact[s].setdefault(v, []).append(eid)
            for w in self._entry_approx(norm):
                approx.setdefault(w, []).append(eid)
            words_pairs.extend((k, eid) for k in _name_word_index_keys(norm))
        self.sorted = {s: SortedKeys(p) for s, p in pairs.items()}
        self.words = SortedKeys(words_pairs)
        # Token postings from word postings: one Python step per distinct word (or boundary), the rest in C.
        by_trigram: dict[str, list[str]] = {}
        for w in words:
            for t in token_trigrams(w):
                by_trigram.setdefault(t, []).append(w)
        trigram: dict[str, array] = {}
        for t, ws in by_trigram.items():
            if len(ws) == 1:
                trigram[t] = array("I", words[ws[0]])
            else:
                merged: set[int] = set()
                for w in ws:
                    merged.update(words[w])
                trigram[t] = array("I", sorted(merged))
        self.trigram = trigram
        size = len(self.entries)
        self.bits = {t: bitset(ids, size) for t, ids in trigram.items() if len(ids) > BIG_POSTING}
        self.exact = {s: {k: array("I", ids) for k, ids in d.items()} for s, d in exact.items()}
        self.approx = {w: array("I", ids) for w, ids in approx.items()}

    def _entry_approx(self, norm: tuple) -> set[str]:
        cn = norm[_CN]
        if not cn:
            return set()
        cache = self._approx_cache
        out = set()
        for w in cn.split():
            a = cache.get(w)
            if a is None:
                a = cache[w] = approx_word(w)
            out.add(a)
        return out

    def remove(self, address: str) -> bool:
        eid = self.by_mail.pop(address.lower(), None)
        if eid is None:
            return False
        self.entries[eid] = None
        self.generation += 1
        self.live -= 1
        self.dead += 1
        return True

    def upsert(self, rec: Record, suffix: str) -> None:
        """Add or replace one published mailbox (the old version leaves a dead id)."""
        address = (rec.get("address") or "").lower()
        self.remove(address)
        entry = make_entry(rec, suffix)
        eid = len(self.entries)
        self.entries.append(entry)
        self.generation += 1
        self.by_mail[address] = eid
        self.live += 1
        norm = entry[0]
        for s in _PREFIX_SLOTS:
            v = norm[s]
            if v:
                self.sorted[s].add(v, eid)
        tris: set[str] = set()
        for w in _entry_tokens(norm):
            tris.update(token_trigrams(w))
        for t in tris:
            self.trigram.setdefault(t, array("I")).append(eid)
            if t in self.bits:
                self.bits[t] |= 1 << eid
        for s in _EXACT_SLOTS:
            v = norm[s]
            if v:
                self.exact[s].setdefault(v, array("I")).append(eid)
        for w in self._entry_approx(norm):
            self.approx.setdefault(w, array("I")).append(eid)
        for k in _name_word_index_keys(norm):
            self.words.add(k, eid)

    def delta_size(self) -> int:
        return max((len(k.delta) for k in (*self.sorted.values(), self.words)), default=0)

    def needs_compaction(self) -> bool:
        return self.dead > 50_000 + self.live // 4 or self.delta_size() > 20_000 + self.live // 20

    # --- planning -------------------------------------------------------------------

    def plan(self, f: m.Filter, min_chars: int) -> FilterPlan | None:
        """Candidate plan for `f`, or None when no index can answer it (iterative, post-order)."""
        plans: dict[int, FilterPlan | None] = {}
        memo: dict[tuple, array | list[int]] = {}  # trigram candidates per fragment set
        for node in post_order(f):
            if isinstance(node, m.And):
                children = [p for p in (plans[id(c)] for c in node.filters) if p is not None]
                if not children:
                    plans[id(node)] = None
                    continue
                best = min(children, key=lambda p: p.estimate)
                restricting = any(p.restricting for p in children)
                plans[id(node)] = FilterPlan(best.estimate, restricting, best.tiers)
            elif isinstance(node, m.Or):
                alts = [plans[id(c)] for c in node.filters]
                if not alts or any(p is None for p in alts):
                    plans[id(node)] = None
                    continue
                children = [p for p in alts if p is not None]  # (all of them)
                tiers = _tiers()
                seen_sources: set[int] = set()
                for p in children:
                    for t in range(TIERS):
                        for source in p.tiers[t]:
                            if id(source) not in seen_sources:  # the same trigram list for several attributes
                                seen_sources.add(id(source))
                                tiers[t].append(source)
                plans[id(node)] = FilterPlan(sum(p.estimate for p in children),
                                       all(p.restricting for p in children), tiers)
            else:
                plans[id(node)] = self._plan_leaf(node, min_chars, memo)
        return plans[id(f)]

    def _plan_leaf(self, f: m.Filter, min_chars: int, memo: dict) -> FilterPlan | None:
        if isinstance(f, m.Extensible):
            if f.attr is None:
                return None
            f = m.Equality(f.attr, f.value)
        if not isinstance(f, (m.Equality, m.Substrings, m.Approx)):
            return None
        name = canonical(f.attr)
        if name is None or name not in SLOT:
            return None
        slot = SLOT[name]
        kind = BY_NAME[name].kind
        restricting = slot in _RESTRICTING
        if isinstance(f, m.Equality):
            key = normalise(kind, f.value.decode("utf-8", "replace"))
            if significant(key) < min_chars and slot in _RESTRICTING:
                return None
            if slot == _MAIL:
                eid = self.by_mail.get(key)
                return FilterPlan(1, True, ([[eid]] if eid is not None else [], [], [], []))
            if slot in self.sorted:
                src = RangeSource(self.sorted[slot], key, True)
                return FilterPlan(src.count(), restricting, ([src], [], [], []))
            if slot in self.exact:
                ids = self.exact[slot].get(key, _EMPTY)
                return FilterPlan(len(ids), restricting, ([ids], [], [], []))
            return None
        if isinstance(f, m.Approx):
            if slot not in (_CN, SLOT["sn"], SLOT["givenName"]):
                return None
            key = search_key(f.value.decode("utf-8", "replace"))
            if significant(key) < min_chars:
                return None
            postings = [self.approx.get(w, _EMPTY) for w in approx_words(key)]
            if not postings:
                return None
            best = min(postings, key=len)
            return FilterPlan(len(best), True, ([], [best], [], []))
        # Substrings
        if slot not in self.sorted:
            return None
        dec = lambda b: normalise(kind, b.decode("utf-8", "replace")) if b is not None else ""
        initial = dec(f.initial)
        others = [x for x in (dec(a) for a in f.any) if x]
        final = dec(f.final)
        if final:
            others.append(final)
        # Candidates from the trigrams of every component long enough to be significant.
        comps = tuple(k for k in ((search_key(c) if kind == "mail" else c) for c in
                                  ([initial] if initial else []) + others) if significant(k) >= min_chars)

        def trigram_candidates() -> array | list[int] | BitsetSource | MaskedSource | None:
            if not comps:
                return None
            if comps not in memo:
                memo[comps] = self._trigram_candidates({t for c in comps for t in key_trigrams(c)})
            return memo[comps]

        index = self.sorted[slot]
        if initial and significant(initial) >= min_chars:
            prefix = RangeSource(index, initial, False)
            count = prefix.count()
            tiers = _tiers()
            if not others:
                tiers[0].append(RangeSource(index, initial, True))
            tri = trigram_candidates() if others and count > 256 else None
            if tri is not None and len(tri) * 4 < count:
                # Few trigram candidates in a large range: walk them, in key order when affordable.
                if len(tri) <= 5000:
                    entries = self.entries
                    # Removed or replaced entries leave None behind (their ids stay in posting lists).
                    tri = sorted(tri, key=lambda e: "" if entries[e] is None else entries[e][0][slot] or "")  # type: ignore[index]  # entries[e] is not None there (checked first)
                tiers[1].append(tri)
                count = len(tri)
            elif tri is not None and len(tri) < count and len(tri) <= 50_000:
                tiers[1].append(FilteredSource(prefix, set(tri)))
                count = len(tri)
            else:
                tiers[1].append(prefix)
            if slot in NAME_WORD_SLOTS:
                words = self.name_word_source(initial, others)
                if words is not None:
                    tiers[3].append(words[0])
                    count += words[1]
            return FilterPlan(count, restricting, tiers)
        tri = trigram_candidates()
        if tri is None:
            return None
        tiers = ([], [], [tri], [])
        estimate = len(tri)
        if not initial and len(others) == 1:
            only = others[0]
            tiers[0].append(RangeSource(index, only, True))
            if not final:
                tiers[1].append(RangeSource(index, only, False))
        elif initial:
            tiers = ([], [tri], [], [])
            if slot in NAME_WORD_SLOTS:  # an initial too short alone, with longer components after it
                words = self.name_word_source(initial, others)
                if words is not None:
                    tiers[3].append(words[0])
                    estimate += words[1]
        return FilterPlan(estimate, restricting, tiers)

    def name_word_source(self, initial: str, others: list[str]) -> tuple[Iterable[int], int] | None:
        """The organisational boxes a cn/sn assertion (`initial`, then `others`) may match by a
        word of their names, and how many at most; None when the rule does not apply.

        Every box matched that way is in the range of its name word keys starting with the
        initial (stop words out, cut like the keys); a large range is narrowed to the boxes
        holding the trigrams of the words of the other components.
        """
        key = name_word_initial(initial)
        if not key:
            return None
        source = RangeSource(self.words, key[:NAME_WORD_KEY_CHARS], False)
        count = source.count()  # keys: a box may have several starting with the initial
        kept: set[int] | None = None
        if count > 256 and others:
            tris = {t for c in others for w in without_stop_words(c).split() for t in word_trigrams(w)}
            narrowed = self._trigram_candidates(tris)
            if narrowed is not None and len(narrowed) < count and len(narrowed) <= 50_000:
                kept = set(narrowed)
        if count <= 50_000:  # how many boxes, for the selectivity judge
            boxes = len(set(source) if kept is None else {i for i in source if i in kept})
        else:
            boxes = count if kept is None else min(count, len(kept))
        return (source if kept is None else FilteredSource(source, kept)), boxes

    def _trigram_candidates(self, tris: set[str]) -> array | list[int] | BitsetSource | MaskedSource | None:
        """Ids whose keys hold every token (or a superset of them: candidates get verified); None without tokens.

        Small lists are used as they are; lists of common trigrams are intersected as bitsets
        (an AND of Python ints, in C), so that a rare combination of common trigrams
        (`*eranet*`) does not walk tens of thousands of candidates.
        """
        if not tris:
            return None  # nothing to look up: the caller refuses rather than scans
        postings = sorted(((self.trigram.get(t, _EMPTY), t) for t in tris), key=lambda x: len(x[0]))
        rarest = postings[0][0]
        if len(postings) == 1 or len(rarest) <= SMALL_POSTING:
            return rarest
        big = [self.bits[t] for _, t in postings if t in self.bits]
        if postings[0][1] in self.bits:  # every list is big: AND them all
            acc = big[0]
            for b in big[1:]:
                acc &= b
            return BitsetSource(acc)
        ids = set(rarest) if len(rarest) <= BIG_POSTING else None
        if ids is not None:
            for p, t in postings[1:3]:
                if t in self.bits or len(p) > BIG_POSTING:
                    break
                ids.intersection_update(p)
        candidates = sorted(ids) if ids is not None else rarest
        if big:
            acc = big[0]
            for b in big[1:]:
                acc &= b
            return MaskedSource(candidates, acc.to_bytes((acc.bit_length() >> 3) + 1, "little"))
        return candidates

    def candidates(self, plan: FilterPlan) -> Iterator[int]:
        """Entry ids of the plan, best tiers first, each at most once, live ones only."""
        seen: set[int] = set()
        entries = self.entries
        for tier in plan.tiers:
            for source in tier:
                for eid in source:
                    if eid in seen:
                        continue
                    seen.add(eid)
                    if entries[eid] is not None:
                        yield eid
