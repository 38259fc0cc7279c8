"""The daily public extractions: writers, manifest, download endpoints, scheduler.

    package.py       atomic zip writing (temp file + rename), SHA-256 and line counts while streaming
    snapshot.py      one consistent read of the store, generation time and file timestamp
    select_stream.py streaming millions of rows as tuples inside the snapshot
    mssante.py       Extraction_Correspondance_MSSante_<ts>.zip (published mailboxes)
    ps_libreacces.py PS_LibreAcces_<ts>.zip (the active referential, 56-column layout)
    manifest.py      writing <name>_<ts>.json: generated_at, line counts, SHA-256
    generate.py      generate(store, outdir): both extractions, then pruning
    catalog.py       which complete extractions a directory holds; pruning
    http.py          GET/HEAD /extractions/… (ETag, Last-Modified, 304, Range)
    scheduler.py     the daily run inside `annuaire serve`, in a subprocess

Public: `annuaire.extractions.generate.generate(store, outdir, names, keep_days)`,
`annuaire.extractions.http.routes(store, settings)`,
`annuaire.extractions.scheduler.make_scheduler(db_url, settings)`,
`annuaire.nationalfiles.manifest.Manifest` (read and checked there, written by manifest.py).
"""
