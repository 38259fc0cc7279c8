"""Structures (sites) of the fictitious world and how activities find them.

A structure is stored once as the `|`-joined block of its 28 columns, from
`Numéro SIRET site` to `Ancien identifiant de la structure`, so every
activity line of a structure carries byte-identical structure columns.

How activities find a structure:
- SOLO cabinets are created for each liberal practitioner who works alone;
- GROUP practices grow by preferential attachment (join a random member's
  group, or found a new one), which gives realistic heavy-tailed sizes;
- hospitals (legal entity EJ + sites EG), EHPAD, health centres, laboratory
  sites (of regional companies), pharmacies, shops and imaging centres are
  laid out per département on first use (national count x scale x weight)
  with heavy-tailed sizes, then picked by weight.
"""

from __future__ import annotations

from array import array
from bisect import bisect
from itertools import accumulate
from random import Random

from annuaire.synthetic import names
from annuaire.synthetic.geo import Geography
from annuaire.synthetic.ids import Identifiers
from annuaire.synthetic.tables import (
    CDS,
    EHPAD,
    GROUP,
    HOSP,
    IMAGING,
    LAB,
    LAB_COMPANIES,
    NATIONAL_COUNTS,
    PHARMA,
    SHOP,
    SOLO,
)

BLOCK_WIDTH = 28  # columns in a structure block
# Positions inside a block (0 = Numéro SIRET site).
B_SIRET, B_SIREN, B_FINESS, B_FINESS_EJ, B_TECH, B_NAME, B_BRAND = range(7)
B_ADDRESS = 7  # 12 address columns: 7..18
B_CEDEX = B_ADDRESS + 8  # Bureau cedex
B_CP, B_INSEE, B_COMMUNE = 16, 17, 18
B_PHONE, B_PHONE2, B_FAX, B_EMAIL, B_DEPT, B_DEPT_LABEL, B_OLD_ID = 21, 22, 23, 24, 25, 26, 27
EMPTY_BLOCK = "|" * (BLOCK_WIDTH - 1)

# Shop families and their share of the national shop count.
SHOP_FAMILY = {"28": ("OPTIQUE", 0.8), "26": ("AUDITION", 0.13)}
SHOP_OTHER = ("ORTHOPEDIE", 0.07)
_FLOWERS = ("LES GLYCINES", "LES MIMOSAS", "LES HORTENSIAS", "LES CAMELIAS", "LES BLEUETS", "LES MYOSOTIS",
            "LES JONQUILLES", "LES COQUELICOTS", "LE CLOS FLEURI", "LES VIOLETTES", "LES AUBEPINES")


