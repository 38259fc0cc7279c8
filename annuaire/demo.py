"""The main job on the embedded default: `make demo`.

Generates a fictitious world (if not already there), imports it into an
SQLite store, prints the counts, registers a demonstration operator with a
sample publication, then starts every interface with `annuaire serve`.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from annuaire.config import child_environ


def annuaire(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "annuaire", *args], check=True, env=env)


def demo_fhir_key(store) -> str:  # (a Store: imported late, as the CLI does)
    """A fresh FHIR API key for the user to try the API (`demo-<time>`; earlier demo keys revoked)."""
    from datetime import UTC, datetime

    from annuaire.fhir.auth import add_key, list_keys, revoke_key

    for info in list_keys(store):
        if info.name.startswith("demo-") and info.active:
            revoke_key(store, info.name)
    return add_key(store, f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="demo", type=Path)
    parser.add_argument("--professionals", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--ldap-port", type=int, default=3389)
    parser.add_argument("--no-serve", action="store_true", help="Stop before starting the servers.")
    args = parser.parse_args(argv)

    folder = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{folder / 'annuaire.sqlite'}"
    env = child_environ(ANNUAIRE_EXTRACTIONS_DIR=str(folder / "extractions"))
    if (folder / "annuaire.sqlite").exists():  # a demo store of an earlier version: migrated, visibly
        annuaire("--db", db_url, "db", "upgrade", env=env)
    data = folder / "data"
    if not any(data.glob("PS_LibreAcces_*.zip")):
        annuaire("generate", str(data), "--professionals", str(args.professionals), "--seed", str(args.seed), env=env)
    annuaire("--db", db_url, "import", *sorted(str(p) for p in data.glob("*.zip")), env=env)
    annuaire("--db", db_url, "stats", env=env)

    from annuaire.mailboxes.sample import prepare_demo
    from annuaire.store import open_store

    base = f"http://127.0.0.1:{args.http_port}"
    store = open_store(db_url, upgrade=False)  # (just imported, at the current schema)
    demo = prepare_demo(store, folder, base)  # the demo operator (a fresh token each run) and its sample list
    key = demo_fhir_key(store)
    store.dispose()
    serve = ["serve", "--http-port", str(args.http_port), "--ldap-port", str(args.ldap_port)]
    print(usage(db_url, base, args.ldap_port, key, demo, serve, serving=not args.no_serve), flush=True)
    if not args.no_serve:
        annuaire("--db", db_url, *serve, env=env)


def usage(db_url: str, base: str, ldap_port: int, key: str, demo: dict[str, str], serve: list[str], *,
          serving: bool) -> str:
    """What to type against the demo store: every command line complete (its --db included), to copy."""
    program = _program()
    on_store = f"{program} --db {shlex.quote(db_url)}"
    lines = [
        "",
        f"Demo store: {db_url}",
        f"FHIR API key (demo; earlier demo keys revoked): {key}",
        f"  curl -H 'ESANTE-API-KEY: {key}' '{base}/fhir/v2/Practitioner?family=mar&_count=5'",
        f"Web search page: {base}/",
        f"LDAP address book: ldapsearch -x -H ldap://127.0.0.1:{ldap_port} -b o=annuaire-sante,c=fr '(sn=mar*)' cn mail",
        f"Publish the sample list of {demo['domain']} (in another terminal, while the server runs):",
        f"  {program}{demo['command'].removeprefix('annuaire')}",
        "Other commands on this store:",
        f"  {on_store} stats",
        f"  {on_store} apikey add 'Logiciel fictif'",
        f"  {on_store} apikey list",
        f"  {on_store} quality",
        f"  {on_store} db check",
        f"{'Starting' if serving else 'Start'} the servers: {on_store} {shlex.join(serve)}",
    ]
    return "\n".join(lines)


def _program() -> str:
    """How to call `annuaire` from here: the virtual environment's script (relative when below the
    current directory, as `make demo` runs it), else the command on the PATH."""
    script = Path(sys.executable).with_name("annuaire")
    if not script.exists():
        return "annuaire"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


if __name__ == "__main__":
    main()
