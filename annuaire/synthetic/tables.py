"""Code tables and national calibration figures for the fictitious world.

Labels come from the nomenclature CSVs shipped with the package, so the
generated files carry exactly the labels the importer knows. The calibration
figures (shares, liberal shares, mailbox rates, structure counts) come from
../shared/spec/distributions.md; they are shapes, not exact values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

NOMENCLATURES = Path(__file__).resolve().parent.parent / "nomenclatures"

# Full scale: the national volume of professionals the counts below refer to.
FULL_SCALE = 1_950_000

# Structure kinds. SOLO is created for each liberal practitioner, GROUP grows
# by preferential attachment, the others are laid out per département up front.
SOLO, GROUP, PHARMA, LAB, HOSP, EHPAD, CDS, SHOP, IMAGING = range(9)
KIND_SECTOR = ("SA07", "SA08", "SA33", "SA25", "SA01", "SA17", "SA05", "SA42", "SA08")
# National counts at FULL_SCALE of the structures laid out per département.
NATIONAL_COUNTS = {PHARMA: 20_500, LAB: 4_000, HOSP: 3_300, EHPAD: 7_500, CDS: 2_500, SHOP: 15_000, IMAGING: 3_000}
LAB_COMPANIES = 400

# Modes (TRE_R23): index 0 = no activity.
MODES = ("", "L", "S")
NO_MODE, LIB, SAL = 0, 1, 2


@cache
def labels(table: str) -> dict[str, str]:
    """code -> label of one nomenclature CSV (`TRE_R21-Fonction` ...)."""
    path = NOMENCLATURES / f"{table}.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["code"]: row["label"] for row in csv.DictReader(fh, delimiter=";")}


def coded(table: str, codes: tuple[str, ...]) -> list[tuple[str, str]]:
    """[(code, label)] for the given codes, index 0 being the empty pair."""
    table_labels = labels(table)
    return [("", "")] + [(c, table_labels[c]) for c in codes]


ROLES = coded("TRE_R21-Fonction", (
    "FON-01", "FON-02", "FON-03", "FON-04", "FON-05", "FON-09", "FON-17", "FON-18", "FON-22", "FON-23", "FON-33", "FON-37",
))
R_TITULAIRE, R_ASSOCIE, R_TIT_OFF, R_REMPL_OFF, R_ADJOINT, R_RESP, R_COLLAB, R_ASSIST, R_REMPL, R_GERANT, R_SALARIE, R_PUI = range(1, 13)

GENRES = coded("TRE_R22-GenreActivite", ("GENR01", "GENR02", "GENR03", "GENR04", "GENR13"))
G_SOIN, G_SOIN_REMPL, G_REMPL, G_NON_SOIN, G_MEDADM = range(1, 6)

# Pharmacists' section of the order's register (TRE_G05 labels).
SECTIONS = [
    ("", ""),
    ("A", "Pharmacien titulaire d'officine"),
    ("B", "Pharmacien d'entreprise - industrie"),
    ("D", "Pharmacien adjoint, remplaçant ou gérant"),
    ("E", "Pharmacien d'Outre-Mer"),
    ("G", "Pharmacien biologiste"),
    ("H", "Pharmacien d'établissement de santé"),
]
SEC_A, SEC_B, SEC_D, SEC_E, SEC_G, SEC_H = range(1, 7)

CIVEX = coded("TRE_R11-CiviliteExercice", ("DR", "PR"))
CV_DR, CV_PR = 1, 2
CATEGORIES = coded("TRE_R09-CategorieProfessionnelle", ("C", "E", "M"))[1:]
CAT_CIVIL, CAT_STUDENT, CAT_PUBLIC = range(3)

SF_TYPES = {"S": labels("TRE_R04-TypeSavoirFaire")["S"], "C": labels("TRE_R04-TypeSavoirFaire")["C"]}


@dataclass(frozen=True)
class Profession:
    """How one profession looks nationally (shares are per person)."""

    code: str
    share: float  # share of the population
    female: float
    adeli: float  # share still on a legacy ADELI number
    lib: float  # liberal only
    mixed: float  # liberal + salaried
    lib_kinds: tuple[tuple[int, float], ...]
    sal_kinds: tuple[tuple[int, float], ...]
    extra: float  # chance of one more activity of the same mode (repeated)
    replacing: float  # liberal replacements (remplaçants), 1-3 lines
    order: str  # registration authority
    per_box: float  # share holding a published PER box (distributions.md)
    domain: str  # national per-profession domain, "" when none
    short_label: str = ""  # MSSanté `Libellé Profession` when shorter

    @property
    def sal(self) -> float:
        return 1.0 - self.lib - self.mixed


_CAB = ((SOLO, 0.45), (GROUP, 0.55))
_HOSP_ONLY = ((HOSP, 1.0),)
PROFESSIONS: tuple[Profession, ...] = (
    Profession("60", 44.0, 0.87, 0.0, 0.14, 0.02, _CAB, ((HOSP, 0.78), (EHPAD, 0.14), (CDS, 0.08)), 0.05, 0.06,
               "CNOI/CNOI/ARS", 0.22, "infirmier.mssante.fr"),
    Profession("10", 17.0, 0.50, 0.0, 0.42, 0.13, ((SOLO, 0.34), (GROUP, 0.60), (IMAGING, 0.06)),
               ((HOSP, 0.84), (CDS, 0.08), (EHPAD, 0.04), (LAB, 0.04)), 0.2, 0.10, "CNOM/CNOM/ARS", 0.75,
               "medecin.mssante.fr"),
    Profession("70", 7.5, 0.52, 0.0, 0.77, 0.08, _CAB, ((HOSP, 0.7), (EHPAD, 0.15), (CDS, 0.15)), 0.03, 0.06,
               "CNOMK/CNOMK/ARS", 0.35, "masseur-kinesitherapeute.mssante.fr", "Masseur-Kiné"),
    Profession("93", 5.4, 0.88, 0.9, 0.35, 0.05, ((SOLO, 0.7), (GROUP, 0.3)), ((HOSP, 0.6), (CDS, 0.2), (EHPAD, 0.2)),
               0.05, 0.0, "ARS/Variable/Variable", 0.10, ""),
    Profession("21", 5.3, 0.68, 0.0, 0.37, 0.0, ((PHARMA, 0.93), (LAB, 0.07)), ((PHARMA, 0.65), (HOSP, 0.2), (LAB, 0.15)),
               0.08, 0.04, "CNOP/CNOP/ARS", 0.55, "pharmacien.mssante.fr"),
    Profession("40", 3.4, 0.50, 0.0, 0.83, 0.04, ((SOLO, 0.5), (GROUP, 0.5)), ((CDS, 0.6), (HOSP, 0.4)), 0.06, 0.04,
               "CNOCD/CNOCD/ARS", 0.45, "chirurgien-dentiste.mssante.fr"),
    Profession("86", 3.2, 0.80, 0.3, 0.0, 0.0, (), ((LAB, 0.6), (HOSP, 0.4)), 0.03, 0.0, "ARS/CPAM/CPAM", 0.10, ""),
    Profession("28", 3.1, 0.60, 0.3, 0.15, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.03, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("98", 2.2, 0.70, 0.3, 0.05, 0.0, ((IMAGING, 1.0),), ((HOSP, 0.7), (IMAGING, 0.3)), 0.04, 0.0,
               "ARS/CPAM/CPAM", 0.10, ""),
    Profession("91", 2.0, 0.96, 0.3, 0.75, 0.04, ((SOLO, 0.6), (GROUP, 0.4)), ((HOSP, 0.6), (CDS, 0.2), (EHPAD, 0.2)),
               0.06, 0.03, "ARS/CPAM/CPAM", 0.10, ""),
    Profession("50", 1.8, 0.97, 0.0, 0.28, 0.05, ((SOLO, 0.6), (GROUP, 0.4)), ((HOSP, 0.9), (CDS, 0.1)), 0.05, 0.05,
               "CNOSF/CNOSF/ARS", 0.55, "sage-femme.mssante.fr"),
    Profession("94", 1.1, 0.87, 0.3, 0.12, 0.0, _CAB, ((HOSP, 0.6), (EHPAD, 0.3), (CDS, 0.1)), 0.04, 0.0,
               "ARS/CPAM/CPAM", 0.10, ""),
    Profession("96", 1.1, 0.87, 0.3, 0.18, 0.0, _CAB, ((HOSP, 0.6), (EHPAD, 0.2), (CDS, 0.2)), 0.04, 0.0,
               "ARS/CPAM/CPAM", 0.10, ""),
    Profession("80", 1.0, 0.70, 0.0, 0.92, 0.0, ((SOLO, 0.7), (GROUP, 0.3)), _HOSP_ONLY, 0.04, 0.02,
               "CNOPP/CNOPP/ARS", 0.10, ""),
    Profession("95", 1.0, 0.92, 0.3, 0.25, 0.0, _CAB, ((HOSP, 0.7), (EHPAD, 0.2), (CDS, 0.1)), 0.04, 0.0,
               "ARS/CPAM/CPAM", 0.10, ""),
    Profession("92", 0.4, 0.88, 0.3, 0.70, 0.0, ((SOLO, 0.4), (GROUP, 0.6)), _HOSP_ONLY, 0.05, 0.0, "ARS/CPAM/CPAM",
               0.10, ""),
    Profession("26", 0.35, 0.45, 0.3, 0.25, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.03, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("81", 0.12, 0.30, 0.3, 0.30, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.02, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("82", 0.05, 0.30, 0.3, 0.30, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.02, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("83", 0.08, 0.40, 0.3, 0.30, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.02, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("84", 0.02, 0.40, 0.3, 0.30, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.02, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("85", 0.03, 0.40, 0.3, 0.30, 0.0, ((SHOP, 1.0),), ((SHOP, 1.0),), 0.02, 0.0, "ARS/Variable/Variable",
               0.10, ""),
    Profession("69", 0.05, 0.70, 1.0, 0.0, 0.0, (), _HOSP_ONLY, 0.02, 0.0, "ARS/CPAM/CPAM", 0.10, ""),
    Profession("32", 0.04, 0.45, 0.0, 0.0, 0.0, (), _HOSP_ONLY, 0.02, 0.0, "ARS/CPAM/CPAM", 0.10, ""),
)
PROF_INDEX = {p.code: i for i, p in enumerate(PROFESSIONS)}
P_NURSE, P_DOCTOR, P_PHARMACIST, P_DENTIST = PROF_INDEX["60"], PROF_INDEX["10"], PROF_INDEX["21"], PROF_INDEX["40"]
PROF_LABELS = labels("TRE_G15-ProfessionSante")

# Share of the register without a current activity (one line, empty structure).
INACTIVE = 0.08

# Savoir-faire: (code, weight) per profession; the rest of the weight = none.
_DOCTOR_SF = (
    ("SM54", 28.0), ("SM26", 10.0), ("SM53", 4.0),  # general practice 42 %
    ("SM42", 5.5), ("SM43", 1.2),  # psychiatry 6.7 %
    ("SM05", 1.0), ("SM08", 1.5), ("SM14", 1.0), ("SM12", 0.6), ("SM31", 0.3), ("SM11", 0.3), ("SM10", 0.5),
    ("SM09", 0.2), ("SM13", 0.3), ("SM06", 0.3),  # surgery 6 %
    ("SM02", 5.7),  # anaesthesia
    ("SM44", 3.5), ("SM01", 0.8), ("SM45", 0.6), ("SM28", 0.4), ("SM55", 0.3),  # imaging & co 5.6 %
    ("SM04", 3.2), ("SM20", 2.5), ("SM19", 0.6), ("SM40", 3.2), ("SM38", 2.6), ("SM15", 1.7), ("SM24", 2.0),
    ("SM32", 1.2), ("SM41", 1.3), ("SM48", 1.2), ("SM16", 0.7), ("SM62", 0.4), ("SM30", 0.8), ("SM27", 1.3),
    ("SM18", 0.9), ("SM21", 0.6), ("SM36", 0.9), ("SM34", 1.3), ("SM03", 1.7), ("SM25", 2.5), ("SM29", 1.0),
    ("SM49", 0.8), ("SM59", 1.5), ("SM58", 0.3), ("SM57", 0.2), ("SM61", 0.3), ("SM60", 0.2), ("SM17", 0.2),
    ("SM46", 0.4),
)
SAVOIR_FAIRE: dict[int, tuple[tuple[str, float], ...]] = {
    P_DOCTOR: _DOCTOR_SF,
    P_DENTIST: (("SCD01", 8.0), ("SCD02", 3.0), ("SCD03", 2.0), ("", 87.0)),
    P_NURSE: (("SI06", 3.0), ("SI07", 2.5), ("SI08", 4.0), ("SI01", 0.6), ("SI02", 0.2), ("SI03", 0.1), ("SI04", 0.4),
              ("SI05", 0.2), ("", 89.0)),
}
# Doctors' extra competences (type C), given to a few.
DOCTOR_EXTRA_SF = ("SM57", "SM59", "SM18", "SM60", "SM29", "SM61", "SM58")
SF_LIST: list[tuple[str, str]] = [(c, lbl) for c, lbl in labels("TRE_R38-SpecialiteOrdinale").items()]
SF_INDEX = {c: i for i, (c, _) in enumerate(SF_LIST)}
IMAGING_SF = frozenset({"SM44", "SM45", "SM28", "SM55"})

# Diplomas (code type, label type, code, label) by profession code.
_DE = ("DE", "Diplôme d'Etat français")
DIPLOMAS = {
    "10": _DE + ("DE01", "Diplôme d'Etat de docteur en médecine"),
    "21": _DE + ("DE02", "Diplôme d'Etat de docteur en pharmacie"),
    "40": _DE + ("DE03", "Diplôme d'Etat de docteur en chirurgie dentaire"),
    "50": _DE + ("DE04", "Diplôme d'Etat de sage-femme"),
    "60": _DE + ("DE05", "Diplôme d'Etat d'infirmier"),
    "69": _DE + ("DE05", "Diplôme d'Etat d'infirmier"),
    "70": _DE + ("DE06", "Diplôme d'Etat de masseur-kinésithérapeute"),
    "80": _DE + ("DE07", "Diplôme d'Etat de pédicure-podologue"),
    "94": _DE + ("DE08", "Diplôme d'Etat d'ergothérapeute"),
    "96": _DE + ("DE09", "Diplôme d'Etat de psychomotricien"),
    "98": _DE + ("DE10", "Diplôme d'Etat de manipulateur d'électroradiologie médicale"),
    "86": _DE + ("DE11", "Diplôme d'Etat de technicien de laboratoire médical"),
    "26": _DE + ("DE12", "Diplôme d'Etat d'audioprothésiste"),
    "91": ("CC", "Certificat de capacité", "CC01", "Certificat de capacité d'orthophoniste"),
    "92": ("CC", "Certificat de capacité", "CC02", "Certificat de capacité d'orthoptiste"),
    "28": ("BTS", "Brevet de technicien supérieur", "BTS01", "BTS opticien-lunetier"),
    "95": ("BTS", "Brevet de technicien supérieur", "BTS02", "BTS diététique"),
    "93": ("MA", "Master", "MA01", "Master de psychologie"),
    "32": ("MA", "Master", "MA02", "Master de physique médicale"),
}
DIPLOMA_DEFAULT = ("CQ", "Certificat de qualification", "CQ01", "Certificat de qualification d'appareilleur")
DES_TYPE = ("DES", "Diplôme d'études spécialisées")
FOREIGN_DIPLOMA = ("DUE", "Diplôme de l'Union européenne")
AUTHORISATION = ("AE", "Autorisation d'exercice")
