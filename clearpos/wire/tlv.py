"""BER-TLV as EMV uses it: the chip data of field 55 (and the CA-key and
chip-parameter records of field 62).

Pure functions over bytes. Tags are written as uppercase hex strings
(``"9F26"``), the way EMV books and terminal logs name them. A tag whose first
byte has bit 6 set (``70``, ``71``, ``72``, ``77``, ``A5`` ...) is constructed:
its value is itself TLV and is decoded into ``children``; the raw value is
kept too, so nothing the terminal sent is lost and a script template can be
handed to the card byte for byte.

Self-written rather than taken from a library: it is ~150 lines, needs no
dependency, keeps repeated templates (a 0210 may carry several ``71``/``72``
scripts, which a dict-shaped decoder such as ``pyemv.tlv`` merges) and raises
the wire layer's own :class:`DecodeError` with the field, tag and byte offset.

Card data never leaves this module in clear: :func:`render` shows ``5A`` as a
masked PAN and hides ``57``, ``9F1F``, ``9F20``, ``56``, ``9F6B`` and the
cardholder name ``5F20``; no error message ever carries a value.

>>> items = decode(bytes.fromhex("9F36020157910AA27DBF42742B1E1B3030"))
>>> [(i.tag, i.value.hex().upper()) for i in items]
[('9F36', '0157'), ('91', 'A27DBF42742B1E1B3030')]
>>> encode(items).hex().upper()
'9F36020157910AA27DBF42742B1E1B3030'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from .errors import DecodeError, EncodeError
from .mask import mask_pan

__all__ = [
    "CARD_DATA_TAGS",
    "Tlv",
    "decode",
    "encode",
    "encode_one",
    "flatten",
    "is_constructed",
    "render",
    "scripts",
]

#: Tags whose value is card data: PAN, track 2 equivalent, track 1 discretionary
#: data, track 2 discretionary data, track 1 equivalent, the cardholder name and
#: contactless track 2 (MSD). Never logged, never shown, never exported.
CARD_DATA_TAGS: Final = frozenset({"5A", "57", "9F1F", "9F20", "56", "5F20", "9F6B"})

#: Templates whose content belongs to the card, not to the transaction: issuer
#: scripts (71 before, 72 after the second GENERATE AC). :func:`flatten` leaves
#: them whole.
SCRIPT_TEMPLATES: Final = frozenset({"71", "72"})


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object. ``children`` is filled for constructed tags only."""

    tag: str
    value: bytes = field(repr=False)
    children: tuple[Tlv, ...] = ()

    def __repr__(self) -> str:
        return f"Tlv({self.tag!r}, {len(self.value)} bytes)"


def is_constructed(tag: str) -> bool:
    """Bit 6 of the first tag byte: the value is itself TLV.

    >>> is_constructed("72"), is_constructed("9F26"), is_constructed("BF0C")
    (True, False, True)
    """
    return bool(int(tag[:2], 16) & 0x20)


def decode(data: bytes, *, field: int = 55, base: int = 0) -> tuple[Tlv, ...]:
    """Every data object in ``data``, in order; constructed ones with children.

    ``field`` and ``base`` place errors: the offset in a :class:`DecodeError` is
    ``base`` plus the position in ``data`` (pass the offset of field 55's value
    in the message to point at the exact byte). ``00`` bytes between objects
    are padding, as EMV Book 3 Annex B allows.

    >>> decode(bytes.fromhex("9F2608AABB"), base=100)
    Traceback (most recent call last):
    ...
    clearpos.wire.errors.DecodeError: field 55 byte 102: tag 9F26 says 8 value bytes, only 2 follow
    """
    return tuple(_decode(data, 0, len(data), field, base))


def _decode(data: bytes, start: int, end: int, fld: int, base: int) -> list[Tlv]:
    out: list[Tlv] = []
    pos = start
    while pos < end:
        if data[pos] == 0x00:
            pos += 1
            continue
        tag, pos = _read_tag(data, pos, end, fld, base)
        length_at = pos
        length, pos = _read_length(data, pos, end, tag, fld, base)
        if pos + length > end:
            raise DecodeError(
                f"tag {tag} says {length} value bytes, only {end - pos} follow",
                field=fld,
                offset=base + length_at,
            )
        value = bytes(data[pos : pos + length])
        children: tuple[Tlv, ...] = ()
        if is_constructed(tag):
            children = tuple(_decode(data, pos, pos + length, fld, base))
        out.append(Tlv(tag, value, children))
        pos += length
    return out


