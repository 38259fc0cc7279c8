"""`annuaire ldap`, `annuaire ldap-account …`, `annuaire export-ldif`: the LDAP address book."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.config import Settings
from annuaire.errors import InvalidInput

if TYPE_CHECKING:
    from annuaire.ldap.service import LdapConfig


def _port(value: str | None) -> int | None:
    """`0` disables, `auto` picks a free port (printed and written to --ready-file)."""
    if value is None:
        return None
    if value == "auto":
        return 0
    try:
        port = int(value)
    except ValueError:
        raise InvalidInput(f"port {value!r} must be a number, 0 (disabled) or 'auto'") from None
    return None if port == 0 else port


def ldap_config(settings: Settings, db_url: str, *, ldap_port: str | None, ldaps_port: str | None,
                workers: int | None, tls_cert: str | None, tls_key: str | None, demo_tls: bool,
                base_dn: str | None = None, ready_file: str | None = None,
                limits: tuple[str, ...] = ()) -> LdapConfig:
    """The LdapConfig of a command line over `settings` (shared by `annuaire ldap` and `annuaire serve`)."""
    from annuaire.ldap.limits import LdapLimits
    from annuaire.ldap.service import LdapConfig

    config = LdapConfig.from_settings(settings, db_url)
    if ldap_port is not None:
        config.port = _port(ldap_port)
    if ldaps_port is not None:
        config.ldaps_port = _port(ldaps_port)
    if workers is not None:
        config.workers = workers
    if base_dn:
        config.base_dn = base_dn
    if ready_file:
        config.ready_file = ready_file
    if tls_cert or tls_key:
        config.tls_cert, config.tls_key = tls_cert or "", tls_key or ""
    if demo_tls and not config.tls:
        from annuaire.ldap.tls import demo_certificate

        cert, key = demo_certificate(Path("demo-tls"))
        config.tls_cert, config.tls_key = str(cert), str(key)
        console.print(f"demo TLS: self-signed certificate {cert} (clients must trust it explicitly)")
    if config.tls and config.ldaps_port is None and ldaps_port is None:
        config.ldaps_port = 6636
    if limits:  # over ANNUAIRE_LDAP_LIMITS (already in settings)
        config.limits = LdapLimits.parse(limits, base=config.limits, origin="--limit")
    return config


def ldap_options(func):
    """Options shared by `annuaire ldap` and `annuaire serve`."""
    options = [
        click.option("--ldap-port", default=None, metavar="PORT",
                     help="Plain LDAP port (default 3389; 0 disables; 'auto' = any free port)."),
        click.option("--ldaps-port", default=None, metavar="PORT",
                     help="LDAPS port when a certificate is configured (default 6636; 0 disables)."),
        click.option("--ldap-workers", "workers", type=int, default=None,
                     help="Worker processes sharing the port (default 2)."),
        click.option("--tls-cert", default=None, type=click.Path(exists=True, dir_okay=False),
                     help="PEM certificate for LDAPS and StartTLS."),
        click.option("--tls-key", default=None, type=click.Path(exists=True, dir_okay=False),
                     help="PEM private key of --tls-cert."),
        click.option("--demo-tls", is_flag=True,
                     help="Generate (once) a self-signed certificate in ./demo-tls for trying LDAPS/StartTLS."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def log_options(func):
    """The access log's options, shared by `annuaire serve` and `annuaire ldap`."""
    func = click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
                        help="Access log lines: text (key=value, default) or json (one object per line).")(func)
    return click.option("--access-log", default=None, metavar="FILE|-|off",
                        help="Access log, one line per HTTP request and LDAP operation: - (stderr, default), "
                             "a file appended to, or off. Never logs keys, tokens or passwords.")(func)


@cli.command("ldap")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@ldap_options
@log_options
@click.option("--base-dn", default=None, help="Naming context (default o=annuaire-sante,c=fr).")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="Override one limit, e.g. --limit anonymous_size_limit=50 (see annuaire.ldap.limits). "
              "Environment: ANNUAIRE_LDAP_LIMITS=name=value,name=value.")
@click.option("--ready-file", default=None, help="Write the ports (JSON) to this file once listening.")
@pass_context
@handle_errors
def ldap_command(ctx: Context, host: str | None, ldap_port: str | None, ldaps_port: str | None,
                 workers: int | None, tls_cert: str | None, tls_key: str | None, demo_tls: bool,
                 access_log: str | None, log_format: str | None,
                 base_dn: str | None, limits: tuple[str, ...], ready_file: str | None) -> None:
    """Run the LDAP address book alone (read-only; anonymous or account binds).

    \b
    Example:
      annuaire ldap --ldap-port 3389 --ldap-workers 2
      ldapsearch -x -H ldap://127.0.0.1:3389 -b o=annuaire-sante,c=fr '(cn=dupont*)' cn mail
    """
    from annuaire.ldap.service import run_ldap
    from annuaire.observability import accesslog, process

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env(host=host, access_log=access_log, log_format=log_format)
    accesslog.check(settings.access_log, settings.log_format)  # a bad file or format: refused before starting
    config = ldap_config(settings, ctx.db_url, ldap_port=ldap_port, ldaps_port=ldaps_port,
                         workers=workers, tls_cert=tls_cert, tls_key=tls_key, demo_tls=demo_tls, base_dn=base_dn,
                         ready_file=ready_file, limits=limits)
    ctx.store.dispose()  # a missing store, or one behind the code, is refused before listening
    process.join(None, settings)  # (the workers, forked, inherit the access log)
    run_ldap(config)


