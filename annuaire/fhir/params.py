"""Search parameters: what each resource type accepts, and parsing a request.

FHIR rules applied: a parameter repeated = AND, commas inside one value = OR
(`\\,` is a literal comma); modifiers after a colon (`family:exact`); every
unknown parameter, modifier or malformed value is an InvalidInput (400) that
names it, never silently ignored. Result parameters (`_count`, `_total`,
`_summary`, `_elements`, `_include`, `_revinclude`, `_format`) are parsed here
too, and so is the query string itself (`query_pairs`: strict UTF-8 and
percent-encoding, so that a bad byte is refused naming its parameter rather
than searched for as U+FFFD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_to_bytes

from annuaire.errors import InvalidInput

STRING, TOKEN, DATE, REFERENCE, URI = "string", "token", "date", "reference", "uri"

# `_profile`: the resource's profile canonical (meta.profile), as FHIR's own `_profile` (uri).
COMMON = {"_id": TOKEN, "_lastUpdated": DATE, "_profile": URI, "active": TOKEN}
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
# The modifiers of each parameter type (the CapabilityStatement lists them per parameter).
MODIFIERS: dict[str, tuple[str, ...]] = {STRING: ("exact", "contains"), TOKEN: (), DATE: (), REFERENCE: (), URI: ()}
RESULT = {"_count", "_total", "_summary", "_elements", "_include", "_revinclude", "_format"}
TOTALS = ("accurate", "none", "estimate")
SUMMARIES = ("count", "false")  # `count`: the total only; `false`: whole resources (the default)
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
    count: int = 50  # 0: the total only (`_count=0`, `_summary=count`), no entries and no next link
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


def query_pairs(raw: bytes, where: str = "query") -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string or form body (`+` is a space), decoded
    strictly: a percent sign not followed by two hex digits, or bytes that are not UTF-8,
    are an InvalidInput naming the parameter (Starlette would keep the first as is and
    turn the second into U+FFFD, searched for as such)."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _decoded(raw_name, None, where)
        pairs.append((name, _decoded(raw_value, name, where)))
    return pairs


_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _decoded(raw: bytes, name: str | None, where: str) -> str:
    what = f"the value of parameter {name}" if name is not None else "a parameter name"
    if _BAD_PERCENT.search(raw):
        shown = raw.decode("latin-1")[:60]
        raise InvalidInput(f"Invalid percent-encoding in {what} in the {where}: '{shown}' "
                           "(a % must be followed by two hexadecimal digits; send a literal % as %25)")
    data = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        shown = data.decode("utf-8", "backslashreplace")[:60]
        raise InvalidInput(f"Invalid UTF-8 in {what} in the {where}: '{shown}' "
                           "(percent-encode the UTF-8 bytes of each character)") from None


# What a client sending a parameter of another interaction meant (the error says where it works).
HINTS = {
    "_since": ": _since belongs to the history ({type}/_history?_since=<instant>); "
              "a search asks _lastUpdated=ge<instant>",
}


def parse(resource_type: str, pairs: list[tuple[str, str]], default_count: int, max_count: int) -> Search:
    known = PARAMETERS[resource_type]
    search = Search(resource_type, count=default_count)
    include: list[str] = []
    revinclude: list[str] = []
    summary_count = total_given = False
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
                search.total, total_given = value, True
            elif name == "_summary":
                if value not in SUMMARIES:
                    raise InvalidInput(f"Bad value {value!r} for the _summary parameter. Allowed values are : "
                                       f"{', '.join(SUMMARIES)}")
                summary_count = summary_count or value == "count"
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
            hint = HINTS.get(name, "").format(type=resource_type)
            raise InvalidInput(f"Parameter {name} not found for resource {resource_type}{hint}")
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
    if summary_count:
        search.count = 0
    if search.count == 0 and not total_given:
        search.total = "accurate"  # the total is the whole answer: a best-effort one may be omitted
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
