"""Typed messages of the dialect and their conversion to and from field dicts.

Every message of spec/pos8583.md §4 is a frozen, slotted dataclass that
validates when built. Amounts are integer fen. :func:`to_fields` and
:func:`from_fields` are the only place where a message meets its ISO fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypeAlias, TypeVar

from .codec import Fields, Value, decode, encode, tracks_encrypted
from .errors import DecodeError, EncodeError, WireError
from .mask import mask_pan
from .terminfo import TerminalInfo
from .tracks import decrypt_track, encrypt_track

# --------------------------------------------------------------------------- vocabulary


class Kind(Enum):
    """Financial transaction kinds with their wire identity (spec §4 table).

    value: (name, request MTI, processing code, condition code, 60.1, reversible,
    money direction for the cardholder: +1 debit, -1 credit, 0 none).
    """

    BALANCE = ("balance", "0200", "310000", "00", "01", False, 0)
    PREAUTH = ("preauth", "0100", "030000", "06", "10", True, 0)
    PREAUTH_VOID = ("preauth_void", "0100", "200000", "06", "11", True, 0)
    COMPLETION = ("completion", "0200", "000000", "06", "20", True, 1)
    #: a completion the terminal sends as an advice (0220, 60.1 = 24); handled like 20
    COMPLETION_ADVICE = ("completion_advice", "0220", "000000", "06", "24", False, 1)
    COMPLETION_VOID = ("completion_void", "0200", "200000", "06", "21", True, -1)
    PURCHASE = ("purchase", "0200", "000000", "00", "22", True, 1)
    VOID = ("void", "0200", "200000", "00", "23", True, -1)
    REFUND = ("refund", "0220", "200000", "00", "25", False, -1)
    OFFLINE = ("offline", "0220", "000000", "00", "30", False, 1)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def mti(self) -> str:
        return self.value[1]

    @property
    def response_mti(self) -> str:
        return _response_mti(self.value[1])

    @property
    def processing_code(self) -> str:
        return self.value[2]

    @property
    def condition(self) -> str:
        return self.value[3]

    @property
    def type_code(self) -> str:
        return self.value[4]

    @property
    def reversible(self) -> bool:
        return self.value[5]

    @property
    def direction(self) -> int:
        return self.value[6]

    @property
    def has_amount(self) -> bool:
        return self is not Kind.BALANCE

    @classmethod
    def by_label(cls, label: str) -> Kind:
        for k in cls:
            if k.label == label:
                return k
        raise ValueError(f"unknown transaction kind {label!r}")


_KIND_BY_WIRE: dict[tuple[str, str, str, str], Kind] = {
    (k.mti, k.processing_code, k.condition, k.type_code): k for k in Kind
}


def _response_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


def response_mti(mti: str) -> str:
    """The MTI that answers a request MTI: ``0200`` -> ``0210`` (the one rule).

    >>> response_mti("0800"), response_mti("0620")
    ('0810', '0630')
    """
    return _response_mti(mti)


class NetCode:
    """Field 60.3 network management information codes used by the dialect."""

    NONE = "000"
    SIGN_ON = "003"
    SIGN_ON_SINGLE = "001"
    SIGN_OFF = "002"
    SETTLEMENT = "201"
    BATCH_UPLOAD = "201"
    BATCH_UPLOAD_END = "202"
    #: batch upload end after a balanced settlement's TC upload (PAX template)
    BATCH_UPLOAD_END_BALANCED = "207"
    ECHO = "301"
    PARAMETERS = "360"
    PARAMETERS_MORE = "361"
    STATUS_UPLOAD = "362"
    SIGN_ON_TDK = "004"
    CHIP_DETAIL = "203"
    CHIP_OFFLINE_TC = "205"
    SCRIPT_RESULT = "951"
    CAPK_QUERY = "372"
    CAPK_DOWNLOAD = "370"
    CAPK_END = "371"
    AID_QUERY = "382"
    AID_DOWNLOAD = "380"
    AID_END = "381"

    #: 60.3 of a sign-on -> the working-key layout of the answer's field 62 (spec §4, §5)
    SIGN_ON_SCHEMES = frozenset({SIGN_ON_SINGLE, SIGN_ON, SIGN_ON_TDK})


#: 60.3 of the 0800 downloads (a :class:`ParameterDownload`)
DOWNLOADS = frozenset(
    {
        NetCode.PARAMETERS,
        NetCode.PARAMETERS_MORE,
        NetCode.CAPK_DOWNLOAD,
        NetCode.CAPK_END,
        NetCode.AID_DOWNLOAD,
        NetCode.AID_END,
    }
)

ORG_NONE = "   "
ORGANISATIONS = frozenset({"CUP", "VIS", "MCC", "JCB", "AMX", ORG_NONE})


def _need_digits(value: str, n: int | tuple[int, int], what: str, fieldno: int) -> None:
    lo, hi = (n, n) if isinstance(n, int) else n
    if not (lo <= len(value) <= hi and value.isdecimal() and value.isascii()):
        size = f"{lo}" if lo == hi else f"{lo}-{hi}"
        raise EncodeError(f"{what} must be {size} digits", field=fieldno)


# --------------------------------------------------------------------------- composite fields


@dataclass(frozen=True, slots=True)
class F60:
    """Field 60: 60.1 type N2, 60.2 batch N6, 60.3 network code N3, then the optional
    60.4–60.7 digits stock terminals send (terminal capability, chip condition,
    …), kept as they came in ``extra``.

    >>> F60.decode("22000024000600")
    F60(type_code='22', batch='000024', netcode='000', extra='600')
    """

    type_code: str
    batch: str
    netcode: str = NetCode.NONE
    extra: str = ""

    def __post_init__(self) -> None:
        _need_digits(self.type_code, 2, "60.1 transaction type", 60)
        _need_digits(self.batch, 6, "60.2 batch number", 60)
        _need_digits(self.netcode, 3, "60.3 network management code", 60)
        if self.extra:
            _need_digits(self.extra, (1, 6), "60.4-60.7", 60)

    def encode(self) -> str:
        return self.type_code + self.batch + self.netcode + self.extra

    @classmethod
    def decode(cls, value: str) -> F60:
        if len(value) < 11:
            raise DecodeError(
                f"expected at least 11 digits (60.1 N2 + 60.2 N6 + 60.3 N3), got {len(value)}",
                field=60,
            )
        return cls(value[0:2], value[2:8], value[8:11], value[11:])


@dataclass(frozen=True, slots=True)
class OriginalRef:
    """Field 61: original batch N6 + original STAN N6 (always), original date MMDD N4
    (when the original is of an earlier day), then whatever follows (auth method,
    institution), kept in ``tail``. A void carries 12 digits, a refund 16 or more.

    >>> OriginalRef.decode("000001000017")
    OriginalRef(batch='000001', stan='000017', date='', tail='')
    >>> OriginalRef.decode("0000010000171123").date
    '1123'
    """

    batch: str
    stan: str
    date: str = ""
    tail: str = ""

    def __post_init__(self) -> None:
        _need_digits(self.batch, 6, "61 original batch", 61)
        _need_digits(self.stan, 6, "61 original STAN", 61)
        if self.date:
            _need_digits(self.date, 4, "61 original date", 61)
        elif self.tail:
            raise EncodeError("61: nothing may follow the STAN without the date", field=61)

    def encode(self) -> str:
        return self.batch + self.stan + self.date + self.tail

    @classmethod
    def decode(cls, value: str) -> OriginalRef:
        if len(value) < 12 or 12 < len(value) < 16:
            raise DecodeError(
                "expected 12 digits (batch 6 + STAN 6) or at least 16 (+ date MMDD 4), "
                f"got {len(value)}",
                field=61,
            )
        return cls(value[0:6], value[6:12], value[12:16], value[16:])


@dataclass(frozen=True, slots=True)
class Card:
    """Card data of a request. ``repr`` never shows the PAN, tracks or PIN block.

    For a swipe, ``track2`` is sent (field 35) and the PAN is read from it; for
    a keyed or chip entry the PAN goes in field 2.
    """

    pan: str
    expiry: str | None = None
    track2: str | None = None
    track3: str | None = None
    entry_mode: str = "022"
    pin_block: bytes | None = None
    sequence: str | None = None
    chip: bytes | None = None
    send_pan: bool = False
    #: field 53: 53.1 PIN block format (2 with PAN, 1 without), 53.2 algorithm
    #: (6 double-length 3DES, 0 single DES), 53.3 tracks encrypted with the TDK
    pin_format: str = "2"
    pin_algorithm: str = "6"
    tracks_encrypted: bool = False

    def __post_init__(self) -> None:
        if not (13 <= len(self.pan) <= 19 and self.pan.isdecimal() and self.pan.isascii()):
            raise EncodeError("PAN must be 13-19 digits", field=2)
        if self.expiry is not None:
            _need_digits(self.expiry, 4, "expiry YYMM", 14)
        _need_digits(self.entry_mode, 3, "entry mode", 22)
        if self.track2 is not None and not self.track2.startswith(self.pan + "="):
            raise EncodeError("track 2 must begin with the PAN and '='", field=35)
        if self.pin_block is not None and len(self.pin_block) != 8:
            raise EncodeError("PIN block must be 8 bytes", field=52)
        if self.pin_format not in ("1", "2") or self.pin_algorithm not in ("0", "6"):
            raise EncodeError("53.1 PIN format must be 1 or 2 and 53.2 algorithm 0 or 6", field=53)

    @property
    def security(self) -> str | None:
        """Field 53 for this card data, or None when there is neither PIN nor TDK."""
        if self.pin_block is None and not self.tracks_encrypted:
            return None
        fmt = self.pin_format if self.pin_block is not None else "0"
        return f"{fmt}{self.pin_algorithm}{int(self.tracks_encrypted)}" + "0" * 13

    @classmethod
    def swiped(
        cls, pan: str, expiry: str, service_code: str = "201", *, pin_block: bytes | None = None
    ) -> Card:
        """A magnetic-stripe read: track 2 = PAN '=' YYMM service code + discretionary zeros."""
        track2 = f"{pan}={expiry}{service_code}"
        track2 += "0" * max(0, min(37, len(track2) + 10) - len(track2))
        return cls(pan, expiry, track2[:37], None, "021" if pin_block else "022", pin_block)

    @classmethod
    def keyed(cls, pan: str, expiry: str, *, pin_block: bytes | None = None) -> Card:
        return cls(pan, expiry, None, None, "011" if pin_block else "012", pin_block, send_pan=True)

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)

    @property
    def has_pin(self) -> bool:
        return self.pin_block is not None

    def __repr__(self) -> str:
        return (
            f"Card(pan={self.masked_pan!r}, entry_mode={self.entry_mode!r}, "
            f"pin={'yes' if self.pin_block else 'no'})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Balance:
    """Field 54: account type n2, amount type n2 (02 available), currency, sign, amount."""

    amount_fen: int
    account_type: str = "00"
    amount_type: str = "02"
    currency: str = "156"

    def encode(self) -> str:
        sign = "C" if self.amount_fen >= 0 else "D"
        return (
            f"{self.account_type}{self.amount_type}{self.currency}{sign}{abs(self.amount_fen):012d}"
        )

    @classmethod
    def decode(cls, value: str) -> Balance:
        if len(value) != 20 or value[7] not in "CD" or not value[8:].isdecimal():
            raise DecodeError("expected n2 + n2 + an3 + C/D + n12 (20 characters)", field=54)
        amount = int(value[8:])
        return cls(amount if value[7] == "C" else -amount, value[0:2], value[2:4], value[4:7])


@dataclass(frozen=True, slots=True)
class Totals:
    """Settlement totals for one card class: debit and credit amounts and counts."""

    debit_fen: int = 0
    debit_count: int = 0
    credit_fen: int = 0
    credit_count: int = 0
    check: int = 0

    def encode(self) -> str:
        if not (0 <= self.debit_fen < 10**12 and 0 <= self.credit_fen < 10**12):
            raise EncodeError("settlement amounts must fit 12 digits", field=48)
        if not (0 <= self.debit_count < 1000 and 0 <= self.credit_count < 1000):
            raise EncodeError("settlement counts must fit 3 digits", field=48)
        return (
            f"{self.debit_fen:012d}{self.debit_count:03d}"
            f"{self.credit_fen:012d}{self.credit_count:03d}{self.check:d}"
        )

    @classmethod
    def decode(cls, value: str) -> Totals:
        return cls(
            int(value[0:12]),
            int(value[12:15]),
            int(value[15:27]),
            int(value[27:30]),
            int(value[30]),
        )

    def same_sums(self, other: Totals) -> bool:
        return (self.debit_fen, self.debit_count, self.credit_fen, self.credit_count) == (
            other.debit_fen,
            other.debit_count,
            other.credit_fen,
            other.credit_count,
        )

    def with_check(self, check: int) -> Totals:
        return Totals(self.debit_fen, self.debit_count, self.credit_fen, self.credit_count, check)


class CheckCode:
    """Settlement check codes written by the host in 48 (digit 31 and 62)."""

    NONE = 0
    BALANCED = 1
    UNBALANCED = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class Settlement48:
    domestic: Totals
    foreign: Totals = Totals()

    def encode(self) -> str:
        return self.domestic.encode() + self.foreign.encode()

    @classmethod
    def decode(cls, value: str) -> Settlement48:
        if len(value) != 62:
            raise DecodeError(f"settlement totals must be 62 digits, got {len(value)}", field=48)
        return cls(Totals.decode(value[:31]), Totals.decode(value[31:]))


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One record of a batch upload (0320): card class, STAN, PAN, amount."""

    stan: str
    pan: str
    amount_fen: int
    card_class: str = "00"

    def encode(self) -> str:
        return f"{self.card_class}{self.stan}{self.pan:0>20}{self.amount_fen:012d}"

    @classmethod
    def decode(cls, value: str) -> BatchRecord:
        return cls(value[2:8], value[8:28].lstrip("0") or "0", int(value[28:40]), value[0:2])

    def __repr__(self) -> str:
        pan = mask_pan(self.pan)
        return f"BatchRecord(stan={self.stan!r}, pan={pan!r}, amount_fen={self.amount_fen})"


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


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    tid: str
    mid: str
    stan: str
    #: field 59, terminal information (ASCII TLV, :class:`~clearpos.wire.terminfo.TerminalInfo`)
    info: str | None = None

    @property
    def terminal_info(self) -> TerminalInfo | None:
        return TerminalInfo.decode(self.info) if self.info else None

    def __post_init__(self) -> None:
        if len(self.tid) != 8:
            raise EncodeError("TID must be 8 characters", field=41)
        if len(self.mid) != 15:
            raise EncodeError("MID must be 15 characters", field=42)
        _need_digits(self.stan, 6, "STAN", 11)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Response(_Base):
    code: str | None = "00"
    organisation: str = ORG_NONE
    reason: str = "approved"
    host_time: str | None = None
    host_date: str | None = None
    acquirer: str | None = None
    rrn: str | None = None

    @property
    def approved(self) -> bool:
        return self.code == "00"


