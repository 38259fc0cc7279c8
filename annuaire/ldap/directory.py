"""The directory tree as LDAP sees it: DNs, scopes, special entries, search semantics.

    ""                                   root DSE
    cn=Subschema                         subschema entry
    o=annuaire-sante,c=fr                naming context (configurable)
      ou=mailboxes,o=annuaire-sante,c=fr
        mail=<address>,ou=mailboxes,…    one entry per published mailbox

`Directory.collect()` resolves the base and scope, applies the
anti-extraction rule and walks the index plan, returning references to the
matching entries (best matches first); `Directory.encode()` turns one
reference into SearchResultEntry bytes for the requested attributes.
Limits (size, time, budget) are decided by the caller (server.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from annuaire.ldap import messages as m
from annuaire.ldap.ber import SEQUENCE, SET, octets, tlv
from annuaire.ldap.entries import (
    NSLOTS,
    entry_dn,
    entry_message,
    entry_op,
    entry_types_only_op,
)
from annuaire.ldap.filters import (
    UnsupportedFilter,
    compile_filter,
    has_unsupported,
    normalise,
    to_string,
)
from annuaire.ldap.index import DirectoryIndex
from annuaire.ldap.schema import (
    MAILBOX_OBJECT_CLASSES,
    OPERATIONAL,
    RESTRICTING,
    SLOT,
    canonical,
    subschema_attributes,
)
from annuaire.ldap.selective import Broad, Selectivity

SUBSCHEMA_DN = "cn=Subschema"
STALE_AFTER = 2.0  # seconds behind the store before searches say so
MAILBOX_OCS = frozenset(c.lower() for c in MAILBOX_OBJECT_CLASSES)
_MAIL = SLOT["mail"]
REFUSAL = (
    "recherche refusée : le filtre doit porter sur {attrs} avec au moins {n} caractères significatifs "
    "(lettres et chiffres d'un même morceau entre jokers), par ex. (|(cn=dup*)(sn=dup*)(mail=dup*)). "
    "Cet annuaire sert à trouver des destinataires ; les besoins en masse sont servis par les fichiers "
    "d'extraction quotidiens. / "
    "search refused: the filter must constrain {attrs} with at least {n} significant characters "
    "(letters and digits of one piece between wildcards), e.g. (|(cn=dup*)(sn=dup*)(mail=dup*)). "
    "This address book is for looking up recipients; bulk needs are served by the daily extraction files."
)
UNSELECTIVE = (
    "recherche refusée : filtre trop large, {what_fr} ne désigne pas de destinataire ; "
    "précisez un nom ou le début d'une adresse, par ex. (|(cn=dup*)(sn=dup*)(mail=dup*)). "
    "Cet annuaire sert à trouver des destinataires ; les besoins en masse sont servis par les fichiers "
    "d'extraction quotidiens. / "
    "search refused: filter too broad, {what_en} does not designate a recipient; give a name or the start "
    "of an address, e.g. (|(cn=dup*)(sn=dup*)(mail=dup*)). "
    "This address book is for looking up recipients; bulk needs are served by the daily extraction files."
)
SEARCH_FAILED = ("erreur interne sur ce filtre (journalisée) ; la connexion reste utilisable / "
                 "internal error on this filter (logged); the connection remains usable")
log = logging.getLogger("annuaire.ldap")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def parse_dn(dn: str) -> tuple[tuple[str, str], ...] | None:
    """Normalised RDNs of `dn` (types canonical/lowercase, values lowercase), None if invalid."""
    rdns: list[tuple[str, str]] = []
    text = dn.strip()
    if not text:
        return ()
    current: list[str] = []
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                return None
            nxt = text[i + 1]
            if _is_hex(text[i + 1:i + 3]):
                raw = bytearray()
                while text[i:i + 1] == "\\" and _is_hex(text[i + 1:i + 3]):
                    raw.append(int(text[i + 1:i + 3], 16))
                    i += 3
                current.append(raw.decode("utf-8", "replace"))
                continue
            current.append("\x00" + nxt)  # escaped: never a separator
            i += 2
            continue
        if ch in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    for part in parts:
        if "=" not in part:
            return None
        attr, value = part.split("=", 1)
        attr = attr.strip()
        if not attr:
            return None
        name = canonical(attr) or attr.lower()
        value = value.replace("\x00", "").strip()
        rdns.append((name.lower(), " ".join(value.lower().split())))
    return tuple(rdns)


@dataclass
class Selection:
    """Which attributes a search asked for."""

    all_user: bool
    all_oper: bool
    names: frozenset[str]
    slots: list[int] | None  # None = every user attribute
    oper: tuple[str, ...]


# Plans cached per worker. Kept small: a plan holds its candidate lists, and thousands
# of cached plans were young objects that every young-generation GC pass traversed
# (15-28 ms pauses, most of the p99 at half load; measured at national scale).
PLAN_CACHE = 256


@lru_cache(maxsize=1024)
def parse_dn_cached(dn: str) -> tuple[tuple[str, str], ...] | None:
    return parse_dn(dn)


@lru_cache(maxsize=4096)
def selection(attributes: tuple[str, ...]) -> Selection:
    lowered = [a.lower() for a in attributes]
    only_none = lowered == ["1.1"]
    all_user = not lowered or "*" in lowered
    all_oper = "+" in lowered
    names = frozenset(canonical(a) or a.split(";", 1)[0].lower() for a in lowered if a not in ("*", "+", "1.1"))
    if only_none:
        slots: list[int] | None = []
    elif all_user:
        slots = None
    else:
        slots = sorted(SLOT[a] for a in names if a in SLOT)
    oper = OPERATIONAL if all_oper else tuple(o for o in OPERATIONAL if o in names)
    if only_none:
        oper = ()
    return Selection(all_user and not only_none, all_oper, frozenset(x.lower() for x in names), slots, oper)


def _filter_text(f: m.Filter) -> str:
    try:
        return to_string(f)[:1000]
    except RecursionError:  # in-process callers may nest deeper than the decoder allows
        return "(a deeply nested filter)"


def _attribute(name: str, values: list[str], types_only: bool) -> bytes:
    body = b"" if types_only else b"".join(octets(v) for v in values)
    return tlv(SEQUENCE, octets(name) + tlv(SET, body))


def encode_generic(dn: str, attrs: dict[str, list[str]], sel: Selection, types_only: bool) -> bytes:
    """A SearchResultEntry for a small special entry (root DSE, subschema, containers)."""
    parts = []
    for name, values in attrs.items():
        if sel.all_user or sel.all_oper or name.lower() in sel.names:
            parts.append(_attribute(name, values, types_only))
    return tlv(0x64, octets(dn) + tlv(SEQUENCE, b"".join(parts)))


@dataclass
class Collected:
    refs: list = field(default_factory=list)  # int (mailbox id) or str (special entry)
    more: bool = False
    timed_out: bool = False
    error: m.LDAPResult | None = None


class Directory:
    """Search semantics over one index; the index may be swapped by the refresher."""

    def __init__(self, index: DirectoryIndex, base_dn: str = "o=annuaire-sante,c=fr", *,
                 tls: bool = False, min_chars: int = 3, unselective_share: float = 0.30,
                 unselective_floor: int = 1000) -> None:
        self.index = index
        self.base_dn = base_dn
        self.suffix = f"ou=mailboxes,{base_dn}"
        self.min_chars = min_chars
        # A component matching more entries than max(floor, share × published) is too broad (selective.py).
        self.unselective_share = unselective_share
        self.unselective_floor = unselective_floor
        self.context_rdns = parse_dn(base_dn) or ()
        if not self.context_rdns:
            raise ValueError(f"invalid base DN {base_dn!r}")
        self.tls = tls
        self._plans: dict[bytes, tuple] = {}
        # Freshness, kept by the refresher: the journal position the index reflects, and since
        # when it is known to be behind (a large backlog being rebuilt). `positions` gives the
        # lowest position of every worker of the service (the root DSE reports it).
        self.position = 0
        self.behind_since: float | None = None
        self.positions: Callable[[], int] | None = None
        first_type, first_value = base_dn.split(",", 1)[0].split("=", 1)
        first_type = first_type.strip().lower()
        ctx_class = {"o": "organization", "ou": "organizationalUnit", "dc": "domain"}.get(first_type, "organization")
        self.special: dict[str, tuple[str, dict[str, list[str]], frozenset[str], tuple]] = {}
        self._special("root", "", {
            "objectClass": ["top"],
            "namingContexts": [base_dn],
            "supportedLDAPVersion": ["3"],
            "supportedControl": [m.OID_PAGED_RESULTS],
            "supportedExtension": ([m.OID_START_TLS] if tls else []) + [m.OID_WHO_AM_I],
            "supportedSASLMechanisms": [],
            "subschemaSubentry": [SUBSCHEMA_DN],
            "vendorName": ["annuaire (MSSante national directory)"],
            "vendorVersion": ["0.1"],
        })
        self._special("subschema", SUBSCHEMA_DN, subschema_attributes())
        self._special("context", base_dn, {
            "objectClass": ["top", ctx_class],
            first_type: [first_value.strip()],
            "description": ["MSSante national directory of health secure messaging addresses"],
        })
        self._special("container", self.suffix, {
            "objectClass": ["top", "organizationalUnit"],
            "ou": ["mailboxes"],
            "description": ["Published MSSante mailboxes (one entry per address)"],
        })

    def _plan(self, req: m.SearchRequest):
        """Plan, compiled matcher and breadth (None: selective) of a filter, cached per
        (filter bytes, index version)."""
        index = self.index
        version = (id(index), index.generation)
        key = req.filter_raw
        if key:
            hit = self._plans.get(key)
            if hit is not None and hit[0] == version:
                return hit[1], hit[2], hit[3]
        plan = index.plan(req.filter, self.min_chars)
        matcher = compile_filter(req.filter, MAILBOX_OCS) if plan is not None and plan.restricting else None
        broad = None
        if matcher is not None:
            threshold = max(self.unselective_floor, int(self.unselective_share * index.live))
            broad = Selectivity(index, threshold, self.min_chars).broad(req.filter)
        if key:
            if len(self._plans) >= PLAN_CACHE:
                self._plans.clear()
            self._plans[key] = (version, plan, matcher, broad)
        return plan, matcher, broad

    def unselective_message(self, broad: Broad) -> str:
        if broad.domain:
            what_fr = f"({broad.attr}={broad.text}) ne porte que sur un domaine et"
            what_en = f"({broad.attr}={broad.text}) only names a domain and"
        elif broad.boxes:
            what_fr = (f"({broad.attr}={broad.text}), début d'un mot du nom de {broad.count} boîtes "
                       f"organisationnelles,")
            what_en = f"({broad.attr}={broad.text}), the start of a word of {broad.count} organisational boxes' names,"
        elif broad.text:
            share = 100.0 * broad.count / max(1, self.index.live)
            what_fr = f"({broad.attr}{'' if broad.text.startswith(('=', '~=')) else '='}{broad.text}), " \
                      f"présent dans {share:.0f} % des entrées,"
            what_en = f"({broad.attr}{'' if broad.text.startswith(('=', '~=')) else '='}{broad.text}), " \
                      f"found in {share:.0f} % of the entries,"
        else:
            what_fr, what_en = "ce filtre", "this filter"
        return UNSELECTIVE.format(what_fr=what_fr, what_en=what_en)

    def _special(self, key: str, dn: str, attrs: dict[str, list[str]]) -> None:
        attrs = {k: v for k, v in attrs.items() if v}
        ocs = frozenset(v.lower() for v in attrs.get("objectClass", []))
        norm: list[str | None] = [None] * NSLOTS
        for name, values in attrs.items():
            c = canonical(name)
            if c in SLOT and c != "objectClass":
                norm[SLOT[c]] = normalise("name", values[0])
        self.special[key] = (dn, attrs, ocs, tuple(norm))

    def _special_matches(self, key: str, f: m.Filter) -> bool:
        _, _, ocs, norm = self.special[key]
        return compile_filter(f, ocs)(norm) is True

    # --- search -----------------------------------------------------------------------

    def collect(self, req: m.SearchRequest, want: int, deadline: float) -> Collected:
        """Up to `want` matching references, best first; `more` tells whether others exist."""
        out = Collected()
        problem = has_unsupported(req.filter)
        if problem:
            out.error = m.LDAPResult(m.INAPPROPRIATE_MATCHING, "", problem)
            return out
        base = parse_dn_cached(req.base)
        if base is None:
            out.error = m.LDAPResult(m.INVALID_DN_SYNTAX, "", f"invalid base DN {req.base!r}")
            return out
        scope = req.scope
        specials: list[str] = []
        mailboxes = False
        single: int | None = None
        if base == ():
            if scope == m.SCOPE_BASE:
                specials = ["root"]
            elif scope == m.SCOPE_ONE:
                specials = ["context"]
            else:
                specials, mailboxes = ["context", "container"], True
        elif base == (("cn", "subschema"),):
            specials = ["subschema"] if scope != m.SCOPE_ONE else []
        else:
            nctx = len(self.context_rdns)
            if len(base) < nctx or base[-nctx:] != self.context_rdns:
                out.error = m.LDAPResult(m.NO_SUCH_OBJECT, "", f"{req.base} is not in this directory "
                                                                f"(naming context {self.base_dn})")
                return out
            rel = base[:-nctx]
            if rel == ():
                specials = {m.SCOPE_BASE: ["context"], m.SCOPE_ONE: ["container"]}.get(scope, ["context", "container"])
                mailboxes = scope == m.SCOPE_SUB
            elif rel == (("ou", "mailboxes"),):
                specials = [] if scope == m.SCOPE_ONE else ["container"]
                mailboxes = scope != m.SCOPE_BASE
            elif len(rel) == 2 and rel[1] == ("ou", "mailboxes") and rel[0][0] == "mail":
                single = self.index.by_mail.get(rel[0][1])
                if single is None:
                    out.error = m.LDAPResult(m.NO_SUCH_OBJECT, self.suffix, f"no published mailbox {rel[0][1]}")
                    return out
                if scope == m.SCOPE_ONE:
                    single = None
            else:
                matched = self.suffix if rel[-1] == ("ou", "mailboxes") else self.base_dn
                out.error = m.LDAPResult(m.NO_SUCH_OBJECT, matched, f"no such entry {req.base}")
                return out
        try:
            refs = out.refs
            for key in specials:
                if self._special_matches(key, req.filter):
                    refs.append(key)
            if single is not None:
                entry = self.index.entries[single]
                if entry is not None and compile_filter(req.filter, MAILBOX_OCS)(entry[0]) is True:
                    refs.append(single)
            if mailboxes:
                plan, matcher, broad = self._plan(req)
                if plan is None or not plan.restricting:
                    out.refs = []
                    attrs = ", ".join(RESTRICTING)
                    out.error = m.LDAPResult(m.UNWILLING_TO_PERFORM, "",
                                             REFUSAL.format(attrs=attrs, n=self.min_chars))
                    return out
                if broad is not None:
                    out.refs = []
                    out.error = m.LDAPResult(m.UNWILLING_TO_PERFORM, "", self.unselective_message(broad))
                    return out
                entries = self.index.entries
                now = time.monotonic
                for i, eid in enumerate(self.index.candidates(plan)):
                    if not i & 63 and now() > deadline:
                        out.timed_out = True
                        break
                    if matcher(entries[eid][0]) is True:  # type: ignore[index]  # candidates are live entries (not None)
                        refs.append(eid)
                        if len(refs) > want:
                            break
            if len(refs) > want:
                del refs[want:]
                out.more = True
        except UnsupportedFilter as exc:
            out.refs = []
            out.error = m.LDAPResult(m.INAPPROPRIATE_MATCHING, "", str(exc))
        except Exception:  # a bug on one filter answers that search; the connection stays
            log.exception("LDAP search failed on filter %s", _filter_text(req.filter))
            out.refs = []
            out.more = out.timed_out = False
            out.error = m.LDAPResult(m.OTHER, "", SEARCH_FAILED)
        return out

    def entry_hash(self, ref: int | str) -> int | None:
        """`hash()` of a mailbox entry's address (None for special entries and entries gone): the
        same in every forked worker, and cached by the string."""
        if isinstance(ref, int):
            entry = self.index.entries[ref]
            if entry is not None:
                return hash(entry[0][_MAIL])
        return None

    def message(self, mid_tlv: bytes, ref: int | str, sel: Selection, types_only: bool) -> bytes | None:
        """The LDAPMessage (SearchResultEntry) for one reference; None when the entry has gone."""
        if isinstance(ref, int) and not types_only:
            entry = self.index.entries[ref]
            if entry is None:
                return None
            blob = entry[1]
            extra = b""
            if sel.oper:
                extra = b"".join(_attribute(o, self._operational(o, blob), False) for o in sel.oper)
            return entry_message(mid_tlv, blob, sel.slots, extra)
        op = self.encode(ref, sel, types_only)
        return None if op is None else tlv(SEQUENCE, mid_tlv + op)

    def encode(self, ref: int | str, sel: Selection, types_only: bool) -> bytes | None:
        """SearchResultEntry op bytes for one reference (None when the entry has gone)."""
        if isinstance(ref, str):
            dn, attrs, _, _ = self.special[ref]
            if ref == "root":
                attrs = {**attrs, **self._freshness()}
            return encode_generic(dn, attrs, sel, types_only)
        entry = self.index.entries[ref]
        if entry is None:
            return None
        blob = entry[1]
        if types_only:
            return entry_types_only_op(blob, sel.slots, sel.oper)
        extra = b""
        if sel.oper:
            extra = b"".join(_attribute(o, self._operational(o, blob), False) for o in sel.oper)
        return entry_op(blob, sel.slots, extra)

    def _freshness(self) -> dict[str, list[str]]:
        """Root DSE attributes saying how current the index is (clients and tests wait on them)."""
        position = self.positions() if self.positions is not None else self.position
        out = {"annuaireJournalPosition": [str(position)]}
        behind = self.behind_seconds()
        if behind is not None:
            out["annuaireBehindSeconds"] = [f"{behind:.0f}"]
        return out

    def behind_seconds(self) -> float | None:
        """Seconds this index has been known to be behind the store (None when current)."""
        since = self.behind_since
        return None if since is None else time.monotonic() - since

    def freshness_note(self) -> str:
        """The diagnostic message of a search answered from an index known to be behind the store."""
        behind = self.behind_seconds()
        if behind is None or behind < STALE_AFTER:
            return ""
        return (f"index en cours de reconstruction depuis {behind:.0f} s : les changements récents peuvent manquer / "
                f"index being rebuilt for {behind:.0f} s: recent changes may be missing")

    @staticmethod
    def _operational(name: str, blob: bytes) -> list[str]:
        if name == "entryDN":
            return [entry_dn(blob)]
        return {"structuralObjectClass": ["inetOrgPerson"], "subschemaSubentry": [SUBSCHEMA_DN],
                "hasSubordinates": ["FALSE"]}[name]
