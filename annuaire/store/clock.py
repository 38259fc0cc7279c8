"""Timestamps as stored: UTC, fixed width, so that text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    return datetime.now(UTC).strftime(FORMAT)


def to_stored(moment: datetime) -> str:
    """Any aware datetime (naive = UTC) to the stored form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(FORMAT)


def from_stored(text: str) -> datetime:
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
