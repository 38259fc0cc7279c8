"""The JSON of each resource, field by field, against the national v2 shapes
(../shared/spec/fhir-examples.md), served by the running API."""

from __future__ import annotations

from fhir_data import RPPS_BENE

CORE = "https://hl7.fr/ig/fhir/core"
AS = "https://interop.esante.gouv.fr/ig/fhir/annuaire"
NOS = "https://mos.esante.gouv.fr/NOS"
V2_0203 = f"{CORE}/CodeSystem/fr-core-cs-v2-0203"


def ident(type_code, system, value):
    out = {"use": "official"}
    if type_code:
        out["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
    out.update(system=system, value=value)
    return out


def mss(address, box_type, *sub, use=None, rank=None):
    entry = {
        "extension": [
            {"url": f"{CORE}/StructureDefinition/fr-core-contact-point-email-type",
             "valueCoding": {"system": f"{NOS}/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie", "code": "MSSANTE"}},
            {"url": f"{AS}/StructureDefinition/as-ext-mailbox-mss-metadata", "extension": [
                {"url": "type", "valueCodeableConcept": {"coding": [
                    {"system": f"{NOS}/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL", "code": box_type}]}},
                *sub,
            ]},
        ],
        "system": "email",
        "value": address,
    }
    if use:
        entry["use"] = use
    if rank:
        entry["rank"] = rank
    return entry


def check_meta(resource, profile_core, profile_as, trace=None):
    meta = resource["meta"]
    assert list(meta) == (["extension"] if trace else []) + ["versionId", "lastUpdated", "source", "profile"]
    assert meta["versionId"] == "1"
    assert meta["lastUpdated"][23:] == "+00:00" and meta["lastUpdated"][10] == "T" and len(meta["lastUpdated"]) == 29
    assert meta["source"] == "https://annuaire.sante.fr"
    assert meta["profile"] == [f"{CORE}/StructureDefinition/{profile_core}", f"{AS}/StructureDefinition/{profile_as}"]
    if trace:
        assert meta["extension"] == [{"url": f"{AS}/StructureDefinition/as-ext-data-trace",
                                      "extension": [{"url": "systeme-information", "valueCode": trace}]}]


def test_practitioner_field_by_field(api):
    pid = api.data["bene"]
    doc = api.json(f"/Practitioner/003-{pid}-{pid}")
    assert list(doc) == ["resourceType", "id", "meta", "language", "identifier", "active", "name", "telecom", "qualification"]
    check_meta(doc, "fr-core-practitioner", "as-dp-practitioner")
    assert doc["language"] == "fr"
    assert doc["identifier"] == [
        ident("IDNPS", "urn:oid:1.2.250.1.71.4.2.1", "8" + RPPS_BENE),
        ident("RPPS", "https://rpps.esante.gouv.fr", RPPS_BENE),
    ]
    assert doc["active"] is True
    assert doc["name"] == [{"text": "TESTDUPONT Bénédicte", "family": "TESTDUPONT", "given": ["Bénédicte"],
                            "prefix": ["MME"], "suffix": ["DR"]}]
    # Only the personal box without structure: the one tied to CH EXEMPLE is on the role,
    # the liste rouge one nowhere.
    assert doc["telecom"] == [
        mss("benedicte.testdupont@ch-exemple.mssante.fr", "PER", {"url": "digitization", "valueBoolean": False}, use="work"),
    ]
    assert doc["qualification"] == [
        {"code": {"coding": [
            {"system": f"{NOS}/TRE_R14-TypeDiplome/FHIR/TRE-R14-TypeDiplome", "code": "DE"},
            {"system": f"{NOS}/TRE_R48-DiplomeEtatFrancais/FHIR/TRE-R48-DiplomeEtatFrancais", "code": "DE11"}]}},
        {"code": {"coding": [
            {"system": f"{NOS}/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle", "code": "C"},
            {"system": f"{NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10"}]}},
        {"code": {"coding": [
            {"system": f"{NOS}/TRE_R04-TypeSavoirFaire/FHIR/TRE-R04-TypeSavoirFaire", "code": "S"},
            {"system": f"{NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", "code": "SM41"}]}},
    ]


def test_practitioner_role_field_by_field(api):
    pid, aid, sid = api.data["bene"], api.data["bene_role"], api.data["s1"]
    doc = api.json(f"/PractitionerRole/005-{pid}-{aid}")
    assert list(doc) == ["resourceType", "id", "meta", "language", "identifier", "active", "practitioner",
                         "organization", "code", "telecom"]
    check_meta(doc, "fr-core-practitioner-role", "as-dp-practitionerrole")
    assert doc["identifier"] == [{"use": "official", "system": "https://rpps.esante.gouv.fr", "value": str(aid)}]
    assert doc["practitioner"] == {"reference": f"Practitioner/003-{pid}-{pid}"}
    assert doc["organization"] == {"reference": f"Organization/001-01-{sid}"}
    assert doc["code"] == [
        {"coding": [{"system": f"{NOS}/TRE_R22-GenreActivite/FHIR/TRE-R22-GenreActivite", "code": "GENR01"}]},
        {"coding": [{"system": f"{NOS}/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice", "code": "L"}]},
        {"coding": [{"system": f"{NOS}/TRE_R21-Fonction/FHIR/TRE-R21-Fonction", "code": "FON-05"}]},
    ]
    assert doc["telecom"] == [
        mss("b.testdupont@ch-exemple.mssante.fr", "PER", {"url": "digitization", "valueBoolean": True}),
    ]


def test_geographic_organization_field_by_field(api):
    sid = api.data["s1"]
    doc = api.json(f"/Organization/001-01-{sid}")
    assert list(doc) == ["resourceType", "id", "meta", "language", "identifier", "active", "type", "name", "alias",
                         "telecom", "address", "partOf"]
    check_meta(doc, "fr-core-organization", "as-dp-organization", trace="FINESS")
    assert doc["identifier"] == [
        ident("IDNST", "urn:oid:1.2.250.1.71.4.2.2", "1990000019"),
        ident("FINEG", "https://finess.esante.gouv.fr", "990000019"),
        ident("SIRET", "https://sirene.fr", "99000001900011"),
        ident("INTRN", "https://rpps.esante.gouv.fr", "F990000019"),
    ]
    org_types = f"{AS}/StructureDefinition/as-ext-organization-types"
    assert doc["type"] == [
        {"extension": [{"url": org_types, "valueCode": "organizationType"}],
         "coding": [{"system": f"{CORE}/CodeSystem/fr-core-cs-v2-3307", "code": "GEOGRAPHICAL-ENTITY"}]},
        {"extension": [{"url": org_types, "valueCode": "secteurActiviteRASS"}],
         "coding": [{"system": f"{NOS}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite", "code": "SA01"}]},
    ]
    assert doc["name"] == "CH EXEMPLE" and doc["alias"] == ["CHE"]
    # Responsible never, liste rouge never; ORG/APP boxes after the plain phone.
    assert doc["telecom"] == [
        {"system": "phone", "value": "0100000000", "rank": 1},
        mss("robot@ch-exemple.mssante.fr", "APP"),
        mss("secretariat.cardio@ch-exemple.mssante.fr", "ORG",
            {"url": "description", "valueString": "Secrétariat de cardiologie"},
            {"url": "service", "valueString": "Cardiologie"},
            {"url": "digitization", "valueBoolean": True}),
    ]
    assert "Responsable" not in str(doc) and "confidentiel" not in str(doc)
    adxp = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-"
    assert doc["address"] == [{
        "extension": [{"url": f"{CORE}/StructureDefinition/fr-core-address-insee-code",
                       "valueCoding": {"system": f"{NOS}/TRE_R13-Commune/FHIR/TRE-R13-Commune", "code": "99002"}}],
        "line": ["BATIMENT B", "12 B R DE LA PAIX"],
        "_line": [
            {"extension": [{"url": adxp + "additionalLocator", "valueString": "BATIMENT B"}]},
            {"extension": [{"url": adxp + "houseNumber", "valueString": "12"},
                           {"url": adxp + "buildingNumberSuffix", "valueString": "B"},
                           {"url": adxp + "streetNameType", "valueString": "R"},
                           {"url": adxp + "streetNameBase", "valueString": "DE LA PAIX"}]},
        ],
        "city": "EXEMPLEVILLE",
        "postalCode": "99002",
    }]
    assert doc["partOf"]["reference"].startswith("Organization/001-02-")


def test_legal_entity_organization(api):
    sid = api.data["s1"]
    site = api.json(f"/Organization/001-01-{sid}")
    ej_id = site["partOf"]["reference"].split("/")[1]
    doc = api.json(f"/Organization/{ej_id}")
    assert list(doc) == ["resourceType", "id", "meta", "language", "identifier", "active", "type", "telecom"]
    check_meta(doc, "fr-core-organization", "as-dp-organization", trace="FINESS")
    assert doc["identifier"] == [
        ident("IDNST", "urn:oid:1.2.250.1.71.4.2.2", "1990000027"),
        ident("FINEJ", "https://finess.esante.gouv.fr", "990000027"),
    ]
    assert doc["type"][0]["coding"][0]["code"] == "LEGAL-ENTITY"
    assert doc["telecom"] == [mss("direction@ch-exemple.mssante.fr", "ORG")]


def test_cabinet_box_rank_and_pharmacist_section(api):
    pid, aid = api.data["martin"], api.data["martin_role"]
    doc = api.json(f"/Practitioner/003-{pid}-{pid}")
    assert doc["name"][0] == {"text": "MARTIN Benedicte", "family": "MARTIN", "given": ["Benedicte"], "prefix": ["M"]}
    assert doc["telecom"] == [mss("cabinet.martin@autre.mssante.fr", "CAB", use="work", rank=1)]
    role = api.json(f"/PractitionerRole/005-{pid}-{aid}")
    assert role["code"][-1] == {"coding": [{"system": f"{NOS}/TRE_R06-SectionTableauCNOP/FHIR/TRE-R06-SectionTableauCNOP", "code": "A"}]}
    site = api.json(f"/Organization/001-01-{api.data['s2']}")
    check_meta(site, "fr-core-organization", "as-dp-organization", trace="RPPS")
    assert "partOf" not in site


def test_inactive_resources_are_reduced(api):
    pid = api.data["ancien"]
    bundle = api.json("/Practitioner", params={"_id": f"003-{pid}-{pid}"})
    doc = bundle["entry"][0]["resource"]
    assert list(doc) == ["resourceType", "id", "meta", "language", "identifier", "active"]
    assert doc["active"] is False
    assert [i["value"] for i in doc["identifier"]] == ["810000000058", "10000000058"]
    sid = api.data["s3"]
    org = api.json("/Organization", params={"_id": f"001-01-{sid}"})["entry"][0]["resource"]
    assert list(org) == ["resourceType", "id", "meta", "language", "identifier", "active", "name"]
    assert org["active"] is False and org["name"] == "CLINIQUE FERMEE"


def test_read_errors_are_operation_outcomes(api):
    pid = api.data["ancien"]
    r = api.get(f"/Practitioner/003-{pid}-{pid}")
    assert r.status_code == 410
    assert r.json()["issue"][0]["severity"] == "error" and r.json()["issue"][0]["code"] == "exception"
    r = api.get("/Practitioner/003-0000000-0000000")
    assert r.status_code == 404
    assert r.json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "exception", "diagnostics": "Resource not found with id: 003-0000000-0000000"}]}
    # A role id whose person block is not the role's person does not exist.
    aid = api.data["bene_role"]
    assert api.get(f"/PractitionerRole/005-{api.data['martin']}-{aid}").status_code == 404
    r = api.get("/PractitiXXXner/1")
    assert r.status_code == 404 and "Resource type not supported" in r.json()["issue"][0]["diagnostics"]


