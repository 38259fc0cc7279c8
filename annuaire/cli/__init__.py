"""The `annuaire` command. Thin: parses options, calls the library, prints.

Each capability registers its commands from its own module below; this
package only holds the group, the shared options and the error mapping.
"""

from __future__ import annotations

# Registering the commands of each capability (import for side effects).
from annuaire.cli import core, db, extractions, fhir, ldap, localsync, mailboxes, serve  # noqa: F401
from annuaire.cli.app import cli, main

__all__ = ["cli", "main"]
