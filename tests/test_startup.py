"""Commands that never open the store start without loading the database layer.

`local-sync` runs every day on establishments' machines: its start-up is
part of its 5-second budget (SQLAlchemy and Alembic alone cost ~0.35 s).
"""

from __future__ import annotations

import subprocess
import sys


def test_local_sync_starts_without_sqlalchemy():
    code = (
        "import sys\n"
        "from annuaire.cli import cli\n"
        "import annuaire.localsync.sync  # what the command runs, not only its --help\n"
        "try:\n"
        "    cli(['local-sync', '--help'], prog_name='annuaire')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'uvicorn')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
