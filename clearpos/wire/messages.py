"""Typed messages of the dialect and their conversion to and from field dicts.

Every message of spec/pos8583.md §4 is a frozen, slotted dataclass that
validates when built. Amounts are integer fen. :func:`to_fields` and
:func:`from_fields` are the only place where a message meets its ISO fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, ClassVar, TypeAlias, TypeVar, cast

from ..record import record, unchecked
from .codec import Fields, Value, decode, encode, tracks_encrypted
from .errors import DecodeError, EncodeError, WireError
from .fields import F60, Balance, BatchRecord, Card, CheckCode, OriginalRef, Settlement48, Totals
from .params import ParamRecord, decode_params, encode_params
from .terminfo import TerminalInfo
from .tracks import decrypt_track, encrypt_track
from .vocabulary import _KIND_BY_WIRE, DOWNLOADS, ORG_NONE, Kind, NetCode, _need_digits

# --------------------------------------------------------------------------- messages


@record(kw_only=True)
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


@record(kw_only=True)
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


@record(kw_only=True)
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


@record(kw_only=True)
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


@record(kw_only=True)
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


@record(kw_only=True)
class ReversalResponse(_Response):
    kind: Kind
    batch: str
    amount_fen: int | None = None
    netcode: str = NetCode.NONE


@record(kw_only=True)
class SignOn(_Base):
    """0800 sign-on; 60.3 names the key layout asked for (001, 003 or 004)."""

    batch: str
    operator: str = "01 "
    netcode: str = NetCode.SIGN_ON
    #: field 62 of the request: the terminal's serial number, as some terminals send it
    serial: bytes | None = None


@record(kw_only=True)
class SignOnResponse(_Response):
    batch: str
    keys: bytes | None = field(default=None, repr=False)
    netcode: str = NetCode.SIGN_ON


@record(kw_only=True)
class NetworkRequest(_Base):
    """0820: sign-off (60.3 002), echo test (301), status upload (362)."""

    batch: str
    netcode: str
    operator: str | None = None
    #: field 62: status upload (362) records, CA-key / AID status queries (372/382)
    data: bytes | None = None


@record(kw_only=True)
class NetworkResponse(_Response):
    """0830 and 0330: acknowledgements of network and batch-upload messages."""

    batch: str
    netcode: str
    mti: str = "0830"
    #: field 62: the CA-key / chip-parameter list of a 372 / 382 answer
    data: bytes | None = None


@record(kw_only=True)
class ParameterDownload(_Base):
    """0800 downloads: parameters (360, end 361), one CA public key (370, end 371),
    one AID's chip parameters (380, end 381); ``data`` is 62 (the key or AID asked for)."""

    batch: str
    netcode: str = NetCode.PARAMETERS
    data: bytes | None = None


@record(kw_only=True)
class ParameterDownloadResponse(_Response):
    batch: str
    records: tuple[ParamRecord, ...] = ()
    netcode: str = NetCode.PARAMETERS
    #: field 62 of a 370 / 380 answer: a status character and the key's or AID's TLV
    raw: bytes | None = None

    def param(self, tag: str) -> str | None:
        return next((r.value for r in self.records if r.tag == tag), None)


@record(kw_only=True)
class Settlement(_Base):
    batch: str
    totals: Settlement48
    operator: str = "01 "
    currency: str = "156"


@record(kw_only=True)
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


@record(kw_only=True)
class BatchUpload(_Base):
    """0320 (60.3 201): up to 8 debit records in field 48."""

    batch: str
    records: tuple[BatchRecord, ...]

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        if not 1 <= len(self.records) <= 8:
            raise EncodeError("a batch upload carries 1 to 8 records", field=48)


@record(kw_only=True)
class BatchUploadItem(_Base):
    """0320 (60.3 201): a refund or offline sale re-sent whole in its own format,
    under its original STAN (the host finds it in the journal by TID, batch, STAN)."""

    request: FinancialRequest

    @classmethod
    def of(cls, request: FinancialRequest) -> BatchUploadItem:
        return cls(tid=request.tid, mid=request.mid, stan=request.stan, request=request)


@record(kw_only=True)
class BatchUploadEnd(_Base):
    """0320 (60.3 202): end of batch upload, 48 = total count N4."""

    batch: str
    count: int


@record(kw_only=True)
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


@record(kw_only=True)
class ScriptResult(_ChipAdvice):
    """0620 (60.3 951): the card's issuer-script results after a chip transaction,
    naming the original by 37 and 61; MAC'd like a financial request (spec §4)."""

    netcode: str = NetCode.SCRIPT_RESULT


@record(kw_only=True)
class ChipDetailUpload(_ChipAdvice):
    """0320 (60.3 203, or 205 for an offline chip sale's TC): the final cryptogram
    (TC) of a chip transaction in 55, for the host to journal against its original."""

    netcode: str = NetCode.CHIP_DETAIL


@record(kw_only=True)
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


