"""Départements, invented communes, postal addresses and phone numbers.

Each département's communes are drawn from their own random stream
(seed, département), so they are the same whatever order the world asks for
them in. Postcodes start with the département (Corsica 200xx-201xx / 202xx-
206xx, overseas 971..976), INSEE commune codes are département + number and
never equal the postcode; Paris has its twenty arrondissements.
"""

from __future__ import annotations

import csv
from bisect import bisect
from dataclasses import dataclass, field
from itertools import accumulate
from random import Random

from annuaire.synthetic import names
from annuaire.synthetic.tables import NOMENCLATURES

# Fictitious phone ranges reserved by the French regulator for films and books,
# so no generated number rings anybody; overseas get a local-looking prefix.
_PHONE_PREFIX = {1: "019900", 2: "026191", 3: "035301", 4: "046571", 5: "053649"}
_REGION_DIGIT = {
    "Île-de-France": 1, "Bretagne": 2, "Normandie": 2, "Pays de la Loire": 2, "Centre-Val de Loire": 2,
    "Hauts-de-France": 3, "Grand Est": 3, "Bourgogne-Franche-Comté": 3, "Auvergne-Rhône-Alpes": 4,
    "Provence-Alpes-Côte d'Azur": 4, "Corse": 4, "Occitanie": 5, "Nouvelle-Aquitaine": 5,
}
_OVERSEAS_PHONE = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}


@dataclass
class Departement:
    code: str
    label: str
    region: str
    weight: float
    communes: list[tuple[str, str, str]] = field(default_factory=list)  # (INSEE code, postcode, name)
    cum: list[float] = field(default_factory=list)  # cumulative weights of communes


def load_departements() -> list[Departement]:
    with open(NOMENCLATURES / "departements.csv", encoding="utf-8", newline="") as fh:
        return [Departement(r["code"], r["departement"], r["region"], float(r["weight"]))
                for r in csv.DictReader(fh, delimiter=";")]


class Geography:
    """Départements with lazily built communes; addresses and phones."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.depts = load_departements()
        self.cum = list(accumulate(d.weight for d in self.depts))
        self.regions = sorted({d.region for d in self.depts})
        self._phone_prefix = [_PHONE_PREFIX[_REGION_DIGIT[d.region]] if len(d.code) == 2 else "" for d in self.depts]
        total = self.cum[-1]
        self.region_weight = {r: sum(d.weight for d in self.depts if d.region == r) / total for r in self.regions}

    def pick_dept(self, u: float) -> int:
        return min(bisect(self.cum, u * self.cum[-1]), len(self.depts) - 1)

    def communes(self, d: int) -> Departement:
        dept = self.depts[d]
        if not dept.communes:
            _build_communes(dept, Random(f"{self.seed}:communes:{dept.code}"))
        return dept

    def commune(self, rng: Random, d: int, big: bool = False) -> tuple[str, str, str]:
        """A commune of département d, weighted by size (big: among the largest)."""
        dept = self.communes(d)
        if big:
            return dept.communes[min(int(rng.random() ** 3 * 4), len(dept.communes) - 1)]
        return dept.communes[min(bisect(dept.cum, rng.random() * dept.cum[-1]), len(dept.communes) - 1)]

    def phone(self, rng: Random, d: int) -> str:
        dept = self.depts[d]
        prefix = _OVERSEAS_PHONE.get(dept.code)
        if prefix:
            return f"{prefix}99{int(rng.random() * 10000):04d}"
        return f"{self._phone_prefix[d]}{int(rng.random() * 10000):04d}"

    def address(self, rng: Random, d: int, surnames: list[str], *, big: bool = False, cedex: float = 0.0,
                extra: float = 0.08) -> tuple[str, ...]:
        """The 12 address columns, from `Complément destinataire` to `Libellé commune`.

        (compl. destinataire, compl. point géo, numéro, indice, type code, type label,
        libellé voie, mention distribution, bureau cedex, code postal, code commune, commune)
        """
        insee, postcode, commune = self.commune(rng, d, big)
        number = "" if rng.random() < 0.07 else str(1 + int(rng.random() ** 2 * 240))
        index = ""
        if number and rng.random() < 0.03:
            index = "B" if rng.random() < 0.8 else "T"
        t = rng.random() * 103
        for code, label, weight in names.STREET_TYPES:  # noqa: B007 (code, label are kept after the break)
            t -= weight
            if t < 0:
                break
        voie = names.street_name(rng, surnames)
        compl_geo = ""
        if rng.random() < extra:
            compl_geo = rng.choice(("BATIMENT A", "BATIMENT B", "RESIDENCE LES ACACIAS", "ZONE ARTISANALE",
                                    "CENTRE COMMERCIAL", "ESPACE SANTE", "LE PARC D'ACTIVITES", "2EME ETAGE"))
        mention = bureau = ""
        if cedex and rng.random() < cedex:
            postcode = f"{postcode[:3]}{rng.randrange(10):d}{rng.randrange(1, 10):d}"
            if postcode == insee:
                postcode = postcode[:3] + ("91" if postcode[3:] != "91" else "92")
            bureau = f"{postcode} {names.ascii_upper(commune)} CEDEX"
            if rng.random() < 0.5:
                bureau += f" {rng.randrange(1, 10)}"
            if rng.random() < 0.6:
                mention = f"BP {rng.randrange(1, 400)}" if rng.random() < 0.5 else f"CS {rng.randrange(10, 99)}{rng.randrange(1000):03d}"
        return ("", compl_geo, number, index, code, label, voie, mention, bureau, postcode, insee, commune)


def _build_communes(dept: Departement, rng: Random) -> None:
    code = dept.code
    if code == "75":
        dept.communes = [(f"751{n:02d}", f"750{n:02d}", f"Paris {n}{'er' if n == 1 else 'e'} Arrondissement")
                         for n in range(1, 21)]
        dept.cum = list(accumulate(1.0 + 0.5 * rng.random() for _ in dept.communes))
        return
    overseas = len(code) == 3
    count = min(60, 12 + int(dept.weight * 2500)) if overseas else 20 + int(dept.weight * 6000)
    if overseas:
        insee_numbers = rng.sample(range(1, 61), count)
    else:
        insee_numbers = rng.sample(range(1, 1000), count)
    seen: set[str] = set()
    communes = []
    for i, number in enumerate(insee_numbers):
        if overseas:
            insee = f"{code}{number:02d}"
            postcode = f"{code}{0 if i == 0 else rng.randrange(1, 10) * 10:02d}"
        elif code in ("2A", "2B"):
            insee = f"{code}{number:03d}"
            low, high = (0, 19) if code == "2A" else (20, 69)
            postcode = f"20{(low if i == 0 else rng.randrange(low + 1, high + 1)) * 10:03d}"
        else:
            insee = f"{code}{number:03d}"
            postcode = f"{code}{0 if i == 0 else rng.randrange(10, 100) * 10:03d}"
        if postcode == insee:  # never the same string: bump the postcode
            postcode = postcode[:-2] + ("10" if postcode[-2:] != "10" else "20")
        name = names.commune_name(rng)
        while name in seen:
            name = names.commune_name(rng)
        seen.add(name)
        communes.append((insee, postcode, name))
    dept.communes = communes
    # Heavy-tailed sizes: the prefecture first, then a Zipf-like tail.
    dept.cum = list(accumulate((12.0 if i == 0 else 1.0 / (i ** 0.9)) for i in range(count)))
