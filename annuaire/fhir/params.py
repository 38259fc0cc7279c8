"""Search parameters: what each resource type accepts, and parsing a request.

FHIR rules applied: a parameter repeated = AND, commas inside one value = OR
(`\\,` is a literal comma); modifiers after a colon (`family:exact`); every
unknown parameter, modifier or malformed value is an InvalidInput (400) that
names it, never silently ignored. Result parameters (`_count`, `_total`,
`_elements`, `_include`, `_revinclude`, `_format`) are parsed here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from annuaire.errors import InvalidInput

STRING, TOKEN, DATE, REFERENCE = "string", "token", "date", "reference"

COMMON = {"_id": TOKEN, "_lastUpdated": DATE, "active": TOKEN}
DATA = {"data-information-system": TOKEN, "data-registration-authority": TOKEN}
MAILBOX = {"mailbox-mss": STRING, "mailbox-mss-type": TOKEN}

PARAMETERS: dict[str, dict[str, str]] = {
    "Practitioner": {
        **COMMON, "family": STRING, "given": STRING, "name": STRING, "identifier": TOKEN,
        "identifier-type": TOKEN, **MAILBOX, "qualification-code": TOKEN, **DATA,
        "number-smartcard": STRING, "type-smartcard": TOKEN,
    },
    "PractitionerRole": {
        **COMMON, "identifier": TOKEN, **MAILBOX, "organization": REFERENCE, "practitioner": REFERENCE,
        "role": TOKEN, **DATA,
    },
    "Organization": {
        **COMMON, "name": STRING, "identifier": TOKEN, "identifier-type": TOKEN, "address": STRING,
        "address-city": STRING, "address-line": STRING, "address-postalcode": STRING, **MAILBOX,
        "partof": REFERENCE, "type": TOKEN, "pharmacy-licence": STRING, **DATA,
    },
}

INCLUDES = {
    "Practitioner": (),
    "PractitionerRole": ("PractitionerRole:organization", "PractitionerRole:practitioner", "*", "PractitionerRole:*"),
    "Organization": ("Organization:partof",),
}
REVINCLUDES = {
    "Practitioner": ("PractitionerRole:practitioner",),
    "PractitionerRole": (),
    "Organization": (
        "PractitionerRole:organization", "HealthcareService:organization", "Device:organization",
    ),
}
MODIFIERS = {STRING: ("exact", "contains"), TOKEN: (), DATE: (), REFERENCE: ()}
RESULT = {"_count", "_total", "_elements", "_include", "_revinclude", "_format"}
TOTALS = ("accurate", "none", "estimate")
ELEMENTS = {
    "Practitioner": ("identifier", "active", "name", "telecom", "qualification", "extension", "language"),
    "PractitionerRole": ("identifier", "active", "practitioner", "organization", "code", "telecom", "language"),
    "Organization": (
        "identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "extension", "language",
    ),
}
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True)
class DateRange:
    """A `_lastUpdated` value: prefix and the [start, end) it covers, stored-form UTC."""

    prefix: str
    start: str
    end: str


@dataclass
class Clause:
    """One occurrence of a parameter: its values are OR'ed."""

    name: str
    modifier: str | None
    values: list


@dataclass
class Search:
    resource_type: str
    clauses: list[Clause] = field(default_factory=list)
    count: int = 50
    total: str = "best"  # best | accurate | estimate | none
    elements: tuple[str, ...] | None = None
    include: tuple[str, ...] = ()
    revinclude: tuple[str, ...] = ()

    def canonical(self) -> list[list]:
        """A JSON-able form, carried in paging tokens."""
        return [
            [c.name, c.modifier, [v.__dict__ if isinstance(v, DateRange) else v for v in c.values]]
            for c in self.clauses
        ]