def financial_answer_fields(
    kind: Kind,
    *,
    batch: str,
    netcode: str,
    currency: str,
    amount_fen: int | None,
    tid: str,
    mid: str,
    stan: str,
    code: str | None,
    organisation: str,
    reason: str,
    host_time: str | None,
    host_date: str | None,
    acquirer: str | None,
    rrn: str | None,
    expiry: str | None = None,
    settle_date: str | None = None,
    entry_mode: str | None = None,
    auth_code: str | None = None,
    balance: Balance | None = None,
    chip: bytes | None = None,
) -> Fields:
    """The ISO fields of a financial answer (the MTI is ``kind.response_mti``): what
    :func:`to_fields` gives for a :class:`FinancialResponse`, and what the host
    sends, built straight from the request's values without the typed answer (the
    codec checks every value as it writes it)."""
    f: Fields = {3: kind.processing_code, 25: kind.condition, 49: currency}
    if amount_fen is not None:
        f[4] = f"{amount_fen:012d}"
    f[11] = stan
    if host_time is not None:
        f[12] = host_time
    if host_date is not None:
        f[13] = host_date
    if acquirer is not None:
        f[32] = acquirer
    if rrn is not None:
        f[37] = rrn
    if code is not None:
        f[39] = code
    f[41] = tid
    f[42] = mid
    f[63] = _o63(organisation, reason)
    if expiry is not None:
        f[14] = expiry
    if settle_date is not None:
        f[15] = settle_date
    if entry_mode is not None:
        f[22] = entry_mode
    if auth_code is not None:
        f[38] = auth_code
    if balance is not None:
        f[54] = balance.encode()
    if chip is not None:
        f[55] = chip
    if len(batch) != 6 or len(netcode) != 3:
        F60(kind.type_code, batch, netcode)  # raises, naming 60.2 or 60.3
    f[60] = kind.type_code + batch + netcode
    return f


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
        return msg.kind.response_mti, financial_answer_fields(
            msg.kind,
            batch=msg.batch,
            netcode=msg.netcode,
            currency=msg.currency,
            amount_fen=msg.amount_fen,
            tid=msg.tid,
            mid=msg.mid,
            stan=msg.stan,
            code=msg.code,
            organisation=msg.organisation,
            reason=msg.reason,
            host_time=msg.host_time,
            host_date=msg.host_date,
            acquirer=msg.acquirer,
            rrn=msg.rrn,
            expiry=msg.expiry,
            settle_date=msg.settle_date,
            entry_mode=msg.entry_mode,
            auth_code=msg.auth_code,
            balance=msg.balance,
            chip=msg.chip,
        )
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


def _card_from(f: Mapping[int, Value], read: bool = False) -> Card | None:
    """The card data of a request; ``read``: ``f`` is as the codec read it (see below)."""
    # the codec gives text for every n/an/ans/z field and bytes for b fields; only
    # a track (35, 36) may come as bytes (TDK-encrypted and not decrypted)
    get = f.get
    values = (get(2), get(35), get(36), get(14), get(22), get(23), get(53))
    if values[0] is None and values[1] is None:
        return None
    # the decoder gives text for each of these: one test in C, and the field-naming
    # checks below (in the order they always ran) only when something is not text
    clean = _TEXT_OR_NONE.issuperset(map(type, values))
    pan, track2, track3, expiry, entry, seq, sec = cast("_SevenTexts", values)
    if not clean:
        pan = _text(values[0], 2)
        for n, v in ((35, values[1]), (36, values[2])):
            if isinstance(v, bytes):
                raise DecodeError(
                    "track is not in clear: encrypted with the TDK (53.3 = 1) and not decrypted",
                    field=n,
                )
        expiry = _text(values[3], 14)
    assert track2 is None or isinstance(track2, str)
    assert track3 is None or isinstance(track3, str)
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
    pin = get(52)
    chip = get(55)
    if not clean:
        sec = _text(values[6], 53)
    # 53.1 PIN block format (2 when 0 or absent), 53.2 algorithm, 53.3 tracks encrypted
    security = _NO_SECURITY if not sec else _SECURITY.get(sec[:3]) if len(sec) == 16 else None
    if security is None:
        raise DecodeError(
            "security control must be 53.1 PIN format 0/1/2, 53.2 algorithm 0/6, "
            "53.3 track encryption 0/1, then 13 digits",
            field=53,
        )
    if not clean:
        entry, seq = _text(values[4], 22), _text(values[5], 23)
    # Read by the codec, each value has its field's format, which is what Card checks:
    # the PAN is digits (field 2, or track 2's before its '=', which began track 2
    # above), 14 and 22 digits, 52 eight bytes, and 53.1 and 53.2 were checked above.
    # Left to check are what the formats leave open, the PAN's 13-19 digits and an
    # expiry taken from track 2; when either fails, Card checks all and names it.
    new = (
        _READ_CARD
        if read and 13 <= len(pan) <= 19 and (expiry is None or expiry.isdecimal())
        else Card
    )
    try:
        return new(
            pan,
            expiry,
            track2,
            track3,
            entry or "000",
            pin if isinstance(pin, bytes) else None,
            seq,
            chip if isinstance(chip, bytes) else None,
            2 in f,
            *security,
        )
    except EncodeError as exc:
        raise DecodeError(exc.expected, field=exc.field) from None


