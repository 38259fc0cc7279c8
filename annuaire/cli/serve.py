"""`annuaire serve`: the one command that starts every interface (run by annuaire.http.supervisor)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.cli.ldap import ldap_config, ldap_options, log_options
from annuaire.config import Settings, read_store_url

if TYPE_CHECKING:
    from annuaire.ldap.service import LdapConfig


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--http-port", type=int, default=None, help="HTTP port (default 8080).")
@click.option("--http-workers", type=int, default=None,
              help="HTTP worker processes (default 1; two per core for throughput: the kernel spreads "
                   "connections over the workers by a hash, so a few keep-alive clients may share one).")
@log_options
@click.option("--read-db", default=None, metavar="URL",
              help="A PostgreSQL hot-standby replica of --db to read everything served from (LDAP, FHIR, "
                   "web); writes go to --db. Environment: ANNUAIRE_READ_DB.")
@ldap_options
@pass_context
@handle_errors
def serve(
    ctx: Context,
    host: str | None,
    http_port: int | None,
    http_workers: int | None,
    access_log: str | None,
    log_format: str | None,
    read_db: str | None,
    ldap_port: str | None,
    ldaps_port: str | None,
    workers: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    demo_tls: bool,
) -> None:
    """Start every interface: publication API, FHIR, web pages, extractions (HTTP) and LDAP.

    \b
    Example:
      annuaire serve --host 0.0.0.0 --http-port 8080 --ldap-port 3389
    """
    from annuaire.http.supervisor import serve as run
    from annuaire.http.workers import WorkerFailed
    from annuaire.observability import accesslog
    from annuaire.store import replica
    from annuaire.store.opening import display_url

    settings = Settings.from_env(host=host, http_port=http_port, http_workers=http_workers,
                                 access_log=access_log, log_format=log_format)
    if settings.http_workers < 1:
        raise click.BadParameter(f"must be at least 1, got {settings.http_workers}", param_hint="--http-workers")
    accesslog.check(settings.access_log, settings.log_format)  # a bad file or format: refused before starting
    # Before anything starts: a missing store, or one behind the code, is refused with the command to run
    # (`annuaire db upgrade`); the workers then open it as it is.
    store = ctx.store
    read_url = read_db or read_store_url()
    if read_url:  # a replica that is a primary, unreachable or behind the code: refused before anything starts
        replica.check(store.url, read_url)
        store.dispose()
        store = replica.open_front_store(store, read_url)
    # LDAP only reads: its index and journal follower read the replica when there is one.
    config = ldap_config(settings, store.read_url or store.url, ldap_port=ldap_port, ldaps_port=ldaps_port, workers=workers,
                         tls_cert=tls_cert, tls_key=tls_key, demo_tls=demo_tls)
    ldap = None if config.port is None and config.ldaps_port is None else config  # None: LDAP disabled
    # The pages (/aide) tell the LDAP ports served, those of the command line (0: none).
    settings = replace(settings, ldap_port=(ldap.port or 0) if ldap else 0,
                       ldaps_port=(ldap.ldaps_port or 0) if ldap and ldap.tls else 0)
    _ports_free(settings, ldap)  # before announcing anything
    base = settings.base_url
    if store.read_url:
        console.print(f"Store             reads from the replica {display_url(store.read_url)}, writes to "
                      f"{display_url(store.url)}", highlight=False)
    console.print(f"Web search page   {base}/", highlight=False)
    console.print(f"FHIR API          {base}/fhir/v2 (header ESANTE-API-KEY; keys: annuaire --db {display_url(store.url)} apikey add NAME)", highlight=False)
    console.print(f"Publication API   {base}/api/v1/domains/<domain>/mailboxes (OpenAPI: {base}/api/v1/openapi.json)", highlight=False)
    console.print(f"Extractions       {base}/extractions/", highlight=False)
    if ldap is not None:
        where = ", ".join(f"{scheme}://{ldap.host}:{port}" for scheme, port in
                          (("ldap", ldap.port), ("ldaps", ldap.ldaps_port if ldap.tls else None)) if port)
        console.print(f"LDAP  {where} (base {ldap.base_dn}, {ldap.workers} workers)")
    try:
        run(store, settings, ldap)
    except (OSError, WorkerFailed) as exc:
        raise click.ClickException(f"HTTP server: {exc}") from exc


def _ports_free(settings: Settings, ldap: LdapConfig | None) -> None:
    """Refuse to start when another process listens on one of our ports: our workers' shared
    sockets (SO_REUSEPORT) would otherwise join its listener and split the connections."""
    from annuaire.sockets import ensure_free

    wanted: list[tuple[str, str, int | None]] = [("HTTP", settings.host, settings.http_port)]
    if ldap is not None:
        wanted += [("LDAP", ldap.host, ldap.port), ("LDAPS", ldap.host, ldap.ldaps_port if ldap.tls else None)]
    for name, host, port in wanted:
        if port:
            try:
                ensure_free(host, port)
            except OSError as exc:
                raise click.ClickException(f"{name} port: {exc.strerror or exc}") from exc
