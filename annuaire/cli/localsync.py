"""`annuaire local-sync`: keep an establishment's local address book up to date."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from annuaire.cli.app import Context, cli, console, handle_errors
from annuaire.errors import InvalidInput

if TYPE_CHECKING:
    from annuaire.localsync.sync import SyncReport

_local_option = click.option(
    "--local", "local_db", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The local address book (its own SQLite file; created on first use).",
)


class _Progress:
    """Stage lines on stderr (terminal or not), at most one per 10 % of the writes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last_tenth = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if stage == "fetch":
            console.print("fetching the extraction…", highlight=False)
        elif stage == "apply" and total and done:
            tenth = done * 10 // total
            if tenth != self.last_tenth:
                self.last_tenth = tenth
                console.print(f"applying: {done:,}/{total:,} changes", highlight=False)


@cli.group("local-sync", invoke_without_command=True)
@click.option("--source", help="The MSSanté extraction: a URL (conditional download) or a .zip/.txt file.")
@click.option("--local", "local_db", type=click.Path(dir_okay=False, path_type=Path),
              help="The local address book (its own SQLite file; created on first use).")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest to check a local file against (default: <file>.json beside it, when present).")
@click.option("--departement", multiple=True, help="Keep boxes whose structure is in this département (repeatable, or comma-separated).")
@click.option("--profession", multiple=True, help="Keep boxes of this profession code (TRE_G15, e.g. 10 for médecin).")
@click.option("--savoir-faire", multiple=True, help="Keep boxes of this savoir-faire code (e.g. SM54).")
@click.option("--domain", multiple=True, help="Keep boxes of this mail domain (and its subdomains).")
@click.option("--structure", multiple=True, help="Keep boxes attached to this structure (Identification Structure, e.g. 1990000019).")
@click.option("--type", "types", multiple=True, help="Keep boxes of this type: PER, ORG, APP, CAB.")
@click.option("--force", is_flag=True, help="Download and compare again even when the source says it has not changed.")
@click.option("--dry-run", is_flag=True,
              help="Show what would be added, changed and removed; write nothing (the --local file is not even created).")
@click.option("--confirm-mass-removal", is_flag=True,
              help="Allow a run removing more than 20 % (and more than 10) of the synchronised contacts.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report (merges, suspected duplicates) as JSON to this file.")
@click.pass_context
@handle_errors
def local_sync(
    click_ctx: click.Context, source: str | None, local_db: Path | None, manifest: Path | None,
    departement: tuple[str, ...], profession: tuple[str, ...], savoir_faire: tuple[str, ...],
    domain: tuple[str, ...], structure: tuple[str, ...], types: tuple[str, ...], force: bool,
    dry_run: bool, confirm_mass_removal: bool, report_path: Path | None,
) -> None:
    """Synchronise a LOCAL address book with the national MSSanté extraction.

    National contacts selected by the filters are added, updated and removed;
    contacts entered locally are never modified. A local contact with the same
    address (or the same national id and structure) is merged, not duplicated.
    Nothing is written unless the whole extraction is valid, and a run is one
    transaction: an interrupted run leaves the base as it was. A run that would
    remove more than 20 % (and more than 10) of the synchronised contacts, e.g.
    after a changed filter, is refused unless --confirm-mass-removal is given.
    Filter codes are checked against the code tables (`local-sync codes`).

    \b
    Examples:
      annuaire local-sync --source https://annuaire.example/extractions/Extraction_Correspondance_MSSante \\
                          --local carnet.sqlite --departement 69 --departement 01
      annuaire local-sync --source Extraction_Correspondance_MSSante_202611250300.zip --local carnet.sqlite --type ORG
      annuaire local-sync --source Extraction_Correspondance_MSSante_202611250300.zip --local carnet.sqlite \\
                          --departement 59 --dry-run
      annuaire local-sync codes departement
      annuaire local-sync add-contact --local carnet.sqlite --email secretariat@clinique.example --organisation "Clinique"
      annuaire local-sync export --local carnet.sqlite --format vcf -o carnet.vcf
    """
    if click_ctx.invoked_subcommand is not None:
        return
    if not source or not local_db:
        raise click.UsageError("--source and --local are required to synchronise (or give a subcommand)")
    from annuaire.localsync.filters import Filters
    from annuaire.localsync.sync import sync

    ctx = click_ctx.find_object(Context)
    assert ctx is not None  # set by the main group
    filters = Filters.build(
        departements=departement, professions=profession, savoir_faire=savoir_faire,
        domains=domain, structures=structure, types=types,
    )
    report = sync(local_db, source, filters, manifest=manifest, force=force, dry_run=dry_run,
                  confirm_mass_removal=confirm_mass_removal, progress=_Progress(ctx.quiet))
    if report_path:
        report_path.write_text(report.to_json() + "\n", encoding="utf-8")
    if report.status == "not-modified":
        click.echo(f"not modified since the last synchronisation (extraction {report.extraction_ts}): nothing done")
        return
    if report.status == "unchanged":
        click.echo(f"same extraction as the last synchronisation ({report.extraction_ts}): nothing done")
        return
    if report.dry_run:
        _print_dry_run(report, local_db, report_path)
        return
    dups = report.suspected_duplicates
    click.echo(
        f"extraction {report.extraction_ts}: {report.lines:,} lines, {report.selected:,} selected "
        f"(filters: {report.filters})\n"
        f"added {report.added:,}, updated {report.updated:,}, removed {report.removed:,}, "
        f"unchanged {report.unchanged:,} in {report.seconds:.1f} s"
    )
    for m in report.merges:
        click.echo(f"merged: local contact #{m['local_id']} ({m['local_name'] or ''}) with {m['address']} ({m['reason']})")
    for m in report.unmerged:
        click.echo(f"no longer merged: local contact #{m['local_id']} ({m['address']} left the extraction)")
    _print_suspects(dups.get("local", []))
    if dups.get("national_groups"):
        click.echo(f"{dups['national_groups']:,} national names with several addresses at the same structure"
                   + (" (see --report)" if not report_path else ""))


