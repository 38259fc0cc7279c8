"""`annuaire serve`: the one command that starts every interface."""

from __future__ import annotations

import click
import uvicorn

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.config import Settings
from annuaire.http.app import create_app


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--http-port", type=int, default=None, help="HTTP port (default 8080; 0 disables HTTP).")
@click.option("--ldap-port", type=int, default=None, help="LDAP port (default 3389; 0 disables LDAP).")
@pass_context
@handle_errors
def serve(ctx: Context, host: str | None, http_port: int | None, ldap_port: int | None) -> None:
    """Start the HTTP interfaces (publication API, FHIR, web, extractions) and LDAP.

    \b
    Example:
      annuaire serve --host 0.0.0.0 --http-port 8080 --ldap-port 3389
    """
    settings = Settings.from_env(host=host, http_port=http_port, ldap_port=ldap_port)
    store = ctx.store
    app = create_app(store, settings)
    console.print(f"HTTP  {settings.base_url}/")
    console.print(f"Publication API  {settings.base_url}/api/v1/domains/<domain>/mailboxes (OpenAPI: /api/v1/openapi.json)")
    # Daily extractions (issue 5): generated in a subprocess, at start-up when none exists.
    from annuaire.extractions.scheduler import start_scheduler

    scheduler = start_scheduler(store.url, settings)
    try:
        # Publication API (issue 3): TLS when ANNUAIRE_TLS_CERT/KEY are set, operators' client
        # certificates too when ANNUAIRE_TLS_CLIENT_CA is set.
        from annuaire.mailboxes.tlsident import uvicorn_tls_options

        uvicorn.run(app, host=settings.host, port=settings.http_port, log_level="warning",
                    **uvicorn_tls_options(settings))
    finally:
        if scheduler is not None:
            scheduler.stop()
