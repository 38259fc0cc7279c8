"""Operators, their domains and credentials; the domain whitelist XML.

An operator publishes the mailboxes of the domains it owns (a domain belongs
to at most one operator). It proves who it is with an API token (shown once,
stored as a keyed HMAC-SHA-256, see annuaire.store.credentials; a token may
carry an expiry date) or a TLS client certificate whose subject DN is
registered. Tokens read `ann_<operator id>_<secret>` so that checking one
costs one row read and one hash, never a scan of every operator. A token
stored by an earlier version as a salted scrypt hash still works, and is
stored again in the HMAC form at its first successful use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from sqlalchemy import Connection, func, insert, select, update

from annuaire.errors import (
    BadToken,
    Conflict,
    InvalidInput,
    NotFound,
    TokenExpired,
    TooManyRequests,
    Unauthorized,
)
from annuaire.mailboxes.rules import normalise_domain, valid_domain
from annuaire.store import Store, credentials
from annuaire.store.clock import utc_now
from annuaire.store.schema import domain, mailbox, operator
from annuaire.store.select import mark

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ann_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # the former stored form, still read (see the module docstring)
SECRET_LENGTHS = range(20, 200)  # issued secrets are 43 characters; anything far off is not looked up
WHITELIST_NAMESPACE = "https://listeblanche.mssante.fr/schema"


@dataclass
class Operator:
    id: int
    name: str
    cert_dn: str | None = None
    contact: str | None = None
    support_contact: str | None = None
    created_at: str = ""
    domains: list[str] = field(default_factory=list)  # empty when it comes from authentication
    token_expires_at: str | None = None
    token_last_used: str | None = None


# --- tokens -----------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The former stored form, a salted scrypt hash `scrypt$n$r$p$salt$hash` (kept for tests of
    the migration: new tokens are stored with annuaire.store.credentials.digest)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_token(token: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            token.encode(), salt=base64.urlsafe_b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.urlsafe_b64decode(expected))


class _VerifiedTokens:
    """Tokens already verified against a stored hash, so that scrypt runs once per token.

    Keyed by a SHA-256 of the token; the value is the stored hash it matched.
    A rotated token no longer matches the operator's current hash, so rotation
    takes effect at once.
    """

    def __init__(self, size: int = 4096) -> None:
        self._seen: dict[bytes, str] = {}
        self._size = size
        self._lock = threading.Lock()

    def seen(self, token: str, stored: str) -> bool:
        """Already verified against `stored` (no scrypt needed)."""
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            return self._seen.get(key) == stored

    def matches(self, token: str, stored: str) -> bool:
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            if self._seen.get(key) == stored:
                return True
        if not verify_token(token, stored):
            return False
        with self._lock:
            if len(self._seen) >= self._size:
                self._seen.clear()
            self._seen[key] = stored
        return True


_verified = _VerifiedTokens()


def new_token(operator_id: int) -> str:
    return f"{TOKEN_PREFIX}{operator_id}_{secrets.token_urlsafe(32)}"


def token_operator_id(token: str) -> int | None:
    """The operator id a token names (`ann_<id>_…`), None when it is not shaped like one.
    ASCII digits of at most 18 (an id the store can hold): never an overflow downstream."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    ident, _, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not (ident.isascii() and ident.isdigit() and len(ident) <= 18) or len(secret) not in SECRET_LENGTHS:
        return None
    return int(ident)


_last_use = credentials.LastUse()
_INVALID = "invalid API token (expected 'Authorization: Bearer ann_…'; ask for a new one if it was rotated)"


def authenticate_token(conn: Connection, token: str, *, slow_allowed: Callable[[int], bool] | None = None) -> Operator:
    """The operator owning this token; BadToken when it does not authenticate, Unauthorized
    when it expired.

    A token still stored in the former scrypt form costs a scrypt the first time it is seen
    (then it is stored again in the HMAC form); `slow_allowed(operator_id)` False refuses
    (TooManyRequests) rather than run one for a token not verified yet.
    """
    op_id = token_operator_id(token)
    if op_id is None:
        raise BadToken(_INVALID)
    row = conn.exec_driver_sql(  # hot path (every request): no SQL expression building
        "SELECT id, name, cert_dn, token_hash, contact, support_contact, created_at, token_expires_at, "
        f"token_last_used FROM operator WHERE id = {mark(conn)}",
        (op_id,),
    ).mappings().first()
    if row is None or not row["token_hash"]:
        raise BadToken(_INVALID, op_id if row is not None else None)
    stored = row["token_hash"]
    key = credentials.server_key(conn)
    if credentials.is_current(stored):
        ok = credentials.matches(key, token, stored)
    else:  # scrypt: upgrade at the first success
        if slow_allowed is not None and not _verified.seen(token, stored) and not slow_allowed(op_id):
            raise TooManyRequests(f"too many failed authentications for operator {row['name']!r}; retry later", 60)
        ok = _verified.matches(token, stored)
        if ok:
            _upgrade(conn, op_id, stored, credentials.digest(key, token))
    if not ok:
        raise BadToken(_INVALID, op_id)
    if credentials.expired(row["token_expires_at"]):
        raise TokenExpired(f"the API token of operator {row['name']!r} expired on "
                           f"{credentials.shown_expiry(row['token_expires_at'])}; ask for a new one "
                           "(annuaire operator rotate)")
    if _last_use.due("operator", op_id):
        _record_use(conn, op_id)
    return _operator(conn, row, with_domains=False)


