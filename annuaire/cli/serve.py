"""`annuaire serve`: the one command that starts every interface."""

from __future__ import annotations

import click

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.cli.ldap import ldap_options, start_ldap_beside_http
from annuaire.config import Settings


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
    import uvicorn

    from annuaire.http.app import create_app

    settings = Settings.from_env(host=host, http_port=http_port, http_workers=http_workers)
    if settings.http_workers < 1:
        raise click.BadParameter(f"must be at least 1, got {settings.http_workers}", param_hint="--http-workers")
    store = ctx.store
    base = settings.base_url
    console.print(f"Web search page   {base}/", highlight=False)
    console.print(f"FHIR API          {base}/fhir/v2 (header ESANTE-API-KEY; keys: annuaire apikey add NAME)", highlight=False)
    console.print(f"Publication API   {base}/api/v1/domains/<domain>/mailboxes (OpenAPI: {base}/api/v1/openapi.json)", highlight=False)
    console.print(f"Extractions       {base}/extractions/", highlight=False)
    ldap_process = start_ldap_beside_http(
        ctx, host=host, ldap_port=ldap_port, ldaps_port=ldaps_port, workers=workers,
        tls_cert=tls_cert, tls_key=tls_key, demo_tls=demo_tls,
    )
    # Daily extractions: generated in a subprocess, at start-up when none exists.
    from annuaire.extractions.scheduler import start_scheduler
    from annuaire.mailboxes.tlsident import uvicorn_tls_options

    scheduler = start_scheduler(store.url, settings)
    try:
        # TLS when ANNUAIRE_TLS_CERT/KEY are set; operators' client certificates
        # too when ANNUAIRE_TLS_CLIENT_CA is set.
        options = dict(log_level="warning", **uvicorn_tls_options(settings))
        if settings.http_workers == 1:
            from annuaire.http.guard import server_options

            # Slow clients, header size, connections per address (annuaire.http.guard).
            options.update(server_options(settings, base=options.get("http")))
            uvicorn.run(create_app(store, settings), host=settings.host, port=settings.http_port, **options)
        else:
            from annuaire.http import workers

            # Each worker process builds the same app from the store URL and these settings.
            try:
                workers.serve(settings.host, settings.http_port, settings.http_workers, options, store.url, settings)
            except (OSError, workers.WorkerFailed) as exc:
                raise click.ClickException(f"HTTP server: {exc}") from exc
    finally:
        if scheduler is not None:
            scheduler.stop()
        if ldap_process is not None:
            ldap_process.terminate()
            ldap_process.join(30)
