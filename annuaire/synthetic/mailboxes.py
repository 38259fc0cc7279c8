"""Published MSSanté mailboxes of the fictitious world, and their domains.

Calibrated on the open extraction (distributions.md): ~535k boxes at full
scale, 85 % PER / 15 % ORG, ~5,000 domains with a heavy tail (national
per-profession domains on top, `medecin.mssante.fr` the largest; software
vendors and regional platforms next; a long tail of establishment domains
where ORG boxes concentrate).

Rules kept true by construction (the tests check them):
- PER boxes only for persons with a current activity; the attached structure,
  when given, is one of the holder's activity structures;
- ORG boxes are attached to a structure that has activities (a structure
  whose last activity goes away takes its ORG boxes with it);
- addresses are lowercase `[a-z0-9._-]` local parts, unique nationally
  (numeric suffix on collision), never reused after deletion.
"""

from __future__ import annotations

from array import array
from bisect import bisect
from itertools import accumulate
from random import Random
from typing import TYPE_CHECKING

from annuaire.synthetic import names, pace
from annuaire.synthetic.structures import B_NAME
from annuaire.synthetic.tables import (
    CDS,
    EHPAD,
    GROUP,
    HOSP,
    IMAGING,
    INACTIVE,
    LAB,
    LIB,
    P_NURSE,
    PHARMA,
    PROFESSIONS,
    SHOP,
    SOLO,
)

if TYPE_CHECKING:
    from annuaire.synthetic.world import World

PER, ORG = 0, 1
BOX_TYPES = ("PER", "ORG")
_STEP = 50_000  # persons between two progress advances
# National figures (distributions.md) at full scale.
PER_PER_PERSON = 455_471 / 1_950_000

# Invented software vendors / operators (shared domains), biggest first.
_VENDORS = ("quadrisoin", "nexaclin", "vallomed", "soliveo", "carmedis", "officinet", "biolinea", "medixor",
            "santorial", "clinexa", "docavia", "tessamed", "kalisoin", "praxilane", "oriflux", "caducelis",
            "mediveil", "soignet", "vitalogue", "cabinexia", "ordiclin", "telemedis", "praticea", "logisoin",
            "hospilink", "curalis", "medinord", "sudsante", "ouestclin", "estmedic", "alpimed", "armorsoin",
            "provensoin", "ligerica", "normedis", "aquitamed", "occimed", "centremed", "gallimed", "lutecia")
_VENDOR_CUM = list(accumulate(1.0 / (r + 1) ** 0.9 for r in range(len(_VENDORS))))
# Chance that an establishment / company / practice runs its own domain.
_OWN_DOMAIN = {HOSP: 0.35, LAB: 0.5, EHPAD: 0.25, CDS: 0.3, GROUP: 0.02, IMAGING: 0.1}

_HOSP_SERVICES = (
    ("cardio", "Cardiologie"), ("accueil", "Accueil"), ("urgences", "Urgences"), ("pediatrie", "Pédiatrie"),
    ("radiologie", "Radiologie"), ("laboratoire", "Laboratoire"), ("pharmacie", "Pharmacie à usage intérieur"),
    ("maternite", "Maternité"), ("dim", "Département d'information médicale"), ("bloc", "Bloc opératoire"),
    ("oncologie", "Oncologie"), ("geriatrie", "Gériatrie"), ("psychiatrie", "Psychiatrie"),
    ("chirurgie", "Chirurgie"), ("medecine-interne", "Médecine interne"), ("neurologie", "Neurologie"),
    ("pneumologie", "Pneumologie"), ("gastro", "Gastro-entérologie"), ("consultations", "Consultations externes"),
    ("admissions", "Admissions"), ("direction", "Direction"), ("smur", "SMUR"),
    ("ssr", "Soins de suite et de réadaptation"), ("dialyse", "Néphrologie - dialyse"),
    ("rhumatologie", "Rhumatologie"), ("ophtalmologie", "Ophtalmologie"), ("orl", "ORL"), ("urologie", "Urologie"),
    ("endocrinologie", "Endocrinologie"), ("dermatologie", "Dermatologie"), ("hematologie", "Hématologie"),
    ("reanimation", "Réanimation"), ("anesthesie", "Anesthésie"), ("soins-palliatifs", "Soins palliatifs"),
    ("addictologie", "Addictologie"), ("medecine-nucleaire", "Médecine nucléaire"),
)
_HOSP_PREFIX = ("secretariat.", "", "consultations.", "hdj.", "cadre.", "equipe.")
_ORG_LOCAL = {
    PHARMA: (("pharmacie", "Officine"), ("pharmacie", "")),
    LAB: (("laboratoire", "Laboratoire de biologie médicale"), ("resultats", "Résultats")),
    EHPAD: (("accueil", "Accueil"), ("infirmerie", "Infirmerie"), ("direction", "Direction"),
            ("secretariat.medical", "Secrétariat médical")),
    CDS: (("secretariat", "Secrétariat"), ("accueil", "Accueil"), ("dentaire", "Centre dentaire")),
    GROUP: (("secretariat", "Secrétariat"), ("cabinet", "")),
    SOLO: (("cabinet", ""), ("secretariat", "")),
    IMAGING: (("imagerie", "Imagerie médicale"), ("secretariat", "Secrétariat")),
    SHOP: (("contact", ""),),
}


