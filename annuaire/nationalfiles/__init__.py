"""Reading the national files: one set of rules for every reader.

The referential import (PS_LibreAcces), the national mailbox mirror and
local-sync (Extraction_Correspondance_MSSante, ours or the national one) read
the same kind of file: `|`-separated text, zipped, described by a manifest
when it is one of our extractions. Each keeps its own fast path (blocks of
lines for the imports, one whole buffer for local-sync); the rules live here
once, so a file accepted or refused by one is accepted or refused by all.

    sources.py   recognising files by name: `.txt` files and zip members (`Source`)
    inflate.py   inflating a zip member with ISA-L, CRC-32 checked
    encoding.py  the encoding rule (UTF-8, latin-1 for old files) and NUL bytes
    layouts.py   the accepted headers of each kind, checked by column name
    lines.py     `Lines`: a source read in blocks of checked, decoded lines
    manifest.py  our extractions' JSON manifest, read and checked (SHA-256)

Layouts themselves (the column tuples, also used by the writers) are in
`annuaire/formats.py`.
"""
