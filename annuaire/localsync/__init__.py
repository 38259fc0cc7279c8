"""Integrating the daily MSSanté extraction into an establishment's LOCAL address book.

    db.py            the local SQLite file: national contacts, local contacts, merge links
    source.py        a local file, or a conditional / resumable download
    reader.py        validating the whole extraction first (rules of `nationalfiles`); lines kept as bytes with digests
    filters.py       départements, professions, savoir-faire, domains, structures, types (codes checked)
    sync.py          one run: diff by digest, dry run, mass-removal guard, ONE transaction, report
    dedup.py         merging local and national contacts; suspected duplicates
    local.py         contacts entered by hand or imported (CSV, vCard): never touched by a sync
    csv_layouts.py   the mail clients' CSV headers (Thunderbird, Outlook, Apple; English and French)
    contacts.py      the merged view every output reads
    export.py        vCard 4 and 3, Outlook CSV, Thunderbird CSV, LDIF
    national_ldap.py a small asyncio LDAP client (our BER codec) for the national directory
    one_account.py   the "one account" LDAP endpoint: local + national in one answer

Public: `annuaire.localsync.sync.sync(local_path, source, filters)`,
`annuaire.localsync.filters.Filters.build(...)`, `annuaire.localsync.db.LocalBase`,
`annuaire.localsync.local.add_contact / import_file`, `annuaire.localsync.export.export`,
`annuaire.localsync.one_account.start_one_account(config)`.
"""
