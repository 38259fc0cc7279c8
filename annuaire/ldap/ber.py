"""A strict, bounded BER codec for the subset of ASN.1 that LDAP uses.

Decoding rules (anything else raises `BerError`):

- single-byte tags only (LDAP never uses the high-tag-number form);
- definite lengths only, short form or long form of at most 4 length bytes
  (non-minimal long forms are accepted: Windows clients always send 0x84);
- a child never extends past its parent; every value is bounded by the PDU;
- no recursion: nested structures are walked with explicit positions, and the
  one recursive LDAP type (Filter) is decoded with an explicit, depth-limited
  stack in `messages.py`.

Encoding is the minimal definite form (DER-like) and may recurse: it only
ever encodes our own, bounded data.
"""

from __future__ import annotations

from annuaire.errors import BerError

# Universal tags used by LDAP.
BOOLEAN = 0x01
INTEGER = 0x02
OCTET_STRING = 0x04
ENUMERATED = 0x0A
SEQUENCE = 0x30
SET = 0x31

MAX_LENGTH_BYTES = 4


def frame_length(buf: bytes | bytearray | memoryview, max_size: int) -> int | None:
    """Size of the first complete LDAPMessage in `buf`, or None if more bytes are needed.

    Raises BerError when the framing is invalid or the message is larger than
    `max_size` — before the body arrives, so a huge announced length is
    refused without buffering it.
    """
    n = len(buf)
    if n < 2:
        return None
    if buf[0] != SEQUENCE:
        raise BerError(f"an LDAP message must start with a SEQUENCE (0x30), got 0x{buf[0]:02x}")
    first = buf[1]
    if first < 0x80:
        total = 2 + first
    else:
        count = first & 0x7F
        if count == 0:
            raise BerError("indefinite lengths are not allowed")
        if count > MAX_LENGTH_BYTES:
            raise BerError(f"length of {count} bytes is too long")
        if n < 2 + count:
            return None
        length = int.from_bytes(buf[2 : 2 + count], "big")
        total = 2 + count + length
    if total > max_size:
        raise BerError(f"message of {total} bytes exceeds the maximum of {max_size}")
    return total if n >= total else None


def read_header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV header at `pos`; return (tag, value_start, value_end)."""
    if pos + 2 > end:
        raise BerError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("high-tag-number form is not used by LDAP")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise BerError("indefinite lengths are not allowed")
        if count > MAX_LENGTH_BYTES:
            raise BerError(f"length of {count} bytes is too long")
        if pos + count > end:
            raise BerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    stop = pos + length
    if stop > end:
        raise BerError("element extends past its container")
    return tag, pos, stop


def expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read a TLV that must have `tag`; return (value_start, value_end)."""
    got, start, stop = read_header(data, pos, end)
    if got != tag:
        raise BerError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x}")
    return start, stop


def decode_int(data: bytes, start: int, stop: int, what: str = "integer") -> int:
    length = stop - start
    if length == 0:
        raise BerError(f"{what}: empty integer")
    if length > 8:
        raise BerError(f"{what}: integer of {length} bytes is too large")
    return int.from_bytes(data[start:stop], "big", signed=True)


def decode_bool(data: bytes, start: int, stop: int, what: str = "boolean") -> bool:
    if stop - start != 1:
        raise BerError(f"{what}: a boolean has exactly one byte")
    return data[start] != 0


def read_int(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    start, stop = expect(data, pos, end, tag, what)
    return decode_int(data, start, stop, what), stop


def read_octets(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[bytes, int]:
    start, stop = expect(data, pos, end, tag, what)
    return data[start:stop], stop


def read_bool(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[bool, int]:
    start, stop = expect(data, pos, end, tag, what)
    return decode_bool(data, start, stop, what), stop


# --- encoding ----------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    return bytes((tag,)) + encode_length(n) + value


def encode_int(value: int, tag: int = INTEGER) -> bytes:
    if 0 <= value < 0x80:
        return bytes((tag, 1, value))
    length = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(tag, value.to_bytes(length, "big", signed=True))


def encode_bool(value: bool, tag: int = BOOLEAN) -> bytes:
    return bytes((tag, 1, 0xFF if value else 0x00))


def octets(value: bytes | str, tag: int = OCTET_STRING) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tlv(tag, value)


def seq(*parts: bytes, tag: int = SEQUENCE) -> bytes:
    return tlv(tag, b"".join(parts))
