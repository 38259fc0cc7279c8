"""LDAP filters: value normalisation, compiled matchers, the anti-extraction rule.

Every comparison is done on normalised values:

- name-like attributes with `search_key()` (the one normalisation of the
  system), on both the stored value and the assertion: `Hélène` = `helene`;
- `mail` lowercase; codes and identifiers lowercase (case-insensitive exact);
- telephone numbers without spaces, dots and hyphens.

`compile_filter()` turns a filter into a Python closure evaluated on an
entry's normalised values with LDAP's three-valued logic (True, False,
None = Undefined). The index (index.py) uses the same normalisation to
produce candidates; the closure is the final word on every candidate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from annuaire.ldap import messages as m
from annuaire.ldap.schema import BY_NAME, OC_SLOT, SLOT, canonical
from annuaire.store.keys import search_key

Norm = Sequence["str | None"]
Matcher = Callable[[Norm], "bool | None"]

_TEL = re.compile(r"[\s.\-()]+")
_KNOWN_RULES = {"2.5.13.2", "caseignorematch", "2.5.13.5", "caseexactmatch", "2.5.13.4",
                "caseignoresubstringsmatch", "1.3.6.1.4.1.1466.109.114.2", "caseignoreia5match"}


class UnsupportedFilter(Exception):
    """A filter item we refuse to evaluate (answered with inappropriateMatching)."""


def normalise(kind: str, value: str) -> str:
    if kind == "name":
        return search_key(value)
    if kind == "tel":
        return _TEL.sub("", value)
    if kind == "bool":
        return value.strip().upper()
    return " ".join(value.lower().split())


def significant(text: str) -> int:
    """Significant characters of a normalised value: letters and digits only."""
    return sum(1 for c in text if c.isalnum())


# --- approximate match: a tolerant, phonetic key per word --------------------------

_PHONETIC_RULES = [
    (re.compile(r"ph"), "f"), (re.compile(r"qu|q|ck|c(?=[aouklrt]|$)"), "k"), (re.compile(r"c"), "s"),
    (re.compile(r"gu(?=[ei])"), "g"), (re.compile(r"w"), "v"), (re.compile(r"z"), "s"),
    (re.compile(r"(?<=[a-z])h|^h"), ""), (re.compile(r"y"), "i"),
]
_SILENT_END = re.compile(r"(?<=.)[tdsxz]+$")
_VOWELS = re.compile(r"(?<=.)[aeiou]+")
_DOUBLE = re.compile(r"(.)\1+")


def approx_word(word: str) -> str:
    """A French-leaning phonetic skeleton of one search-key word: `dupond` ~ `dupont`, `philippe` ~ `filipe`."""
    w = word
    for pattern, repl in _PHONETIC_RULES:
        w = pattern.sub(repl, w)
    w = _SILENT_END.sub("", w) or w
    w = _DOUBLE.sub(r"\1", w)
    first, rest = w[:1], w[1:]
    rest = _VOWELS.sub("", "x" + rest)[1:] if rest else ""
    return _DOUBLE.sub(r"\1", first + rest)


def approx_words(key: str) -> list[str]:
    return [approx_word(w) for w in key.split()] if key else []


# --- organisational boxes found by the words of their names ---------------------------
#
# Mail clients send prefix filters (`(cn=jalmont*)`, `(cn=chu*beauval*)`, `(cn=chu beauval*)`),
# and an organisational box is named after its service and its structure
# ("Cardiologie - CHU DE BEAUVAL"). So that typing a structure's words finds its boxes, a
# substring assertion with an initial component on cn or sn also matches an ORG/APP box
# when it matches from the start of a word of the box's names, articles and prepositions
# left out on both sides ("chu beauval" finds "CHU DE BEAUVAL"), in either order of
# service and structure. Like Active Directory's ambiguous name resolution, this is a
# matching rule of the server; the values returned are the box's own. The index walks
# these matches after every entry matched by its own name (index.py), and the selectivity
# judge counts them with the entries a component reaches (selective.py).

NAME_WORD_TYPES = frozenset({"org", "app"})
NAME_WORD_SLOTS = frozenset({SLOT["cn"], SLOT["sn"]})
NAME_WORD_MIN_CHARS = 3  # significant characters the initial keeps once its stop words are left out
STOP_WORDS = frozenset("a au aux d de des du en et l la le les sous sur".split())
_TYPE, _CN, _O, _OU, _DESC = (SLOT[a] for a in ("mssBalType", "cn", "o", "ou", "description"))


def without_stop_words(key: str) -> str:
    """A search key without its articles and prepositions; the last word stays (it may be cut: `chu d*`)."""
    words = key.split()
    if len(words) < 2:
        return key
    kept = [w for w in words[:-1] if w not in STOP_WORDS]
    kept.append(words[-1])
    return " ".join(kept)


def name_word_initial(initial: str) -> str:
    """The initial component as compared with the words of a box's names ("" when too short to apply)."""
    stripped = without_stop_words(initial)
    return stripped if significant(stripped) >= NAME_WORD_MIN_CHARS else ""