@cli.group("ldap-account")
def ldap_account() -> None:
    """LDAP consultation accounts (e.g. an establishment's proxy) with their own limits.

    \b
    Example:
      annuaire ldap-account add ch-exemple-proxy --size-limit 500
      annuaire ldap-account list
      annuaire ldap-account remove ch-exemple-proxy
    """


@ldap_account.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--size-limit", type=int, default=None, help="Entries per search (default 1000).")
@click.option("--entries-per-minute", type=int, default=None,
              help="Burst budget of new entries a minute (default 20000).")
@click.option("--daily-allowance", type=int, default=None,
              help="Distinct entries a sliding day (default 10% of the published directory); "
              "entries already returned within the day are free.")
@pass_context
@handle_errors
def account_add(ctx: Context, name: str, password_stdin: bool, size_limit: int | None,
                entries_per_minute: int | None, daily_allowance: int | None) -> None:
    """Create an account; it binds as cn=NAME,ou=accounts,<base DN>.

    An account is counted on its own, wherever it connects from: for an
    establishment whose users share one address (a proxy, a NAT), whose
    anonymous allowance (2% of the directory a day per network) is too small.

    \b
    Example:
      annuaire ldap-account add ch-exemple-proxy --size-limit 500 --daily-allowance 50000
    """
    from annuaire.ldap.accounts import account_dn, add_account

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    add_account(ctx.store, name, password, size_limit=size_limit, entries_per_minute=entries_per_minute,
                daily_allowance=daily_allowance)
    click.echo(f"account {name} created: bind DN {account_dn(name, 'o=annuaire-sante,c=fr')}")


@ldap_account.command("list")
@pass_context
@handle_errors
def account_list(ctx: Context) -> None:
    """List the active accounts and their limits.

    \b
    Example:
      annuaire ldap-account list
    """
    from annuaire.ldap.accounts import load_accounts

    for acc in load_accounts(ctx.store).values():
        click.echo(f"{acc.name}\tsize_limit={acc.size_limit or 'default'}\t"
                   f"entries_per_minute={acc.entries_per_minute or 'default'}\t"
                   f"daily_allowance={acc.daily_allowance or 'default'}")


@ldap_account.command("remove")
@click.argument("name")
@pass_context
@handle_errors
def account_remove(ctx: Context, name: str) -> None:
    """Deactivate an account (its binds fail from the next refresh, within seconds).

    \b
    Example:
      annuaire ldap-account remove ch-exemple-proxy
    """
    from annuaire.ldap.accounts import remove_account

    remove_account(ctx.store, name)
    click.echo(f"account {name} removed")


@cli.command("export-ldif")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-dn", default="o=annuaire-sante,c=fr", show_default=True, help="Naming context.")
@click.option("--slapd-conf", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a slapd.conf (back-mdb, recommended indexes) for this export.")
@pass_context
@handle_errors
def export_ldif(ctx: Context, out: Path, base_dn: str, slapd_conf: Path | None) -> None:
    """Write the LDAP tree as LDIF (and mssante.schema beside it) for OpenLDAP slapd.

    \b
    Example:
      annuaire export-ldif /srv/ldap/annuaire.ldif --slapd-conf /srv/ldap/slapd.conf
      slapadd -q -f /srv/ldap/slapd.conf -l /srv/ldap/annuaire.ldif
    """
    from annuaire.ldap.ldif import export, slapd_config

    count, schema = export(ctx.store, out, base_dn)
    click.echo(f"{out}: {count:,} mailbox entries; schema {schema}")
    if slapd_conf is not None:
        data_dir = slapd_conf.parent.resolve()
        slapd_conf.write_text(slapd_config(data_dir, schema.resolve(), base_dn))
        click.echo(f"{slapd_conf}: slapd configuration (create {data_dir / 'data'} before slapadd)")


@cli.command("ldap-schema")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), required=False)
def ldap_schema(out: Path | None) -> None:
    """Write the custom LDAP schema (class mssMailbox) as an OpenLDAP .schema file (stdout without OUT).

    \b
    Example:
      annuaire ldap-schema /etc/ldap/schema/mssante.schema
    """
    from annuaire.ldap.schema import openldap_schema

    if out is None:
        click.echo(openldap_schema(), nl=False)
    else:
        out.write_text(openldap_schema(), encoding="utf-8")
        click.echo(f"{out}: OpenLDAP schema (include after core, cosine and inetorgperson)")
