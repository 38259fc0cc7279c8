"""Which filters select recipients, and which would only select a domain or a common fragment.

The planner's rule (index.py) refuses filters with no indexed component of
at least 3 significant characters. This module adds the second half of the
anti-extraction rule, on the filters that pass the first one: a component
*selects* recipients only when

- on `mail`, its significant characters lie in the local part: what follows
  an `@` is the domain, and a `final` component without `@` ends the address,
  so it lies in the domain too (`(mail=*@medecin.mssante.fr)`,
  `(mail=*.mssante.fr)`). A domain designates an establishment or an
  operator, never a recipient;
- and the index says it matches at most `threshold` entries (a share of the
  published directory, `unselective_share`, 30 % by default, and at least
  `unselective_floor`): `*mss*`, `*sante*` or `*.mssante.fr` are in nearly
  every address; a real name fragment (`*dup*`, `mar*`) is not.

Organisational boxes are also matched by a word of their names
(`(cn=jalmont*)` finds the boxes of "CENTRE HOSPITALIER DE JALMONT",
filters.py): a cn or sn component is judged on everything it reaches, the
entries matched by their own names plus the boxes matched by a word of their
names, against the same bar. A structure word is no way around the rule: a
word of too many structures' names is refused like a common fragment. (A
stricter bar for structure words alone was measured and set aside: at a
quarter of the national scale, 0.3 % of the entries refused `mar*` and
`beauval*`, the town of a 174-box hospital, and at 2 % `hos*`, `pha*`,
`cen*`: people lookups by their first three letters.)

A filter selects when one of the components of an `And`, or every branch of
an `Or`, does (as for the planner: an `Or` with one broad branch returns
that branch's matches). Counts come from the index: the sorted keys for
prefixes and equalities, the token postings (intersected when they are all
common) for the other components. Answers are cached with the plans
(directory.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from annuaire.ldap import messages as m
from annuaire.ldap.filters import NAME_WORD_SLOTS, approx_words, normalise, post_order, significant
from annuaire.ldap.index import DirectoryIndex, RangeSource, key_trigrams
from annuaire.ldap.schema import BY_NAME, RESTRICTING, SLOT, canonical
from annuaire.store.keys import search_key

_RESTRICTING = {SLOT[a] for a in RESTRICTING}
_MAIL = SLOT["mail"]
_APPROX = {SLOT["cn"], SLOT["sn"], SLOT["givenName"]}


@dataclass(frozen=True)
class Broad:
    """Why a filter was found unselective: its most selective component and what it matches."""

    attr: str
    text: str  # the component as written (`*@medecin.mssante.fr`, `*mss*`)
    domain: bool  # only a domain (else: a fragment common to `count` entries)
    count: int
    boxes: bool = False  # `count` organisational boxes reached by a word of their names


def _local(part: str, final: bool) -> str:
    """The part of a mail component that can only match the local part of an address."""
    if "@" in part:
        return part.split("@", 1)[0]
    return "" if final else part


class Selectivity:
    """Judges the filters of one index (`threshold`: the most entries a selective component matches)."""

    def __init__(self, index: DirectoryIndex, threshold: int, min_chars: int) -> None:
        self.index = index
        self.threshold = threshold
        self.min_chars = min_chars

    def broad(self, f: m.Filter) -> Broad | None:
        """None when `f` selects recipients; else the reason (iterative: any nesting depth)."""
        verdict: dict[int, tuple[bool, Broad | None]] = {}
        for node in post_order(f):
            if isinstance(node, (m.And, m.Or)):
                children = [verdict[id(c)] for c in node.filters]
                culprits = [b for _, b in children if b is not None]
                culprit = min(culprits, key=lambda b: b.count) if culprits else None
                if isinstance(node, m.And):
                    ok = any(s for s, _ in children)
                else:
                    ok = bool(children) and all(s for s, _ in children)
                    culprit = next((b for s, b in children if not s and b is not None), culprit)
                verdict[id(node)] = (ok, None if ok else culprit)
            else:
                verdict[id(node)] = self._leaf(node)
        ok, culprit = verdict[id(f)]
        if ok:
            return None
        return culprit or Broad("", "", False, self.index.live)

    # --- leaves ---------------------------------------------------------------------------

    def _leaf(self, f: m.Filter) -> tuple[bool, Broad | None]:
        if isinstance(f, m.Extensible):
            if f.attr is None:
                return False, None
            f = m.Equality(f.attr, f.value)
        if not isinstance(f, (m.Equality, m.Substrings, m.Approx)):
            return False, None
        name = canonical(f.attr)
        if name is None or name not in SLOT or SLOT[name] not in _RESTRICTING:
            return False, None
        slot = SLOT[name]
        kind = BY_NAME[name].kind
        index = self.index
        if isinstance(f, m.Equality):
            key = normalise(kind, f.value.decode("utf-8", "replace"))
            if significant(key) < self.min_chars:
                return False, None
            if slot == _MAIL:
                return True, None  # one address, one recipient
            if slot in index.sorted:
                count = RangeSource(index.sorted[slot], key, True).count()
            else:
                count = len(index.exact.get(slot, {}).get(key, ()))
            return self._verdict(name, f"={f.value.decode('utf-8', 'replace')}", count)
        if isinstance(f, m.Approx):
            if slot not in _APPROX:
                return False, None
            key = search_key(f.value.decode("utf-8", "replace"))
            if significant(key) < self.min_chars:
                return False, None
            postings = [len(index.approx.get(w, ())) for w in approx_words(key)]
            if not postings:
                return False, None
            return self._verdict(name, f"~={f.value.decode('utf-8', 'replace')}", min(postings))
        # Substrings: the best component decides.
        if slot not in index.sorted:
            return False, None
        dec = lambda b: normalise(kind, b.decode("utf-8", "replace")) if b is not None else ""
        text = _text(f)
        parts: list[tuple[str, bool, bool]] = []  # (normalised component, is initial, is final)
        if f.initial is not None:
            parts.append((dec(f.initial), True, False))
        parts += [(dec(a), False, False) for a in f.any]
        if f.final is not None:
            parts.append((dec(f.final), False, True))
        best: int | None = None
        domain_only = False
        for part, initial, final in parts:
            if significant(part) < self.min_chars:
                continue
            if slot == _MAIL and significant(_local(part, final and not initial)) < self.min_chars:
                domain_only = True
                continue
            if initial:
                count = RangeSource(index.sorted[slot], part, False).count()
            else:
                count = self._fragment_count(search_key(part) if kind == "mail" else part)
            best = count if best is None else min(best, count)
            if best <= self.threshold:
                return self._name_words(f, name, slot, parts, text, best)
        if best is None:
            if domain_only:
                return False, Broad(name, text, True, 0)
            return False, None
        return False, Broad(name, text, False, best)

    def _name_words(self, f: m.Substrings, name: str, slot: int, parts: list[tuple[str, bool, bool]],
                    text: str, own: int) -> tuple[bool, Broad | None]:
        """The verdict on a component matching `own` entries by their own names, given the boxes
        it also reaches by a word of their names (their sum: an upper bound, a box whose own name
        matches too counts twice)."""
        if slot not in NAME_WORD_SLOTS or f.initial is None:
            return True, None
        words = self.index.name_word_source(parts[0][0], [p for p, initial, _ in parts if p and not initial])
        if words is None or own + words[1] <= self.threshold:
            return True, None
        return False, Broad(name, text, False, words[1], boxes=True)

    def _verdict(self, name: str, text: str, count: int) -> tuple[bool, Broad | None]:
        if count <= self.threshold:
            return True, None
        return False, Broad(name, text, False, count)

    def _fragment_count(self, key: str) -> int:
        """At least as many entries as hold this fragment (their keys hold every token of it)."""
        index = self.index
        tokens = key_trigrams(key)
        if not tokens:
            return index.live
        sizes = sorted((len(index.trigram.get(t, ())), t) for t in tokens)
        if sizes[0][0] <= self.threshold or len(sizes) == 1:
            return sizes[0][0]
        # Every token is common: how many entries hold them all?
        if all(t in index.bits for _, t in sizes):
            acc = index.bits[sizes[0][1]]
            for _, t in sizes[1:]:
                acc &= index.bits[t]
            return acc.bit_count()
        ids = set(index.trigram[sizes[0][1]])
        for _, t in sizes[1:]:
            ids.intersection_update(index.trigram[t])
            if len(ids) <= self.threshold:
                break
        return len(ids)


def _text(f: m.Substrings) -> str:
    dec = lambda b: b.decode("utf-8", "replace")
    pieces = [dec(f.initial) if f.initial is not None else ""]
    pieces += [dec(a) for a in f.any]
    pieces.append(dec(f.final) if f.final is not None else "")
    return "*".join(pieces)