def _per_base(pi: int, liberal: bool) -> float:
    if pi == P_NURSE:
        return 0.5 if liberal else 0.17
    return PROFESSIONS[pi].per_box


class Mailboxes:
    """Column store of mailboxes (creation order) and the domain table."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.kind = bytearray()
        self.addr: list[str] = []
        self.person = array("i")
        self.struct = array("i")
        self.service: list[str] = []
        self.demat = bytearray()
        self.alive = bytearray()
        self.domain = array("i")
        self.used: set[str] = set()  # every address ever published (membership only)
        self.domains: list[str] = []
        self._domain_ix: dict[str, int] = {}
        self._group_domain: dict[int, int] = {}
        self.by_person: dict[int, list[int]] = {}
        self.by_struct: dict[int, list[int]] = {}
        total = sum(p.share for p in PROFESSIONS)
        expected = sum(p.share * ((p.lib + p.mixed) * _per_base(i, True) + p.sal * _per_base(i, False))
                       for i, p in enumerate(PROFESSIONS)) / total * (1 - INACTIVE)
        self.k = PER_PER_PERSON / expected

    # ---------------------------------------------------------- domains
    def _domain(self, name: str) -> int:
        ix = self._domain_ix.get(name)
        if ix is None:
            ix = len(self.domains)
            self.domains.append(name)
            self._domain_ix[name] = ix
        return ix

    def _vendor(self, rng: Random) -> int:
        i = min(bisect(_VENDOR_CUM, rng.random() * _VENDOR_CUM[-1]), len(_VENDORS) - 1)
        return self._domain(f"{_VENDORS[i]}.mssante.fr")

    def _regional(self, rng: Random, s: int) -> int:
        geo = self.world.geo
        d = self.world.structures.dept[s] if s >= 0 else geo.pick_dept(rng.random())
        return self._domain(f"plateforme-{names.slug(geo.depts[d].region)}.mssante.fr")

    def group_domain(self, rng: Random, g: int) -> int:
        """The own domain of an establishment / company / practice, or -1 (decided once)."""
        dom = self._group_domain.get(g)
        if dom is None:
            st = self.world.structures
            dom = -1
            if rng.random() < _OWN_DOMAIN.get(st.group_kind[g], 0.0):
                base = st.group_slug[g][:40].strip("-") or "etablissement"
                name, n = f"{base}.mssante.fr", 2
                while name in self._domain_ix:
                    name, n = f"{base}-{n}.mssante.fr", n + 1
                dom = self._domain(name)
            self._group_domain[g] = dom
        return dom

    # ---------------------------------------------------------- boxes
    def _unique(self, local: str, dom: int) -> str:
        local = local[:60].strip(".-")
        domain = self.domains[dom]
        addr = f"{local}@{domain}"
        if addr in self.used:
            n = 2
            while f"{local}{n}@{domain}" in self.used:
                n += 1
            addr = f"{local}{n}@{domain}"
        self.used.add(addr)
        return addr

    def _add(self, rng: Random, kind: int, addr: str, p: int, s: int, service: str, dom: int) -> int:
        b = len(self.kind)
        self.kind.append(kind)
        self.addr.append(addr)
        self.person.append(p)
        self.struct.append(s)
        self.service.append(service)
        self.demat.append(1 if rng.random() < 0.75 else 0)
        self.alive.append(1)
        self.domain.append(dom)
        if kind == PER:
            self.by_person.setdefault(p, []).append(b)
        else:
            self.by_struct.setdefault(s, []).append(b)
        return b

    def per_probability(self, p: int) -> float:
        w = self.world
        pi = w.p_prof[p]
        liberal = any(w.a_mode[a] == LIB for a in w.activity_range(p))
        return min(0.95, _per_base(pi, liberal) * self.k)

    def add_per(self, rng: Random, p: int) -> int:
        w = self.world
        st = w.structures
        structs = w.person_structures(p)
        s = structs[int(rng.random() * len(structs))] if structs and rng.random() < 0.78 else -1
        dom = -1
        if s >= 0 and st.group[s] >= 0 and rng.random() < 0.7:
            dom = self.group_domain(rng, st.group[s])
        if dom < 0:
            national = PROFESSIONS[w.p_prof[p]].domain
            r = rng.random()
            if national and r < (0.42 if national == "medecin.mssante.fr" else 0.5):
                dom = self._domain(national)
            elif r < (0.85 if national else 0.65):
                dom = self._vendor(rng)
            else:
                dom = self._regional(rng, s)
        local = f"{names.local_part(w.first_name(p))}.{names.local_part(w.last_name(p))}"
        return self._add(rng, PER, self._unique(local, dom), p, s, "", dom)

    def org_count(self, rng: Random, s: int) -> int:
        st = self.world.structures
        kind = st.kind[s]
        u = rng.random()
        if kind == HOSP:
            return min(len(_HOSP_SERVICES) * len(_HOSP_PREFIX),
                       int(st.nact[s] / 22 * (0.5 + u)) + (1 if rng.random() < 0.6 else 0))
        if kind == PHARMA:
            return 1 if u < 0.7 else 0
        if kind in (LAB, EHPAD, CDS):
            return (1 + (rng.random() < 0.3)) if u < {LAB: 0.6, EHPAD: 0.5, CDS: 0.6}[kind] else 0
        if kind in (GROUP, IMAGING):
            return 1 if u < 0.1 else 0
        return 1 if u < 0.01 else 0

    def add_org(self, rng: Random, s: int) -> int:
        st = self.world.structures
        kind = st.kind[s]
        g = st.group[s]
        dom = self.group_domain(rng, g) if g >= 0 else -1
        own = dom >= 0
        if not own:
            dom = self._regional(rng, s) if kind in (HOSP, EHPAD, CDS) and rng.random() < 0.6 else self._vendor(rng)
        if kind == HOSP:
            service_local, service = _HOSP_SERVICES[min(int(rng.random() ** 1.5 * len(_HOSP_SERVICES)),
                                                        len(_HOSP_SERVICES) - 1)]
            prefix = _HOSP_PREFIX[min(int(rng.random() ** 2 * len(_HOSP_PREFIX)), len(_HOSP_PREFIX) - 1)]
            local = prefix + service_local
        else:
            options = _ORG_LOCAL[kind]
            local, service = options[int(rng.random() * len(options))]
        if not own:
            cols = st.fields(s)
            local = f"{local}.{names.slug(cols[B_NAME])[:44]}"
        return self._add(rng, ORG, self._unique(local, dom), -1, s, service, dom)

    def populate(self, rng: Random, progress=None) -> None:
        """Day 0: PER boxes person by person, then ORG boxes structure by structure."""
        w = self.world
        a_struct = w.a_struct
        p_act = w.p_act
        if progress:
            progress.start("mailboxes", len(w.p_ident), pace.weight("mailboxes", len(w.p_ident)),
                           unit="professionals")
        for p in range(len(w.p_ident)):
            if progress and p % _STEP == _STEP - 1:
                progress.advance(_STEP)
            if a_struct[p_act[p]] < 0:  # no current activity (one empty line)
                continue
            if rng.random() < self.per_probability(p):
                self.add_per(rng, p)
        st = w.structures
        for s in range(len(st)):
            if st.nact[s]:
                for _ in range(self.org_count(rng, s)):
                    self.add_org(rng, s)
        if progress:
            progress.advance(len(w.p_ident) % _STEP)

    # ---------------------------------------------------------- churn hooks
    def delete(self, b: int) -> None:
        if self.alive[b]:
            self.alive[b] = 0

    def structure_closed(self, s: int) -> None:
        for b in self.by_struct.pop(s, ()):
            self.delete(b)

    def person_left(self, rng: Random, p: int) -> None:
        for b in self.by_person.get(p, ()):
            # most go; the others stay as "left professional" boxes for quality checks
            if self.alive[b] and rng.random() < 0.9:
                self.delete(b)

    def activity_moved(self, p: int, old: int, new: int) -> None:
        boxes = self.by_person.get(p)
        if not boxes or old < 0:
            return
        if old in self.world.person_structures(p):
            return
        for b in boxes:
            if self.alive[b] and self.struct[b] == old:
                self.struct[b] = new

    def has_live_per(self, p: int) -> bool:
        return any(self.alive[b] for b in self.by_person.get(p, ()))

    def counts(self) -> dict[str, int]:
        per = org = left = 0
        sizes: dict[int, int] = {}
        p_alive = self.world.p_alive
        for b in range(len(self.kind)):
            if self.alive[b]:
                if self.kind[b] == PER:
                    per += 1
                    if not p_alive[self.person[b]]:
                        left += 1
                else:
                    org += 1
                sizes[self.domain[b]] = sizes.get(self.domain[b], 0) + 1
        return {"per_boxes": per, "org_boxes": org, "domains": len(sizes),
                "largest_domain_boxes": max(sizes.values(), default=0),
                "left_professional_boxes": left}
