"""The fictitious world: professionals, their activities, structures, mailboxes.

Everything is stored column-wise in arrays and lists (one entry per person,
per activity, per structure, per mailbox) so two million professionals fit
in well under the memory budget, and so the writers can stream lines with
plain string joins. Persons never leave the arrays: a departed person is
flagged dead, which keeps indices stable for the daily churn.

Randomness: the world of day 0 comes from Random(f"{seed}:world"); each day's
churn from its own stream (seed, day) — see churn.py. Nothing depends on set
iteration order or on `hash()`.
"""

from __future__ import annotations

from array import array
from bisect import bisect
from itertools import accumulate
from random import Random

from annuaire.synthetic import names, pace
from annuaire.synthetic.geo import Geography
from annuaire.synthetic.ids import Identifiers
from annuaire.synthetic.structures import SHOP_FAMILY, Structures
from annuaire.synthetic.tables import (
    CAT_CIVIL,
    CAT_PUBLIC,
    CAT_STUDENT,
    CDS,
    CV_DR,
    CV_PR,
    DOCTOR_EXTRA_SF,
    EHPAD,
    FULL_SCALE,
    G_MEDADM,
    G_NON_SOIN,
    G_REMPL,
    G_SOIN,
    G_SOIN_REMPL,
    GROUP,
    HOSP,
    IMAGING,
    IMAGING_SF,
    INACTIVE,
    LAB,
    LIB,
    NO_MODE,
    P_DENTIST,
    P_DOCTOR,
    P_PHARMACIST,
    PHARMA,
    PROFESSIONS,
    R_ADJOINT,
    R_ASSIST,
    R_ASSOCIE,
    R_COLLAB,
    R_GERANT,
    R_PUI,
    R_REMPL,
    R_REMPL_OFF,
    R_RESP,
    R_SALARIE,
    R_TIT_OFF,
    R_TITULAIRE,
    SAL,
    SAVOIR_FAIRE,
    SEC_A,
    SEC_D,
    SEC_E,
    SEC_G,
    SEC_H,
    SF_INDEX,
    SF_LIST,
    SHOP,
    SOLO,
)

# Chance that a group practice activity founds a new group (1 / mean size).
_NEW_GROUP = {"10": 0.3, "40": 0.4, "60": 0.35, "70": 0.3}
_NEW_GROUP_DEFAULT = 0.5
_SF_CODES = [c for c, _ in SF_LIST]


