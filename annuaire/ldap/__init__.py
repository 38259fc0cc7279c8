"""The LDAP address book for mail clients: strict BER codec, in-memory index, asyncio server.

    ber.py        bounded, iterative BER primitives          messages.py  LDAP PDUs (RFC 4511)
    filters.py    normalisation, compiled matchers           schema.py    attributes, subschema, .schema export
    entries.py    mailbox record -> pre-encoded entry        index.py     prefix/trigram/exact indexes, plans
    directory.py  tree, scopes, special entries              limits.py    limits, shared counters, extraction ledger
    selective.py  filters that select recipients (or not)
    server.py     the protocol (one object per connection)   service.py   workers (SO_REUSEPORT), startup
    backend.py    store queries, journal refresh             accounts.py  bind accounts
    ldif.py       LDIF + slapd.conf export                   tls.py       demo certificate
"""
