"""The clearpos POS 8583 dialect, declared once (spec/pos8583.md §3).

Each field is one row: number, format, length type, maximum length (digits for
n/z, bytes for an/ans/b), justification and meaning. The codec compiles this
table into per-field readers and writers; nothing else in clearpos restates a
field's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Fmt(Enum):
    """Data formats of the dialect."""

    N = "n"  # BCD digits
    Z = "z"  # BCD track data, '=' written as nibble D
    AN = "an"  # ASCII alphanumeric
    ANS = "ans"  # ASCII printable
    B = "b"  # binary


class Len(Enum):
    """Length types: fixed, 1-byte BCD prefix, 2-byte BCD prefix."""

    FIXED = 0
    LLVAR = 1
    LLLVAR = 2


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the dialect.

    ``length`` counts digits for n and z fields and bytes for an, ans and b
    fields; for variable fields it is the maximum. ``left`` marks a fixed
    numeric field that is left-justified (field 22). ``sensitive`` fields are
    never rendered in clear by :mod:`clearpos.wire.mask`.
    """

    number: int
    fmt: Fmt
    len_type: Len
    length: int
    meaning: str
    left: bool = False
    sensitive: bool = False
    #: text encoding of an/ans fields: ``ascii`` (printable only) or ``gbk`` (the
    #: Chinese text stock terminals and hosts put in 63; ASCII is a subset of it)
    charset: str = "ascii"

    @property
    def label(self) -> str:
        """The format as the spec writes it, e.g. ``n..19 LLVAR``."""
        dots = "" if self.len_type is Len.FIXED else ".."
        bits = self.length * 8 if self.fmt is Fmt.B and self.len_type is Len.FIXED else self.length
        suffix = "" if self.len_type is Len.FIXED else f" {self.len_type.name}"
        return f"{self.fmt.value}{dots}{bits}{suffix}"


_N, _Z, _AN, _ANS, _B = Fmt.N, Fmt.Z, Fmt.AN, Fmt.ANS, Fmt.B
_FIX, _LL, _LLL = Len.FIXED, Len.LLVAR, Len.LLLVAR

#: The dialect: field number -> spec. Fields 1 (secondary bitmap) and those not
#: listed here are not part of it.
FIELDS: dict[int, FieldSpec] = {
    f.number: f
    for f in (
        FieldSpec(2, _N, _LL, 19, "primary account number (keyed or chip)", sensitive=True),
        FieldSpec(3, _N, _FIX, 6, "processing code"),
        FieldSpec(4, _N, _FIX, 12, "amount in fen"),
        FieldSpec(11, _N, _FIX, 6, "system trace audit number (STAN)"),
        FieldSpec(12, _N, _FIX, 6, "host local time hhmmss"),
        FieldSpec(13, _N, _FIX, 4, "host local date MMDD"),
        FieldSpec(14, _N, _FIX, 4, "card expiry YYMM"),
        FieldSpec(15, _N, _FIX, 4, "settlement date MMDD"),
        FieldSpec(22, _N, _FIX, 3, "POS entry mode", left=True),
        FieldSpec(23, _N, _FIX, 3, "card sequence number"),
        FieldSpec(25, _N, _FIX, 2, "POS condition code"),
        FieldSpec(26, _N, _FIX, 2, "PIN capture code"),
        FieldSpec(32, _N, _LL, 11, "acquiring institution code"),
        FieldSpec(35, _Z, _LL, 37, "track 2", sensitive=True),
        FieldSpec(36, _Z, _LLL, 104, "track 3", sensitive=True),
        FieldSpec(37, _AN, _FIX, 12, "retrieval reference number (RRN)"),
        FieldSpec(38, _AN, _FIX, 6, "authorisation code"),
        FieldSpec(39, _AN, _FIX, 2, "response code / reversal reason"),
        FieldSpec(41, _ANS, _FIX, 8, "terminal id (TID)"),
        FieldSpec(42, _ANS, _FIX, 15, "merchant id (MID)"),
        FieldSpec(44, _AN, _LL, 25, "issuer and acquirer codes"),
        FieldSpec(48, _N, _LLL, 322, "settlement totals / batch upload records"),
        FieldSpec(49, _AN, _FIX, 3, "currency code"),
        FieldSpec(52, _B, _FIX, 8, "PIN block", sensitive=True),
        FieldSpec(53, _N, _FIX, 16, "security control information"),
        FieldSpec(54, _AN, _LLL, 20, "balance"),
        FieldSpec(55, _B, _LLL, 255, "chip data (TLV)", sensitive=True),
        FieldSpec(59, _ANS, _LLL, 999, "terminal information (ASCII TLV)", charset="gbk"),
        FieldSpec(60, _N, _LLL, 17, "transaction type, batch, network management code"),
        FieldSpec(61, _N, _LLL, 29, "original transaction"),
        FieldSpec(62, _B, _LLL, 512, "working keys / parameter records", sensitive=True),
        FieldSpec(
            63, _ANS, _LLL, 163, "operator / card organisation and reason key", charset="gbk"
        ),
        FieldSpec(64, _B, _FIX, 8, "MAC", sensitive=True),
    )
}

MAC_FIELD = 64
