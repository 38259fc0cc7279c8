"""LDAP consultation accounts (`annuaire ldap-account add NAME`): hashing, lookup, bind names.

An account binds with the DN `cn=NAME,ou=accounts,<base DN>` (or just `NAME`)
and a password; it may carry its own size limit, entries-per-minute budget
and daily allowance of distinct entries (table `ldap_account`; the daily
allowance column comes with migration 0012). Passwords are stored as scrypt
hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import select

from annuaire.errors import Conflict, InvalidInput, NotFound
from annuaire.store import Store
from annuaire.store.schema import ldap_account

_N, _R, _P = 2**14, 8, 1
# The column added by migration 0012 (a lightweight view of the table: annuaire.store.schema
# describes the table as created by the baseline).
_allowance = sa.table("ldap_account", sa.column("id", sa.Integer), sa.column("daily_allowance", sa.Integer))


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str
    size_limit: int | None
    entries_per_minute: int | None
    daily_allowance: int | None = None  # distinct entries a sliding day (None: the default share)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: bytes, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def account_dn(name: str, base_dn: str) -> str:
    return f"cn={name},ou=accounts,{base_dn}"


def bind_account_name(bind_dn: str, base_dn: str) -> str:
    """The account name a bind DN designates (`cn=NAME,ou=accounts,<base>` or `NAME`)."""
    from annuaire.ldap.directory import parse_dn

    rdns = parse_dn(bind_dn)
    base = parse_dn(base_dn) or ()
    if rdns and len(rdns) == len(base) + 2 and rdns[2:] == base and rdns[1] == ("ou", "accounts") \
            and rdns[0][0] == "cn":
        return rdns[0][1]
    if "=" not in bind_dn:
        return bind_dn.strip().lower()
    return ""


def load_accounts(store: Store) -> dict[str, Account]:
    with store.read() as conn:
        rows = conn.execute(
            select(ldap_account.c.name, ldap_account.c.password_hash, ldap_account.c.size_limit,
                   ldap_account.c.entries_per_minute,
                   sa.literal_column("ldap_account.daily_allowance", sa.Integer).label("daily_allowance"))
            .where(ldap_account.c.active.is_(True))
        ).all()
    return {r.name.lower(): Account(r.name, r.password_hash, r.size_limit, r.entries_per_minute, r.daily_allowance)
            for r in rows}


def add_account(store: Store, name: str, password: str, *, size_limit: int | None = None,
                entries_per_minute: int | None = None, daily_allowance: int | None = None) -> None:
    name = name.strip()
    if not name or any(c in name for c in ",=+\\\"<>;#") or name != name.lower():
        raise InvalidInput(f"account name {name!r} must be lowercase, without , = + \\ \" < > ; #")
    if len(password) < 12:
        raise InvalidInput("the password must have at least 12 characters")
    for option, value in (("--size-limit", size_limit), ("--entries-per-minute", entries_per_minute),
                          ("--daily-allowance", daily_allowance)):
        if value is not None and not 1 <= value <= 2**31 - 1:
            raise InvalidInput(f"{option} must be between 1 and {2**31 - 1}, got {value}")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with store.write() as conn:
        existing = conn.execute(select(ldap_account.c.id, ldap_account.c.active)
                                .where(ldap_account.c.name == name)).first()
        values = {"password_hash": hash_password(password), "size_limit": size_limit,
                      "entries_per_minute": entries_per_minute, "active": True}
        if existing is not None and existing.active:
            raise Conflict(f"LDAP account {name!r} already exists; remove it first or choose another name")
        if existing is not None:
            conn.execute(ldap_account.update().where(ldap_account.c.id == existing.id).values(**values))
            ident = existing.id
        else:
            key = conn.execute(ldap_account.insert().values(name=name, created_at=now, **values)
                               ).inserted_primary_key
            assert key is not None  # an INSERT of one row
            ident = key[0]
        conn.execute(_allowance.update().where(_allowance.c.id == ident).values(daily_allowance=daily_allowance))


def remove_account(store: Store, name: str) -> None:
    with store.write() as conn:
        result = conn.execute(ldap_account.update().where(ldap_account.c.name == name.strip(),
                                                          ldap_account.c.active.is_(True)).values(active=False))
        if result.rowcount == 0:
            raise NotFound(f"no active LDAP account named {name!r}")