class Structures:
    """Column-oriented store of structures plus the pools that hand them out."""

    def __init__(self, geo: Geography, ids: Identifiers, surnames: list[str], scale: float) -> None:
        self.geo = geo
        self.ids = ids
        self.surnames = surnames
        self.scale = scale
        self.kind = bytearray()
        self.dept = bytearray()
        self.block: list[str] = []
        self.group = array("i")  # index in group_slug (EJ, company, or the structure itself) or -1
        self.nact = array("i")  # live activities
        self.group_slug: list[str] = []
        self.group_kind = bytearray()
        self._laid_out: dict[tuple[int, int, str], tuple[list[int], list[float]]] = {}
        self._members: dict[tuple[int, str], list[int]] = {}
        self._cabinets: dict[int, list[int]] = {}
        self._pharma_next: dict[int, int] = {}
        self._companies: dict[str, list[list]] = {}
        self.solo_rank: dict[int, int] = {}  # person -> last RPPS cabinet rank used by churn

    def __len__(self) -> int:
        return len(self.kind)

    # ---------------------------------------------------------------- lookups
    def fields(self, s: int) -> list[str]:
        return self.block[s].split("|")

    def pick(self, rng: Random, kind: int, d: int, fam: str = "") -> int:
        """A laid-out structure of `kind` in département d, by weight."""
        key = (d, kind, fam)
        pool = self._laid_out.get(key)
        if pool is None:
            pool = self._layout(rng, kind, d, fam)
        ids, cum = pool
        return ids[min(bisect(cum, rng.random() * cum[-1]), len(ids) - 1)]

    def titulaire_pharmacy(self, rng: Random, d: int) -> int:
        """Titulaires fill pharmacies without one first, then co-own by weight."""
        pool = self._laid_out.get((d, PHARMA, "")) or self._layout(rng, PHARMA, d, "")
        nxt = self._pharma_next.get(d, 0)
        if nxt < len(pool[0]) and rng.random() < 0.8:
            self._pharma_next[d] = nxt + 1
            return pool[0][nxt]
        return self.pick(rng, PHARMA, d)

    def group_practice(self, rng: Random, d: int, fam: str, new_share: float, person: tuple[str, str, str]) -> int:
        members = self._members.setdefault((d, fam), [])
        if members and rng.random() >= new_share:
            s = members[int(rng.random() * len(members))]
        else:
            s = self._new_group(rng, d, fam, person)
            self._cabinets.setdefault(d, []).append(s)
        members.append(s)
        return s

    def replacement_cabinet(self, rng: Random, d: int) -> int:
        """An existing liberal cabinet of the département (-1 when none yet)."""
        cabinets = self._cabinets.get(d)
        if not cabinets:
            return -1
        return cabinets[int(rng.random() * len(cabinets))]

    # ------------------------------------------------------------- creation
    def _add(self, kind: int, d: int, cols: list[str], group: int) -> int:
        s = len(self.kind)
        self.kind.append(kind)
        self.dept.append(d)
        self.block.append("|".join(cols))
        self.group.append(group)
        self.nact.append(0)
        return s

    def _new_group_slug(self, kind: int, slug: str) -> int:
        self.group_slug.append(slug)
        self.group_kind.append(kind)
        return len(self.group_slug) - 1

    def _cols(self, rng: Random, d: int, *, siret: str = "", finess: str = "", finess_ej: str = "", tech: str = "",
              old: str = "", name: str, brand: str = "", big: bool = False, cedex: float = 0.0,
              fax: float = 0.3, email: float = 0.0, email_host: str = "", phone: float = 0.9,
              dest: str = "") -> list[str]:
        dept = self.geo.depts[d]
        address = list(self.geo.address(rng, d, self.surnames, big=big, cedex=cedex))
        if dest:
            address[0] = dest
        geo = self.geo
        tel = geo.phone(rng, d) if rng.random() < phone else ""
        tel2 = geo.phone(rng, d) if tel and rng.random() < 0.12 else ""
        fx = geo.phone(rng, d) if rng.random() < fax else ""
        if "{" in name or "{" in brand:
            place = names.ascii_upper(address[11])
            values = {"commune": place, "of_commune": names.of_place(place)}
            name, brand = name.format(**values), brand.format(**values)
        mail = ""
        if email and rng.random() < email:
            host = email_host or names.slug(name)
            town = names.slug(address[11])
            if not email_host and town not in host:
                host = f"{host}-{town}"
            mail = f"{rng.choice(('contact', 'secretariat', 'accueil'))}@{host}.fr"
        return [siret, siret[:9], finess, finess_ej, tech, name, brand, *address, "", "", tel, tel2, fx, mail,
                dept.code, dept.label, old]

    def new_solo(self, rng: Random, d: int, person: tuple[str, str, str], national_type: int, ident: str,
                 prof: str, rank: int) -> int:
        """A practitioner's own cabinet: RPPS cabinet (`R`/`4`), SIRET (`C`/`3`) or ADELI cabinet (`C`/`0`)."""
        first, last, title = person
        who = names.ascii_upper(f"{first} {last}")
        if title:
            name = f"CABINET DENTAIRE DU DR {who}" if prof == "40" else f"CABINET DU DR {who}"
        elif prof == "60":
            name = f"CABINET INFIRMIER {names.ascii_upper(last)}"
        elif prof == "70":
            name = f"CABINET DE KINESITHERAPIE {names.ascii_upper(last)}"
        else:
            name = f"CABINET {who}"
        r = rng.random()
        if national_type == 8 and r < 0.55:
            cab = f"{ident}{rank:02d}"
            cols = self._cols(rng, d, tech=f"R{cab}", old=f"4{cab}", name=name, fax=0.25, email=0.08)
        elif national_type == 0 and r < 0.7:
            cab = self.ids.adeli_cabinet(rng, self.geo.depts[d].code)
            cols = self._cols(rng, d, tech=f"C{cab}", old=f"0{cab}", name=name, fax=0.2, email=0.05)
        else:
            siret = self.ids.siret(self.ids.siren(rng), 10 + rng.randrange(30))
            cols = self._cols(rng, d, siret=siret, tech=f"C{siret}", old=f"3{siret}", name=name, fax=0.25, email=0.08)
        s = self._add(SOLO, d, cols, -1)
        self._cabinets.setdefault(d, []).append(s)
        return s

    def _new_group(self, rng: Random, d: int, fam: str, person: tuple[str, str, str]) -> int:
        adj = names.place_adjective(rng)
        other = names.ascii_upper(rng.choice(self.surnames))
        last = names.ascii_upper(person[1])
        r = rng.random()
        if fam == "10":
            options: tuple[str, ...] = (f"CABINET MEDICAL {adj}", f"SCM MEDICALE {adj}", f"SELARL DES DOCTEURS {last} ET {other}",
                       "MAISON DE SANTE {of_commune}")
        elif fam == "60":
            options = (f"CABINET INFIRMIER {adj}", f"SCP INFIRMIERS {last}-{other}", "CABINET INFIRMIER {commune}")
        elif fam == "70":
            options = (f"CABINET DE KINESITHERAPIE {adj}", f"SCM KINE {last} {other}", "KINE {commune}")
        elif fam == "40":
            options = (f"CABINET DENTAIRE {adj}", f"SELARL DES DOCTEURS {last} ET {other}", "CENTRE DENTAIRE {of_commune}")
        else:
            options = (f"CABINET {adj}", f"CABINET PARAMEDICAL {adj}", f"SCM {last} {other}")
        pattern = options[int(r * len(options))]
        siret = self.ids.siret(self.ids.siren(rng), 12 + rng.randrange(40))
        cols = self._cols(rng, d, siret=siret, tech=f"C{siret}", old=f"3{siret}", name=pattern, fax=0.35,
                          email=0.15)
        group = self._new_group_slug(GROUP, names.slug(cols[B_NAME]))
        return self._add(GROUP, d, cols, group)

    def _layout(self, rng: Random, kind: int, d: int, fam: str) -> tuple[list[int], list[float]]:
        """Create the structures of one (département, kind) with heavy-tailed weights."""
        dept = self.geo.depts[d]
        share = 1.0
        if kind == SHOP:
            share = SHOP_FAMILY.get(fam, SHOP_OTHER)[1]
        count = max(1, round(NATIONAL_COUNTS[kind] * share * self.scale * dept.weight))
        ids: list[int] = []
        weights: list[float] = []
        if kind == HOSP:
            for e in range(count):
                for s, w in self._new_hospital(rng, d, e):
                    ids.append(s)
                    weights.append(w)
        else:
            for _ in range(count):
                ids.append(self._new_laid_out(rng, kind, d, fam))
                u = rng.random()
                weights.append((1.0 - u) ** -0.6 if kind in (EHPAD, CDS, LAB, IMAGING) else 0.4 + u)
        pool = (ids, list(accumulate(weights)))
        self._laid_out[(d, kind, fam)] = pool
        return pool

    def _new_laid_out(self, rng: Random, kind: int, d: int, fam: str) -> int:
        code = self.geo.depts[d].code
        if kind == PHARMA:
            adj = names.place_adjective(rng)
            r = rng.random()
            if r < 0.5:
                brand = f"PHARMACIE {adj}"
            elif r < 0.8:
                brand = f"PHARMACIE {names.ascii_upper(rng.choice(self.surnames))}"
            else:
                brand = "GRANDE PHARMACIE {of_commune}"
            name = f"SELARL {brand}" if rng.random() < 0.4 else brand
            finess = self.ids.finess_number(rng, code)
            siret = self.ids.siret(self.ids.siren(rng), 11 + rng.randrange(30))
            cols = self._cols(rng, d, siret=siret, finess=finess, finess_ej=self.ids.finess_number(rng, code),
                              tech=f"F{finess}", old=f"1{finess}", name=name,
                              brand=brand if name != brand else "", fax=0.7, email=0.2, phone=0.99)
            group = -1
        elif kind == LAB:
            group, company, siren, ej, nsites = self._company(rng, d)
            finess = self.ids.finess_number(rng, code)
            cols = self._cols(rng, d, siret=self.ids.siret(siren, 10 + nsites), finess=finess,
                              finess_ej=ej, tech=f"F{finess}", old=f"1{finess}", name=company, brand="",
                              fax=0.6, email=0.3, email_host=names.slug(company), cedex=0.1)
            cols[B_NAME] = f"{company} {names.ascii_upper(cols[B_COMMUNE])}"
        elif kind in (EHPAD, CDS):
            finess = self.ids.finess_number(rng, code)
            if kind == EHPAD:
                r = rng.random()
                name = (f"EHPAD {rng.choice(_FLOWERS)}" if r < 0.5 else
                        f"EHPAD RESIDENCE {names.place_adjective(rng)}" if r < 0.75 else "EHPAD {of_commune}")
            else:
                r = rng.random()
                name = ("CENTRE DE SANTE {of_commune}" if r < 0.4 else
                        f"CENTRE DE SANTE DENTAIRE {names.place_adjective(rng)}" if r < 0.7 else
                        "CENTRE DE SANTE MUNICIPAL {of_commune}" if r < 0.9 else
                        "CENTRE DE SANTE INFIRMIER {of_commune}")
            siret = self.ids.siret(self.ids.siren(rng), 17) if rng.random() < 0.5 else ""
            cols = self._cols(rng, d, siret=siret, finess=finess, finess_ej=self.ids.finess_number(rng, code),
                              tech=f"F{finess}", old=f"1{finess}", name=name, fax=0.6, email=0.3, cedex=0.05)
            group = self._new_group_slug(kind, names.slug(cols[B_NAME]))
        elif kind == SHOP:
            family = SHOP_FAMILY.get(fam, SHOP_OTHER)[0]
            brand = f"{family} {names.brand(rng)}" if rng.random() < 0.6 else f"{family} {names.place_adjective(rng)}"
            siret = self.ids.siret(self.ids.siren(rng), 13 + rng.randrange(20))
            cols = self._cols(rng, d, siret=siret, tech=f"C{siret}", old=f"3{siret}",
                              name=f"SARL {brand}" if rng.random() < 0.5 else brand, brand=brand, fax=0.2)
            group = -1
        else:  # IMAGING
            adj = names.place_adjective(rng)
            name = rng.choice((f"CENTRE D'IMAGERIE MEDICALE {adj}", f"CABINET DE RADIOLOGIE {adj}",
                               "SELARL IMAGERIE {of_commune}"))
            siret = self.ids.siret(self.ids.siren(rng), 15 + rng.randrange(20))
            cols = self._cols(rng, d, siret=siret, tech=f"C{siret}", old=f"3{siret}", name=name, fax=0.6, email=0.2)
            group = self._new_group_slug(kind, names.slug(cols[B_NAME]))
        return self._add(kind, d, cols, group)

    def _company(self, rng: Random, d: int) -> list:
        """A laboratory company of the département's region (created as needed): [group, name, siren, EJ, sites]."""
        dept = self.geo.depts[d]
        companies = self._companies.setdefault(dept.region, [])
        target = max(1, round(LAB_COMPANIES * self.scale * self.geo.region_weight[dept.region]))
        if len(companies) < target and (not companies or rng.random() < 0.3):
            name = f"{rng.choice(('SELAS', 'SELARL', 'SAS'))} {names.lab_brand(rng)}"
            group = self._new_group_slug(LAB, names.slug(name.split(" ", 1)[1]))
            companies.append([group, name, self.ids.siren(rng), self.ids.finess_number(rng, dept.code), 0])
        company = companies[int(rng.random() * len(companies))]
        company[4] += 1
        return company

    def _new_hospital(self, rng: Random, d: int, rank: int) -> list[tuple[int, float]]:
        """One legal entity (EJ) and its sites (EG) with their weights."""
        code = self.geo.depts[d].code
        commune = self.geo.commune(rng, d, big=True)[2]
        place = names.ascii_upper(commune)
        r = rng.random()
        if rank == 0:
            chu = self.geo.depts[d].weight > 0.012
            name, short = (f"CHU {names.of_place(place)}", "chu") if chu else (f"CENTRE HOSPITALIER {names.of_place(place)}", "ch")
            weight = 8.0 if chu else 4.0
            sites = 3 + rng.randrange(6) if chu else 1 + rng.randrange(3)
        else:
            if r < 0.45:
                name, short = f"CENTRE HOSPITALIER {names.of_place(place)}", "ch"
            elif r < 0.8:
                name, short = f"CLINIQUE {names.place_adjective(rng)}", "clinique"
            elif r < 0.88:
                name, short = f"CENTRE HOSPITALIER SPECIALISE {place}", "chs"
            elif r < 0.95:
                name, short = f"HOPITAL PRIVE {names.place_adjective(rng)}", "hp"
            else:
                name, short = f"CENTRE DE READAPTATION {names.place_adjective(rng)}", "ssr"
            weight = (1.0 - rng.random()) ** -0.7
            sites = 1 + min(6, int(rng.expovariate(0.9)))
        group = self._new_group_slug(HOSP, names.slug(f"{short} {place}" if short in ("ch", "chu", "chs")
                                                      else f"{name} {place}"))
        ej = self.ids.finess_number(rng, code)
        siren = self.ids.siren(rng) if rng.random() < 0.5 else ""
        out = []
        for i in range(sites):
            finess = self.ids.finess_number(rng, code)
            site_name = name if i == 0 else f"{name} - SITE {self._site_label(rng, d, place)}"
            cols = self._cols(rng, d, siret=self.ids.siret(siren, 10 + i * 7) if siren else "", finess=finess,
                              finess_ej=ej, tech=f"F{finess}", old=f"1{finess}", name=site_name, big=i == 0,
                              cedex=0.35, fax=0.8, email=0.3, email_host=names.slug(f"{short} {place}"),
                              dest="DIRECTION GENERALE" if rng.random() < 0.03 else "")
            s = self._add(HOSP, d, cols, group)
            out.append((s, weight * (1.0 if i == 0 else 0.3 + rng.random() * 0.5)))
        return out

    def _site_label(self, rng: Random, d: int, place: str) -> str:
        if rng.random() < 0.3:
            town = names.ascii_upper(self.geo.commune(rng, d)[2])
            if town != place:
                return town
        return rng.choice(("NORD", "SUD", "EST", "OUEST", "DU PARC", "DES LILAS", "PASTEUR", "SAINT-JACQUES",
                           "MATERNITE", "PSYCHIATRIE", "GERIATRIE", "LES CEDRES", "DU LAC"))

    # --------------------------------------------------------------- churn
    def move_address(self, rng: Random, s: int) -> None:
        """The structure moved: new street (same département), same identity."""
        cols = self.fields(s)
        d = self.dept[s]
        address = self.geo.address(rng, d, self.surnames, cedex=0.3 if cols[B_CEDEX] else 0.0)
        cols[B_ADDRESS:B_ADDRESS + 12] = address
        if rng.random() < 0.5:
            cols[B_PHONE] = self.geo.phone(rng, d)
        self.block[s] = "|".join(cols)

