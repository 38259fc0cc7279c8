"""LDAPv3 messages (RFC 4511) of the read-only subset: model, decoding, encoding.

`decode_message(pdu)` turns one framed PDU into an `LDAPMessage`; every
encoding error raises `BerError`. Requests and responses are both decoded
(the server reads requests; tests and the load generator read responses).
Write operations are recognised by their tag only, so that the server can
answer them with the matching response tag.

Filters, the only recursive type, are decoded without recursion, with a
bounded depth and node count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from annuaire.ldap.ber import (
    BOOLEAN,
    ENUMERATED,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    SET,
    BerError,
    decode_bool,
    decode_int,
    encode_bool,
    encode_int,
    expect,
    octets,
    read_bool,
    read_header,
    read_int,
    read_octets,
    seq,
    tlv,
)

MAX_FILTER_DEPTH = 32
MAX_FILTER_NODES = 1024
MAX_ATTRIBUTES = 256
MAX_CONTROLS = 32
MAX_INT = 2**31 - 1

OID_PAGED_RESULTS = "1.2.840.113556.1.4.319"
OID_START_TLS = "1.3.6.1.4.1.1466.20037"
OID_NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"
OID_WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

# Result codes (RFC 4511 appendix A).
SUCCESS = 0
OPERATIONS_ERROR = 1
PROTOCOL_ERROR = 2
TIME_LIMIT_EXCEEDED = 3
SIZE_LIMIT_EXCEEDED = 4
COMPARE_FALSE = 5
COMPARE_TRUE = 6
AUTH_METHOD_NOT_SUPPORTED = 7
STRONG_AUTH_REQUIRED = 8
ADMIN_LIMIT_EXCEEDED = 11
UNAVAILABLE_CRITICAL_EXTENSION = 12
CONFIDENTIALITY_REQUIRED = 13
NO_SUCH_ATTRIBUTE = 16
UNDEFINED_ATTRIBUTE_TYPE = 17
INAPPROPRIATE_MATCHING = 18
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INAPPROPRIATE_AUTHENTICATION = 48
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS_RIGHTS = 50
BUSY = 51
UNAVAILABLE = 52
UNWILLING_TO_PERFORM = 53
OTHER = 80

# Protocol operation tags.
BIND_REQUEST = 0x60
BIND_RESPONSE = 0x61
UNBIND_REQUEST = 0x42
SEARCH_REQUEST = 0x63
SEARCH_RESULT_ENTRY = 0x64
SEARCH_RESULT_DONE = 0x65
SEARCH_RESULT_REFERENCE = 0x73
MODIFY_REQUEST = 0x66
ADD_REQUEST = 0x68
DEL_REQUEST = 0x4A
MODIFY_DN_REQUEST = 0x6C
COMPARE_REQUEST = 0x6E
ABANDON_REQUEST = 0x50
EXTENDED_REQUEST = 0x77
EXTENDED_RESPONSE = 0x78
# Requests we refuse, and the tag of their response.
WRITE_RESPONSE_TAGS = {
    MODIFY_REQUEST: 0x67,
    ADD_REQUEST: 0x69,
    DEL_REQUEST: 0x6B,
    MODIFY_DN_REQUEST: 0x6D,
    COMPARE_REQUEST: 0x6F,
}
WRITE_NAMES = {MODIFY_REQUEST: "modify", ADD_REQUEST: "add", DEL_REQUEST: "delete",
               MODIFY_DN_REQUEST: "modifyDN", COMPARE_REQUEST: "compare"}

SCOPE_BASE, SCOPE_ONE, SCOPE_SUB = 0, 1, 2

# --- filters -------------------------------------------------------------------


@dataclass(slots=True)
class And:
    filters: list[Filter]


@dataclass(slots=True)
class Or:
    filters: list[Filter]


@dataclass(slots=True)
class Not:
    filter: Filter


@dataclass(slots=True)
class Equality:
    attr: str
    value: bytes


@dataclass(slots=True)
class GreaterOrEqual:
    attr: str
    value: bytes


@dataclass(slots=True)
class LessOrEqual:
    attr: str
    value: bytes


@dataclass(slots=True)
class Approx:
    attr: str
    value: bytes


@dataclass(slots=True)
class Present:
    attr: str


@dataclass(slots=True)
class Substrings:
    attr: str
    initial: bytes | None
    any: list[bytes]
    final: bytes | None


@dataclass(slots=True)
class Extensible:
    rule: str | None
    attr: str | None
    value: bytes
    dn_attributes: bool = False


Filter = And | Or | Not | Equality | GreaterOrEqual | LessOrEqual | Approx | Present | Substrings | Extensible

_AVA_TAGS: dict[int, type[Equality | GreaterOrEqual | LessOrEqual | Approx]] = {0xA3: Equality, 0xA5: GreaterOrEqual, 0xA6: LessOrEqual, 0xA8: Approx}
_AVA_TAG_OF = {v: k for k, v in _AVA_TAGS.items()}

# --- messages ------------------------------------------------------------------


@dataclass(slots=True)
class Control:
    oid: str
    critical: bool = False
    value: bytes | None = None


@dataclass(slots=True)
class LDAPResult:
    code: int
    matched_dn: str = ""
    message: str = ""
    referral: list[str] | None = None


@dataclass(slots=True)
class BindRequest:
    version: int
    name: str
    simple: bytes | None = None  # None when SASL
    sasl_mechanism: str | None = None
    sasl_credentials: bytes | None = None


@dataclass(slots=True)
class BindResponse:
    result: LDAPResult
    sasl_credentials: bytes | None = None


@dataclass(slots=True)
class UnbindRequest:
    pass


@dataclass(slots=True)
class SearchRequest:
    base: str
    scope: int
    deref: int
    size_limit: int
    time_limit: int
    types_only: bool
    filter: Filter
    attributes: list[str] = field(default_factory=list)
    filter_raw: bytes = field(default=b"", compare=False, repr=False)  # BER of the filter (cache key)


@dataclass(slots=True)
class SearchResultEntry:
    dn: str
    attributes: list[tuple[str, list[bytes]]]


@dataclass(slots=True)
class SearchResultDone:
    result: LDAPResult


@dataclass(slots=True)
class SearchResultReference:
    uris: list[str]


@dataclass(slots=True)
class AbandonRequest:
    message_id: int


@dataclass(slots=True)
class ExtendedRequest:
    name: str
    value: bytes | None = None


@dataclass(slots=True)
class ExtendedResponse:
    result: LDAPResult
    name: str | None = None
    value: bytes | None = None


@dataclass(slots=True)
class WriteRequest:
    """A modify/add/delete/modifyDN/compare request: refused, never parsed further."""

    tag: int

    @property
    def response_tag(self) -> int:
        return WRITE_RESPONSE_TAGS[self.tag]


@dataclass(slots=True)
class GenericResponse:
    """The response to a WriteRequest (decoded for tests)."""

    tag: int
    result: LDAPResult


ProtocolOp = (BindRequest | BindResponse | UnbindRequest | SearchRequest | SearchResultEntry
              | SearchResultDone | SearchResultReference | AbandonRequest | ExtendedRequest
              | ExtendedResponse | WriteRequest | GenericResponse)


@dataclass(slots=True)
class LDAPMessage:
    message_id: int
    op: ProtocolOp
    controls: list[Control] = field(default_factory=list)


# --- decoding ------------------------------------------------------------------


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BerError(f"{what} is not valid UTF-8") from None


def _attr_desc(raw: bytes, what: str = "attribute description") -> str:
    if not raw or len(raw) > 256 or not raw.isascii():
        raise BerError(f"invalid {what}")
    return raw.decode("ascii")


def _done(pos: int, stop: int, what: str) -> None:
    if pos != stop:
        raise BerError(f"{what}: unexpected trailing data")


def decode_message(pdu: bytes) -> LDAPMessage:
    """Decode one complete LDAPMessage (as framed by `ber.frame_length`)."""
    start, end = expect(pdu, 0, len(pdu), SEQUENCE, "LDAPMessage")
    if end != len(pdu):
        raise BerError("LDAPMessage: trailing data after the message")
    message_id, pos = read_int(pdu, start, end, INTEGER, "messageID")
    if not 0 <= message_id <= MAX_INT:
        raise BerError("messageID out of range")
    tag, op_start, op_stop = read_header(pdu, pos, end)
    op = _decode_op(pdu, tag, op_start, op_stop)
    pos = op_stop
    controls: list[Control] = []
    if pos < end:
        cstart, cstop = expect(pdu, pos, end, 0xA0, "controls")
        controls = _decode_controls(pdu, cstart, cstop)
        pos = cstop
    _done(pos, end, "LDAPMessage")
    return LDAPMessage(message_id, op, controls)


def _decode_controls(data: bytes, pos: int, end: int) -> list[Control]:
    controls: list[Control] = []
    while pos < end:
        if len(controls) >= MAX_CONTROLS:
            raise BerError("too many controls")
        start, stop = expect(data, pos, end, SEQUENCE, "control")
        raw_oid, p = read_octets(data, start, stop, OCTET_STRING, "controlType")
        oid = _attr_desc(raw_oid, "control type")
        critical = False
        value = None
        if p < stop:
            tag, s, e = read_header(data, p, stop)
            if tag == BOOLEAN:
                critical = decode_bool(data, s, e, "criticality")
                p = e
        if p < stop:
            value, p = read_octets(data, p, stop, OCTET_STRING, "controlValue")
        _done(p, stop, "control")
        controls.append(Control(oid, critical, value))
        pos = stop
    return controls


def _decode_result(data: bytes, pos: int, end: int) -> tuple[LDAPResult, int]:
    code, pos = read_int(data, pos, end, ENUMERATED, "resultCode")
    matched, pos = read_octets(data, pos, end, OCTET_STRING, "matchedDN")
    message, pos = read_octets(data, pos, end, OCTET_STRING, "diagnosticMessage")
    referral = None
    if pos < end and data[pos] == 0xA3:
        rstart, rstop = expect(data, pos, end, 0xA3, "referral")
        referral = []
        p = rstart
        while p < rstop:
            uri, p = read_octets(data, p, rstop, OCTET_STRING, "referral URI")
            referral.append(_text(uri, "referral URI"))
        pos = rstop
    return LDAPResult(code, _text(matched, "matchedDN"), _text(message, "diagnosticMessage"), referral), pos


def _decode_op(data: bytes, tag: int, pos: int, end: int) -> ProtocolOp:
    if tag == SEARCH_REQUEST:
        return _decode_search(data, pos, end)
    if tag == BIND_REQUEST:
        version, p = read_int(data, pos, end, INTEGER, "bind version")
        name, p = read_octets(data, p, end, OCTET_STRING, "bind name")
        atag, s, e = read_header(data, p, end)
        _done(e, end, "BindRequest")
        if atag == 0x80:
            return BindRequest(version, _text(name, "bind name"), data[s:e])
        if atag == 0xA3:
            mech, q = read_octets(data, s, e, OCTET_STRING, "SASL mechanism")
            creds = None
            if q < e:
                creds, q = read_octets(data, q, e, OCTET_STRING, "SASL credentials")
            _done(q, e, "SaslCredentials")
            return BindRequest(version, _text(name, "bind name"), None, _attr_desc(mech, "SASL mechanism"), creds)
        raise BerError(f"unknown authentication choice 0x{atag:02x}")
    if tag == UNBIND_REQUEST:
        if pos != end:
            raise BerError("UnbindRequest must be empty")
        return UnbindRequest()
    if tag == ABANDON_REQUEST:
        target = decode_int(data, pos, end, "abandon messageID")
        if not 0 <= target <= MAX_INT:
            raise BerError("abandon messageID out of range")
        return AbandonRequest(target)
    if tag == EXTENDED_REQUEST:
        name, p = read_octets(data, pos, end, 0x80, "requestName")
        value = None
        if p < end:
            value, p = read_octets(data, p, end, 0x81, "requestValue")
        _done(p, end, "ExtendedRequest")
        return ExtendedRequest(_attr_desc(name, "extended operation name"), value)
    if tag in WRITE_RESPONSE_TAGS:
        return WriteRequest(tag)
    if tag == SEARCH_RESULT_ENTRY:
        dn, p = read_octets(data, pos, end, OCTET_STRING, "objectName")
        lstart, lstop = expect(data, p, end, SEQUENCE, "attributes")
        _done(lstop, end, "SearchResultEntry")
        attrs = []
        q = lstart
        while q < lstop:
            astart, astop = expect(data, q, lstop, SEQUENCE, "PartialAttribute")
            name, r = read_octets(data, astart, astop, OCTET_STRING, "attribute type")
            vstart, vstop = expect(data, r, astop, SET, "attribute values")
            _done(vstop, astop, "PartialAttribute")
            values = []
            while vstart < vstop:
                item, vstart = read_octets(data, vstart, vstop, OCTET_STRING, "attribute value")
                values.append(item)
            attrs.append((_attr_desc(name), values))
            q = astop
        return SearchResultEntry(_text(dn, "objectName"), attrs)
    if tag == SEARCH_RESULT_DONE:
        result, p = _decode_result(data, pos, end)
        _done(p, end, "SearchResultDone")
        return SearchResultDone(result)
    if tag == BIND_RESPONSE:
        result, p = _decode_result(data, pos, end)
        creds = None
        if p < end:
            creds, p = read_octets(data, p, end, 0x87, "serverSaslCreds")
        _done(p, end, "BindResponse")
        return BindResponse(result, creds)
    if tag == EXTENDED_RESPONSE:
        result, p = _decode_result(data, pos, end)
        rname: str | None = None
        rvalue: bytes | None = None
        if p < end and data[p] == 0x8A:
            raw, p = read_octets(data, p, end, 0x8A, "responseName")
            rname = _attr_desc(raw, "responseName")
        if p < end:
            rvalue, p = read_octets(data, p, end, 0x8B, "responseValue")
        _done(p, end, "ExtendedResponse")
        return ExtendedResponse(result, rname, rvalue)
    if tag == SEARCH_RESULT_REFERENCE:
        uris = []
        p = pos
        while p < end:
            uri, p = read_octets(data, p, end, OCTET_STRING, "URI")
            uris.append(_text(uri, "URI"))
        return SearchResultReference(uris)
    if tag in WRITE_RESPONSE_TAGS.values():
        result, p = _decode_result(data, pos, end)
        _done(p, end, "response")
        return GenericResponse(tag, result)
    raise BerError(f"unknown protocol operation 0x{tag:02x}")


def _decode_search(data: bytes, pos: int, end: int) -> SearchRequest:
    base, p = read_octets(data, pos, end, OCTET_STRING, "baseObject")
    scope, p = read_int(data, p, end, ENUMERATED, "scope")
    if scope not in (0, 1, 2):
        raise BerError(f"invalid scope {scope}")
    deref, p = read_int(data, p, end, ENUMERATED, "derefAliases")
    if deref not in (0, 1, 2, 3):
        raise BerError(f"invalid derefAliases {deref}")
    size_limit, p = read_int(data, p, end, INTEGER, "sizeLimit")
    time_limit, p = read_int(data, p, end, INTEGER, "timeLimit")
    if not (0 <= size_limit <= MAX_INT and 0 <= time_limit <= MAX_INT):
        raise BerError("negative or too large size/time limit")
    types_only, p = read_bool(data, p, end, BOOLEAN, "typesOnly")
    ftag, fstart, fstop = read_header(data, p, end)
    flt = decode_filter(data, ftag, fstart, fstop)
    lstart, lstop = expect(data, fstop, end, SEQUENCE, "attributes")
    _done(lstop, end, "SearchRequest")
    attributes: list[str] = []
    q = lstart
    while q < lstop:
        if len(attributes) >= MAX_ATTRIBUTES:
            raise BerError("too many attributes requested")
        raw, q = read_octets(data, q, lstop, OCTET_STRING, "attribute selector")
        attributes.append(_attr_desc(raw, "attribute selector"))
    return SearchRequest(_text(base, "baseObject"), scope, deref, size_limit, time_limit, types_only,
                         flt, attributes, data[p:fstop])


def decode_filter(data: bytes, tag: int, start: int, stop: int) -> Filter:
    """Decode a Filter whose header was already read, iteratively (explicit stack)."""
    # Each frame: [tag, children, cursor, stop]
    stack: list[list] = []
    nodes = 0
    pending = (tag, start, stop)
    while True:
        tag, start, stop = pending
        nodes += 1
        if nodes > MAX_FILTER_NODES:
            raise BerError(f"filter has more than {MAX_FILTER_NODES} elements")
        node: Filter | None
        if tag in (0xA0, 0xA1, 0xA2):
            if len(stack) >= MAX_FILTER_DEPTH:
                raise BerError(f"filter nested deeper than {MAX_FILTER_DEPTH} levels")
            stack.append([tag, [], start, stop])
            node = None
        else:
            node = _decode_leaf(data, tag, start, stop)
        while True:
            if node is not None:
                if not stack:
                    return node
                stack[-1][1].append(node)
            frame = stack[-1]
            if frame[2] < frame[3]:
                pending = read_header(data, frame[2], frame[3])
                frame[2] = pending[2]
                break
            stack.pop()
            ftag, children = frame[0], frame[1]
            if ftag == 0xA0:
                node = And(children)
            elif ftag == 0xA1:
                node = Or(children)
            else:
                if len(children) != 1:
                    raise BerError("a not filter has exactly one element")
                node = Not(children[0])


def _decode_leaf(data: bytes, tag: int, start: int, stop: int) -> Filter:
    kind = _AVA_TAGS.get(tag)
    if kind is not None:
        raw, p = read_octets(data, start, stop, OCTET_STRING, "attributeDesc")
        value, p = read_octets(data, p, stop, OCTET_STRING, "assertionValue")
        _done(p, stop, "AttributeValueAssertion")
        return kind(_attr_desc(raw), value)
    if tag == 0x87:
        return Present(_attr_desc(data[start:stop]))
    if tag == 0xA4:
        raw, p = read_octets(data, start, stop, OCTET_STRING, "substrings type")
        sstart, sstop = expect(data, p, stop, SEQUENCE, "substrings")
        _done(sstop, stop, "SubstringFilter")
        initial = final = None
        anys: list[bytes] = []
        q = sstart
        count = 0
        while q < sstop:
            ctag, cs, ce = read_header(data, q, sstop)
            value = data[cs:ce]
            if final is not None:
                raise BerError("substrings: nothing may follow the final component")
            if ctag == 0x80:
                if count:
                    raise BerError("substrings: initial must come first")
                initial = value
            elif ctag == 0x81:
                anys.append(value)
            elif ctag == 0x82:
                final = value
            else:
                raise BerError(f"substrings: unknown component 0x{ctag:02x}")
            count += 1
            q = ce
        if count == 0:
            raise BerError("substrings: at least one component is required")
        return Substrings(_attr_desc(raw), initial, anys, final)
    if tag == 0xA9:
        rule = attr = None
        dn_attributes = False
        p = start
        ctag, cs, ce = read_header(data, p, stop)
        if ctag == 0x81:
            rule = _attr_desc(data[cs:ce], "matching rule")
            p = ce
            ctag, cs, ce = read_header(data, p, stop)
        if ctag == 0x82:
            attr = _attr_desc(data[cs:ce])
            p = ce
            ctag, cs, ce = read_header(data, p, stop)
        if ctag != 0x83:
            raise BerError("extensible match: matchValue is required")
        value = data[cs:ce]
        p = ce
        if p < stop:
            ctag, cs, ce = read_header(data, p, stop)
            if ctag != 0x84:
                raise BerError("extensible match: unexpected element")
            dn_attributes = decode_bool(data, cs, ce, "dnAttributes")
            p = ce
        _done(p, stop, "MatchingRuleAssertion")
        if rule is None and attr is None:
            raise BerError("extensible match needs a matching rule or a type")
        return Extensible(rule, attr, value, dn_attributes)
    raise BerError(f"unknown filter choice 0x{tag:02x}")


def decode_paged_control(value: bytes | None) -> tuple[int, bytes]:
    """(page size, cookie) of a paged-results control value (RFC 2696)."""
    if value is None:
        raise BerError("paged results control without a value")
    start, stop = expect(value, 0, len(value), SEQUENCE, "paged results")
    _done(stop, len(value), "paged results")
    size, p = read_int(value, start, stop, INTEGER, "page size")
    cookie, p = read_octets(value, p, stop, OCTET_STRING, "cookie")
    _done(p, stop, "paged results")
    if not 0 <= size <= MAX_INT:
        raise BerError("page size out of range")
    return size, cookie


# --- encoding ------------------------------------------------------------------


def encode_paged_control(size: int, cookie: bytes, critical: bool = False) -> Control:
    return Control(OID_PAGED_RESULTS, critical, seq(encode_int(size), octets(cookie)))


def encode_filter(f: Filter) -> bytes:
    if isinstance(f, And):
        return seq(*(encode_filter(c) for c in f.filters), tag=0xA0)
    if isinstance(f, Or):
        return seq(*(encode_filter(c) for c in f.filters), tag=0xA1)
    if isinstance(f, Not):
        return seq(encode_filter(f.filter), tag=0xA2)
    if isinstance(f, Present):
        return octets(f.attr, 0x87)
    if isinstance(f, Substrings):
        parts = []
        if f.initial is not None:
            parts.append(octets(f.initial, 0x80))
        parts.extend(octets(a, 0x81) for a in f.any)
        if f.final is not None:
            parts.append(octets(f.final, 0x82))
        return seq(octets(f.attr), seq(*parts), tag=0xA4)
    if isinstance(f, Extensible):
        parts = []
        if f.rule is not None:
            parts.append(octets(f.rule, 0x81))
        if f.attr is not None:
            parts.append(octets(f.attr, 0x82))
        parts.append(octets(f.value, 0x83))
        if f.dn_attributes:
            parts.append(encode_bool(True, 0x84))
        return seq(*parts, tag=0xA9)
    return seq(octets(f.attr), octets(f.value), tag=_AVA_TAG_OF[type(f)])


def encode_result(r: LDAPResult) -> bytes:
    out = encode_int(r.code, ENUMERATED) + octets(r.matched_dn) + octets(r.message)
    if r.referral is not None:
        out += seq(*(octets(u) for u in r.referral), tag=0xA3)
    return out


def encode_controls(controls: list[Control]) -> bytes:
    if not controls:
        return b""
    parts = []
    for c in controls:
        body = octets(c.oid)
        if c.critical:
            body += encode_bool(True)
        if c.value is not None:
            body += octets(c.value)
        parts.append(seq(body))
    return seq(*parts, tag=0xA0)


def encode_op(op: ProtocolOp) -> bytes:
    if isinstance(op, SearchRequest):
        return seq(octets(op.base), encode_int(op.scope, ENUMERATED), encode_int(op.deref, ENUMERATED),
                   encode_int(op.size_limit), encode_int(op.time_limit), encode_bool(op.types_only),
                   encode_filter(op.filter), seq(*(octets(a) for a in op.attributes)), tag=SEARCH_REQUEST)
    if isinstance(op, SearchResultEntry):
        attrs = [seq(octets(name), seq(*(octets(v) for v in values), tag=SET)) for name, values in op.attributes]
        return seq(octets(op.dn), seq(*attrs), tag=SEARCH_RESULT_ENTRY)
    if isinstance(op, SearchResultDone):
        return tlv(SEARCH_RESULT_DONE, encode_result(op.result))
    if isinstance(op, BindRequest):
        if op.simple is not None:
            auth = octets(op.simple, 0x80)
        else:
            inner = octets(op.sasl_mechanism or "")
            if op.sasl_credentials is not None:
                inner += octets(op.sasl_credentials)
            auth = tlv(0xA3, inner)
        return seq(encode_int(op.version), octets(op.name), auth, tag=BIND_REQUEST)
    if isinstance(op, BindResponse):
        body = encode_result(op.result)
        if op.sasl_credentials is not None:
            body += octets(op.sasl_credentials, 0x87)
        return tlv(BIND_RESPONSE, body)
    if isinstance(op, UnbindRequest):
        return bytes((UNBIND_REQUEST, 0))
    if isinstance(op, AbandonRequest):
        return encode_int(op.message_id, ABANDON_REQUEST)
    if isinstance(op, ExtendedRequest):
        body = octets(op.name, 0x80)
        if op.value is not None:
            body += octets(op.value, 0x81)
        return tlv(EXTENDED_REQUEST, body)
    if isinstance(op, ExtendedResponse):
        body = encode_result(op.result)
        if op.name is not None:
            body += octets(op.name, 0x8A)
        if op.value is not None:
            body += octets(op.value, 0x8B)
        return tlv(EXTENDED_RESPONSE, body)
    if isinstance(op, SearchResultReference):
        return seq(*(octets(u) for u in op.uris), tag=SEARCH_RESULT_REFERENCE)
    if isinstance(op, GenericResponse):
        return tlv(op.tag, encode_result(op.result))
    if isinstance(op, WriteRequest):
        return tlv(op.tag, b"")
    raise TypeError(f"cannot encode {op!r}")


def encode_message(msg: LDAPMessage) -> bytes:
    return seq(encode_int(msg.message_id), encode_op(msg.op), encode_controls(msg.controls))


def wrap(message_id: int, op_bytes: bytes, controls: bytes = b"") -> bytes:
    """An LDAPMessage from an already encoded protocol op (the server's fast path)."""
    return seq(encode_int(message_id), op_bytes, controls)


def notice_of_disconnection(code: int, message: str) -> bytes:
    """The unsolicited Notice of Disconnection (messageID 0)."""
    op = ExtendedResponse(LDAPResult(code, "", message), OID_NOTICE_OF_DISCONNECTION)
    return wrap(0, encode_op(op))
