"""Mailbox commands: operator (add, list, rotate, cert, domain add|remove), whitelist, publish, quality."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from rich.table import Table

from annuaire.cli.app import Context, cli, console, handle_errors, pass_context
from annuaire.config import Settings, operator_server, operator_token


@cli.group()
def operator() -> None:
    """Operators publishing MSSanté mailboxes, their domains and API tokens.

    \b
    Example:
      annuaire operator add "CH Exemple" --domain ch-exemple.mssante.fr
      annuaire operator list
      annuaire operator rotate "CH Exemple" --expires 2027-12-31
    """


expires_option = click.option(
    "--expires", default=None, metavar="DATE",
    help="Expiry of the token: a date (valid through the end of that day, UTC) or an ISO 8601 instant, "
         "e.g. 2027-12-31. Default: no expiry.")


@operator.command("add")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, required=True, help="A domain of the operator (repeatable).")
@click.option("--cert-dn", default=None, help="Subject DN of the operator's TLS client certificate.")
@click.option("--contact", default=None, help="Contact of the person responsible (whitelist ResponsableContact).")
@click.option("--support-contact", default=None, help="Support contact (whitelist SupportContact).")
@expires_option
@pass_context
@handle_errors
def operator_add(ctx: Context, name: str, domains: tuple[str, ...], cert_dn: str | None, contact: str | None,
                 support_contact: str | None, expires: str | None) -> None:
    """Register an operator and its domains; prints its API token ONCE (only a hash is kept).

    \b
    Example:
      annuaire operator add "CH Exemple" --domain ch-exemple.mssante.fr --cert-dn "CN=mss.ch-exemple.fr,O=CH Exemple,C=FR"
      annuaire operator add "CH Exemple" --domain ch-exemple.mssante.fr --expires 2027-12-31
    """
    from annuaire.mailboxes.operators import add_operator
    from annuaire.store.credentials import shown_expiry

    op, token = add_operator(ctx.store, name, list(domains), cert_dn=cert_dn, contact=contact,
                             support_contact=support_contact, expires=expires)
    console.print(f"Operator {op.name!r} registered with {', '.join(op.domains)}. "
                  f"Its API token (expires: {shown_expiry(op.token_expires_at)}; shown once, keep it safe):",
                  highlight=False)
    click.echo(token)


@operator.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@pass_context
@handle_errors
def operator_list(ctx: Context, as_json: bool) -> None:
    """List operators with their domains and mailbox counts.

    \b
    Example:
      annuaire operator list
    """
    from annuaire.mailboxes.operators import domain_counts, list_operators

    ops = list_operators(ctx.store)
    counts = domain_counts(ctx.store)
    from annuaire.store.credentials import shown_expiry

    if as_json:
        data = [{"name": o.name, "cert_dn": o.cert_dn, "contact": o.contact, "support_contact": o.support_contact,
                 "created_at": o.created_at, "expires_at": o.token_expires_at, "last_used_at": o.token_last_used,
                 "domains": {d: counts.get(d, 0) for d in o.domains}}
                for o in ops]
        sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
        return
    table = Table(title="Operators")
    for column in ("name", "domains", "mailboxes", "certificate DN", "created", "token expires", "token last used"):
        table.add_column(column)
    for o in ops:
        table.add_row(o.name, "\n".join(o.domains), "\n".join(f"{counts.get(d, 0):,}" for d in o.domains),
                      o.cert_dn or "", o.created_at[:10], shown_expiry(o.token_expires_at), last_used(o.token_last_used))
    console.print(table)


def last_used(stamp: str | None) -> str:
    """A recorded last use as people read it (recorded at most once a minute per server process)."""
    return stamp[:16].replace("T", " ") + " UTC" if stamp else "never"


@operator.command("rotate")
@click.argument("name")
@expires_option
@pass_context
@handle_errors
def operator_rotate(ctx: Context, name: str, expires: str | None) -> None:
    """Issue a new API token; the previous one stops working at once. Says when the previous
    one was last used (to the minute).

    \b
    Example:
      annuaire operator rotate "CH Exemple" --expires 2027-12-31
    """
    from annuaire.mailboxes.operators import find_operator, rotate_token
    from annuaire.store.credentials import parse_expiry, shown_expiry

    before = find_operator(ctx.store, name)
    token = rotate_token(ctx.store, name, expires=expires)
    console.print(f"The previous token of {name!r} was last used: {last_used(before.token_last_used)}; "
                  "it no longer works.", highlight=False)
    console.print(f"New API token of {name!r} (expires: {shown_expiry(parse_expiry(expires))}):", highlight=False)
    click.echo(token)


operator.add_command(click.Command(  # the former name of `rotate`
    "token", callback=operator_rotate.callback, params=operator_rotate.params, hidden=True,
    help="Same as `annuaire operator rotate`, its current name.\n\n\b\nExample:\n"
         '  annuaire operator token "CH Exemple" --expires 2027-12-31'))


@operator.command("cert")
@click.argument("name")
@click.argument("dn", required=False)
@pass_context
@handle_errors
def operator_cert(ctx: Context, name: str, dn: str | None) -> None:
    """Register (or, without DN, remove) the operator's TLS client certificate subject DN.

    \b
    Example:
      annuaire operator cert "CH Exemple" "CN=mss.ch-exemple.fr,O=CH Exemple,C=FR"
    """
    from annuaire.mailboxes.operators import set_cert_dn

    set_cert_dn(ctx.store, name, dn)
    console.print(f"{name}: certificate DN {'set to ' + dn if dn else 'removed'}", highlight=False)


@operator.group("domain")
def operator_domain() -> None:
    """Attach or detach domains of an operator.

    \b
    Example:
      annuaire operator domain add "CH Exemple" labo.ch-exemple.mssante.fr
      annuaire operator domain remove "CH Exemple" labo.ch-exemple.mssante.fr
    """


@operator_domain.command("add")
@click.argument("name")
@click.argument("domains", nargs=-1, required=True)
@pass_context
@handle_errors
def operator_domain_add(ctx: Context, name: str, domains: tuple[str, ...]) -> None:
    """Give domains to an operator (a domain belongs to at most one operator).

    \b
    Example:
      annuaire operator domain add "CH Exemple" labo.ch-exemple.mssante.fr
    """
    from annuaire.mailboxes.operators import add_domains

    op = add_domains(ctx.store, name, list(domains))
    console.print(f"{op.name}: {', '.join(op.domains)}", highlight=False)


@operator_domain.command("remove")
@click.argument("name")
@click.argument("domains", nargs=-1, required=True)
@pass_context
@handle_errors
def operator_domain_remove(ctx: Context, name: str, domains: tuple[str, ...]) -> None:
    """Take domains away from an operator (their published boxes stay until replaced).

    \b
    Example:
      annuaire operator domain remove "CH Exemple" labo.ch-exemple.mssante.fr
    """
    from annuaire.mailboxes.operators import remove_domains

    op = remove_domains(ctx.store, name, list(domains))
    console.print(f"{op.name}: {', '.join(op.domains) or 'no domain left'}", highlight=False)


@cli.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: stdout).")
@pass_context
@handle_errors
def whitelist(ctx: Context, output: Path | None) -> None:
    """Write the domain whitelist in the national listeblanchemssante.xml layout.

    \b
    Example:
      annuaire whitelist -o listeblanchemssante.xml
    """
    from annuaire.mailboxes.operators import whitelist_xml

    xml = whitelist_xml(ctx.store)
    if output is None:
        sys.stdout.buffer.write(xml)
    else:
        output.write_bytes(xml)
        console.print(f"wrote {output}", highlight=False)


@cli.command()
@click.argument("domain")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--server", default=operator_server, metavar="URL",
              help="Base URL of the directory, e.g. http://127.0.0.1:8080 (env ANNUAIRE_SERVER).")
@click.option("--token", default=operator_token, help="Operator API token (env ANNUAIRE_TOKEN).")
@click.option("--dry-run", is_flag=True, help="Validate and report; apply nothing.")
@click.option("--confirm-mass-delete", is_flag=True, help="Accept deleting many boxes at once.")
@click.option("--if-match", default=None, metavar="ETAG", help="Only apply if the domain is still at this version.")
@click.option("--cert", nargs=2, default=None, metavar="CERT KEY", help="TLS client certificate and key files.")
@click.option("--ca", default=None, metavar="FILE", help="CA bundle verifying the server's TLS certificate.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report JSON on stdout (for scripts; `line` filled for JSON files).")
@handle_errors
def publish(domain: str, file: Path, server: str, token: str, dry_run: bool, confirm_mass_delete: bool,
            if_match: str | None, cert: tuple[str, str] | None, ca: str | None, as_json: bool) -> None:
    """Send FILE (JSON {"mailboxes": [...]} or the '|' MSSanté text layout) as DOMAIN's complete list.

    Exit codes: 0 published, 7 some lines rejected (the report says which, by the file's line
    numbers), 2 list refused whole, 4 credentials or domain refused, 5 If-Match or mass deletion,
    6 server busy or unavailable, 1 server unreachable.

    \b
    Example:
      annuaire publish ch-exemple.mssante.fr boxes.csv --server http://127.0.0.1:8080 --token ann_1_… --dry-run
    """
    from annuaire.mailboxes.client import publish_file

    if not server:  # required, but ANNUAIRE_SERVER (read by annuaire.config) may give it
        raise click.MissingParameter(ctx=click.get_current_context(), param_hint="'--server'", param_type="option")
    report = publish_file(server, token, domain, file, dry_run=dry_run, confirm_mass_delete=confirm_mass_delete,
                          if_match=if_match, cert=cert, ca=ca)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        from annuaire.mailboxes.reportview import print_report

        print_report(console, report)
    if report["rejected"]:
        from annuaire.errors import LinesRejected

        applied = "nothing applied: dry run" if report.get("dry_run") else "the other lines were applied"
        raise LinesRejected(f"{len(report['rejected']):,} line(s) of {file} rejected ({applied}); exit code 7")


@cli.command()
@click.option("--operator", "operator_name", default=None, help="Only this operator's domains.")
@click.option("--all", "show_all", is_flag=True, help="Also list domains without any issue.")
@click.option("--json", "as_json", is_flag=True, help="The full report as JSON on stdout.")
@pass_context
@handle_errors
def quality(ctx: Context, operator_name: str | None, show_all: bool, as_json: bool) -> None:
    """Per domain: boxes the public does not see and why, boxes of departed professionals,
    naming issues, holders with several boxes, liste rouge boxes and the last publication
    (stale domains).

    \b
    Example:
      annuaire quality --operator "CH Exemple"
    """
    from annuaire.mailboxes.quality import has_issues, quality_report

    settings = Settings.from_env()
    report = quality_report(ctx.store, settings, operator_name=operator_name)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
        return
    shown = [e for e in report if show_all or has_issues(e)]
    table = Table(title=f"Mailbox quality ({len(shown)} of {len(report)} domains)")
    # Domain names are what the reader looks for: never cut them, whatever the terminal width.
    table.add_column("domain", no_wrap=True, min_width=max((len(e["domain"]) for e in shown), default=6))
    for column in ("operator", "boxes", "hidden", "departed", "naming", "dup. holders", "liste rouge",
                   "last publication"):
        table.add_column(column, justify="left" if column in ("operator", "last publication") else "right")
    for e in shown:
        last = (e["last_published"] or "never")[:16].replace("T", " ")
        if e["stale"]:
            last = f"[yellow]{last} (stale)[/]"
        table.add_row(e["domain"], e["operator"] or "(national)", f"{e['mailboxes']:,}", str(len(e["hidden"])),
                      str(len(e["departed"])),
                      str(len(e["naming"])), str(len(e["holder_duplicates"])), str(len(e["liste_rouge"])), last)
    console.print(table)
    for e in shown:
        details = [f"  hidden: {h['address']} ({', '.join(h['reasons'])})" for h in e["hidden"][:10]]
        details += [f"  departed: {d['address']} ({d['reason']})" for d in e["departed"][:10]]
        details += [f"  naming: {d['address']} ({d['code']})" for d in e["naming"][:10]]
        details += [f"  holder {d['holder']}: {', '.join(d['addresses'])}" for d in e["holder_duplicates"][:10]]
        if details:
            console.print(f"[bold]{e['domain']}[/]", highlight=False)
            for line in details:
                console.print(line, highlight=False)