def test_bundle_shape(api):
    r = api.get("/Practitioner", params={"family": "testdupont"})
    bundle = r.json()
    assert list(bundle) == ["resourceType", "type", "id", "total", "entry", "link"]
    assert bundle["type"] == "searchset" and len(bundle["id"]) == 36 and bundle["total"] == 1
    pid = api.data["bene"]
    assert bundle["entry"][0]["fullUrl"] == f"{api.base}/Practitioner/003-{pid}-{pid}"
    assert list(bundle["entry"][0]) == ["fullUrl", "resource"]
    assert bundle["link"] == [{"relation": "self", "url": f"{api.base}/Practitioner?family=testdupont"}]
    empty = api.json("/Practitioner", params={"family": "zzzzz"})
    assert empty["entry"] == [] and empty["total"] == 0


def test_capability_statement_lists_what_is_supported(api):
    import httpx

    doc = httpx.get(api.base + "/metadata").json()  # no key needed
    assert doc["resourceType"] == "CapabilityStatement" and doc["fhirVersion"] == "4.0.1"
    by_type = {r["type"]: r for r in doc["rest"][0]["resource"]}
    assert set(by_type) == {"Practitioner", "PractitionerRole", "Organization"}
    names = {p["name"] for p in by_type["Practitioner"]["searchParam"]}
    assert {"family", "given", "name", "identifier", "mailbox-mss", "qualification-code", "_lastUpdated"} <= names
    assert by_type["Practitioner"]["searchRevInclude"] == ["PractitionerRole:practitioner"]
    assert "Organization:partof" in by_type["Organization"]["searchInclude"]
