"""`annuaire serve` without its command line: every interface, until SIGTERM or SIGINT.

The LDAP workers run in a child process beside the HTTP server, the daily
extractions in a scheduler thread, HTTP in this process (one worker) or in
spawned workers (annuaire.http.workers); all are stopped when HTTP returns.
It lives here, not in the CLI, so that the CLI only parses and prints and
anything may run the same server. Every process receives its configuration
explicitly (Settings, LdapConfig, the store URL), never through os.environ.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from annuaire.config import Settings

if TYPE_CHECKING:
    from annuaire.ldap.service import LdapConfig
    from annuaire.store import Store


def serve(store: Store, settings: Settings, ldap: LdapConfig | None) -> None:
    """Serve HTTP with `settings` (and LDAP with `ldap`, unless None) until a stop signal.

    Raises OSError or annuaire.http.workers.WorkerFailed when HTTP workers cannot start or keep running.
    """
    import uvicorn

    from annuaire.extractions.scheduler import make_scheduler
    from annuaire.gcpause import settle
    from annuaire.http.app import create_app
    from annuaire.mailboxes.tlsident import uvicorn_tls_options
    from annuaire.observability import ldapstatus, process, rundir

    # Daily extractions: generated in a subprocess, at start-up when none exists. Made (its time
    # checked) before anything starts; its thread started after the LDAP process is forked.
    scheduler = make_scheduler(store.url, settings)
    ldap_process = None
    _stop_on_sigterm()
    # Metrics and LDAP status shared by every process (annuaire.observability.rundir), and the access
    # log: joined before the LDAP process is forked, so that it and its workers inherit both.
    run_dir = rundir.create()
    try:
        process.join(run_dir, settings)
        if ldap is not None:
            ldapstatus.expect(run_dir, ldap.workers, ldap.refresh_interval)
            from annuaire.ldap.service import start_ldap_process

            ldap_process = start_ldap_process(ldap)
        if scheduler is not None:
            scheduler.start()
        # TLS when tls_cert/tls_key are set; operators' client certificates too when tls_client_ca is.
        options = dict(log_level="warning", **uvicorn_tls_options(settings))
        if settings.http_workers == 1:
            from annuaire.http.guard import server_options

            # Slow clients, header size, connections per address (annuaire.http.guard).
            options.update(server_options(settings, base=options.get("http")))
            app = create_app(store, settings)
            settle()
            uvicorn.run(app, host=settings.host, port=settings.http_port, **options)
        else:
            from annuaire.http import workers

            # Each worker process builds the same app from the store URL and these settings.
            workers.serve(settings.host, settings.http_port, settings.http_workers, options, store.url, settings,
                          run_dir, read_url=store.read_url)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if ldap_process is not None:
            ldap_process.terminate()
            ldap_process.join(30)
        rundir.remove(run_dir)


def _stop_on_sigterm() -> None:
    """SIGTERM stops the whole server, as Ctrl-C does: uvicorn re-raises the signal it caught once
    HTTP has stopped, and its default action would end this process at once, leaving the LDAP
    process and its workers running. Raising SystemExit instead runs `serve`'s cleanup."""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
