"""How long each step of `generate` takes, roughly: the weights behind its overall time left.

Seconds per 100,000 professionals, measured on the reference machine (2 cores; 300,000
professionals in 27-29 s). Only their proportions matter (annuaire.progress.Overall).
"""

from __future__ import annotations

PER_100K = {
    "professionals": 4.1,
    "mailboxes": 1.05,
    "PS_LibreAcces_Personne_activite": 3.4,
    "Extraction_Correspondance_MSSante": 0.6,
}
CHURN_DAY = 0.033  # one day of changes


def weight(step: str, professionals: int) -> float:
    return PER_100K[step] * professionals / 100_000


def churn(days: int, professionals: int) -> float:
    return CHURN_DAY * days * professionals / 100_000


def whole(professionals: int, days: int) -> float:
    """The weight of generating a world of `professionals` at day `days`."""
    return sum(PER_100K.values()) * professionals / 100_000 + churn(days, professionals)