def _print_dry_run(report: SyncReport, local_db: Path, report_path: Path | None) -> None:
    """Counts, the first contacts of each kind (with the fields that change), and the warnings."""
    from annuaire.localsync.sync import PREVIEW

    click.echo(
        f"dry run: nothing written to {local_db}\n"
        f"extraction {report.extraction_ts}: {report.lines:,} lines, {report.selected:,} selected "
        f"(filters: {report.filters})\n"
        f"would add {report.added:,}, update {report.updated:,}, remove {report.removed:,}; "
        f"{report.unchanged:,} unchanged"
    )
    for kind, sign, total in (("add", "+", report.added), ("update", "~", report.updated),
                              ("remove", "-", report.removed)):
        for item in report.preview.get(kind, []):
            fields = f" [{', '.join(item['fields'])}]" if item.get("fields") else ""
            click.echo(f"  {sign} {item['address']} ({item['name']}){fields}")
        if total > PREVIEW:
            more = "full list with --report FILE" if not report_path else f"full list in {report_path}"
            click.echo(f"  … and {total - PREVIEW:,} more to {kind} ({more})")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")


_CONTACT_FIELDS = (
    ("email", "address"), ("first-name", "first_name"), ("last-name", "last_name"),
    ("display-name", "display_name"), ("organisation", "organisation"), ("service", "service"),
    ("title", "title"), ("phone", "phone"), ("mobile", "mobile"), ("street", "street"),
    ("postcode", "postcode"), ("city", "city"), ("country", "country"),
    ("id-nat", "id_nat"), ("structure", "structure"), ("note", "note"),
)


def _contact_options(func):
    for option, name in reversed(_CONTACT_FIELDS):
        func = click.option(f"--{option}", name, default=None, help=_CONTACT_HELP.get(name))(func)
    return func


_CONTACT_HELP = {
    "address": "Mail address (required: every contact needs one).",
    "id_nat": "National id of the professional (RPPS with or without its leading 8).",
    "structure": "Structure id (Identification Structure, e.g. 1990000019), used to merge with national boxes.",
}


@local_sync.command("add-contact")
@_local_option
@_contact_options
@handle_errors
def add_contact_cmd(local_db: Path, **values: str | None) -> None:
    """Add a contact by hand (never modified by synchronisations); --email is required.

    \b
    Example:
      annuaire local-sync add-contact --local carnet.sqlite --email dr.martin@cabinet.example \\
          --first-name Camille --last-name MARTIN --id-nat 819900000017 --structure 399000000000012
    """
    from annuaire.localsync.db import LocalBase
    from annuaire.localsync.local import add_contact

    with LocalBase.open(local_db) as base:
        report = add_contact(base, values)
    if report.skipped:
        click.echo("already present: nothing added")
    else:
        click.echo("contact added")
    for m in report.merges:
        click.echo(f"merged with the national contact {m['address']} ({m['reason']})")
    _print_suspects(report.suspected_duplicates)


def _print_suspects(pairs: list) -> None:
    for d in pairs:
        other = d.get("national_address") or f"local contact #{d.get('other_local_id')} {d.get('other_local_address') or ''}"
        click.echo(f"suspected duplicate: local contact #{d['local_id']} {d['local_address'] or ''} and {other} "
                   f"(same name '{d['name_key']}' and structure)")


@local_sync.command("import-contacts")
@_local_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def import_contacts_cmd(local_db: Path, file: Path) -> None:
    """Import local contacts from a CSV or vCard file.

    CSV: the export of Thunderbird or Outlook (English or French column
    names), Apple Contacts' text-file labels, or generic columns (email,
    first_name/prénom, last_name/nom, organisation/société, …). Every contact
    needs a mail address: a line without one is refused with its number. All
    or nothing; contacts already present (same address) are skipped.

    \b
    Example:
      annuaire local-sync import-contacts --local carnet.sqlite contacts.vcf
    """
    from annuaire.localsync.db import LocalBase
    from annuaire.localsync.local import import_file

    with LocalBase.open(local_db) as base:
        report = import_file(base, file)
    click.echo(f"{report.added} contact(s) added, {report.skipped} already present, {len(report.merges)} merged")
    _print_suspects(report.suspected_duplicates)


