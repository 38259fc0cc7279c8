"""Writer of `Extraction_Correspondance_MSSante_<ts>.zip`: one line per published mailbox.

Published = publicly visible, the directory's one rule (`store.visibility`):
never liste rouge, never a box whose holder left or whose structure closed.
`responsible` is never selected, so it cannot leak. The professional columns come from the holder's referential
record (person, and their ordinal speciality from the savoir-faire table);
the `… structure BAL` columns from the structure the mailbox is attached to
(`mailbox.structure_idnat = structure.idnat`), in AFNOR address lines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from sqlalchemy import Connection, and_, select

from annuaire import formats
from annuaire.extractions.package import AtomicArchive, render
from annuaire.extractions.select_stream import batches
from annuaire.nationalfiles.manifest import MemberInfo
from annuaire.store.schema import mailbox, person, skill, structure
from annuaire.store.visibility import visible

HEADER = formats.header_line(formats.MSSANTE_COLUMNS, trailing=False)
SPECIALITY = "S"  # the savoir-faire written is the holder's ordinal speciality (TRE_R04 type S)
# `Libellé Profession` of the MSSanté file is the short label where the
# referential's is long (TRE_G15 code -> label written).
SHORT_PROFESSION_LABELS = {"70": "Masseur-Kiné"}
STRUCTURE_COLUMNS = 13  # from "Raison Sociale structure BAL" to "Pays structure BAL"
HEAD_COLUMNS = len(formats.MSSANTE_COLUMNS) - STRUCTURE_COLUMNS


def query():
    """The mailbox and holder columns; the structure columns come from `structure_blocks`."""
    m, p, sk = mailbox.c, person.c, skill.c
    return (
        select(
            m.id, m.type, m.address, m.holder, m.structure_type, m.structure, m.service,
            p.civilite_exercice_code, p.last_name, p.first_name, p.category_code, p.category_label,
            p.profession_code, p.profession_label, sk.code, sk.label, m.dematerialisation, m.structure_idnat,
        )
        .select_from(
            mailbox.outerjoin(person, and_(p.id_nat == m.holder, p.active))
            .outerjoin(skill, and_(sk.person_id == p.id, sk.active, sk.type_code == SPECIALITY))
        )
        .where(visible())
        # Holder order: the person and savoir-faire lookups then walk their indexes
        # in order (a third faster than mailbox order at national scale).
        .order_by(m.holder, m.id, sk.id)
    )


def structure_blocks(conn: Connection) -> dict[str, str]:
    """idnat -> the 13 `… structure BAL` columns joined, for every structure a published box names.

    Rendered once per structure (thousands of boxes share a hospital). When two
    active structures share an idnat, the first one (lowest id) is used.
    """
    s = structure.c
    named = select(mailbox.c.structure_idnat).where(visible(), mailbox.c.structure_idnat.is_not(None))
    stmt = (
        select(s.idnat, s.name, s.sign, s.addressee, s.geo_complement, s.street_number, s.street_repetition,
               s.street_type_code, s.street_name, s.distribution_mention, s.cedex_office, s.postcode,
               s.commune_label, s.dept_code, s.country_label)
        .where(s.active, s.idnat.in_(named))
        .order_by(s.id)
    )
    blocks: dict[str, str] = {}
    for row in (r for rows in batches(conn, stmt) for r in rows):
        (idnat, name, sign, l2, l3, num, rep, kind, street, l5, cedex, postcode, city, dept, country) = row
        if idnat in blocks:
            continue
        values = (
            name, sign, l2, l3, num, rep, kind, street, l5, acheminement(postcode, city, cedex),
            # The referential leaves the country of French structures empty.
            postcode, dept, country or "FRANCE",
        )
        blocks[idnat] = render(values, STRUCTURE_COLUMNS - 1)[:-1]
    return blocks


def _demat(value: object) -> str:
    if value is None:
        return ""
    return "True" if value else "False"


def acheminement(postcode: str | None, city: str | None, cedex: str | None) -> str:
    """AFNOR line 6: the CEDEX line when the structure has one, else `postcode CITY`
    (city in unaccented capitals, as postal lines are written)."""
    if cedex:
        return cedex
    return " ".join(v for v in (postcode, _ascii_upper(city or "")) if v)


def _ascii_upper(text: str) -> str:
    if text.isascii():
        return text.upper()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def lines(conn: Connection) -> Iterator[str]:
    """The data lines (boxes of one holder together), each address once."""
    blocks = structure_blocks(conn)
    no_structure = "|" * (STRUCTURE_COLUMNS - 1)
    last_id = None
    for rows in batches(conn, query()):
        for row in rows:
            (mid, typ, address, holder, st_type, st_id, service, civ, last, first, cat, cat_l, prof, prof_l, sk,
             sk_l, demat, idnat) = row
            if mid == last_id:  # a second speciality of the holder: keep the first
                continue
            last_id = mid
            holder = holder or ""
            if prof in SHORT_PROFESSION_LABELS:
                prof_l = SHORT_PROFESSION_LABELS[prof]
            head = (
                typ, address, holder[:1], holder[1:], holder, st_type, st_id, service,
                civ, last, first, cat, cat_l, prof, prof_l, sk, sk_l, _demat(demat),
            )
            yield render(head, HEAD_COLUMNS - 1)[:-1] + "|" + blocks.get(idnat, no_structure) + "\n"


def write(conn: Connection, archive: AtomicArchive) -> MemberInfo:
    member = archive.member(formats.MSSANTE, HEADER)
    member.write_lines(lines(conn))
    member.close()
    return member.info
