"""The public web search page (in French): search, professional and structure pages, help.

`routes.routes(store, settings)` contributes the pages to the HTTP app.
`interpret` reads the search box into criteria, `search` turns criteria into
a page of people or structures, choosing its path with `plan` (counts and
costs), `names` (the readings of a typed name) and `sql` (prefix ranges,
steering SQLite's index choice). `details` gathers the detail pages' data,
`params` reads the GET form, `links` the LDAP and extraction parameters shown,
`views` renders the templates and maps errors in one place.
"""