@local_sync.command("export")
@_local_option
@click.option("--format", "fmt", required=True,
              type=click.Choice(["vcf", "vcf3", "outlook-csv", "thunderbird-csv", "ldif"]),
              help="vcf: vCard 4.0; vcf3: vCard 3.0, for clients that only read 3.0 (older Outlook, some phones).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default: standard output).")
@click.option("--base-dn", default=None, help="LDIF only: the DN under which entries are written.")
@handle_errors
def export_cmd(local_db: Path, fmt: str, output: Path | None, base_dn: str | None) -> None:
    """Export the address book (local and national contacts, merged pairs once).

    \b
    Example:
      annuaire local-sync export --local carnet.sqlite --format outlook-csv -o contacts.csv
    """
    import io
    import os

    from annuaire.localsync.db import LocalBase
    from annuaire.localsync.export import DEFAULT_BASE_DN, encoding_of, export

    with LocalBase.open(local_db, create=False) as base:
        if output is None:
            out = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding_of(fmt), newline="")
            count = export(base, fmt, out, base_dn or DEFAULT_BASE_DN)
            out.flush()
            out.detach()
        else:
            # Streamed to a temporary file, then renamed: a reader never sees half an export.
            tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
            try:
                with open(tmp, "w", encoding=encoding_of(fmt), newline="") as out:
                    count = export(base, fmt, out, base_dn or DEFAULT_BASE_DN)
                os.replace(tmp, output)
            finally:
                tmp.unlink(missing_ok=True)
    console.print(f"{count:,} contacts exported", highlight=False)


_CODE_CHOICES = {"departement": "departements", "profession": "professions", "savoir-faire": "savoir_faire",
                 "type": "types"}


@local_sync.command("codes")
@click.argument("table", type=click.Choice(list(_CODE_CHOICES)))
@handle_errors
def codes_cmd(table: str) -> None:
    """List the valid codes of a filter (--departement, --profession, --savoir-faire, --type).

    \b
    Example:
      annuaire local-sync codes departement
    """
    from annuaire.localsync.filters import codes

    for code, label in codes(_CODE_CHOICES[table]).items():
        click.echo(f"{code}\t{label}")


@local_sync.command("serve-ldap")
@_local_option
@click.option("--national", required=True, help="The national LDAP directory: ldap://host:port or ldaps://host:port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default="3389", show_default=True, help="Port to listen on ('auto' = any free port).")
@click.option("--base-dn", default="o=annuaire-sante,c=fr", show_default=True, help="Naming context served to mail clients.")
@click.option("--national-base-dn", default=None, help="Naming context of the national server (default: the same).")
@click.option("--national-bind-dn", default=None,
              help="Bind to the national server with this account (password in ANNUAIRE_NATIONAL_LDAP_PASSWORD).")
@click.option("--national-ca", type=click.Path(dir_okay=False), default=None, help="Extra CA certificate for ldaps://.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="An LDAP limit of this endpoint (e.g. anonymous_size_limit=50). Repeatable.")
@click.option("--ready-file", default=None, help="Write {\"port\": …, \"pid\": …} here once listening.")
@handle_errors
def serve_ldap_cmd(local_db: Path, national: str, host: str, port: str, base_dn: str, national_base_dn: str | None,
                   national_bind_dn: str | None, national_ca: str | None, limits: tuple[str, ...],
                   ready_file: str | None) -> None:
    """Serve ONE LDAP account answering from the local address book AND the national directory.

    Local contacts come first; an address known locally is not repeated from
    the national answer; the national server's limits apply to what it returns.

    \b
    Example:
      annuaire local-sync serve-ldap --local carnet.sqlite --national ldap://annuaire.example:389 --port 3389
      # then, in the mail client: server localhost:3389, base o=annuaire-sante,c=fr
    """
    from annuaire.config import national_ldap_password
    from annuaire.ldap.limits import LdapLimits
    from annuaire.localsync.db import LocalBase
    from annuaire.localsync.national_ldap import NationalLdap
    from annuaire.localsync.one_account import OneAccountConfig
    from annuaire.localsync.serve_ldap import serve

    LocalBase.open(local_db, create=False).close()
    endpoint_limits = LdapLimits.parse(limits, origin="--limit")
    try:
        listen_port = 0 if port == "auto" else int(port)
    except ValueError:
        raise InvalidInput(f"--port {port!r} must be a number or 'auto'") from None
    client = NationalLdap.from_url(
        national, bind_dn=national_bind_dn or "", password=national_ldap_password(), ca_file=national_ca or "",
    )
    config = OneAccountConfig(local_db, client, host, listen_port, base_dn, national_base_dn or "", endpoint_limits)

    def listening(bound: int) -> None:
        console.print(f"LDAP  ldap://{host}:{bound}/ (local {local_db} + national {client.label})", highlight=False)

    serve(config, ready_file=ready_file or "", on_listening=listening)
