"""The operators' console at /operateurs: French pages over the publication API's own code.

Why a package of its own: the console is a second face of the publication API
(same identification, same dry run and publication, same domain views), drawn
as the site's pages; it owns its sessions, forms and templates, nothing else.
"""
