"""BER codec and LDAP messages: property-based round trips and strictness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annuaire.ldap import ber
from annuaire.ldap import messages as m
from annuaire.ldap.filters import parse, to_string

attr = st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,15}", fullmatch=True)
oid = st.from_regex(r"[0-2](\.[0-9]{1,5}){1,6}", fullmatch=True)
value = st.binary(max_size=40)
text = st.text(max_size=30)


@st.composite
def substrings(draw):  # type: ignore[no-untyped-def]
    initial = draw(st.none() | value)
    anys = draw(st.lists(value, max_size=3))
    final = draw(st.none() | value)
    if initial is None and final is None and not anys:
        anys = [draw(value)]
    return m.Substrings(draw(attr), initial, anys, final)


@st.composite
def extensible(draw):  # type: ignore[no-untyped-def]
    rule = draw(st.none() | oid)
    a = draw(attr) if rule is None else draw(st.none() | attr)
    return m.Extensible(rule, a, draw(value), draw(st.booleans()))


leaves = st.one_of(
    st.builds(m.Equality, attr, value), st.builds(m.GreaterOrEqual, attr, value),
    st.builds(m.LessOrEqual, attr, value), st.builds(m.Approx, attr, value), st.builds(m.Present, attr),
    substrings(), extensible(),
)
filters = st.recursive(
    leaves,
    lambda children: st.one_of(st.builds(m.And, st.lists(children, max_size=4)),
                               st.builds(m.Or, st.lists(children, max_size=4)), st.builds(m.Not, children)),
    max_leaves=25,
)
results = st.builds(m.LDAPResult, st.integers(0, 123), text, text, st.none() | st.lists(text, max_size=2))
controls = st.lists(st.builds(m.Control, oid, st.booleans(), st.none() | st.binary(max_size=20)), max_size=3)
ops = st.one_of(
    st.builds(m.SearchRequest, text, st.integers(0, 2), st.integers(0, 3), st.integers(0, m.MAX_INT),
              st.integers(0, m.MAX_INT), st.booleans(), filters, st.lists(attr | st.just("*") | st.just("1.1"),
                                                                          max_size=6)),
    st.builds(m.BindRequest, st.integers(1, 3), text, st.binary(max_size=30)),
    st.builds(m.BindRequest, st.just(3), text, st.none(), attr, st.none() | st.binary(max_size=20)),
    st.builds(m.BindResponse, results),
    st.builds(m.UnbindRequest),
    st.builds(m.AbandonRequest, st.integers(0, m.MAX_INT)),
    st.builds(m.ExtendedRequest, oid, st.none() | st.binary(max_size=20)),
    st.builds(m.ExtendedResponse, results, st.none() | oid, st.none() | st.binary(max_size=20)),
    st.builds(m.SearchResultEntry, text, st.lists(st.tuples(attr, st.lists(value, max_size=3)), max_size=4)),
    st.builds(m.SearchResultDone, results),
    st.builds(m.SearchResultReference, st.lists(text, max_size=3)),
    st.builds(m.GenericResponse, st.sampled_from(sorted(m.WRITE_RESPONSE_TAGS.values())), results),
)
messages = st.builds(m.LDAPMessage, st.integers(0, m.MAX_INT), ops, controls)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_message_round_trip(msg: m.LDAPMessage) -> None:
    data = m.encode_message(msg)
    assert ber.frame_length(data, 10**7) == len(data)
    assert m.decode_message(data) == msg


@settings(max_examples=300, deadline=None)
@given(filters)
def test_filter_string_round_trip(f: m.Filter) -> None:
    # RFC 4515 text form: values that are valid UTF-8 survive; compare through the encoding.
    try:
        for v in _values(f):
            v.decode("utf-8")
    except UnicodeDecodeError:
        return
    normal = _normalise_empty(f)
    if _has_empty_substrings(normal):
        return  # "(cn=**)" has no string form
    assert m.encode_filter(parse(to_string(f))) == m.encode_filter(normal)


def _has_empty_substrings(f):  # type: ignore[no-untyped-def]
    stack = [f]
    while stack:
        n = stack.pop()
        if isinstance(n, (m.And, m.Or)):
            stack.extend(n.filters)
        elif isinstance(n, m.Not):
            stack.append(n.filter)
        elif isinstance(n, m.Substrings) and n.initial is None and n.final is None and not n.any:
            return True
    return False


def _values(f):  # type: ignore[no-untyped-def]
    stack = [f]
    while stack:
        n = stack.pop()
        if isinstance(n, (m.And, m.Or)):
            stack.extend(n.filters)
        elif isinstance(n, m.Not):
            stack.append(n.filter)
        elif isinstance(n, m.Substrings):
            yield from [x for x in (n.initial, n.final, *n.any) if x is not None]
        elif hasattr(n, "value"):
            yield n.value


def _normalise_empty(f):  # type: ignore[no-untyped-def]
    """The string form cannot tell an empty initial/any/final from an absent one."""
    if isinstance(f, (m.And, m.Or)):
        return type(f)([_normalise_empty(c) for c in f.filters])
    if isinstance(f, m.Not):
        return m.Not(_normalise_empty(f.filter))
    if isinstance(f, m.Substrings):
        anys = [a for a in f.any if a]
        initial = f.initial or None
        final = f.final or None
        if initial is None and final is None and not anys:
            return m.Substrings(f.attr, None, [], None)
        return m.Substrings(f.attr, initial, anys, final)
    return f


@settings(max_examples=200, deadline=None)
@given(messages)
def test_non_minimal_long_lengths_accepted(msg: m.LDAPMessage) -> None:
    """Windows clients send every length in 4-byte long form: re-encode that way, decode the same."""
    data = m.encode_message(msg)
    assert m.decode_message(_long_form(data)) == msg


def _long_form(data: bytes) -> bytes:
    """Re-encode every length of a DER-ish TLV tree with the 0x84 long form (iteratively)."""
    out = bytearray()
    # (start, end, is_constructed_parent)
    def walk(buf: bytes) -> bytes:
        res = bytearray()
        pos = 0
        while pos < len(buf):
            tag, start, stop = ber.read_header(buf, pos, len(buf))
            body = buf[start:stop]
            if tag & 0x20:
                body = walk(body)
            res += bytes((tag, 0x84)) + len(body).to_bytes(4, "big") + body
            pos = stop
        return bytes(res)

    out += walk(data)
    return bytes(out)


@pytest.mark.parametrize("data,problem", [
    (b"\x30\x80\x02\x01\x01\x42\x00\x00\x00", "indefinite"),
    (b"\x30\x85\x00\x00\x00\x00\x05", "too long"),
    (b"\x31\x03\x02\x01\x01", "SEQUENCE"),
    (b"\x30\x05\x02\x01\x01\x42\x01", "past its container"),
    (b"\x30\x06\x02\x01\x01\x42\x01\x00", "Unbind"),
    (b"\x30\x05\x02\x01\x01\x5f\x00", "high-tag"),
    (b"\x30\x05\x02\x00\x42\x00\x00", "empty integer"),
    (b"\x30\x0c\x02\x01\x01\x63\x07\x04\x00\x0a\x01\x07\x0a\x01\x00", "scope"),
])
def test_strict_decoding(data: bytes, problem: str) -> None:
    with pytest.raises(ber.BerError) as exc:
        size = ber.frame_length(data, 1 << 20)
        m.decode_message(data[:size] if size else data)
    assert problem.lower() in str(exc.value).lower()


def test_frame_length_refuses_oversized_before_body() -> None:
    header = b"\x30\x84\x01\x00\x00\x00"  # announces 16 MiB
    with pytest.raises(ber.BerError, match="exceeds"):
        ber.frame_length(header, 256 * 1024)
    assert ber.frame_length(b"\x30", 100) is None
    assert ber.frame_length(b"\x30\x82\x01", 1000) is None
    assert ber.frame_length(b"\x30\x03\x02\x01", 1000) is None


def test_deep_nesting_is_bounded_without_recursion() -> None:
    inner = m.encode_filter(m.Present("cn"))
    for _ in range(100_000):  # far beyond Python's recursion limit
        inner = ber.tlv(0xA2, inner)
    req = ber.seq(ber.octets(""), ber.encode_int(2, 0x0A), ber.encode_int(0, 0x0A), ber.encode_int(0),
                  ber.encode_int(0), ber.encode_bool(False), inner, ber.seq(), tag=0x63)
    pdu = ber.seq(ber.encode_int(1), req)
    with pytest.raises(ber.BerError, match="nested deeper"):
        m.decode_message(pdu)
    wide = ber.seq(*([m.encode_filter(m.Present("cn"))] * 5000), tag=0xA1)
    req = ber.seq(ber.octets(""), ber.encode_int(2, 0x0A), ber.encode_int(0, 0x0A), ber.encode_int(0),
                  ber.encode_int(0), ber.encode_bool(False), wide, ber.seq(), tag=0x63)
    with pytest.raises(ber.BerError, match="more than"):
        m.decode_message(ber.seq(ber.encode_int(1), req))


def test_paged_control_value() -> None:
    c = m.encode_paged_control(50, b"abc")
    assert m.decode_paged_control(c.value) == (50, b"abc")
    with pytest.raises(ber.BerError):
        m.decode_paged_control(b"\x30\x03\x02\x01")
    with pytest.raises(ber.BerError):
        m.decode_paged_control(None)


def test_notice_of_disconnection() -> None:
    msg = m.decode_message(m.notice_of_disconnection(m.PROTOCOL_ERROR, "bad"))
    assert msg.message_id == 0
    assert isinstance(msg.op, m.ExtendedResponse)
    assert msg.op.name == m.OID_NOTICE_OF_DISCONNECTION and msg.op.result.code == m.PROTOCOL_ERROR