def _read_tag(data: bytes, pos: int, end: int, fld: int, base: int) -> tuple[str, int]:
    first = pos
    pos += 1
    if data[first] & 0x1F == 0x1F:  # more tag bytes follow
        while True:
            if pos >= end:
                raise DecodeError(
                    f"tag starting {data[first]:02X} is cut off", field=fld, offset=base + first
                )
            more = data[pos] & 0x80
            pos += 1
            if not more:
                break
            if pos - first > 4:
                raise DecodeError("a tag longer than 4 bytes", field=fld, offset=base + first)
    return data[first:pos].hex().upper(), pos


def _read_length(data: bytes, pos: int, end: int, tag: str, fld: int, base: int) -> tuple[int, int]:
    if pos >= end:
        raise DecodeError(f"tag {tag} has no length byte", field=fld, offset=base + pos)
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3:
        raise DecodeError(
            f"tag {tag}: length byte {first:02X} is not a definite length of 1-3 bytes",
            field=fld,
            offset=base + pos - 1,
        )
    if pos + count > end:
        raise DecodeError(f"tag {tag}: length is cut off", field=fld, offset=base + pos - 1)
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def encode_one(tag: str, value: bytes) -> bytes:
    """One data object: tag, shortest definite length, value.

    >>> encode_one("9F02", bytes(6)).hex().upper()
    '9F0206000000000000'
    >>> encode_one("DF02", bytes(200))[:4].hex().upper()
    'DF0281C8'
    """
    try:
        tag_bytes = bytes.fromhex(tag)
    except ValueError:
        raise EncodeError(f"tag {tag!r} is not hex") from None
    if not tag_bytes or len(tag_bytes) > 4:
        raise EncodeError(f"tag {tag!r} must be 1 to 4 bytes")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = b"\x81" + bytes([n])
    elif n <= 0xFFFF:
        length = b"\x82" + n.to_bytes(2, "big")
    else:
        raise EncodeError(f"tag {tag}: {n} bytes is too long for a chip data object")
    return tag_bytes + length + value


def encode(items: Iterable[Tlv | tuple[str, bytes]] | Mapping[str, bytes]) -> bytes:
    """Objects (``Tlv`` or ``(tag, value)`` pairs, or a mapping) back to bytes, in order.

    A ``Tlv`` with children is re-encoded from its children, so a template built
    by hand needs only ``children``.
    """
    pairs = items.items() if isinstance(items, Mapping) else items
    out = bytearray()
    for item in pairs:
        if isinstance(item, Tlv):
            value = encode(item.children) if item.children else item.value
            out += encode_one(item.tag, value)
        else:
            tag, value = item
            out += encode_one(tag.upper(), value)
    return bytes(out)


def flatten(items: Iterable[Tlv]) -> dict[str, bytes]:
    """Primitive tags to values, looking inside templates such as ``70``/``77``
    but not inside issuer scripts (``71``/``72``, see :func:`scripts`). The
    first occurrence of a tag wins."""
    out: dict[str, bytes] = {}
    for item in items:
        if item.tag in SCRIPT_TEMPLATES:
            continue
        if is_constructed(item.tag):
            for tag, value in flatten(item.children).items():
                out.setdefault(tag, value)
        else:
            out.setdefault(item.tag, item.value)
    return out


def scripts(items: Iterable[Tlv]) -> tuple[Tlv, ...]:
    """The issuer script templates (``71``, ``72``) at the top level, in order."""
    return tuple(item for item in items if item.tag in SCRIPT_TEMPLATES)


def _render_value(tag: str, value: bytes) -> str:
    if tag == "5A":
        digits = value.hex().upper().rstrip("F")
        return mask_pan(digits) if digits.isdigit() else f"[PAN, {len(value)} bytes hidden]"
    if tag in CARD_DATA_TAGS:
        return f"[card data, {len(value)} bytes hidden]"
    return value.hex().upper()


def render(data: bytes | Iterable[Tlv], indent: str = "") -> str:
    """One line per data object, card data masked, templates indented.

    >>> print(render(bytes.fromhex("5A0862242429000001139F360201577203860100")))
    5A   622424******0113
    9F36 0157
    72
      86   00

    Undecodable bytes render as a note with the error's position, never as hex.
    """
    if isinstance(data, bytes | bytearray):
        try:
            items = decode(bytes(data))
        except DecodeError as exc:
            return f"{indent}[chip data, {len(data)} bytes, not TLV: {exc.describe()}]"
    else:
        items = tuple(data)
    lines: list[str] = []
    for item in items:
        if is_constructed(item.tag):
            lines.append(f"{indent}{item.tag}")
            lines.append(render(item.children, indent + "  "))
        else:
            lines.append(f"{indent}{item.tag:<4} {_render_value(item.tag, item.value)}")
    return "\n".join(line for line in lines if line)
