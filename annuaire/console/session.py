"""Console sessions: a signed, expiring cookie; a CSRF token per session.

Why signed and not stored: `annuaire serve` runs several worker processes and
the store has no session table; the cookie is signed with a key derived from
the server secret (ANNUAIRE_SECRET, else the store's credentials key shared by
every worker), so any worker checks it. It carries no token: only the operator
id, times, the CSRF token and a fingerprint of the operator's credential, so a
rotated token or a changed certificate DN ends every session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

COOKIE = "annuaire_console"
PRE_COOKIE = "annuaire_console_connexion"  # CSRF of the sign-in form (no session yet)
PATH = "/operateurs"
IDLE = 30 * 60  # seconds without a page before the session ends
LIFETIME = 8 * 3600  # seconds after sign-in, whatever the activity


@dataclass(frozen=True)
class Session:
    operator_id: int
    credential: str  # fingerprint of what signed in (token hash or certificate DN)
    csrf: str
    issued: float
    seen: float


class Signer:
    """Signs and checks cookie values with one key (HMAC-SHA-256)."""

    def __init__(self, base: bytes) -> None:
        self.key = hmac.new(base, b"annuaire console session v1", hashlib.sha256).digest()

    def _mac(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, data, hashlib.sha256).digest()).decode().rstrip("=")

    def fingerprint(self, credential: str) -> str:
        return self._mac(b"credential:" + credential.encode())[:22]

    def sign(self, session: Session) -> str:
        payload = orjson.dumps({"o": session.operator_id, "f": session.credential, "c": session.csrf,
                                "i": session.issued, "s": session.seen})
        data = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{data}.{self._mac(data.encode())}"

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie value; None when absent, forged or expired."""
        if not value or value.count(".") != 1 or len(value) > 1000:
            return None
        data, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(data.encode())):
            return None
        try:
            raw = orjson.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            session = Session(int(raw["o"]), str(raw["f"]), str(raw["c"]), float(raw["i"]), float(raw["s"]))
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        if now - session.seen > IDLE or now - session.issued > LIFETIME:
            return None
        return session


def new_session(operator_id: int, credential: str) -> Session:
    now = time.time()
    return Session(operator_id, credential, secrets.token_urlsafe(24), now, now)


def touched(session: Session) -> Session:
    return Session(session.operator_id, session.credential, session.csrf, session.issued, time.time())


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two form/cookie values (False when one is missing)."""
    return bool(a and b and hmac.compare_digest(a.encode(), b.encode()))
