"""Store URLs: the default and the accepted spellings (no database driver needed)."""

from __future__ import annotations


def default_url() -> str:
    """`ANNUAIRE_DB`, else an SQLite file in the current directory (read by annuaire.config)."""
    from annuaire.config import store_url

    return store_url()


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs; a bare path as SQLite."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if "://" not in url:
        url = f"sqlite:///{url}"
    return url
