"""Resource bodies stored compressed: zstd, with a dictionary learnt from the directory's own resources.

A rendered resource is ~1.7 KB of JSON whose keys, code systems and URLs repeat in every
resource (8 GB of the national cache). Compressed one by one with a dictionary trained on a
sample of them, a body keeps a fraction of that, and decompressing it costs a few
microseconds, which a search pays for each entry it returns.

A stored body is either raw JSON (it starts with `{`) or one zstd frame whose header names
its dictionary (0: none). Dictionaries live in `fhir_dictionary`, one row each, never changed
or deleted while a stored body may name them; the newest is the one new bodies use. One is
trained when a full pass starts into a cache that has none (`ensure_dictionary`). Their ids
are random (zstd dictionary ids): a process that serves several stores (tests) keeps each
store's dictionaries apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from threading import get_ident

import zstandard
from sqlalchemy import Connection, select

from annuaire.fhir.tables import fhir_dictionary
from annuaire.store.clock import utc_now

LEVEL = 3  # higher levels: a few % smaller for twice the CPU of a render
DICTIONARY_BYTES = 64 * 1024
MIN_SAMPLES = 200  # below this, zstd cannot train: bodies are compressed without a dictionary

Pack = Callable[[bytes], bytes]

_dictionaries: dict[int, zstandard.ZstdCompressionDict] = {}
# zstd contexts are not thread-safe: one per (thread, dictionary). (A search unpacks ~50 bodies of
# ~1 µs each: finding its thread's own through a threading.local cost a third of that. A thread's
# ident may be reused once it has ended: its contexts with it.)
_compressors: dict[tuple[int, int], zstandard.ZstdCompressor] = {}
_decompressors: dict[tuple[int, int], zstandard.ZstdDecompressor] = {}


def _dictionary(conn: Connection, dict_id: int) -> zstandard.ZstdCompressionDict:
    known = _dictionaries.get(dict_id)
    if known is None:
        data = conn.execute(select(fhir_dictionary.c.data).where(fhir_dictionary.c.id == dict_id)).scalar()
        if data is None:
            raise LookupError(f"FHIR cache: a stored resource needs compression dictionary {dict_id}, "
                              "which the store does not hold; rebuild the cache with `annuaire fhir render --full`")
        known = _dictionaries[dict_id] = zstandard.ZstdCompressionDict(bytes(data))
        known.precompute_compress(level=LEVEL)
    return known


def unpack(conn: Connection, stored: bytes | memoryview) -> bytes:
    """The JSON of a stored body."""
    blob = bytes(stored)
    if blob[:1] == b"{":
        return blob
    dict_id = zstandard.get_frame_parameters(blob).dict_id
    decompressor = _decompressors.get((get_ident(), dict_id))
    if decompressor is None:
        decompressor = _decompressors[get_ident(), dict_id] = zstandard.ZstdDecompressor(
            dict_data=_dictionary(conn, dict_id) if dict_id else None)
    return decompressor.decompress(blob)


def packer(conn: Connection) -> Pack:
    """How to store new bodies: compressed with the store's newest dictionary."""
    dict_id = conn.execute(
        select(fhir_dictionary.c.id).order_by(fhir_dictionary.c.trained_at.desc(), fhir_dictionary.c.id.desc()).limit(1)
    ).scalar() or 0
    compressor = _compressors.get((get_ident(), dict_id))
    if compressor is None:
        compressor = _compressors[get_ident(), dict_id] = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=_dictionary(conn, dict_id) if dict_id else None, write_checksum=False)
    return compressor.compress


def ensure_dictionary(conn: Connection, samples: Callable[[], Iterable[bytes]]) -> int:
    """The store's dictionary, trained on `samples()` (rendered bodies) when it has none.
    0 when there are too few samples to learn from (a small store: no dictionary)."""
    existing = conn.execute(select(fhir_dictionary.c.id).limit(1)).scalar()
    if existing is not None:
        return int(existing)
    bodies: list[bytes | bytearray | memoryview] = list(samples())
    if len(bodies) < MIN_SAMPLES:
        return 0
    dict_id = 32768 + secrets.randbelow(2**31 - 32768)  # (ids below 32768 are reserved by zstd)
    try:
        trained = zstandard.train_dictionary(DICTIONARY_BYTES, bodies, dict_id=dict_id, level=LEVEL)
    except zstandard.ZstdError:  # samples too alike or too small to learn from
        return 0
    conn.execute(fhir_dictionary.insert().values(id=dict_id, data=trained.as_bytes(), trained_at=utc_now()))
    return dict_id
