"""The main job on the embedded default: `make demo`.

Generates a fictitious world (if not already there), imports it into an
SQLite store, prints the counts, then starts every interface with
`annuaire serve` and says where each one answers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def run(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "annuaire", *args], check=True, env=env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="demo", type=Path)
    parser.add_argument("--professionals", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-serve", action="store_true", help="Stop after the import and the stats.")
    args = parser.parse_args(argv)

    args.dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ANNUAIRE_DB=f"sqlite:///{(args.dir / 'annuaire.sqlite').resolve()}")
    data = args.dir / "data"
    if not any(data.glob("PS_LibreAcces_*.zip")):
        run("generate", str(data), "--professionals", str(args.professionals), "--seed", str(args.seed), env=env)
    run("import", *sorted(str(p) for p in data.glob("*.zip")), env=env)
    run("stats", env=env)
    if not args.no_serve:
        run("serve", env=env)


if __name__ == "__main__":
    main()
