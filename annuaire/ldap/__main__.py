"""`python -m annuaire.ldap …` = `annuaire …` with the LDAP commands registered (tests, containers)."""

import annuaire.cli.ldap  # noqa: F401 - registers the LDAP commands
from annuaire.cli.app import main

if __name__ == "__main__":
    main()