@lru_cache(maxsize=65_536)
def _word_keys(cn: str, org: str, label: str) -> tuple[str, ...]:
    orders = [cn, f"{org} {label}".strip()] if org else [cn]
    out: list[str] = []
    for key in orders:
        words = [w for w in key.split() if w not in STOP_WORDS]
        for i in range(len(words)):
            k = " ".join(words[i:])
            if k not in out:
                out.append(k)
    return tuple(out)


def name_word_keys(n: Norm) -> tuple[str, ...]:
    """The keys a box's names are matched by from each word: every word onwards of its common
    name ("label structure") and of "structure label", without stop words; () for other entries."""
    cn = n[_CN]
    if n[_TYPE] not in NAME_WORD_TYPES or not cn:
        return ()
    return _word_keys(cn, n[_O] or "", n[_DESC] or n[_OU] or "")


# --- compiling -----------------------------------------------------------------------


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _undefined(_n: Norm) -> None:
    return None


def _false(_n: Norm) -> bool:
    return False


def _true(_n: Norm) -> bool:
    return True


def post_order(f: m.Filter, *, through_not: bool = False) -> list[m.Filter]:
    """The nodes of `f`, each after its operands, built without recursion (a maximally nested
    filter must not exhaust Python's stack). `through_not`: a Not's operand too (the planners
    take a Not as a leaf)."""
    order: list[m.Filter] = []
    stack = [f]
    while stack:
        node = stack.pop()
        order.append(node)
        if isinstance(node, (m.And, m.Or)):
            stack.extend(node.filters)
        elif through_not and isinstance(node, m.Not):
            stack.append(node.filter)
    order.reverse()
    return order


def compile_filter(f: m.Filter, object_classes: frozenset[str]) -> Matcher:
    """Compile `f` for entries whose objectClass values (lowercase) are `object_classes`.

    Iterative construction (post-order over an explicit stack) so that even a
    maximally nested filter does not recurse in Python.
    """
    compiled: dict[int, Matcher] = {}
    for node in post_order(f, through_not=True):
        compiled[id(node)] = _compile_node(node, compiled, object_classes)
    return compiled[id(f)]


def _compile_node(f: m.Filter, done: dict[int, Matcher], ocs: frozenset[str]) -> Matcher:
    if isinstance(f, m.And):
        children = [done[id(c)] for c in f.filters]
        if not children:
            return _true

        def and_(n: Norm) -> bool | None:
            result: bool | None = True
            for c in children:
                r = c(n)
                if r is False:
                    return False
                if r is None:
                    result = None
            return result

        return and_
    if isinstance(f, m.Or):
        children = [done[id(c)] for c in f.filters]
        if not children:
            return _false

        def or_(n: Norm) -> bool | None:
            result: bool | None = False
            for c in children:
                r = c(n)
                if r is True:
                    return True
                if r is None:
                    result = None
            return result

        return or_
    if isinstance(f, m.Not):
        child = done[id(f.filter)]

        def not_(n: Norm) -> bool | None:
            r = child(n)
            return None if r is None else not r

        return not_
    if isinstance(f, m.Extensible):
        rule = (f.rule or "").lower()
        if f.rule is not None and rule not in _KNOWN_RULES:
            raise UnsupportedFilter(f"extensible match rule {f.rule} is not supported")
        if f.attr is None:
            raise UnsupportedFilter("extensible match without an attribute type is not supported")
        return _compile_node(m.Equality(f.attr, f.value), done, ocs)
    name = canonical(f.attr)
    if name is None or name not in SLOT:
        # Unknown or operational attribute: presence is False, anything else Undefined.
        return _false if isinstance(f, m.Present) else _undefined
    slot = SLOT[name]
    if slot == OC_SLOT:
        return _compile_object_class(f, ocs)
    kind = BY_NAME[name].kind
    if isinstance(f, m.Present):
        return lambda n: n[slot] is not None
    if isinstance(f, m.Equality):
        want = normalise(kind, _decode(f.value))
        if kind == "name" and not want:
            return _false
        return lambda n: None if n[slot] is None else n[slot] == want
    if isinstance(f, m.Substrings):
        initial = normalise(kind, _decode(f.initial)) if f.initial is not None else ""
        final = normalise(kind, _decode(f.final)) if f.final is not None else ""
        anys = [a for a in (normalise(kind, _decode(x)) for x in f.any) if a]
        matcher = _substring_matcher(slot, initial, anys, final)
        if slot in NAME_WORD_SLOTS and initial:
            return _with_name_words(matcher, initial, anys, final)
        return matcher
    if isinstance(f, m.GreaterOrEqual):
        want = normalise(kind, _decode(f.value))
        return lambda n: None if (v := n[slot]) is None else v >= want
    if isinstance(f, m.LessOrEqual):
        want = normalise(kind, _decode(f.value))
        return lambda n: None if (v := n[slot]) is None else v <= want
    if isinstance(f, m.Approx):
        want = normalise(kind, _decode(f.value))
        if kind != "name":
            return lambda n: None if n[slot] is None else n[slot] == want
        words = approx_words(want)
        if not words:
            return _false

        def approx(n: Norm) -> bool | None:
            v = n[slot]
            if v is None:
                return None
            have = approx_words(v)
            return all(w in have for w in words)

        return approx
    raise UnsupportedFilter(f"unsupported filter {type(f).__name__}")