def split_or(value: str) -> list[str]:
    """Comma-separated alternatives; `\\,` stays a comma."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",") for p in parts]


def parse(resource_type: str, pairs: list[tuple[str, str]], default_count: int, max_count: int) -> Search:
    known = PARAMETERS[resource_type]
    search = Search(resource_type, count=default_count)
    include: list[str] = []
    revinclude: list[str] = []
    for raw_name, value in pairs:
        if "\x00" in raw_name or "\x00" in value:  # no directory value holds one (and PostgreSQL refuses them)
            raise InvalidInput(f"Parameter {raw_name!r}: NUL characters are not accepted")
        name, _, modifier = raw_name.partition(":")
        if name in RESULT:
            if modifier:
                raise InvalidInput(f"Parameter {raw_name} not found for resource {resource_type}")
            if name == "_count":
                search.count = _count(value, max_count)
            elif name == "_total":
                if value not in TOTALS:
                    raise InvalidInput("Bad value for the _total parameter. Allowed values are : accurate, none, estimate")
                search.total = value
            elif name == "_elements":
                search.elements = _elements(resource_type, value)
            elif name == "_include":
                include += _includes(resource_type, value, INCLUDES)
            elif name == "_revinclude":
                revinclude += _includes(resource_type, value, REVINCLUDES)
            elif name == "_format":
                if value not in ("json", "application/json", "application/fhir+json"):
                    raise InvalidInput(f"_format={value!r} is not supported: this server answers in JSON only")
            continue
        kind = known.get(name)
        if kind is None:
            raise InvalidInput(f"Parameter {name} not found for resource {resource_type}")
        if modifier and modifier not in MODIFIERS[kind]:
            allowed = ", ".join(f":{m}" for m in MODIFIERS[kind]) or "none"
            raise InvalidInput(f"Modifier :{modifier} is not supported on parameter {name} (allowed: {allowed})")
        values: list[Any] = list(split_or(value))  # str, DateRange once parsed
        if not any(v.strip() for v in values):
            raise InvalidInput(f"Parameter {name} has an empty value")
        if kind == DATE:
            values = [parse_date(name, v) for v in values]
        elif name == "active":
            for v in values:
                if v not in ("true", "false"):
                    raise InvalidInput(f"Bad value {v!r} for parameter active: use true or false")
        search.clauses.append(Clause(name, modifier or None, values))
    search.include = tuple(dict.fromkeys(include))
    search.revinclude = tuple(dict.fromkeys(revinclude))
    return search


def _count(value: str, max_count: int) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise InvalidInput('The _count parameter must be in the FHIR format with an integer value : "_count=30"')
    count = int(value)
    if count > max_count:
        raise InvalidInput(f"The Fhir _count parameter is limited to {max_count}")
    return count


def _elements(resource_type: str, value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    for n in names:
        if n not in ELEMENTS[resource_type]:
            raise InvalidInput(
                f"_elements: {n!r} is not an element of {resource_type} "
                f"(known: {', '.join(ELEMENTS[resource_type])})"
            )
    return names


def _includes(resource_type: str, value: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    out = []
    for v in split_or(value):
        if v not in table[resource_type]:
            raise InvalidInput(f"Parameter {v} not found for resource {resource_type}")
        out.append(v)
    return out


_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _stored(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_date(name: str, value: str) -> DateRange:
    """`ge2025-04-28T10:00:00+02:00` -> DateRange('ge', start, end) in UTC."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    m = _DATE.fullmatch(text.replace(" ", "+"))
    if not m:
        raise InvalidInput(
            f"Bad value {value!r} for parameter {name}: expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|+hh:mm]]]]"
        )
    try:
        y, mo, d = int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)
        hh, mi, ss = int(m["H"] or 0), int(m["M"] or 0), int(m["S"] or 0)
        micro = int(float(m["f"]) * 1_000_000) if m["f"] else 0
        tz = UTC
        if m["tz"] and m["tz"] != "Z":
            sign = 1 if m["tz"][0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][4:6])))
        start = datetime(y, mo, d, hh, mi, ss, micro, tzinfo=tz)
        if m["f"]:
            end = start + timedelta(milliseconds=1)
        elif m["S"]:
            end = start + timedelta(seconds=1)
        elif m["M"]:
            end = start + timedelta(minutes=1)
        elif m["d"]:
            end = start + timedelta(days=1)
        elif m["m"]:
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=tz)
        else:
            end = datetime(y + 1, 1, 1, tzinfo=tz)
        if prefix == "ap":  # approximately: widened by a tenth of the distance to now, at least a day
            slack = max(abs(datetime.now(UTC) - start) / 10, timedelta(days=1))
            start, end = start - slack, end + slack
        return DateRange(prefix, _stored(start), _stored(end))
    except (ValueError, OverflowError) as exc:  # out of range, or moved beyond year 1..9999 (UTC, `ap` slack)
        reason = exc if isinstance(exc, ValueError) else "the date is out of range (years 1 to 9999)"
        raise InvalidInput(f"Bad value {value!r} for parameter {name}: {reason}") from None
