"""The LDAP schema of the address book: attribute registry, subschema entry, OpenLDAP export.

Standard attributes come from RFC 4519 / RFC 2798 (inetOrgPerson); the
directory data lives in our auxiliary class `mssMailbox`. Its OIDs use the
documentation arc 1.3.6.1.4.1.32473 (RFC 5612) as a placeholder: replace
`CUSTOM_ARC` by a registered enterprise arc before a national deployment
(the names do not change, only the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM_ARC = "1.3.6.1.4.1.32473.1"

# Matching kinds (how values compare; see filters.py):
#   name  search_key() on both sides: case and accent insensitive
#   mail  lowercase
#   ci    case-insensitive exact (codes, identifiers)
#   tel   telephone number: spaces and hyphens ignored
#   bool  TRUE / FALSE
#   oc    object class names (case-insensitive)
SYN_DIRSTRING = "1.3.6.1.4.1.1466.115.121.1.15"
SYN_IA5 = "1.3.6.1.4.1.1466.115.121.1.26"
SYN_OID = "1.3.6.1.4.1.1466.115.121.1.38"
SYN_POSTAL = "1.3.6.1.4.1.1466.115.121.1.41"
SYN_TEL = "1.3.6.1.4.1.1466.115.121.1.50"
SYN_BOOL = "1.3.6.1.4.1.1466.115.121.1.7"


@dataclass(frozen=True)
class AttributeDef:
    name: str
    oid: str
    kind: str
    syntax: str
    aliases: tuple[str, ...] = ()
    sup: str | None = None
    single: bool = False
    desc: str = ""
    custom: bool = False
    equality: str | None = None
    substr: str | None = None
    ordering: str | None = None


def _name(name: str, oid: str, aliases: tuple[str, ...] = (), sup: str | None = "name", **kw) -> AttributeDef:
    return AttributeDef(name, oid, "name", SYN_DIRSTRING, aliases, sup, **kw)


def _custom(n: int, name: str, kind: str, desc: str, syntax: str = SYN_DIRSTRING) -> AttributeDef:
    rules = {
        "name": ("caseIgnoreMatch", "caseIgnoreSubstringsMatch", "caseIgnoreOrderingMatch"),
        "ci": ("caseIgnoreMatch", "caseIgnoreSubstringsMatch", "caseIgnoreOrderingMatch"),
        "bool": ("booleanMatch", None, None),
    }[kind]
    return AttributeDef(name, f"{CUSTOM_ARC}.1.{n}", kind, syntax, (), None, True, desc, True, *rules)


# The user attributes of a mailbox entry, in the order of their pre-encoding slots.
USER_ATTRIBUTES: tuple[AttributeDef, ...] = (
    AttributeDef("objectClass", "2.5.4.0", "oc", SYN_OID, equality="objectIdentifierMatch"),
    AttributeDef("mail", "0.9.2342.19200300.100.1.3", "mail", SYN_IA5, ("rfc822Mailbox",),
                 equality="caseIgnoreIA5Match", substr="caseIgnoreIA5SubstringsMatch"),
    _name("cn", "2.5.4.3", ("commonName",)),
    _name("sn", "2.5.4.4", ("surname",)),
    _name("givenName", "2.5.4.42", ("gn",)),
    AttributeDef("displayName", "2.16.840.1.113730.3.1.241", "name", SYN_DIRSTRING, (), None, True,
                 equality="caseIgnoreMatch", substr="caseIgnoreSubstringsMatch"),
    _name("title", "2.5.4.12"),
    _name("o", "2.5.4.10", ("organizationName",)),
    _name("ou", "2.5.4.11", ("organizationalUnitName",)),
    AttributeDef("postalAddress", "2.5.4.16", "name", SYN_POSTAL, equality="caseIgnoreListMatch",
                 substr="caseIgnoreListSubstringsMatch"),
    AttributeDef("street", "2.5.4.9", "name", SYN_DIRSTRING, ("streetAddress",),
                 equality="caseIgnoreMatch", substr="caseIgnoreSubstringsMatch"),
    AttributeDef("postalCode", "2.5.4.17", "ci", SYN_DIRSTRING, equality="caseIgnoreMatch",
                 substr="caseIgnoreSubstringsMatch"),
    _name("l", "2.5.4.7", ("localityName",)),
    AttributeDef("telephoneNumber", "2.5.4.20", "tel", SYN_TEL, equality="telephoneNumberMatch",
                 substr="telephoneNumberSubstringsMatch"),
    AttributeDef("description", "2.5.4.13", "name", SYN_DIRSTRING, equality="caseIgnoreMatch",
                 substr="caseIgnoreSubstringsMatch"),
    _custom(1, "mssBalType", "ci", "MSSante mailbox type (TRE_R257): PER, ORG, APP or CAB"),
    _custom(2, "mssIdNatPS", "ci", "national id of the holder (8 + RPPS, 0 + ADELI)"),
    _custom(3, "mssProfessionCode", "ci", "profession code of the holder (TRE_G15)"),
    _custom(4, "mssProfession", "name", "profession label of the holder"),
    _custom(5, "mssSavoirFaireCode", "ci", "savoir-faire code of the holder (TRE_R38 ...)"),
    _custom(6, "mssSavoirFaire", "name", "savoir-faire label of the holder"),
    _custom(7, "mssStructureId", "ci", "national id of the structure (type digit + id)"),
    _custom(8, "mssDepartement", "ci", "departement code of the structure"),
    _custom(9, "mssDematerialisation", "bool", "the mailbox accepts paperless exchange", SYN_BOOL),
)
SLOT = {a.name: i for i, a in enumerate(USER_ATTRIBUTES)}
OC_SLOT = SLOT["objectClass"]

OPERATIONAL = ("structuralObjectClass", "subschemaSubentry", "entryDN", "hasSubordinates")

# Name forms (lowercase), aliases and OIDs -> canonical name.
CANONICAL: dict[str, str] = {}
for _a in USER_ATTRIBUTES:
    for _n in (_a.name, _a.oid, *_a.aliases):
        CANONICAL[_n.lower()] = _a.name
for _n in OPERATIONAL:
    CANONICAL[_n.lower()] = _n
BY_NAME = {a.name: a for a in USER_ATTRIBUTES}

# Attributes whose constraint lets a search through the anti-extraction rule.
RESTRICTING = ("mail", "cn", "sn", "givenName", "mssIdNatPS")
# Sorted-key (prefix) indexes, trigram (contains) index and exact-value indexes.
PREFIX_INDEXED = ("mail", "cn", "sn", "givenName")
TRIGRAM_INDEXED = ("mail", "cn", "sn", "givenName")
EXACT_INDEXED = ("mssIdNatPS", "mssProfessionCode", "mssDepartement", "mssBalType", "mssSavoirFaireCode",
                 "mssStructureId")

MAILBOX_OBJECT_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "mssMailbox")


def canonical(attr: str) -> str | None:
    """Canonical attribute name, ignoring options (`cn;lang-fr` -> `cn`), or None if unknown."""
    return CANONICAL.get(attr.split(";", 1)[0].lower())


# --- schema descriptions ---------------------------------------------------------

_STANDARD_TYPES = (
    "( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
    "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
    "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )",
    "( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )",
    "( 2.5.4.42 NAME ( 'givenName' 'gn' ) SUP name )",
    "( 2.5.4.12 NAME 'title' SUP name )",
    "( 2.5.4.10 NAME ( 'o' 'organizationName' ) SUP name )",
    "( 2.5.4.11 NAME ( 'ou' 'organizationalUnitName' ) SUP name )",
    "( 2.5.4.7 NAME ( 'l' 'localityName' ) SUP name )",
    "( 2.5.4.6 NAME ( 'c' 'countryName' ) SUP name SINGLE-VALUE )",
    "( 2.5.4.35 NAME 'userPassword' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )",
    "( 2.5.4.13 NAME 'description' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{1024} )",
    "( 2.5.4.16 NAME 'postalAddress' EQUALITY caseIgnoreListMatch SUBSTR caseIgnoreListSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.41 )",
    "( 2.5.4.9 NAME ( 'street' 'streetAddress' ) EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{128} )",
    "( 2.5.4.17 NAME 'postalCode' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{40} )",
    "( 2.5.4.20 NAME 'telephoneNumber' EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.50{32} )",
    "( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) EQUALITY caseIgnoreIA5Match "
    "SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )",
    "( 2.16.840.1.113730.3.1.241 NAME 'displayName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
    "( 2.5.18.10 NAME 'subschemaSubentry' EQUALITY distinguishedNameMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 2.5.21.9 NAME 'structuralObjectClass' EQUALITY objectIdentifierMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 1.3.6.1.1.20 NAME 'entryDN' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 "
    "SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 2.5.18.9 NAME 'hasSubordinates' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 "
    "SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 2.5.21.5 NAME 'attributeTypes' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.3 USAGE directoryOperation )",
    "( 2.5.21.6 NAME 'objectClasses' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.37 USAGE directoryOperation )",
    "( 1.3.6.1.4.1.1466.101.120.5 NAME 'namingContexts' SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 "
    "USAGE dSAOperation )",
    "( 1.3.6.1.4.1.1466.101.120.13 NAME 'supportedControl' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 "
    "USAGE dSAOperation )",
    "( 1.3.6.1.4.1.1466.101.120.7 NAME 'supportedExtension' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 "
    "USAGE dSAOperation )",
    "( 1.3.6.1.4.1.1466.101.120.15 NAME 'supportedLDAPVersion' SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 "
    "USAGE dSAOperation )",
    "( 1.3.6.1.4.1.1466.101.120.6 NAME 'altServer' SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 USAGE dSAOperation )",
    "( 1.3.6.1.4.1.4203.1.3.5 NAME 'supportedFeatures' EQUALITY objectIdentifierMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 USAGE dSAOperation )",
    "( 1.3.6.1.4.1.1466.101.120.14 NAME 'supportedSASLMechanisms' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 "
    "USAGE dSAOperation )",
    "( 1.3.6.1.1.4 NAME 'vendorName' EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 "
    "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation )",
    "( 1.3.6.1.1.5 NAME 'vendorVersion' EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 "
    "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation )",
    "( 2.5.18.1 NAME 'createTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 2.5.18.2 NAME 'modifyTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 1.3.6.1.4.1.1466.101.120.16 NAME 'ldapSyntaxes' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.54 USAGE directoryOperation )",
    "( 2.5.21.4 NAME 'matchingRules' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.30 USAGE directoryOperation )",
    "( 2.5.21.8 NAME 'matchingRuleUse' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.31 USAGE directoryOperation )",
    "( 2.5.21.2 NAME 'dITContentRules' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.16 USAGE directoryOperation )",
    "( 2.5.21.1 NAME 'dITStructureRules' EQUALITY integerFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.17 USAGE directoryOperation )",
    "( 2.5.21.7 NAME 'nameForms' EQUALITY objectIdentifierFirstComponentMatch "
    "SYNTAX 1.3.6.1.4.1.1466.115.121.1.35 USAGE directoryOperation )",
)

_STANDARD_CLASSES = (
    "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
    "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) "
    "MAY ( userPassword $ telephoneNumber $ description ) )",
    "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( title $ ou $ street $ postalAddress "
    "$ postalCode $ l ) )",
    "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL "
    "MAY ( displayName $ givenName $ mail $ o ) )",
    "( 2.5.6.4 NAME 'organization' SUP top STRUCTURAL MUST o MAY ( description $ l ) )",
    "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou MAY ( description $ l ) )",
    "( 2.5.20.1 NAME 'subschema' AUXILIARY MAY ( attributeTypes $ objectClasses ) )",
    "( 2.5.17.0 NAME 'subentry' SUP top STRUCTURAL MUST ( cn ) )",
)


def custom_attribute_types() -> list[str]:
    out = []
    for a in USER_ATTRIBUTES:
        if not a.custom:
            continue
        parts = [f"( {a.oid} NAME '{a.name}' DESC '{a.desc}'", f"EQUALITY {a.equality}"]
        if a.substr:
            parts.append(f"SUBSTR {a.substr}")
        if a.ordering:
            parts.append(f"ORDERING {a.ordering}")
        parts.append(f"SYNTAX {a.syntax}")
        if a.single:
            parts.append("SINGLE-VALUE")
        out.append(" ".join(parts) + " )")
    return out


def custom_object_classes() -> list[str]:
    may = " $ ".join(a.name for a in USER_ATTRIBUTES if a.custom)
    return [f"( {CUSTOM_ARC}.2.1 NAME 'mssMailbox' DESC 'MSSante mailbox published in the national directory' "
            f"SUP top AUXILIARY MUST mssBalType MAY ( {may} ) )"]


def subschema_attributes() -> dict[str, list[str]]:
    """The attributes of the subschema entry (cn=Subschema)."""
    return {
        "objectClass": ["top", "subentry", "subschema"],
        "cn": ["Subschema"],
        "attributeTypes": list(_STANDARD_TYPES) + custom_attribute_types(),
        "objectClasses": list(_STANDARD_CLASSES) + custom_object_classes(),
    }


def openldap_schema() -> str:
    """The custom schema as an OpenLDAP `.schema` file (include after core, cosine, inetorgperson)."""
    lines = [
        "# MSSante national directory: auxiliary class of published mailboxes.",
        "# Generated by `annuaire export-ldif` / annuaire.ldap.schema.openldap_schema().",
        f"# OID arc {CUSTOM_ARC} is the RFC 5612 documentation arc: replace it by a registered one.",
        "# Requires core.schema, cosine.schema and inetorgperson.schema.",
        "",
    ]
    for t in custom_attribute_types():
        lines.append("attributetype " + _wrap(t))
        lines.append("")
    for c in custom_object_classes():
        lines.append("objectclass " + _wrap(c))
        lines.append("")
    return "\n".join(lines)


def _wrap(definition: str) -> str:
    """Break a definition before its keywords, OpenLDAP style (continuation lines start with a tab)."""
    out = definition
    for kw in (" NAME ", " DESC ", " EQUALITY ", " SUBSTR ", " ORDERING ", " SYNTAX ", " SINGLE-VALUE",
               " SUP ", " AUXILIARY", " MUST ", " MAY "):
        out = out.replace(kw, "\n\t" + kw.lstrip(), 1)
    return out
