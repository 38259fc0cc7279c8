"""Code systems, identifier systems and extension URLs as the national API emits them."""

from __future__ import annotations


def nos(tre: str) -> str:
    """`TRE_G15-ProfessionSante` -> its FHIR code system URL."""
    return f"https://mos.esante.gouv.fr/NOS/{tre}/FHIR/{tre.replace('_', '-', 1)}"


SOURCE = "https://annuaire.sante.fr"
CORE = "https://hl7.fr/ig/fhir/core"
AS = "https://interop.esante.gouv.fr/ig/fhir/annuaire"

PROFILES = {
    "Practitioner": [f"{CORE}/StructureDefinition/fr-core-practitioner", f"{AS}/StructureDefinition/as-dp-practitioner"],
    "PractitionerRole": [
        f"{CORE}/StructureDefinition/fr-core-practitioner-role",
        f"{AS}/StructureDefinition/as-dp-practitionerrole",
    ],
    "Organization": [f"{CORE}/StructureDefinition/fr-core-organization", f"{AS}/StructureDefinition/as-dp-organization"],
}

V2_0203 = f"{CORE}/CodeSystem/fr-core-cs-v2-0203"
V2_3307 = f"{CORE}/CodeSystem/fr-core-cs-v2-3307"

IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
RPPS = "https://rpps.esante.gouv.fr"
RPPS_ALIASES = ("https://rpps.esante.gouv.fr", "http://rpps.fr")
FINESS = "https://finess.esante.gouv.fr"
SIRENE = "https://sirene.fr"
RPPS_RANG = "https://rppsrang.esante.gouv.fr"

EMAIL_TYPE = f"{CORE}/StructureDefinition/fr-core-contact-point-email-type"
MAILBOX_METADATA = f"{AS}/StructureDefinition/as-ext-mailbox-mss-metadata"
DATA_TRACE = f"{AS}/StructureDefinition/as-ext-data-trace"
ORG_TYPES = f"{AS}/StructureDefinition/as-ext-organization-types"
INSEE_CODE = f"{CORE}/StructureDefinition/fr-core-address-insee-code"
ADXP = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-"
LIEU_DIT = f"{AS}/StructureDefinition/as-ext-lieu-dit"

TYPE_MESSAGERIE = nos("TRE_R256-TypeMessagerie")
TYPE_BAL = nos("TRE_R257-TypeBAL")
PROFESSION = nos("TRE_G15-ProfessionSante")
CATEGORY = nos("TRE_R09-CategorieProfessionnelle")
SKILL_TYPE = nos("TRE_R04-TypeSavoirFaire")
DIPLOMA_TYPE = nos("TRE_R14-TypeDiplome")
GENRE = nos("TRE_R22-GenreActivite")
MODE = nos("TRE_R23-ModeExercice")
FONCTION = nos("TRE_R21-Fonction")
SECTION = nos("TRE_R06-SectionTableauCNOP")
SECTOR = nos("TRE_R02-SecteurActivite")
COMMUNE = nos("TRE_R13-Commune")

# Savoir-faire code system by savoir-faire type (TRE_R04 code); FR Core value sets.
SKILL_SYSTEMS = {
    "S": nos("TRE_R38-SpecialiteOrdinale"),
    "C": nos("TRE_R39-Competence"),
    "CEX": nos("TRE_R40-CompetenceExclusive"),
    "DNQ": nos("TRE_R42-DESCnonQualifiant"),
    "CAPA": nos("TRE_R43-CapaciteSavoirFaire"),
    "PAC": nos("TRE_R44-QualificationPAC"),
    "FQ": nos("TRE_R45-FonctionQualifiee"),
    "DEC": nos("TRE_R97-DroitExerciceCompl"),
    "OP": nos("TRE_G13-OrientationParticuliere"),
    "SST": nos("TRE_R359-SurspecialiteTransversale"),
}
# Diploma code system by diploma type (TRE_R14 code); only DE is confirmed.
DIPLOMA_SYSTEMS = {"DE": nos("TRE_R48-DiplomeEtatFrancais")}

DATA_INFORMATION_SYSTEM = f"{AS}/CodeSystem/as-cs-type-systeme-information"