def _text(v: Value | None, n: int) -> str | None:
    """A text field's value (None when absent); bytes where text belongs is an error."""
    if v is None or type(v) is str:
        return v
    if isinstance(v, str):
        return v
    raise DecodeError("expected text", field=n)


def _kind(mti: str, f: Mapping[int, Value], f60: F60) -> Kind:
    # every key is four strings: anything else (a field missing, bytes) finds no kind,
    # and only then do _req's name the field
    kind = _KIND_BY_WIRE.get((mti, f.get(3), f.get(25), f60.type_code))  # type: ignore[arg-type]
    if kind is None:
        key = (mti, _req(f, 3), _req(f, 25), f60.type_code)
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


def _financial_request(
    kind: Kind, f: Mapping[int, Value], f60: F60, read: bool = False
) -> FinancialRequest:
    # The decoder gives text for every text field: the checks below are one type test
    # each; _req and _text run (and name the field) only when something is off.
    get = f.get
    tid, mid, stan = get(41), get(42), get(11)
    if type(tid) is not str or type(mid) is not str or type(stan) is not str:
        tid, mid, stan = _req(f, 41), _req(f, 42), _req(f, 11)
    values: tuple[Value | None, ...] = (
        get(4),
        get(37),
        get(38),
        get(49),
        get(59),
        get(61),
        get(63),
    )
    if not _TEXT_OR_NONE.issuperset(map(type, values)):  # in C: no Python loop
        values = tuple(_text(v, n) for v, n in zip(values, _OPTIONAL_TEXT, strict=True))
    amount, rrn, auth_code, currency, info, o61, operator = cast("_SevenTexts", values)
    # Read by the codec (``read``), the TID and MID have their 8 and 15 characters, the
    # STAN and the amount their 6 and 12 digits, and the batch is a read F60's: all
    # FinancialRequest checks but an amount missing where the kind needs one, which
    # it then names.
    new = (
        _READ_REQUEST if read and (amount is not None or not kind.has_amount) else FinancialRequest
    )
    return new(
        kind=kind,
        tid=tid,
        mid=mid,
        stan=stan,
        batch=f60.batch,
        amount_fen=None if amount is None else int(amount),
        card=_card_from(f, read),
        rrn=rrn,
        auth_code=auth_code,
        original=OriginalRef.decode(o61) if o61 is not None else None,
        operator=operator,
        currency=currency or "156",
        netcode=f60.netcode,
        extra60=f60.extra,
        info=info,
    )


#: field 53's first three digits (53.1 PIN format 0/1/2, 53.2 algorithm 0/6, 53.3 tracks
#: encrypted 0/1) -> a Card's pin_format (2 for 0), pin_algorithm, tracks_encrypted
_SECURITY = {
    f + a + t: ("2" if f == "0" else f, a, t == "1") for f in "012" for a in "06" for t in "01"
}
_NO_SECURITY = ("2", "6", False)
#: the constructors of the records whose values the codec checked as it read them
_READ_CARD = unchecked(Card)
_READ_REQUEST = unchecked(FinancialRequest)
#: the optional text fields of a financial request, in _financial_request's order
_OPTIONAL_TEXT = (4, 37, 38, 49, 59, 61, 63)
_TEXT_OR_NONE = frozenset((str, type(None)))
_SevenTexts: TypeAlias = tuple[
    str | None, str | None, str | None, str | None, str | None, str | None, str | None
]


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
    return _typed(mti, f)


def _typed(mti: str, f: Mapping[int, Value], read: bool = False) -> Message:
    """:func:`from_fields`; ``read``: ``f`` is as :func:`decode` gave it, each value
    checked to its field's format, so that what a typed message checks of the format
    is not checked again (the messages' own consistency checks all run)."""
    try:
        return _from_fields(mti, f, read)
    except EncodeError as exc:  # a value that decodes but does not validate
        raise DecodeError(exc.expected, field=exc.field) from None
    except ValueError as exc:
        if isinstance(exc, WireError):
            raise
        raise DecodeError(f"invalid value: {exc}") from None


def _from_fields(mti: str, f: Mapping[int, Value], read: bool = False) -> Message:
    f60 = F60.decode(_req(f, 60), read=read)
    if mti in ("0100", "0200", "0220"):
        return _financial_request(_kind(mti, f, f60), f, f60, read)
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
        req = _financial_request(kind, f, f60, read)
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
        return BatchUploadItem.of(_financial_request(kind, f, item, read))
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
    ``keep`` sees every decoded field (private ones included) before typing, and
    leaves them as they are (they are typed as the codec read and checked them).

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
    # the fields as the codec read them, unless tracks were decrypted into a copy
    msg = _typed(d.mti, fields, read=fields is d.fields)
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
