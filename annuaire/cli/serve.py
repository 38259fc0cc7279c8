"""`annuaire serve`: the one command that starts every interface (run by annuaire.http.supervisor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.cli.ldap import ldap_config, ldap_options
from annuaire.config import Settings

if TYPE_CHECKING:
    from annuaire.ldap.service import LdapConfig


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--http-port", type=int, default=None, help="HTTP port (default 8080).")
@click.option("--http-workers", type=int, default=None,
              help="HTTP worker processes (default 1; two per core for throughput: the kernel spreads "
                   "connections over the workers by a hash, so a few keep-alive clients may share one).")
@ldap_options
@pass_context
@handle_errors
def serve(
    ctx: Context,
    host: str | None,
    http_port: int | None,
    http_workers: int | None,
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

    settings = Settings.from_env(host=host, http_port=http_port, http_workers=http_workers)
    if settings.http_workers < 1:
        raise click.BadParameter(f"must be at least 1, got {settings.http_workers}", param_hint="--http-workers")
    store = ctx.store  # opened (and upgraded) before anything starts
    config = ldap_config(settings, ctx.db_url, ldap_port=ldap_port, ldaps_port=ldaps_port, workers=workers,
                         tls_cert=tls_cert, tls_key=tls_key, demo_tls=demo_tls)
    ldap = None if config.port is None and config.ldaps_port is None else config  # None: LDAP disabled
    _ports_free(settings, ldap)  # before announcing anything
    base = settings.base_url
    console.print(f"Web search page   {base}/", highlight=False)
    console.print(f"FHIR API          {base}/fhir/v2 (header ESANTE-API-KEY; keys: annuaire apikey add NAME)", highlight=False)
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