def _upgrade(conn: Connection, op_id: int, old: str, new: str) -> None:
    """Store a verified scrypt-hashed token again in the HMAC form (unless rotated meanwhile)."""

    def work(writer: Connection) -> None:
        writer.execute(update(operator).where(operator.c.id == op_id, operator.c.token_hash == old)
                       .values(token_hash=new))
        log.info("operator %d: API token hash upgraded from scrypt to HMAC-SHA-256", op_id)

    credentials.writer.submit(conn.engine, work)


def _record_use(conn: Connection, op_id: int) -> None:
    now = utc_now()
    credentials.writer.submit(conn.engine, lambda writer: writer.execute(
        update(operator).where(operator.c.id == op_id).values(token_last_used=now)))


def normalise_dn(dn: str) -> tuple[str, ...]:
    """A subject DN compared by its attributes, whatever their order, spacing or case of the types."""
    parts, current, escaped = [], [], False
    for ch in dn:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    normal = []
    for part in parts:
        kind, _, value = part.strip().partition("=")
        if kind.strip():
            normal.append(f"{kind.strip().upper()}={value.strip()}")
    return tuple(sorted(normal))


def authenticate_dn(conn: Connection, dn: str) -> Operator:
    """The operator whose registered certificate subject DN is `dn`, or Unauthorized."""
    wanted = normalise_dn(dn)
    for row in conn.execute(select(operator).where(operator.c.cert_dn.is_not(None))).mappings():
        if normalise_dn(row["cert_dn"]) == wanted:
            return _operator(conn, row, with_domains=False)
    raise Unauthorized(f"the client certificate {dn!r} is not registered for any operator")


# --- operators and domains ---------------------------------------------------------------


def domains_of(conn: Connection, operator_id: int) -> list[str]:
    return [d for (d,) in conn.exec_driver_sql(
        f"SELECT name FROM domain WHERE operator_id = {mark(conn)} ORDER BY name", (operator_id,)
    )]


def _operator(conn: Connection, row, *, with_domains: bool = True) -> Operator:
    """An Operator from its row; authentication (every request) skips the list of domains."""
    names = domains_of(conn, row["id"]) if with_domains else []
    return Operator(row["id"], row["name"], row["cert_dn"], row["contact"], row["support_contact"], row["created_at"],
                    names, row.get("token_expires_at"), row.get("token_last_used"))


def get_operator(conn: Connection, name: str) -> Operator:
    row = conn.execute(select(operator).where(operator.c.name == name)).mappings().first()
    if row is None:
        known = [n for (n,) in conn.execute(select(operator.c.name).order_by(operator.c.name).limit(20))]
        hint = f" (known: {', '.join(known)})" if known else " (none registered yet: use 'annuaire operator add')"
        raise NotFound(f"no operator named {name!r}{hint}")
    return _operator(conn, row)


def list_operators(store: Store) -> list[Operator]:
    with store.read() as conn:
        rows = conn.execute(select(operator).order_by(operator.c.name)).mappings().all()
        return [_operator(conn, row) for row in rows]


def _check_domains(names: list[str]) -> list[str]:
    clean = []
    for name in names:
        normal = normalise_domain(name)
        if not valid_domain(normal):
            raise InvalidInput(f"{name!r} is not a valid mail domain (e.g. ch-exemple.mssante.fr)")
        clean.append(normal)
    return list(dict.fromkeys(clean))


def _attach(conn: Connection, op: Operator, names: list[str], now: str) -> None:
    for name in names:
        row = conn.execute(select(domain.c.operator_id).where(domain.c.name == name)).first()
        if row is None:
            conn.execute(insert(domain).values(name=name, operator_id=op.id, version=0, created_at=now))
        elif row[0] is None:  # a domain known from the national mirror: the operator takes it over
            conn.execute(update(domain).where(domain.c.name == name).values(operator_id=op.id))
        elif row[0] != op.id:
            owner = conn.execute(select(operator.c.name).where(operator.c.id == row[0])).scalar()
            raise Conflict(f"domain {name} already belongs to operator {owner!r}; remove it there first")


