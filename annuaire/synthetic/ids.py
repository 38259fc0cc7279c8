"""Identifier allocation: RPPS, ADELI, FINESS, SIREN/SIRET, cabinet ids.

Every allocator draws increasing numbers with random gaps, so identifiers are
unique by construction (no set to consult) and look irregular. RPPS, FINESS,
SIREN and SIRET carry a valid Luhn check digit like the real ones.
"""

from __future__ import annotations

from random import Random

# bytes.translate tables: a digit character -> its value, or its doubled-and-folded value (others -> 0).
_KEEP = bytes((c - 48) if 48 <= c <= 57 else 0 for c in range(256))
_DOUBLE = bytes((((c - 48) * 2) % 9 or (9 if c == 57 else 0)) if 48 <= c <= 57 else 0 for c in range(256))


def luhn_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn check (non-digits count as 0)."""
    reverse = payload.encode("ascii")[::-1]
    total = sum(reverse[0::2].translate(_DOUBLE)) + sum(reverse[1::2].translate(_KEEP))
    return str((10 - total % 10) % 10)


class Identifiers:
    """All identifier sequences of one world (part of its state: churn continues them)."""

    def __init__(self, capacity: int) -> None:
        # RPPS: 10 digits in [1e9, 3e9) + check digit -> 11 digits starting with 1 or 2.
        self.rpps_stride = max(1, 2_000_000_000 // max(capacity, 1))
        self.rpps_next = 0
        self.adeli: dict[str, int] = {}
        self.finess: dict[str, int] = {}
        self.siren_next = 0
        self.cabinet_next = 0

    def rpps(self, rng: Random) -> str:
        k = self.rpps_next
        self.rpps_next += 1
        base = str(1_000_000_000 + k * self.rpps_stride + int(rng.random() * self.rpps_stride))
        return base + luhn_digit(base)

    def adeli_number(self, rng: Random, dept: str, prof: str) -> str:
        """9 digits: département (2), profession (2), sequence (5)."""
        prefix = ("20" if dept in ("2A", "2B") else dept[:2]) + prof
        n = self.adeli.get(prefix, rng.randrange(50))
        self.adeli[prefix] = n + 1 + rng.randrange(3)
        return f"{prefix}{n % 100000:05d}"

    def finess_number(self, rng: Random, dept: str) -> str:
        """9 characters: département on 2 (overseas `97`+digit on 3), sequence, check digit."""
        prefix = f"97{dept[2]}" if len(dept) == 3 else dept
        width = 8 - len(prefix)
        n = self.finess.get(prefix, 100 + rng.randrange(1000))
        self.finess[prefix] = n + 1 + rng.randrange(9)
        body = f"{prefix}{n % 10 ** width:0{width}d}"
        return body + luhn_digit(body.replace("A", "0").replace("B", "0"))

    def siren(self, rng: Random) -> str:
        k = self.siren_next
        self.siren_next += 1
        base = str(30_000_000 + k * 31 + rng.randrange(31))[-8:]
        return base + luhn_digit(base)

    @staticmethod
    def siret(siren: str, nic: int) -> str:
        body = f"{siren}{nic:04d}"
        return body + luhn_digit(body)

    def adeli_cabinet(self, rng: Random, dept: str) -> str:
        """9 digits, ADELI cabinet number (`C` + it in the technical id, `0` + it as old id)."""
        k = self.cabinet_next
        self.cabinet_next += 1
        prefix = "20" if dept in ("2A", "2B") else dept[:2]
        return f"{prefix}9{(k * 7 + rng.randrange(7)) % 1_000_000:06d}"