def _with_name_words(matcher: Matcher, initial: str, anys: list[str], final: str) -> Matcher:
    """`matcher`, or else a match from a word of an organisational box's names (see above)."""
    word_initial = name_word_initial(initial)
    if not word_initial:
        return matcher
    test = _value_test(word_initial, [x for x in (without_stop_words(a) for a in anys) if x],
                       without_stop_words(final))

    def or_name_words(n: Norm) -> bool | None:
        r = matcher(n)
        if r is not False:
            return r
        return any(test(k) for k in name_word_keys(n))

    return or_name_words


def _value_test(initial: str, anys: list[str], final: str) -> Callable[[str], bool]:
    """Whether one normalised value holds initial, then anys in order, then final."""
    def test(v: str) -> bool:
        if not v.startswith(initial):
            return False
        pos = len(initial)
        end = len(v)
        if final:
            end -= len(final)
            if end < pos or not v.endswith(final):
                return False
        for a in anys:
            i = v.find(a, pos, end)
            if i < 0:
                return False
            pos = i + len(a)
        return True

    return test


def _substring_matcher(slot: int, initial: str, anys: list[str], final: str) -> Matcher:
    if not anys and not final:
        def starts(n: Norm) -> bool | None:
            v = n[slot]
            return None if v is None else v.startswith(initial)

        return starts
    if not initial and not final and len(anys) == 1:
        needle = anys[0]

        def contains(n: Norm) -> bool | None:
            v = n[slot]
            return None if v is None else needle in v

        return contains

    test = _value_test(initial, anys, final)

    def general(n: Norm) -> bool | None:
        v = n[slot]
        return None if v is None else test(v)

    return general


def _compile_object_class(f: m.Filter, ocs: frozenset[str]) -> Matcher:
    if isinstance(f, m.Present):
        return _true
    if isinstance(f, (m.Equality, m.Approx)):
        want = _decode(f.value).strip().lower()
        result = want in ocs or want in _OC_OIDS and _OC_OIDS[want] in ocs
        return _true if result else _false
    if isinstance(f, m.Substrings):
        initial = _decode(f.initial).lower() if f.initial is not None else ""
        final = _decode(f.final).lower() if f.final is not None else ""
        anys = [_decode(a).lower() for a in f.any]

        def ok(v: str) -> bool:
            if not v.startswith(initial) or not v.endswith(final):
                return False
            pos = len(initial)
            for a in anys:
                i = v.find(a, pos)
                if i < 0:
                    return False
                pos = i + len(a)
            return pos <= len(v) - len(final)

        result = any(ok(v) for v in ocs)
        return _true if result else _false
    want = _decode(f.value).strip().lower()  # type: ignore[union-attr]  # the filters left (>=, <=, extensible) all have a value
    if isinstance(f, m.GreaterOrEqual):
        result = any(v >= want for v in ocs)
    else:
        result = any(v <= want for v in ocs)
    return _true if result else _false


_OC_OIDS = {"2.5.6.0": "top", "2.5.6.6": "person", "2.5.6.7": "organizationalperson",
            "2.16.840.1.113730.3.2.2": "inetorgperson", "2.5.6.4": "organization",
            "2.5.6.5": "organizationalunit"}