def add_operator(
    store: Store, name: str, domains: list[str], *, cert_dn: str | None = None,
    contact: str | None = None, support_contact: str | None = None, expires: str | None = None,
) -> tuple[Operator, str]:
    """Register an operator and its domains; returns it and its new token (shown once).
    `expires`: the token's expiry (a date = the end of that day, UTC; see credentials.parse_expiry)."""
    expires_at = credentials.parse_expiry(expires)
    key = credentials.store_key(store)
    name = name.strip()
    if not name:
        raise InvalidInput("the operator name is empty")
    names = _check_domains(domains)
    now = utc_now()
    with store.write() as conn:
        if conn.execute(select(operator.c.id).where(operator.c.name == name)).first():
            raise Conflict(f"operator {name!r} already exists (use 'annuaire operator token {name}' for a new token)")
        inserted = conn.execute(
            insert(operator).values(name=name, cert_dn=cert_dn or None, contact=contact, support_contact=support_contact,
                                    created_at=now)
        ).inserted_primary_key
        assert inserted is not None  # an INSERT of one row
        op_id = inserted[0]
        token = new_token(op_id)
        conn.execute(update(operator).where(operator.c.id == op_id).values(
            token_hash=credentials.digest(key, token), token_expires_at=expires_at))
        op = Operator(op_id, name, cert_dn, contact, support_contact, now)
        _attach(conn, op, names, now)
        return _operator(conn, conn.execute(select(operator).where(operator.c.id == op_id)).mappings().one()), token


def rotate_token(store: Store, name: str, *, expires: str | None = None) -> str:
    """A new token for the operator; the old one stops working at once. `expires`: the new
    token's expiry (none when not given)."""
    expires_at = credentials.parse_expiry(expires)
    key = credentials.store_key(store)
    with store.write() as conn:
        op = get_operator(conn, name)
        token = new_token(op.id)
        conn.execute(update(operator).where(operator.c.id == op.id).values(
            token_hash=credentials.digest(key, token), token_expires_at=expires_at,
            token_last_used=None))
        return token


def find_operator(store: Store, name: str) -> Operator:
    """The operator named `name` (NotFound lists the known ones)."""
    with store.read() as conn:
        return get_operator(conn, name)


def set_cert_dn(store: Store, name: str, cert_dn: str | None) -> None:
    with store.write() as conn:
        op = get_operator(conn, name)
        conn.execute(update(operator).where(operator.c.id == op.id).values(cert_dn=cert_dn or None))


def add_domains(store: Store, name: str, domains: list[str]) -> Operator:
    names = _check_domains(domains)
    with store.write() as conn:
        op = get_operator(conn, name)
        _attach(conn, op, names, utc_now())
        return get_operator(conn, name)


def remove_domains(store: Store, name: str, domains: list[str]) -> Operator:
    """Detach domains from the operator. Their mailboxes stay published as they are
    (the national mirror, if imported, takes the domain over)."""
    names = _check_domains(domains)
    with store.write() as conn:
        op = get_operator(conn, name)
        for d in names:
            if d not in op.domains:
                raise NotFound(f"domain {d} does not belong to operator {name!r} (its domains: {', '.join(op.domains) or 'none'})")
        conn.execute(update(domain).where(domain.c.name.in_(names)).values(operator_id=None))
        return get_operator(conn, name)


def domain_counts(store: Store) -> dict[str, int]:
    """Active mailboxes per domain."""
    with store.read() as conn:
        query = select(mailbox.c.domain, func.count()).where(mailbox.c.active).group_by(mailbox.c.domain)
        return dict(conn.execute(query).all())


# --- the whitelist -----------------------------------------------------------------------


def whitelist_xml(store: Store, *, generated_at: str | None = None) -> bytes:
    """Operator domains in the national `listeblanchemssante.xml` layout (one Domaine per domain)."""
    stamp = generated_at or utc_now()
    with store.read() as conn:
        return whitelist_document(whitelist_rows(conn), stamp)


def whitelist_rows(conn: Connection) -> list[dict]:
    """Everything the whitelist says, one mapping per domain (what the served whitelist
    fingerprints: annuaire.mailboxes.whitelist)."""
    query = (
        select(domain.c.name, domain.c.description, domain.c.last_published, domain.c.created_at,
               operator.c.cert_dn, operator.c.contact, operator.c.support_contact)
        .join(operator, operator.c.id == domain.c.operator_id)
        .order_by(domain.c.name)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def whitelist_document(rows: list[dict], generated_at: str) -> bytes:
    """The `listeblanchemssante.xml` document of `whitelist_rows`."""
    ET.register_namespace("", WHITELIST_NAMESPACE)
    ns = f"{{{WHITELIST_NAMESPACE}}}"
    root = ET.Element(f"{ns}ListeBlancheMSSante")
    ET.SubElement(root, f"{ns}DateDeGeneration").text = _xml_time(generated_at)
    domains_el = ET.SubElement(root, f"{ns}ListeDomaines")
    for row in rows:
        el = ET.SubElement(domains_el, f"{ns}Domaine")
        ET.SubElement(el, f"{ns}Nom").text = row["name"]
        ET.SubElement(el, f"{ns}Description").text = row["description"] or ""
        ET.SubElement(el, f"{ns}DNCertificatOperateur").text = row["cert_dn"] or ""
        ET.SubElement(el, f"{ns}ResponsableContact").text = row["contact"] or ""
        ET.SubElement(el, f"{ns}SupportContact").text = row["support_contact"] or ""
        ET.SubElement(el, f"{ns}DateMAJ").text = _xml_time(row["last_published"] or row["created_at"])
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def _xml_time(stored: str) -> str:
    """`2026-11-25T03:00:00.123456Z` -> `2026-11-25T03:00:00Z` (xs:dateTime)."""
    return stored[:19] + "Z"
