"""Composite fields of the dialect: 60, 61, card data (2, 14, 22, 35, 36, 52, 53,
55), balances (54), settlement totals (48), batch-upload records."""

from __future__ import annotations

from ..record import record, unchecked
from .errors import DecodeError, EncodeError
from .mask import mask_pan
from .vocabulary import NetCode, _need_digits

# --------------------------------------------------------------------------- composite fields


@record
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
        head = self.type_code + self.batch + self.netcode
        if (
            len(self.type_code) == 2
            and len(self.batch) == 6
            and len(head) == 11
            and head.isdecimal()
            and head.isascii()
            and not self.extra
        ):
            return  # the common case, in one check; else each part names itself
        _need_digits(self.type_code, 2, "60.1 transaction type", 60)
        _need_digits(self.batch, 6, "60.2 batch number", 60)
        _need_digits(self.netcode, 3, "60.3 network management code", 60)
        if self.extra:
            _need_digits(self.extra, (1, 6), "60.4-60.7", 60)

    def encode(self) -> str:
        return self.type_code + self.batch + self.netcode + self.extra

    @classmethod
    def decode(cls, value: str, *, read: bool = False) -> F60:
        """``read``: the value is field 60 as the codec read it, digits only and at most
        17 of them (its format), so the parts are digits of their sizes and 60.4-60.7
        at most 6: nothing for ``__post_init__`` to check."""
        if len(value) < 11:
            raise DecodeError(
                f"expected at least 11 digits (60.1 N2 + 60.2 N6 + 60.3 N3), got {len(value)}",
                field=60,
            )
        return (_READ_F60 if read else cls)(value[0:2], value[2:8], value[8:11], value[11:])


_READ_F60 = unchecked(F60)


@record
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


@record
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
        both = (self.expiry or "0000") + self.entry_mode
        if not (
            len(both) == 7 and len(self.entry_mode) == 3 and both.isdecimal() and both.isascii()
        ):  # the common case in one test; else each names itself
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


@record
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


@record
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


@record
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


@record
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