def has_unsupported(f: m.Filter) -> str | None:
    """Message for the first extensible item we cannot evaluate, else None (iterative)."""
    stack = [f]
    while stack:
        node = stack.pop()
        if isinstance(node, (m.And, m.Or)):
            stack.extend(node.filters)
        elif isinstance(node, m.Not):
            stack.append(node.filter)
        elif isinstance(node, m.Extensible):
            if node.rule is not None and node.rule.lower() not in _KNOWN_RULES:
                return f"extensible match rule {node.rule} is not supported"
            if node.attr is None:
                return "extensible match without an attribute type is not supported"
    return None


def to_string(f: m.Filter) -> str:
    """RFC 4515 string form (for logs and messages)."""
    def esc(v: bytes) -> str:
        out = []
        for ch in _decode(v):
            out.append(f"\\{ord(ch):02x}" if ch in "*()\\\0" else ch)
        return "".join(out)

    if isinstance(f, m.And):
        return "(&" + "".join(to_string(c) for c in f.filters) + ")"
    if isinstance(f, m.Or):
        return "(|" + "".join(to_string(c) for c in f.filters) + ")"
    if isinstance(f, m.Not):
        return "(!" + to_string(f.filter) + ")"
    if isinstance(f, m.Present):
        return f"({f.attr}=*)"
    if isinstance(f, m.Substrings):
        parts = [esc(f.initial) if f.initial is not None else ""]
        parts += [esc(a) for a in f.any]
        parts.append(esc(f.final) if f.final is not None else "")
        return f"({f.attr}=" + "*".join(parts) + ")"
    if isinstance(f, m.Extensible):
        s = f.attr or ""
        if f.dn_attributes:
            s += ":dn"
        if f.rule:
            s += ":" + f.rule
        return f"({s}:={esc(f.value)})"
    op = {m.Equality: "=", m.GreaterOrEqual: ">=", m.LessOrEqual: "<=", m.Approx: "~="}[type(f)]
    return f"({f.attr}{op}{esc(f.value)})"


def parse(text: str) -> m.Filter:
    """Parse an RFC 4515 filter string (tests, CLI, load generator). Iterative."""
    pos = 0
    n = len(text)
    stack: list[tuple[str, list]] = []
    result: m.Filter | None = None

    def unescape(s: str) -> bytes:
        out = bytearray()
        i = 0
        while i < len(s):
            if s[i] == "\\":
                out += bytes.fromhex(s[i + 1 : i + 3])
                i += 3
            else:
                out += s[i].encode("utf-8")
                i += 1
        return bytes(out)

    while pos < n and result is None:
        ch = text[pos]
        if ch.isspace() and not stack:
            pos += 1
            continue
        if ch == ")" and stack:
            pos += 1
            op, children = stack.pop()
            if op == "!" and len(children) != 1:
                raise ValueError(f"'!' takes exactly one filter in {text!r}")
            node: m.Filter = m.And(children) if op == "&" else m.Or(children) if op == "|" else m.Not(children[0])
        elif ch != "(":
            raise ValueError(f"expected '(' at {pos} in {text!r}")
        elif pos + 1 < n and text[pos + 1] in "&|!":
            stack.append((text[pos + 1], []))
            pos += 2
            continue
        else:
            end = text.index(")", pos)
            node = _parse_item(text[pos + 1:end], unescape)
            pos = end + 1
        if stack:
            stack[-1][1].append(node)
        else:
            result = node
    if result is None:
        raise ValueError(f"incomplete filter {text!r}")
    return result


def _parse_item(item: str, unescape: Callable[[str], bytes]) -> m.Filter:
    if ":=" in item:
        left, value = item.split(":=", 1)
        parts = left.split(":")
        attr = parts[0] or None
        dn = "dn" in [p.lower() for p in parts[1:]]
        rules = [p for p in parts[1:] if p.lower() != "dn"]
        return m.Extensible(rules[0] if rules else None, attr, unescape(value), dn)
    for op, kind in ((">=", m.GreaterOrEqual), ("<=", m.LessOrEqual), ("~=", m.Approx)):
        if op in item:
            attr, value = item.split(op, 1)
            return kind(attr, unescape(value))
    attr, value = item.split("=", 1)
    if value == "*":
        return m.Present(attr)
    if "*" in value:
        pieces = value.split("*")
        initial = unescape(pieces[0]) if pieces[0] else None
        final = unescape(pieces[-1]) if pieces[-1] else None
        anys = [unescape(p) for p in pieces[1:-1] if p]
        return m.Substrings(attr, initial, anys, final)
    return m.Equality(attr, unescape(value))
