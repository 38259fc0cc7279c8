"""Which column of a contacts CSV holds which field: the mail clients' export layouts.

Mail clients name their columns in the user's language, and a French export
read with English names loses its addresses, names and organisations. Each
layout below is the header a client really writes (Thunderbird and Outlook, in
English and French; the labels Apple Contacts reads from a text file); a
generic layout takes common column names in either language. Names are
compared through `search_key` (case, accents, punctuation and typographic
apostrophes do not matter). A header where no layout finds an e-mail column
is refused, naming the columns looked for: importing it would add contacts
without their address.
"""

from __future__ import annotations

from dataclasses import dataclass

from annuaire.errors import InvalidInput
from annuaire.store.keys import search_key


@dataclass(frozen=True)
class Layout:
    """Column names per contact field; `Name#2` is the second column called `Name`."""

    name: str
    columns: dict[str, tuple[str, ...]]


# Thunderbird writes the same 37 columns in every language; French repeats
# "Ville" and "Code postal" (home address, then work address).
THUNDERBIRD_EN = Layout("Thunderbird (English)", {
    "address": ("Primary Email",), "first_name": ("First Name",), "last_name": ("Last Name",),
    "display_name": ("Display Name",), "organisation": ("Organization",), "service": ("Department",),
    "title": ("Job Title",), "phone": ("Work Phone",), "mobile": ("Mobile Number",), "street": ("Work Address",),
    "postcode": ("Work ZipCode",), "city": ("Work City",), "country": ("Work Country",), "note": ("Notes",),
})
THUNDERBIRD_FR = Layout("Thunderbird (français)", {
    "address": ("Adresse électronique principale", "Première adresse électronique"),
    "first_name": ("Prénom",), "last_name": ("Nom de famille",), "display_name": ("Nom à afficher",),
    "organisation": ("Société",), "service": ("Service",), "title": ("Profession",),
    "phone": ("Tél. professionnel",), "mobile": ("Portable",), "street": ("Adresse professionnelle",),
    "postcode": ("Code postal#2",), "city": ("Ville#2",), "country": ("Pays/Région (bureau)",), "note": ("Notes",),
})
# Outlook desktop ("Title" first) and Outlook.com (the layout of export.OUTLOOK_HEADER) share these names.
OUTLOOK_EN = Layout("Outlook (English)", {
    "address": ("E-mail Address",), "first_name": ("First Name",), "last_name": ("Last Name",),
    "organisation": ("Company",), "service": ("Department",), "title": ("Job Title",),
    "phone": ("Business Phone",), "mobile": ("Mobile Phone",), "street": ("Business Street",),
    "postcode": ("Business Postal Code",), "city": ("Business City",),
    "country": ("Business Country/Region", "Business Country"), "note": ("Notes",),
})
# French Outlook: "Titre" is both the civility (first column) and the job title (the second one).
OUTLOOK_FR = Layout("Outlook (français)", {
    "address": ("Adresse de messagerie", "Adresse mail", "Adresse e-mail"),
    "first_name": ("Prénom",), "last_name": ("Nom",), "organisation": ("Société",), "service": ("Service",),
    "title": ("Titre#2", "Fonction"), "phone": ("Téléphone (bureau)",), "mobile": ("Tél. mobile",),
    "street": ("Rue (bureau)",), "postcode": ("Code postal (bureau)",), "city": ("Ville (bureau)",),
    "country": ("Pays/Région (bureau)", "Pays (bureau)"), "note": ("Notes",),
})
# Apple Contacts exports vCards (read by read_vcards); its text-file import reads these labels.
APPLE = Layout("Apple Contacts", {
    "address": ("email (work)", "email (home)"), "first_name": ("first",), "last_name": ("last",),
    "organisation": ("company",), "service": ("department",), "title": ("job title",),
    "phone": ("phone (work)",), "mobile": ("phone (mobile)",), "street": ("address (work) street",),
    "postcode": ("address (work) zip",), "city": ("address (work) city",),
    "country": ("address (work) country",), "note": ("note",),
})
GENERIC = Layout("generic", {
    "address": ("address", "email", "e-mail", "mail", "courriel", "adresse bal", "adresse e-mail",
                "adresse mail", "adresse electronique"),
    "first_name": ("first_name", "prenom", "given name"),
    "last_name": ("last_name", "nom", "surname", "family name", "nom de famille"),
    "display_name": ("display_name", "name", "nom complet", "full name"),
    "organisation": ("organisation", "organization", "company", "etablissement", "structure name", "societe"),
    "service": ("service", "department"),
    "title": ("title", "fonction", "profession", "job title"),
    "phone": ("phone", "telephone", "tel"),
    "mobile": ("mobile", "portable"),
    "street": ("street", "adresse", "rue"),
    "postcode": ("postcode", "code postal", "postal code", "cp"),
    "city": ("city", "ville", "commune"),
    "country": ("country", "pays"),
    "id_nat": ("id_nat", "rpps", "identification nationale pp", "idnat"),
    "structure": ("structure", "identification structure"),
    "note": ("note", "notes", "commentaire"),
})
CLIENT_LAYOUTS = (THUNDERBIRD_EN, THUNDERBIRD_FR, OUTLOOK_EN, OUTLOOK_FR, APPLE)


@dataclass(frozen=True)
class ColumnMap:
    """The layout recognised and, per field, the index of its column."""

    layout: str
    columns: dict[str, int]
    header: list[str]

    def column_name(self, field: str) -> str:
        return self.header[self.columns[field]].strip()


def _index(keys: list[str], spec: str) -> int | None:
    name, _, nth = spec.partition("#")
    wanted, occurrence = search_key(name), int(nth or 1)
    seen = 0
    for i, key in enumerate(keys):
        if key == wanted:
            seen += 1
            if seen == occurrence:
                return i
    return None


def _match(layout: Layout, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for field, specs in layout.columns.items():
        for spec in specs:
            i = _index(keys, spec)
            if i is not None:
                found[field] = i
                break
    return found


def map_header(header: list[str], where: str) -> ColumnMap:
    """The layout of `header` (the mail client's with the most columns found), or InvalidInput."""
    keys = [search_key(h.lstrip("\ufeff")) for h in header]
    candidates = [(layout, _match(layout, keys)) for layout in CLIENT_LAYOUTS]
    candidates = [(layout, found) for layout, found in candidates if "address" in found]
    if candidates:
        layout, found = max(candidates, key=lambda c: len(c[1]))
        return ColumnMap(layout.name, found, header)
    found = _match(GENERIC, keys)
    if "address" in found:
        return ColumnMap(GENERIC.name, found, header)
    shown = ", ".join(f'"{h.strip()}"' for h in header[:12]) + (", …" if len(header) > 12 else "")
    raise InvalidInput(
        f"{where}: no e-mail column in the header ({shown}). Expected the export of a mail client "
        f'(Thunderbird "Primary Email" / "Adresse électronique principale" / "Première adresse électronique", '
        f'Outlook "E-mail Address" / "Adresse de messagerie", Apple "email (work)") or a CSV with an "email" '
        f'column, plus e.g. "first_name"/"prénom", "last_name"/"nom", "organisation"/"société"'
    )