class World:
    """One day of the fictitious national directory."""

    def __init__(self, professionals: int, seed: int) -> None:
        self.seed = seed
        self.professionals = professionals
        self.scale = professionals / FULL_SCALE
        self.day = 0
        self.churn_totals: dict[str, int] = {}
        self.geo = Geography(seed)
        size = max(3000, min(150_000, professionals // 10))
        self.surnames = names.surname_table(Random(f"{seed}:surnames"), size)
        self.ids = Identifiers(capacity=int(professionals * 1.5) + 1000)
        self.structures = Structures(self.geo, self.ids, self.surnames, self.scale)
        # persons
        self.p_type = bytearray()  # 8 (RPPS) or 0 (ADELI)
        self.p_ident: list[str] = []
        self.p_prof = bytearray()
        self.p_female = bytearray()
        self.p_first = array("H")
        self.p_last = array("i")
        self.p_civex = bytearray()
        self.p_cat = bytearray()
        self.p_sf = array("h")  # index in SF_LIST, -1 = none
        self.p_sf2: dict[int, int] = {}  # extra savoir-faire (type C) of a few doctors
        self.p_alive = bytearray()
        self.p_act = array("i")  # first activity
        self.p_nact = bytearray()
        self.p_bits = array("I")  # random bits for minor derived attributes (diplomas)
        # activities (contiguous per person)
        self.a_person = array("i")
        self.a_struct = array("i")  # -1 = no current activity
        self.a_mode = bytearray()
        self.a_role = bytearray()
        self.a_genre = bytearray()
        self.a_section = bytearray()
        # tables
        self._prof_cum = list(accumulate(p.share for p in PROFESSIONS))
        self._sf_tables: dict[int, tuple[list[int], list[float]]] = {}
        for pi, table in SAVOIR_FAIRE.items():
            self._sf_tables[pi] = ([SF_INDEX[c] if c else -1 for c, _ in table], list(accumulate(w for _, w in table)))
        self._nfirst = (len(names.MALE), len(names.FEMALE))
        from annuaire.synthetic.mailboxes import (
            Mailboxes,  # circular: mailboxes read the world
        )

        self.boxes = Mailboxes(self)

    # ----------------------------------------------------------- accessors
    def first_name(self, p: int) -> str:
        return (names.FEMALE if self.p_female[p] else names.MALE)[self.p_first[p]]

    def last_name(self, p: int) -> str:
        return self.surnames[self.p_last[p]]

    def activity_range(self, p: int) -> range:
        start = self.p_act[p]
        return range(start, start + self.p_nact[p])

    def person_structures(self, p: int) -> list[int]:
        a_struct = self.a_struct
        return [a_struct[a] for a in self.activity_range(p) if a_struct[a] >= 0]

    # ----------------------------------------------------------- persons
    def add_person(self, rng: Random) -> int:
        """Draw one professional with identity, savoir-faire and activities."""
        u = rng.random
        pi = min(bisect(self._prof_cum, u() * self._prof_cum[-1]), len(PROFESSIONS) - 1)
        prof = PROFESSIONS[pi]
        d = self.geo.pick_dept(u())
        female = 1 if u() < prof.female else 0
        if u() < prof.adeli:
            ptype, ident = 0, self.ids.adeli_number(rng, self.geo.depts[d].code, prof.code)
        else:
            ptype, ident = 8, self.ids.rpps(rng)
        first = int(self._nfirst[female] * u() ** 1.6)
        last = int(len(self.surnames) * u() ** 1.8)
        r = u()
        cat = CAT_CIVIL
        if pi in (P_DOCTOR, P_PHARMACIST, P_DENTIST):
            cat = CAT_STUDENT if r < 0.02 else CAT_PUBLIC if r < 0.03 else CAT_CIVIL
        elif r < 0.005:
            cat = CAT_PUBLIC
        civex = 0
        r = u()
        if cat != CAT_STUDENT:
            if pi == P_DOCTOR:
                civex = CV_PR if r < 0.015 else CV_DR
            elif pi == P_DENTIST and r < 0.9 or pi == P_PHARMACIST and r < 0.4:
                civex = CV_DR
        sf = -1
        table = self._sf_tables.get(pi)
        if table:
            codes, cum = table
            sf = codes[min(bisect(cum, u() * cum[-1]), len(codes) - 1)]
        p = len(self.p_ident)
        if pi == P_DOCTOR and u() < 0.08:
            self.p_sf2[p] = SF_INDEX[DOCTOR_EXTRA_SF[int(u() * len(DOCTOR_EXTRA_SF))]]
        self.p_type.append(ptype)
        self.p_ident.append(ident)
        self.p_prof.append(pi)
        self.p_female.append(female)
        self.p_first.append(first)
        self.p_last.append(last)
        self.p_civex.append(civex)
        self.p_cat.append(cat)
        self.p_sf.append(sf)
        self.p_alive.append(1)
        self.p_bits.append(rng.getrandbits(32))
        self.p_act.append(len(self.a_person))
        self.p_nact.append(0)
        self._add_activities(rng, p, pi, d, sf)
        return p

    def _add_activities(self, rng: Random, p: int, pi: int, d: int, sf: int) -> None:
        u = rng.random
        prof = PROFESSIONS[pi]
        if u() < INACTIVE:
            self._activity(p, -1, NO_MODE, 0, 0, 0)
            return
        r = u()
        if r < prof.lib and prof.lib_kinds:
            modes = [LIB]
        elif r < prof.lib + prof.mixed and prof.lib_kinds:
            modes = [LIB, SAL]
        else:
            modes = [SAL]
        lib_kinds, sal_kinds = prof.lib_kinds, prof.sal_kinds
        if pi == P_DOCTOR and sf >= 0:
            code = _SF_CODES[sf]
            if code in IMAGING_SF and u() < 0.8:
                lib_kinds = ((IMAGING, 1.0),)
            elif code == "SM03":
                lib_kinds, sal_kinds = ((LAB, 1.0),), ((LAB, 0.7), (HOSP, 0.3))
        title = self.p_civex[p] != 0
        person = (self.first_name(p), self.last_name(p), "DR" if title else "")
        rank = 0
        used: list[int] = []  # one line per (person, structure)
        for mode in modes:
            if mode == LIB and prof.replacing and u() < prof.replacing:
                for _ in range(1 + int(u() * 2.0)):
                    self._replacement(rng, p, pi, d, title, used)
                continue
            count = 1
            while u() < prof.extra and count < 5:
                count += 1
            for i in range(count):
                ad = d if i == 0 or u() < 0.85 else self.geo.pick_dept(u())
                kinds = lib_kinds if mode == LIB else sal_kinds
                kind = kinds[0][0]
                if len(kinds) > 1:
                    x = u()
                    for kind, w in kinds:  # noqa: B007 (kind is kept after the break)
                        x -= w
                        if x < 0:
                            break
                if kind == SOLO:
                    rank += 1
                for _try in range(3):
                    s = self.find_structure(rng, p, pi, kind, mode, ad, person, rank)
                    if s not in used:
                        break
                else:
                    continue
                used.append(s)
                role, genre, section = self.role_for(rng, pi, kind, mode, ad)
                self._activity(p, s, mode, role, genre, section)
        if not used:  # every draw collided: keep one activity anyway
            s = self.find_structure(rng, p, pi, SOLO if lib_kinds else sal_kinds[0][0], LIB if lib_kinds else SAL, d,
                                    person, 99)
            role, genre, section = self.role_for(rng, pi, self.structures.kind[s], LIB if lib_kinds else SAL, d)
            self._activity(p, s, LIB if lib_kinds else SAL, role, genre, section)

    def _replacement(self, rng: Random, p: int, pi: int, d: int, title: bool, used: list[int]) -> None:
        """A replacement line at somebody else's cabinet (or pharmacy) of the département."""
        if pi == P_PHARMACIST:
            s = self.structures.pick(rng, PHARMA, d)
            if s not in used:
                used.append(s)
                section = SEC_E if len(self.geo.depts[d].code) == 3 else SEC_D
                self._activity(p, s, LIB, R_REMPL_OFF, G_SOIN_REMPL, section)
            return
        s = self.structures.replacement_cabinet(rng, d)
        if s < 0:  # nobody to replace yet: found the cabinet of an invented colleague
            other = (names.FEMALE if rng.random() < 0.5 else names.MALE)[int(rng.random() * 50)]
            colleague = (other, self.surnames[int(rng.random() * len(self.surnames))], "DR" if title else "")
            s = self.structures.new_solo(rng, d, colleague, 8, self.ids.rpps(rng), PROFESSIONS[pi].code, 1)
        if s not in used:
            used.append(s)
            self._activity(p, s, LIB, R_REMPL, G_REMPL, 0)

    def find_structure(self, rng: Random, p: int, pi: int, kind: int, mode: int, d: int,
                       person: tuple[str, str, str], rank: int) -> int:
        st = self.structures
        code = PROFESSIONS[pi].code
        if kind == SOLO:
            return st.new_solo(rng, d, person, self.p_type[p], self.p_ident[p], code, rank)
        if kind == GROUP:
            return st.group_practice(rng, d, code, _NEW_GROUP.get(code, _NEW_GROUP_DEFAULT), person)
        if kind == PHARMA and mode == LIB:
            return st.titulaire_pharmacy(rng, d)
        if kind == SHOP:
            return st.pick(rng, SHOP, d, code if code in SHOP_FAMILY else "")
        return st.pick(rng, kind, d)

    def role_for(self, rng: Random, pi: int, kind: int, mode: int, d: int) -> tuple[int, int, int]:
        """(role, genre, pharmacists' section) of an activity."""
        r = rng.random()
        genre = G_SOIN
        section = 0
        if mode == LIB:
            if kind == SOLO:
                role = R_TITULAIRE
            elif kind in (GROUP, IMAGING):
                role = R_TITULAIRE if r < 0.45 else R_ASSOCIE if r < 0.8 else R_COLLAB
            elif kind == PHARMA:
                role, section = R_TIT_OFF, SEC_A
            elif kind == LAB:
                role, section = R_ASSOCIE, SEC_G
            elif kind == SHOP:
                role = R_GERANT
            else:
                role = R_TITULAIRE
        else:
            role = R_SALARIE
            if kind == PHARMA:
                role, section = (R_ADJOINT, SEC_D) if r < 0.93 else (R_REMPL_OFF, SEC_D)
                if role == R_REMPL_OFF:
                    genre = G_SOIN_REMPL
            elif kind == LAB:
                section = SEC_G
            elif kind == HOSP:
                section = SEC_H
                if pi == P_DOCTOR:
                    role = R_ASSIST if r < 0.08 else R_RESP if r < 0.09 else R_SALARIE
                    if rng.random() < 0.015:
                        genre = G_MEDADM
                elif pi == P_PHARMACIST and r < 0.12:
                    role = R_PUI
            if genre == G_SOIN and kind in (HOSP, EHPAD, CDS) and rng.random() < 0.01:
                genre = G_NON_SOIN
        if pi != P_PHARMACIST:
            section = 0
        elif len(self.geo.depts[d].code) == 3:
            section = SEC_E
        return role, genre, section

    def _activity(self, p: int, s: int, mode: int, role: int, genre: int, section: int) -> None:
        self.a_person.append(p)
        self.a_struct.append(s)
        self.a_mode.append(mode)
        self.a_role.append(role)
        self.a_genre.append(genre)
        self.a_section.append(section)
        self.p_nact[p] += 1
        if s >= 0:
            self.structures.nact[s] += 1

    # ----------------------------------------------------------- counts
    def alive_persons(self) -> int:
        return self.p_alive.count(1)



def build_world(professionals: int, seed: int, progress=None) -> World:
    """Day 0: `professionals` persons with their activities and mailboxes."""
    world = World(professionals, seed)
    rng = Random(f"{seed}:world")
    add = world.add_person
    step = 50_000
    if progress:
        progress.start("professionals", professionals, pace.weight("professionals", professionals),
                       unit="professionals")
    for i in range(professionals):
        add(rng)
        if progress and i % step == step - 1:
            progress.advance(step)
    if progress:
        progress.advance(professionals % step)
    world.boxes.populate(Random(f"{seed}:mailboxes"), progress)
    return world