@dataclass(frozen=True, slots=True, kw_only=True)
class FinancialRequest(_Base):
    """Balance, purchase, void, refund, pre-auth family and offline upload."""

    kind: Kind
    batch: str
    amount_fen: int | None = None
    card: Card | None = None
    rrn: str | None = None
    auth_code: str | None = None
    original: OriginalRef | None = None
    operator: str | None = None
    currency: str = "156"
    netcode: str = NetCode.NONE
    #: 60.4-60.7 as the terminal sent them (kept for the journal)
    extra60: str = ""

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        _need_digits(self.batch, 6, "batch", 60)
        if self.kind.has_amount:
            if self.amount_fen is None or not 0 <= self.amount_fen < 10**12:
                raise EncodeError("amount in fen is required (0..999999999999)", field=4)
        elif self.amount_fen is not None and not 0 <= self.amount_fen < 10**12:
            raise EncodeError("amount out of range", field=4)

    @property
    def key(self) -> tuple[str, str, str]:
        """(TID, batch, STAN): what makes a request unique at the host."""
        return (self.tid, self.batch, self.stan)


@dataclass(frozen=True, slots=True, kw_only=True)
class FinancialResponse(_Response):
    kind: Kind
    batch: str
    amount_fen: int | None = None
    auth_code: str | None = None
    settle_date: str | None = None
    expiry: str | None = None
    entry_mode: str | None = None
    balance: Balance | None = None
    currency: str = "156"
    netcode: str = NetCode.NONE
    #: field 55 of the answer to a chip request: 91 (issuer authentication) and scripts
    chip: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal(_Base):
    """0400: undo ``request`` (its STAN and fields), with the reason in 39."""

    request: FinancialRequest
    reason_code: str  # 98 / 96 / A0 / 06

    REASONS: ClassVar[frozenset[str]] = frozenset({"98", "96", "A0", "06"})

    @classmethod
    def of(cls, request: FinancialRequest, reason_code: str) -> Reversal:
        if reason_code not in cls.REASONS:
            raise EncodeError(f"reversal reason must be one of {sorted(cls.REASONS)}", field=39)
        return cls(
            tid=request.tid,
            mid=request.mid,
            stan=request.stan,
            request=request,
            reason_code=reason_code,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalResponse(_Response):
    kind: Kind
    batch: str
    amount_fen: int | None = None
    netcode: str = NetCode.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class SignOn(_Base):
    """0800 sign-on; 60.3 names the key layout asked for (001, 003 or 004)."""

    batch: str
    operator: str = "01 "
    netcode: str = NetCode.SIGN_ON
    #: field 62 of the request: the terminal's serial number, as some terminals send it
    serial: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignOnResponse(_Response):
    batch: str
    keys: bytes | None = field(default=None, repr=False)
    netcode: str = NetCode.SIGN_ON


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkRequest(_Base):
    """0820: sign-off (60.3 002), echo test (301), status upload (362)."""

    batch: str
    netcode: str
    operator: str | None = None
    #: field 62: status upload (362) records, CA-key / AID status queries (372/382)
    data: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkResponse(_Response):
    """0830 and 0330: acknowledgements of network and batch-upload messages."""

    batch: str
    netcode: str
    mti: str = "0830"
    #: field 62: the CA-key / chip-parameter list of a 372 / 382 answer
    data: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterDownload(_Base):
    """0800 downloads: parameters (360, end 361), one CA public key (370, end 371),
    one AID's chip parameters (380, end 381); ``data`` is 62 (the key or AID asked for)."""

    batch: str
    netcode: str = NetCode.PARAMETERS
    data: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterDownloadResponse(_Response):
    batch: str
    records: tuple[ParamRecord, ...] = ()
    netcode: str = NetCode.PARAMETERS
    #: field 62 of a 370 / 380 answer: a status character and the key's or AID's TLV
    raw: bytes | None = None

    def param(self, tag: str) -> str | None:
        return next((r.value for r in self.records if r.tag == tag), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement(_Base):
    batch: str
    totals: Settlement48
    operator: str = "01 "
    currency: str = "156"


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementResponse(_Response):
    """0510: totals with the host's check codes; carries no field 39."""

    batch: str
    totals: Settlement48 = field(default_factory=lambda: Settlement48(Totals()))
    currency: str = "156"

    @property
    def balanced(self) -> bool:
        return self.totals.domestic.check in (
            0,
            CheckCode.BALANCED,
        ) and self.totals.foreign.check in (
            0,
            CheckCode.BALANCED,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchUpload(_Base):
    """0320 (60.3 201): up to 8 debit records in field 48."""

    batch: str
    records: tuple[BatchRecord, ...]

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        if not 1 <= len(self.records) <= 8:
            raise EncodeError("a batch upload carries 1 to 8 records", field=48)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchUploadItem(_Base):
    """0320 (60.3 201): a refund or offline sale re-sent whole in its own format,
    under its original STAN (the host finds it in the journal by TID, batch, STAN)."""

    request: FinancialRequest

    @classmethod
    def of(cls, request: FinancialRequest) -> BatchUploadItem:
        return cls(tid=request.tid, mid=request.mid, stan=request.stan, request=request)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchUploadEnd(_Base):
    """0320 (60.3 202): end of batch upload, 48 = total count N4."""

    batch: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChipAdvice(_Base):
    """What a chip advice names: the original (61, 37), its amount and card, and 55."""

    batch: str
    original: OriginalRef | None = None
    rrn: str | None = None
    amount_fen: int | None = None
    card: Card | None = None
    chip: bytes | None = None
    processing_code: str = "000000"
    condition: str = "00"
    type_code: str = "00"
    netcode: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptResult(_ChipAdvice):
    """0620 (60.3 951): the card's issuer-script results after a chip transaction,
    naming the original by 37 and 61; MAC'd like a financial request (spec §4)."""

    netcode: str = NetCode.SCRIPT_RESULT


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipDetailUpload(_ChipAdvice):
    """0320 (60.3 203, or 205 for an offline chip sale's TC): the final cryptogram
    (TC) of a chip transaction in 55, for the host to journal against its original."""

    netcode: str = NetCode.CHIP_DETAIL


@dataclass(frozen=True, slots=True, kw_only=True)
class AdviceResponse(_Response):
    """0630 / 0330 answering a script result or a chip detail upload."""

    batch: str
    netcode: str
    mti: str
    processing_code: str | None = None
    amount_fen: int | None = None


Message: TypeAlias = (
    FinancialRequest
    | FinancialResponse
    | Reversal
    | ReversalResponse
    | SignOn
    | SignOnResponse
    | NetworkRequest
    | NetworkResponse
    | ParameterDownload
    | ParameterDownloadResponse
    | Settlement
    | SettlementResponse
    | BatchUpload
    | BatchUploadItem
    | BatchUploadEnd
    | ScriptResult
    | ChipDetailUpload
    | AdviceResponse
)

Request: TypeAlias = (
    FinancialRequest
    | Reversal
    | SignOn
    | NetworkRequest
    | ParameterDownload
    | Settlement
    | BatchUpload
    | BatchUploadItem
    | BatchUploadEnd
    | ScriptResult
    | ChipDetailUpload
)


def request_mti(msg: Message) -> str | None:
    """The MTI a request message goes out with (None for a response)."""
    if isinstance(msg, FinancialRequest):
        return msg.kind.mti
    return _REQUEST_MTI.get(type(msg))


_REQUEST_MTI: dict[type, str] = {
    Reversal: "0400",
    SignOn: "0800",
    ParameterDownload: "0800",
    NetworkRequest: "0820",
    Settlement: "0500",
    BatchUpload: "0320",
    BatchUploadItem: "0320",
    BatchUploadEnd: "0320",
    ScriptResult: "0620",
    ChipDetailUpload: "0320",
}


def needs_mac(msg: Message) -> bool:
    """Spec §5: financial requests and reversals; responses only when approved."""
    if isinstance(msg, FinancialRequest | Reversal | ScriptResult):
        return True
    if isinstance(msg, FinancialResponse | ReversalResponse):
        return msg.code == "00"
    return False


# --------------------------------------------------------------------------- to fields


def _o63(org: str, reason: str) -> str:
    return (org or ORG_NONE).ljust(3)[:3] + reason


def _put(fields: Fields, n: int, value: Value | None) -> None:
    if value is not None:
        fields[n] = value


def _card_fields(f: Fields, card: Card | None, *, with_pin: bool) -> None:
    if card is None:
        return
    if card.send_pan or card.track2 is None:
        f[2] = card.pan
    _put(f, 14, card.expiry)
    f[22] = card.entry_mode
    _put(f, 23, card.sequence)
    _put(f, 35, card.track2)
    _put(f, 36, card.track3)
    _put(f, 55, card.chip)
    if with_pin and card.pin_block is not None:
        f[26] = "06"
        f[52] = card.pin_block
    security = card.security if with_pin else None
    if not with_pin and card.tracks_encrypted:
        security = f"0{card.pin_algorithm}1" + "0" * 13
    _put(f, 53, security)


def _request_fields(r: FinancialRequest, *, mti_kind: Kind, with_pin: bool, netcode: str) -> Fields:
    f: Fields = {
        3: mti_kind.processing_code,
        11: r.stan,
        25: mti_kind.condition,
        41: r.tid,
        42: r.mid,
    }
    if r.amount_fen is not None:
        f[4] = f"{r.amount_fen:012d}"
    _card_fields(f, r.card, with_pin=with_pin)
    f[49] = r.currency
    f[60] = F60(mti_kind.type_code, r.batch, netcode, r.extra60).encode()
    if r.original is not None:
        f[61] = r.original.encode()
    _put(f, 59, r.info)
    return f


def _advice_fields(m: ScriptResult | ChipDetailUpload) -> Fields:
    f: Fields = {3: m.processing_code, 11: m.stan, 25: m.condition, 41: m.tid, 42: m.mid}
    if m.amount_fen is not None:
        f[4] = f"{m.amount_fen:012d}"
    _card_fields(f, m.card, with_pin=False)
    _put(f, 37, m.rrn)
    _put(f, 55, m.chip)
    f[49] = "156"
    _put(f, 59, m.info)
    f[60] = F60(m.type_code, m.batch, m.netcode).encode()
    if m.original is not None:
        f[61] = m.original.encode()
    return f


def _response_common(f: Fields, m: _Response) -> None:
    f[11] = m.stan
    _put(f, 12, m.host_time)
    _put(f, 13, m.host_date)
    _put(f, 32, m.acquirer)
    _put(f, 37, m.rrn)
    _put(f, 39, m.code)
    f[41] = m.tid
    f[42] = m.mid
    f[63] = _o63(m.organisation, m.reason)


def to_fields(msg: Message) -> tuple[str, Fields]:
    """The MTI and ISO fields of a typed message (field 64 not included)."""
    f: Fields
    if isinstance(msg, FinancialRequest):
        f = _request_fields(msg, mti_kind=msg.kind, with_pin=True, netcode=msg.netcode)
        _put(f, 37, msg.rrn)
        _put(f, 38, msg.auth_code)
        if msg.operator is not None:
            f[63] = msg.operator
        return msg.kind.mti, f
    if isinstance(msg, FinancialResponse):
        f = {3: msg.kind.processing_code, 25: msg.kind.condition, 49: msg.currency}
        if msg.amount_fen is not None:
            f[4] = f"{msg.amount_fen:012d}"
        _response_common(f, msg)
        _put(f, 14, msg.expiry)
        _put(f, 15, msg.settle_date)
        _put(f, 22, msg.entry_mode)
        _put(f, 38, msg.auth_code)
        if msg.balance is not None:
            f[54] = msg.balance.encode()
        _put(f, 55, msg.chip)
        f[60] = F60(msg.kind.type_code, msg.batch, msg.netcode).encode()
        return msg.kind.response_mti, f
    if isinstance(msg, Reversal):
        r = msg.request
        f = _request_fields(r, mti_kind=r.kind, with_pin=False, netcode=r.netcode)
        _put(f, 38, r.auth_code)
        f[39] = msg.reason_code
        return "0400", f
    if isinstance(msg, ReversalResponse):
        f = {3: msg.kind.processing_code, 25: msg.kind.condition, 49: "156"}
        if msg.amount_fen is not None:
            f[4] = f"{msg.amount_fen:012d}"
        _response_common(f, msg)
        f[60] = F60(msg.kind.type_code, msg.batch, msg.netcode).encode()
        return "0410", f
    if isinstance(msg, SignOn):
        f = {
            11: msg.stan,
            41: msg.tid,
            42: msg.mid,
            60: F60("00", msg.batch, msg.netcode).encode(),
            63: msg.operator,
        }
        _put(f, 59, msg.info)
        _put(f, 62, msg.serial)
        return "0800", f
    if isinstance(msg, SignOnResponse):
        f = {}
        _response_common(f, msg)
        f[60] = F60("00", msg.batch, msg.netcode).encode()
        _put(f, 62, msg.keys)
        return "0810", f
    if isinstance(msg, NetworkRequest):
        f = {11: msg.stan, 41: msg.tid, 42: msg.mid, 60: F60("00", msg.batch, msg.netcode).encode()}
        _put(f, 63, msg.operator)
        _put(f, 59, msg.info)
        _put(f, 62, msg.data)
        return "0820", f
    if isinstance(msg, NetworkResponse):
        f = {}
        _response_common(f, msg)
        f[60] = F60("00", msg.batch, msg.netcode).encode()
        _put(f, 62, msg.data)
        return msg.mti, f
    if isinstance(msg, ParameterDownload):
        f = {
            11: msg.stan,
            41: msg.tid,
            42: msg.mid,
            60: F60("00", msg.batch, msg.netcode).encode(),
        }
        _put(f, 59, msg.info)
        _put(f, 62, msg.data)
        return "0800", f
    if isinstance(msg, ParameterDownloadResponse):
        f = {}
        _response_common(f, msg)
        f[60] = F60("00", msg.batch, msg.netcode).encode()
        if msg.records:
            f[62] = encode_params(msg.records)
        _put(f, 62, msg.raw)
        return "0810", f
    if isinstance(msg, Settlement):
        return "0500", {
            11: msg.stan,
            41: msg.tid,
            42: msg.mid,
            48: msg.totals.encode(),
            49: msg.currency,
            60: F60("00", msg.batch, NetCode.SETTLEMENT).encode(),
            63: msg.operator,
        }
    if isinstance(msg, SettlementResponse):
        f = {}
        _response_common(f, msg)
        f.pop(39, None)  # the 0510 carries no field 39 (spec §4)
        f[48] = msg.totals.encode()
        f[49] = msg.currency
        f[60] = F60("00", msg.batch, NetCode.SETTLEMENT).encode()
        return "0510", f
    if isinstance(msg, BatchUpload):
        return "0320", {
            11: msg.stan,
            41: msg.tid,
            42: msg.mid,
            48: f"{len(msg.records):02d}" + "".join(r.encode() for r in msg.records),
            60: F60("00", msg.batch, NetCode.BATCH_UPLOAD).encode(),
        }
    if isinstance(msg, BatchUploadItem):
        r = msg.request
        f = _request_fields(r, mti_kind=r.kind, with_pin=False, netcode=NetCode.BATCH_UPLOAD)
        _put(f, 37, r.rrn)
        _put(f, 38, r.auth_code)
        return "0320", f
    if isinstance(msg, ScriptResult):
        return "0620", _advice_fields(msg)
    if isinstance(msg, ChipDetailUpload):
        return "0320", _advice_fields(msg)
    if isinstance(msg, AdviceResponse):
        f = {}
        _response_common(f, msg)
        _put(f, 3, msg.processing_code)
        if msg.amount_fen is not None:
            f[4] = f"{msg.amount_fen:012d}"
        f[60] = F60("00", msg.batch, msg.netcode).encode()
        return msg.mti, f
    if isinstance(msg, BatchUploadEnd):
        return "0320", {
            11: msg.stan,
            41: msg.tid,
            42: msg.mid,
            48: f"{msg.count:04d}",
            60: F60("00", msg.batch, NetCode.BATCH_UPLOAD_END).encode(),
        }
    raise EncodeError(f"not a message: {type(msg).__name__}")


# --------------------------------------------------------------------------- from fields


def _req(f: Mapping[int, Value], n: int) -> str:
    v = f.get(n)
    if v is None:
        raise DecodeError("required field is missing", field=n)
    if not isinstance(v, str):
        raise DecodeError("expected text", field=n)
    return v


def _opt(f: Mapping[int, Value], n: int) -> str | None:
    v = f.get(n)
    return v if isinstance(v, str) else None


def _bytes(f: Mapping[int, Value], n: int) -> bytes | None:
    v = f.get(n)
    return v if isinstance(v, bytes) else None


def _amount(f: Mapping[int, Value]) -> int | None:
    v = _opt(f, 4)
    return None if v is None else int(v)


def _card_from(f: Mapping[int, Value]) -> Card | None:
    pan = _opt(f, 2)
    track2 = _opt(f, 35)
    expiry = _opt(f, 14)
    if pan is None and track2 is None:
        return None
    for n in (35, 36):
        if isinstance(f.get(n), bytes):
            raise DecodeError(
                "track is not in clear: encrypted with the TDK (53.3 = 1) and not decrypted",
                field=n,
            )
    if track2 is not None:
        sep = track2.find("=")
        if sep < 13:
            raise DecodeError("track 2 must hold a 13-19 digit PAN and '='", field=35)
        tpan = track2[:sep]
        if pan is not None and pan != tpan:
            raise DecodeError("PAN in field 2 differs from the PAN on track 2", field=2)
        pan = tpan
        if expiry is None and len(track2) >= sep + 5:
            expiry = track2[sep + 1 : sep + 5]
    assert pan is not None
    pin = f.get(52)
    chip = f.get(55)
    sec = _opt(f, 53) or ""
    if sec and not (len(sec) == 16 and sec[0] in "012" and sec[1] in "06" and sec[2] in "01"):
        raise DecodeError(
            "security control must be 53.1 PIN format 0/1/2, 53.2 algorithm 0/6, "
            "53.3 track encryption 0/1, then 13 digits",
            field=53,
        )
    try:
        return Card(
            pan=pan,
            expiry=expiry,
            track2=track2,
            track3=_opt(f, 36),
            entry_mode=_opt(f, 22) or "000",
            pin_block=pin if isinstance(pin, bytes) else None,
            sequence=_opt(f, 23),
            chip=chip if isinstance(chip, bytes) else None,
            send_pan=2 in f,
            pin_format=sec[0] if sec[:1] in ("1", "2") else "2",
            pin_algorithm=sec[1] if sec else "6",
            tracks_encrypted=sec[2:3] == "1",
        )
    except EncodeError as exc:
        raise DecodeError(exc.expected, field=exc.field) from None


def _kind(mti: str, f: Mapping[int, Value], f60: F60) -> Kind:
    key = (mti, _req(f, 3), _req(f, 25), f60.type_code)
    kind = _KIND_BY_WIRE.get(key)
    if kind is None:
        raise DecodeError(
            f"no transaction of the dialect has MTI {mti}, processing code {key[1]}, "
            f"condition {key[2]} and 60.1 {key[3]}",
            field=3,
        )
    return kind


def _kind_of_response(mti: str, f: Mapping[int, Value], f60: F60) -> Kind:
    request_mti = mti[:2] + str(int(mti[2]) - 1) + mti[3]
    return _kind(request_mti, f, f60)


def _split63(f: Mapping[int, Value]) -> tuple[str, str]:
    v = _opt(f, 63) or ""
    return (v[:3] if len(v) >= 3 else ORG_NONE), v[3:]


def _resp_kw(f: Mapping[int, Value]) -> dict[str, object]:
    org, reason = _split63(f)
    return {
        "tid": _req(f, 41),
        "mid": _req(f, 42),
        "stan": _req(f, 11),
        "code": _opt(f, 39),
        "organisation": org,
        "reason": reason,
        "host_time": _opt(f, 12),
        "host_date": _opt(f, 13),
        "acquirer": _opt(f, 32),
        "rrn": _opt(f, 37),
    }


def _financial_request(kind: Kind, f: Mapping[int, Value], f60: F60) -> FinancialRequest:
    o61 = _opt(f, 61)
    return FinancialRequest(
        kind=kind,
        tid=_req(f, 41),
        mid=_req(f, 42),
        stan=_req(f, 11),
        batch=f60.batch,
        amount_fen=_amount(f),
        card=_card_from(f),
        rrn=_opt(f, 37),
        auth_code=_opt(f, 38),
        original=OriginalRef.decode(o61) if o61 is not None else None,
        operator=_opt(f, 63),
        currency=_opt(f, 49) or "156",
        netcode=f60.netcode,
        extra60=f60.extra,
        info=_opt(f, 59),
    )


def _advice(cls: type[_A], f: Mapping[int, Value], f60: F60) -> _A:
    o61 = _opt(f, 61)
    chip = f.get(55)
    return cls(
        tid=_req(f, 41),
        mid=_req(f, 42),
        stan=_req(f, 11),
        batch=f60.batch,
        original=OriginalRef.decode(o61) if o61 is not None else None,
        rrn=_opt(f, 37),
        amount_fen=_amount(f),
        card=_card_from(f),
        chip=chip if isinstance(chip, bytes) else None,
        processing_code=_opt(f, 3) or "000000",
        condition=_opt(f, 25) or "00",
        type_code=f60.type_code,
        netcode=f60.netcode,
        info=_opt(f, 59),
    )


_A = TypeVar("_A", "ScriptResult", "ChipDetailUpload")


def from_fields(mti: str, f: Mapping[int, Value]) -> Message:
    """The typed message for an MTI and its fields. Raises :class:`DecodeError`
    naming the field when something required is missing or inconsistent."""
    try:
        return _from_fields(mti, f)
    except EncodeError as exc:  # a value that decodes but does not validate
        raise DecodeError(exc.expected, field=exc.field) from None
    except ValueError as exc:
        if isinstance(exc, WireError):
            raise
        raise DecodeError(f"invalid value: {exc}") from None


def _from_fields(mti: str, f: Mapping[int, Value]) -> Message:
    f60 = F60.decode(_req(f, 60))
    if mti in ("0100", "0200", "0220"):
        return _financial_request(_kind(mti, f, f60), f, f60)
    if mti in ("0110", "0210", "0230"):
        b54 = _opt(f, 54)
        return FinancialResponse(
            kind=_kind_of_response(mti, f, f60),
            batch=f60.batch,
            amount_fen=_amount(f),
            auth_code=_opt(f, 38),
            settle_date=_opt(f, 15),
            expiry=_opt(f, 14),
            entry_mode=_opt(f, 22),
            balance=Balance.decode(b54) if b54 is not None else None,
            currency=_opt(f, 49) or "156",
            netcode=f60.netcode,
            chip=_bytes(f, 55),
            **_resp_kw(f),  # type: ignore[arg-type]
        )
    if mti == "0400":
        kind = _kind(kind_mti_for_type(f60.type_code), f, f60)
        req = _financial_request(kind, f, f60)
        return Reversal(
            tid=req.tid, mid=req.mid, stan=req.stan, request=req, reason_code=_req(f, 39)
        )
    if mti == "0410":
        kind = _kind(kind_mti_for_type(f60.type_code), f, f60)
        return ReversalResponse(
            kind=kind,
            batch=f60.batch,
            amount_fen=_amount(f),
            netcode=f60.netcode,
            **_resp_kw(f),  # type: ignore[arg-type]
        )
    common: dict[str, Any] = {
        "tid": _req(f, 41),
        "mid": _req(f, 42),
        # management downloads of some stock terminals (KoolPos, Newland) carry no 11
        "stan": _opt(f, 11) or "000000",
        "info": _opt(f, 59),
    }
    if mti == "0800":
        if f60.netcode in DOWNLOADS:
            return ParameterDownload(
                batch=f60.batch, netcode=f60.netcode, data=_bytes(f, 62), **common
            )
        raw62 = f.get(62)
        return SignOn(
            batch=f60.batch,
            operator=_opt(f, 63) or "",
            netcode=f60.netcode,
            serial=raw62 if isinstance(raw62, bytes) else None,
            **common,
        )
    if mti == "0810":
        keys = f.get(62)
        raw62 = keys if isinstance(keys, bytes) else None
        if f60.netcode in (NetCode.PARAMETERS, NetCode.PARAMETERS_MORE):
            return ParameterDownloadResponse(
                batch=f60.batch,
                netcode=f60.netcode,
                records=decode_params(raw62) if raw62 else (),
                **_resp_kw(f),  # type: ignore[arg-type]
            )
        if f60.netcode in DOWNLOADS:
            return ParameterDownloadResponse(
                batch=f60.batch,
                netcode=f60.netcode,
                raw=raw62,
                **_resp_kw(f),  # type: ignore[arg-type]
            )
        return SignOnResponse(batch=f60.batch, keys=raw62, netcode=f60.netcode, **_resp_kw(f))  # type: ignore[arg-type]
    if mti == "0820":
        raw62 = f.get(62)
        return NetworkRequest(
            batch=f60.batch,
            netcode=f60.netcode,
            operator=_opt(f, 63),
            data=raw62 if isinstance(raw62, bytes) else None,
            **common,
        )
    if mti == "0620":
        return _advice(ScriptResult, f, f60)
    if mti == "0630" or (
        mti == "0330" and f60.netcode in (NetCode.CHIP_DETAIL, NetCode.CHIP_OFFLINE_TC)
    ):
        return AdviceResponse(
            batch=f60.batch,
            netcode=f60.netcode,
            mti=mti,
            processing_code=_opt(f, 3),
            amount_fen=_amount(f),
            **_resp_kw(f),  # type: ignore[arg-type]
        )
    if mti in ("0830", "0330"):
        return NetworkResponse(
            batch=f60.batch,
            netcode=f60.netcode,
            mti=mti,
            data=_bytes(f, 62),
            **_resp_kw(f),  # type: ignore[arg-type]
        )
    if mti == "0500":
        return Settlement(
            batch=f60.batch,
            totals=Settlement48.decode(_req(f, 48)),
            operator=_opt(f, 63) or "",
            currency=_opt(f, 49) or "156",
            **common,
        )
    if mti == "0510":
        kw = _resp_kw(f)
        kw["code"] = None
        return SettlementResponse(
            batch=f60.batch,
            totals=Settlement48.decode(_req(f, 48)),
            currency=_opt(f, 49) or "156",
            **kw,  # type: ignore[arg-type]
        )
    if mti == "0320":
        if f60.netcode in (NetCode.CHIP_DETAIL, NetCode.CHIP_OFFLINE_TC):
            return _advice(ChipDetailUpload, f, f60)
        if f60.netcode in (NetCode.BATCH_UPLOAD_END, NetCode.BATCH_UPLOAD_END_BALANCED):
            v = _req(f, 48)
            if len(v) != 4:
                raise DecodeError("batch upload end carries a 4-digit count in 48", field=48)
            return BatchUploadEnd(batch=f60.batch, count=int(v), **common)
        if 48 in f:
            v = _req(f, 48)
            n = int(v[:2]) if v[:2].isdecimal() else -1
            if n < 1 or len(v) != 2 + 40 * n:
                raise DecodeError("batch upload 48 must be count N2 + count x 40 digits", field=48)
            records = tuple(BatchRecord.decode(v[2 + 40 * i : 42 + 40 * i]) for i in range(n))
            return BatchUpload(batch=f60.batch, records=records, **common)
        kind = _kind(kind_mti_for_type(f60.type_code), f, f60)
        item = F60(f60.type_code, f60.batch, NetCode.NONE, f60.extra)
        return BatchUploadItem.of(_financial_request(kind, f, item))
    raise DecodeError(f"MTI {mti} is not part of the clearpos dialect", field=0)


def kind_mti_for_type(type_code: str) -> str:
    """The request MTI of the transaction whose 60.1 is ``type_code``."""
    for k in Kind:
        if k.type_code == type_code:
            return k.mti
    raise DecodeError(f"60.1 transaction type {type_code} is not part of the dialect", field=60)


# --------------------------------------------------------------------------- bytes


TdkLookup = Callable[[str], "Callable[[bytes], bytes] | None"]


def parse(
    body: bytes,
    *,
    base: int = 0,
    tdk: TdkLookup | None = None,
    keep: Callable[[Mapping[int, Value]], None] | None = None,
) -> tuple[Message, bytes | None, bytes | None]:
    """Decode a body into (typed message, MAC block, MAC) — MAC parts None when absent.
    ``keep`` sees every decoded field (private ones included) before typing.

    When field 53 says the tracks are TDK-encrypted (53.3 = 1), ``tdk(tid)`` gives
    the 8-byte decryption of that terminal's track key (None: it holds none), and
    tracks 2 and 3 are decrypted before anything reads them. A track that does not
    decrypt to a well-formed track is a :class:`DecodeError` naming its field.
    """
    d = decode(body, base=base)
    fields = d.fields
    if keep is not None:  # e.g. the host's journal of an acquirer's private fields
        keep(fields)
    if tracks_encrypted(fields) and (35 in fields or 36 in fields):
        tid = fields.get(41)
        decrypt8 = tdk(tid) if tdk is not None and isinstance(tid, str) else None
        first = 35 if 35 in fields else 36
        if decrypt8 is None:
            raise DecodeError(
                "tracks are TDK-encrypted (53.3 = 1) but this terminal holds no track key: "
                "sign on with 60.3 = 004",
                field=first,
            )
        fields = dict(fields)
        for n in (35, 36):
            if n in fields:
                fields[n] = decrypt_track(fields[n], decrypt8, field=n)
    msg = from_fields(d.mti, fields)
    mac = d.fields.get(64)
    return msg, d.mac_block, mac if isinstance(mac, bytes) else None


def build(
    msg: Message,
    mac: Callable[[bytes], bytes] | None = None,
    *,
    tdk: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """Encode a typed message; ``mac`` computes field 64 when given. With ``tdk``
    (the TDK's 8-byte encryption) and card data marked ``tracks_encrypted``,
    tracks 2 and 3 are encrypted before packing (spec §5), so the MAC covers
    what is sent."""
    mti, fields = to_fields(msg)
    if tdk is not None and tracks_encrypted(fields):
        for n in (35, 36):
            v = fields.get(n)
            if isinstance(v, str):
                fields[n] = encrypt_track(v, tdk)
    return encode(mti, fields, mac=mac)
