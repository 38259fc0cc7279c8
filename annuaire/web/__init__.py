"""The public web search page (in French): search, professional and structure pages, help.

`routes.routes(store, settings)` contributes the pages to the HTTP app;
`search` holds the queries, `interpret` reads the search box, `details` the
detail pages' data, `views` renders the templates and maps errors.
"""
