"""Parameter records of 0800 360 downloads (field 62): the standard tags public
terminal code reads, and clearpos's [ext] notice tags."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DecodeError, EncodeError


class Param:
    """Parameter-download tags of field 62 (spec §4).

    Standard tags (``11``–``22``) are tag N2 + a value of the tag's fixed length,
    as stock terminals read them; **[ext]** tags ``91``–``95`` are tag N2 +
    length N3 + UTF-8 value and go only to terminals of ``dialect = "clearpos"``.
    """

    APP_TYPE = "11"
    TIMEOUT = "12"
    REDIAL = "13"
    PHONE_1 = "14"
    PHONE_2 = "15"
    PHONE_3 = "16"
    MANAGEMENT_PHONE = "17"
    TIPS = "18"
    TIP_PERCENT = "19"
    MANUAL_ENTRY = "20"
    AUTO_SIGN_OFF = "21"
    MERCHANT_NAME = "22"
    NOTICE_ZH = "91"
    NOTICE_EN = "92"
    NOTICE_START = "93"
    NOTICE_END = "94"
    HOST_NAME = "95"


#: standard tag -> (format, fixed length in bytes): ``n`` digits, ``s`` digits
#: right-padded with spaces (phone numbers), ``g`` GBK text space-padded (the
#: merchant name, 40 bytes as the Landi and KoolPos terminals read it)
STANDARD_PARAMS: dict[str, tuple[str, int]] = {
    Param.APP_TYPE: ("n", 2),
    Param.TIMEOUT: ("n", 2),
    Param.REDIAL: ("n", 1),
    Param.PHONE_1: ("s", 14),
    Param.PHONE_2: ("s", 14),
    Param.PHONE_3: ("s", 14),
    Param.MANAGEMENT_PHONE: ("s", 14),
    Param.TIPS: ("n", 1),
    Param.TIP_PERCENT: ("n", 2),
    Param.MANUAL_ENTRY: ("n", 1),
    Param.AUTO_SIGN_OFF: ("n", 1),
    Param.MERCHANT_NAME: ("g", 40),
}
EXT_PARAMS = frozenset(
    {Param.NOTICE_ZH, Param.NOTICE_EN, Param.NOTICE_START, Param.NOTICE_END, Param.HOST_NAME}
)


@dataclass(frozen=True, slots=True)
class ParamRecord:
    """A parameter record of field 62: a standard tag with its fixed-length value,
    or an **[ext]** tag with a 3-digit length and a UTF-8 value."""

    tag: str
    value: str

    def __post_init__(self) -> None:
        if self.tag not in STANDARD_PARAMS and self.tag not in EXT_PARAMS:
            raise EncodeError(f"parameter tag {self.tag} is not part of the dialect", field=62)

    @property
    def ext(self) -> bool:
        return self.tag in EXT_PARAMS

    def encode(self) -> bytes:
        tag = self.tag.encode("ascii")
        if self.ext:
            raw = self.value.encode("utf-8")
            if len(raw) > 999:
                raise EncodeError("parameter value longer than 999 bytes", field=62)
            return tag + f"{len(raw):03d}".encode("ascii") + raw
        fmt, n = STANDARD_PARAMS[self.tag]
        if fmt in ("n", "s"):
            if not (self.value.isdecimal() and self.value.isascii()) or len(self.value) > n:
                raise EncodeError(f"parameter {self.tag} must be at most {n} digits", field=62)
            value = self.value.zfill(n) if fmt == "n" else self.value.ljust(n)
            return tag + value.encode("ascii")
        try:
            raw = self.value.encode("gbk")
        except UnicodeEncodeError:
            raise EncodeError(
                f"parameter {self.tag} must be text GBK can write", field=62
            ) from None
        while len(raw) > n:  # cut on a character boundary, never inside a GBK pair
            raw = raw[:-1]
            try:
                raw.decode("gbk")
            except UnicodeDecodeError:
                continue
        return tag + raw.ljust(n, b" ")


def encode_params(records: tuple[ParamRecord, ...]) -> bytes:
    """Field 62 of a 0810 parameter answer: standard records first, then [ext] ones."""
    ordered = sorted(records, key=lambda r: r.ext)
    return b"".join(r.encode() for r in ordered)


def decode_params(raw: bytes) -> tuple[ParamRecord, ...]:
    """The records of a parameter answer, standard and [ext] alike.

    >>> decode_params(b"1260" + b"133" + b"95004host")
    (ParamRecord(tag='12', value='60'), ParamRecord(tag='13', value='3'), ParamRecord(tag='95', value='host'))
    """
    out = []
    pos = 0
    while pos < len(raw):
        tag = raw[pos : pos + 2].decode("ascii", "replace")
        std = STANDARD_PARAMS.get(tag)
        if std is not None:
            fmt, n = std
            value = raw[pos + 2 : pos + 2 + n]
            if len(value) != n:
                raise DecodeError(
                    f"parameter {tag} needs {n} bytes, {len(value)} left", field=62, offset=pos
                )
            try:
                text = value.decode("gbk" if fmt == "g" else "ascii")
            except UnicodeDecodeError:
                raise DecodeError(f"parameter {tag} is not text", field=62, offset=pos) from None
            if fmt != "n":
                text = text.rstrip(" \x00")
            if fmt != "g" and not text.isdecimal():
                raise DecodeError(f"parameter {tag} must be digits", field=62, offset=pos + 2)
            out.append(ParamRecord(tag, text))
            pos += 2 + n
            continue
        head = raw[pos + 2 : pos + 5]
        if tag not in EXT_PARAMS or len(head) < 3 or not head.isdigit():
            raise DecodeError(
                f"unknown parameter tag {tag!r}: neither a standard tag (11-22) nor [ext] 91-95",
                field=62,
                offset=pos,
            )
        n = int(head)
        value = raw[pos + 5 : pos + 5 + n]
        if len(value) != n:
            raise DecodeError("parameter record shorter than its length", field=62, offset=pos)
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("parameter value is not UTF-8", field=62, offset=pos + 5) from None
        out.append(ParamRecord(tag, text))
        pos += 5 + n
    return tuple(out)
