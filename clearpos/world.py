"""World files: the TOML that seeds a fresh store, parsed into typed, frozen data.

The contract is ``spec/world.md``. This module only reads and validates; a store
loads the resulting :class:`World` later. Validation is all-or-nothing: every
problem in the file is collected, then one :class:`WorldError` names each of them
with the file, the table, the entry and the key::

    world.toml: [[terminals]] #2 (tid "1000002"): tid: must be exactly 8 characters, got 7

Money is always integer fen. Amounts are written in yuan, as strings
(``"1000.00"``, ``"0.5"``) or integers (``58``); TOML floats are refused because
they are not exact. Card numbers are masked (first 6, last 4) and PINs, operator
passwords and terminal master keys never appear in an error or a ``repr``.

>>> world = parse_world('[[merchants]]\\nmid = "898310048161234"\\n', "w.toml")
>>> world.merchants[0].status, world.acquirer.institution
('active', '48020000')
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args

from .money import MAX_FEN, parse_yuan
from .versions import normalise_version
from .wire.dialect import DialectError, FieldSpec, private_fields

__all__ = [
    "CARD_STATUSES",
    "CVNS",
    "DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN",
    "MAINTENANCE_WHO",
    "MAX_FEN",
    "MERCHANT_STATUSES",
    "ORGANISATIONS",
    "SUSPENSION_CAUSES",
    "TERMINAL_STATUSES",
    "TRANSACTION_TYPES",
    "Acquirer",
    "Card",
    "CardStatus",
    "CardVelocity",
    "Chip",
    "EmvAid",
    "EmvCapk",
    "Issuer",
    "Maintenance",
    "MaintenanceWho",
    "Merchant",
    "MerchantStatus",
    "Operator",
    "Organisation",
    "Problem",
    "RiskRules",
    "SuspensionCause",
    "Terminal",
    "TerminalStatus",
    "TransactionType",
    "World",
    "WorldError",
    "capk_check_value",
    "load_world",
    "mask_pan",
    "parse_money",
    "parse_world",
]

MerchantStatus = Literal["active", "restricted", "suspended", "closed"]
SuspensionCause = Literal["arrears", "risk", "manual"]
TerminalStatus = Literal["active", "suspended"]
CardStatus = Literal["normal", "frozen", "lost", "stolen", "expired", "closed"]
Organisation = Literal["CUP", "VIS", "MCC", "JCB", "AMX"]
TransactionType = Literal[
    "purchase", "void", "refund", "preauth", "completion", "balance", "offline"
]
MaintenanceWho = Literal["host", "issuer"]
Cvn = Literal["10", "18"]

MERCHANT_STATUSES: Final[tuple[MerchantStatus, ...]] = get_args(MerchantStatus)
SUSPENSION_CAUSES: Final[tuple[SuspensionCause, ...]] = get_args(SuspensionCause)
TERMINAL_STATUSES: Final[tuple[TerminalStatus, ...]] = get_args(TerminalStatus)
CARD_STATUSES: Final[tuple[CardStatus, ...]] = get_args(CardStatus)
ORGANISATIONS: Final[tuple[Organisation, ...]] = get_args(Organisation)
TRANSACTION_TYPES: Final[tuple[TransactionType, ...]] = get_args(TransactionType)
MAINTENANCE_WHO: Final[tuple[MaintenanceWho, ...]] = get_args(MaintenanceWho)
CVNS: Final[tuple[Cvn, ...]] = get_args(Cvn)

#: QuickPass taps up to this amount need no PIN (spec §8, world ``[risk]``): ¥1,000.00.
DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN: Final = 100_000


DEFAULT_INSTITUTION: Final = "48020000"
DEFAULT_ACQUIRER_NAME: Final = "clearpos acquirer"

_MAX_COUNT: Final = 2**31 - 1


# --------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class Acquirer:
    """The acquiring institution; ``institution`` goes into field 32 (n..11)."""

    institution: str = DEFAULT_INSTITUTION
    name: str = DEFAULT_ACQUIRER_NAME
    #: allow sign-ons asking for single-length DES keys (60.3 = 001, spec §4)
    single_des: bool = False
    #: what merchants see in the help center: who they deal with, how to reach them
    company: str = ""
    hotline: str = ""
    hours: str = ""

    @property
    def company_name(self) -> str:
        """The company merchants deal with: ``company``, else the acquirer's name."""
        return self.company or self.name


@dataclass(frozen=True, slots=True)
class CardVelocity:
    """More than ``count`` purchases per card within ``window_s`` seconds locks the
    card for ``lock_s`` seconds (scenario A6, ``risk.card_velocity``)."""

    count: int
    window_s: int
    lock_s: int


@dataclass(frozen=True, slots=True)
class RiskRules:
    """Risk rules from ``[risk]``; a rule that is ``None`` is switched off."""

    card_velocity: CardVelocity | None = None
    quickpass_no_pin_limit_fen: int = DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN


@dataclass(frozen=True, slots=True, repr=False)
class Issuer:
    """The simulated issuer's chip master keys (``[issuer]``, 16 bytes each):
    application cryptograms, secure-messaging integrity and confidentiality.
    Never shown: ``repr`` says only that they are there."""

    imk_ac: bytes
    imk_smi: bytes
    imk_smc: bytes

    def __repr__(self) -> str:
        return "Issuer(imk_ac=<hidden>, imk_smi=<hidden>, imk_smc=<hidden>)"


@dataclass(frozen=True, slots=True)
class Chip:
    """A card's chip (``chip = { psn, cvn, service_code }``): PAN sequence number
    (tag 5F34, field 23), cryptogram version and the service code its track 2
    equivalent carries (2xx or 6xx: a chip card)."""

    psn: str
    cvn: Cvn
    service_code: str = "220"


@dataclass(frozen=True, slots=True)
class EmvCapk:
    """A certification authority public key (``[[emv.capk]]``). ``check_value`` is
    the SHA-1 over RID, index, modulus and exponent (EMV Book 2 11.2.2), computed."""

    rid: str
    index: str
    modulus: str
    exponent: str
    expiry: str
    check_value: str


@dataclass(frozen=True, slots=True)
class EmvAid:
    """Chip parameters of one application (``[[emv.aid]]``); amounts in fen, TACs
    and versions as uppercase hex."""

    aid: str
    app_version: str
    floor_limit_fen: int
    contactless_limit_fen: int
    contactless_cvm_limit_fen: int
    tac_default: str
    tac_online: str
    tac_denial: str


@dataclass(frozen=True, slots=True)
class Merchant:
    """A merchant. Limits of 0 mean "no limit". ``suspension_cause`` is set exactly
    when ``status`` is ``suspended``, and ``""`` otherwise."""

    mid: str
    name: str
    status: MerchantStatus
    suspension_cause: SuspensionCause | Literal[""]
    arrears_fen: int
    single_limit_fen: int
    restricted_types: tuple[TransactionType, ...]


@dataclass(frozen=True, slots=True)
class Operator:
    """A terminal operator (操作员); ``no`` goes into field 63 of sign-on."""

    no: str
    password: str = field(repr=False)
    supervisor: bool = False


@dataclass(frozen=True, slots=True)
class Terminal:
    """A terminal. ``tmk`` is the 16-byte (double-length) terminal master key;
    ``min_software`` the lowest acceptable application version (field 59 A2/05,
    compared part by part); ``dialect`` ``cup`` for a stock terminal, ``clearpos``
    for the project's own (which also get the [ext] parameter records)."""

    tid: str
    mid: str
    tmk: bytes = field(repr=False)
    status: TerminalStatus
    min_software: str
    operators: tuple[Operator, ...]
    dialect: str = "cup"
    chip: bool = False


@dataclass(frozen=True, slots=True, repr=False)
class Card:
    """A card account at the simulated issuer. ``daily_limit_fen`` 0 = no limit.

    ``repr`` masks the PAN and hides the PIN:

    >>> Card("6222021234567890123", "2812", "123456", 100000, "normal", 0, "CUP")
    Card(pan='622202…0123', expiry='2812', pin=<hidden>, balance_fen=100000, \
status='normal', daily_limit_fen=0, organisation='CUP')
    """

    pan: str
    expiry: str
    pin: str
    balance_fen: int
    status: CardStatus
    daily_limit_fen: int
    organisation: Organisation
    chip: Chip | None = None

    def __repr__(self) -> str:
        chip = f", chip={self.chip!r}" if self.chip is not None else ""
        return (
            f"Card(pan={mask_pan(self.pan)!r}, expiry={self.expiry!r}, pin=<hidden>, "
            f"balance_fen={self.balance_fen!r}, status={self.status!r}, "
            f"daily_limit_fen={self.daily_limit_fen!r}, organisation={self.organisation!r}"
            f"{chip})"
        )


@dataclass(frozen=True, slots=True)
class Maintenance:
    """An announced maintenance window of the acquiring host or the issuer
    (scenario A9). ``start`` and ``end`` are timezone-aware; ``end > start``."""

    who: MaintenanceWho
    start: datetime
    end: datetime
    notice_zh: str
    notice_en: str


@dataclass(frozen=True, slots=True)
class World:
    """Everything a world file declares. ``source`` names the file it came from."""

    source: str
    acquirer: Acquirer
    risk: RiskRules
    merchants: tuple[Merchant, ...]
    terminals: tuple[Terminal, ...]
    cards: tuple[Card, ...]
    maintenance: tuple[Maintenance, ...]
    issuer: Issuer | None = None
    capks: tuple[EmvCapk, ...] = ()
    aids: tuple[EmvAid, ...] = ()
    #: an acquirer's private fields ([[dialect.fields]]), as the codec reads them
    private_fields: tuple[FieldSpec, ...] = ()

    def merchant(self, mid: str) -> Merchant | None:
        """The merchant with this MID, or ``None``."""
        return next((m for m in self.merchants if m.mid == mid), None)

    def terminal(self, tid: str) -> Terminal | None:
        """The terminal with this TID, or ``None``."""
        return next((t for t in self.terminals if t.tid == tid), None)

    def card(self, pan: str) -> Card | None:
        """The card with this PAN, or ``None``."""
        return next((c for c in self.cards if c.pan == pan), None)


# -------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a world file.

    ``table`` is the header as written in TOML (``[[terminals]]``, ``[acquirer]``),
    or ``""`` when the problem concerns the file as a whole. ``entry`` names an
    element of an array of tables by 1-based index and, when it has one, its
    natural id (``#2 (tid "1000002")``, ``#3 (pan 622202…0123)``); it is ``""``
    for plain tables. ``key`` is the key in that table; nested keys read
    ``card_velocity.count`` or ``operators #2 (no "99"): password``.
    """

    file: str
    table: str
    entry: str
    key: str
    message: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.table, self.entry) if part)
        return ": ".join([*(part for part in (self.file, where, self.key) if part), self.message])


class WorldError(ValueError):
    """A world file was refused. ``problems`` lists every reason; ``str()`` gives
    one line per problem. Nothing from a refused file may be loaded."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --------------------------------------------------------------------- public helpers


def mask_pan(pan: str) -> str:
    """The PAN with all but its first 6 and last 4 characters hidden.

    Strings too short to be a PAN show at most their last 4 characters.

    >>> mask_pan("6222021234567890123")
    '622202…0123'
    >>> mask_pan("123456789"), mask_pan("1234")
    ('…6789', '…')
    """
    if len(pan) >= 13:
        return f"{pan[:6]}…{pan[-4:]}"
    if len(pan) >= 8:
        return f"…{pan[-4:]}"
    return "…"


def parse_money(value: object) -> int:
    """Yuan as written in a world file, to integer fen.

    Accepts a string of digits with at most two decimals, or a TOML integer
    (whole yuan). Refuses floats, negatives, exponents, NaN and more than two
    decimals with a ``ValueError`` whose message says how to write it instead.

    >>> parse_money("1000.00"), parse_money("0.5"), parse_money("58"), parse_money(7)
    (100000, 50, 5800, 700)
    >>> try:
    ...     parse_money(1000.0)
    ... except ValueError as exc:
    ...     print(exc)
    1000.0 is a TOML float, which is not exact for money; quote it as a string: "1000.00"
    """
    if isinstance(value, bool):
        raise ValueError(f'must be an amount in yuan such as "12.34", got {_kind(value)}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; amounts must be 0 or more")
        fen = value * 100
    elif isinstance(value, float):
        raise ValueError(_float_money_message(value))
    elif isinstance(value, str):
        fen = parse_yuan(value)  # refuses more than MAX_FEN itself
    else:
        raise ValueError(f'must be an amount in yuan such as "12.34", got {_kind(value)}')
    if fen > MAX_FEN:
        raise ValueError(f"{_show(value)} is more than 9999999999.99, the largest amount")
    return fen


def _float_money_message(value: float) -> str:
    head = f"{value!r} is a TOML float, which is not exact for money"
    if not math.isfinite(value):
        return f'{head}; write yuan as a string such as "12.34"'
    if value < 0:
        return f"{head}, and amounts must be 0 or more"
    exact = Decimal(repr(value))
    if exact == exact.quantize(Decimal("0.01")):
        return f'{head}; quote it as a string: "{exact:.2f}"'
    return f'{head}; quote it as a string with at most two decimals, such as "12.34"'


def capk_check_value(rid: str, index: str, modulus: str, exponent: str) -> str:
    """SHA-1 over RID || index || modulus || exponent, uppercase hex (EMV Book 2 11.2.2).

    >>> capk_check_value("A000000333", "08", "C0", "03")[:8]
    'B7791429'
    """
    data = bytes.fromhex(rid + index + modulus + exponent)
    return hashlib.sha1(data).hexdigest().upper()


# ------------------------------------------------------------------------ loading


def load_world(path: str | os.PathLike[str]) -> World:
    """Read and validate a world file. Raises :class:`WorldError` (also when the
    file cannot be read or is not UTF-8), naming the file as ``path`` was given."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WorldError([Problem(source, "", "", "", f"cannot read: {reason}")]) from exc
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 (byte {exc.start})"
        raise WorldError([Problem(source, "", "", "", message)]) from exc
    return parse_world(text, source)


def parse_world(text: str, source: str) -> World:
    """Validate the text of a world file; ``source`` names it in problems."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorldError([Problem(source, "", "", "", f"not valid TOML: {exc}")]) from exc
    return _Parser(source).world(document)


# ------------------------------------------------------------------------ internals

_SINGLE_TABLES: Final = ("acquirer", "issuer", "risk", "emv", "dialect")
_ARRAY_TABLES: Final = ("merchants", "terminals", "cards", "maintenance")

_ACQUIRER_KEYS: Final = ("institution", "name", "single_des", "company", "hotline", "hours")
#: a service hotline as printed: digits, with spaces, dashes or a leading +
_HOTLINE = re.compile(r"^\+?[0-9][0-9 -]{2,22}[0-9]$")
_RISK_KEYS: Final = ("card_velocity", "quickpass_no_pin_limit")
_ISSUER_KEYS: Final = ("imk_ac", "imk_smi", "imk_smc")
_EMV_KEYS: Final = ("capk", "aid")
_CAPK_KEYS: Final = ("rid", "index", "modulus", "exponent", "expiry")
_AID_KEYS: Final = (
    "aid",
    "app_version",
    "floor_limit",
    "contactless_limit",
    "contactless_cvm_limit",
    "tac_default",
    "tac_online",
    "tac_denial",
)
_CHIP_KEYS: Final = ("psn", "cvn", "service_code")
_VELOCITY_KEYS: Final = ("count", "window_s", "lock_s")
_MERCHANT_KEYS: Final = (
    "mid",
    "name",
    "status",
    "suspension_cause",
    "arrears",
    "single_limit",
    "restricted_types",
)
_TERMINAL_KEYS: Final = (
    "tid",
    "mid",
    "tmk",
    "status",
    "min_software",
    "operators",
    "dialect",
    "chip",
)
DIALECTS: Final = ("cup", "clearpos")
_OPERATOR_KEYS: Final = ("no", "password", "supervisor")
_CARD_KEYS: Final = (
    "pan",
    "expiry",
    "pin",
    "balance",
    "status",
    "daily_limit",
    "organisation",
    "chip",
)
_MAINTENANCE_KEYS: Final = ("who", "start", "end", "notice_zh", "notice_en")

_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

_C = TypeVar("_C", bound=str)


def _kind(value: object) -> str:
    """The TOML type of a value, for messages (never the value itself)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _show(value: object, limit: int = 32) -> str:
    """A short, quoted, escaped rendering of a non-secret value."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 1] + "…"
        return json.dumps(text, ensure_ascii=False)
    return repr(value)


def _show_key(key: str) -> str:
    """A key as written, quoted when it is not a bare key; masked when it looks
    like a card number (someone typed a PAN where a key belongs)."""
    if _DIGITS.fullmatch(key) and len(key) >= 13:
        return mask_pan(key)
    return key if _BARE_KEY.fullmatch(key) else _show(key)


def _printable(text: str) -> bool:
    """Printable ASCII without spaces (spaces are the ans padding character)."""
    return all("!" <= char <= "~" for char in text)


def _has_control(text: str) -> bool:
    """Control, format or line-separator characters (ideographic spaces are fine)."""
    return any(unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" for char in text)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


class _Report:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, table: str, entry: str, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, table, entry, key, message))


class _Entry:
    """One table (or inline table) being read; every reader reports its own
    problems and returns ``None`` when the value is unusable."""

    def __init__(
        self,
        report: _Report,
        table: str,
        entry: str,
        raw: dict[str, Any],
        prefix: str = "",
        anchor: str = "",
    ) -> None:
        self.report = report
        self.table = table
        self.entry = entry
        self.anchor = anchor or table  # short reference to this entry: "[[cards]] #3"
        self.raw = raw
        self.prefix = prefix
        self.bad = False

    def problem(self, key: str, message: str) -> None:
        self.bad = True
        self.report.add(self.table, self.entry, self.prefix + key, message)

    def keys(self, known: Sequence[str], required: Sequence[str] = ()) -> None:
        for key in self.raw:
            if key not in known:
                hint = _suggest(key, known) or f"; known keys: {', '.join(known)}"
                self.problem(_show_key(key), f"unknown key{hint}")
        for key in required:
            if key not in self.raw:
                self.problem(key, "missing; this key is required")

    def text(self, key: str, default: str | None = None) -> str | None:
        """A string value; ``default`` when absent (``None`` = required, and
        ``keys()`` has already reported it missing)."""
        if key not in self.raw:
            return default
        value = self.raw[key]
        if isinstance(value, str):
            return value
        hint = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = " (put it in quotes, so leading zeros are kept)"
        self.problem(key, f"must be a string, got {_kind(value)}{hint}")
        return None

    def ans(self, key: str, length: int, default: str | None = None) -> str | None:
        """A fixed-length ans field such as a TID or MID."""
        value = self.text(key, default)
        if value is None:
            return None
        if len(value) != length:
            self.problem(key, f"must be exactly {length} characters, got {len(value)}")
            return None
        if not _printable(value):
            self.problem(key, "must be printable ASCII without spaces")
            return None
        return value

    def digits(
        self, key: str, low: int, high: int, default: str | None = None, *, secret: bool = False
    ) -> str | None:
        """A string of ``low``..``high`` ASCII digits. Secret values are never shown."""
        value = self.text(key, default)
        if value is None:
            return None
        span = f"exactly {low}" if low == high else f"{low} to {high}"
        if not _DIGITS.fullmatch(value):
            shown = "" if secret else f", got {_show(value)}"
            self.problem(key, f"must be {span} digits (0-9 only){shown}")
            return None
        if not low <= len(value) <= high:
            self.problem(key, f"must be {span} digits, got {len(value)}")
            return None
        return value

    def choice(self, key: str, choices: tuple[_C, ...], default: _C | None = None) -> _C | None:
        value = self.text(key, default)
        if value is None:
            return None
        if value not in choices:
            allowed = " | ".join(choices)
            message = f"{_show(value)} is not allowed; use one of {allowed}"
            self.problem(key, message + _suggest(value, choices))
            return None
        return value

    def money(self, key: str, default: int | None = None) -> int | None:
        if key not in self.raw:
            return default
        try:
            return parse_money(self.raw[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return None

    def positive(self, key: str) -> int | None:
        if key not in self.raw:
            return None
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a positive integer, got {_kind(value)}")
            return None
        if not 0 < value <= _MAX_COUNT:
            self.problem(key, f"must be a positive integer up to {_MAX_COUNT}, got {value}")
            return None
        return value

    def flag(self, key: str, default: bool) -> bool | None:
        if key not in self.raw:
            return default
        value = self.raw[key]
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def label(self, key: str, default: str | None = None) -> str | None:
        """Human text (names, notices): no control characters."""
        value = self.text(key, default)
        if value is None:
            return None
        if _has_control(value):
            self.problem(key, "must not contain control characters (newlines, tabs...)")
            return None
        return value

    def hexa(
        self, key: str, low: int, high: int, *, even: bool = True, secret: bool = False
    ) -> str | None:
        """``low``..``high`` hex digits (an even count when ``even``), as uppercase.
        Secret values (keys) are never shown."""
        value = self.text(key)
        if value is None:
            return None
        span = f"exactly {low}" if low == high else f"{low} to {high}"
        if not _HEX.fullmatch(value):
            shown = "" if secret else f", got {_show(value)}"
            self.problem(key, f"must be {span} hex digits (0-9, A-F only){shown}")
            return None
        if not low <= len(value) <= high:
            self.problem(key, f"must be {span} hex digits, got {len(value)}")
            return None
        if even and len(value) % 2:
            self.problem(
                key, f"must be whole bytes (an even number of hex digits), got {len(value)}"
            )
            return None
        return value.upper()

    def moment(self, key: str) -> datetime | None:
        """A timezone-aware date-time: a TOML offset date-time or an ISO 8601 string."""
        if key not in self.raw:
            return None
        value = self.raw[key]
        example = "such as 2026-11-23T02:00:00+08:00"
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.problem(key, f"{_show(value)} is not an ISO 8601 date-time {example}")
                return None
        if not isinstance(value, datetime):
            self.problem(
                key, f"must be a date-time with a UTC offset {example}, got {_kind(value)}"
            )
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            self.problem(key, f"needs a UTC offset, {example}")
            return None
        return value


def _entry_label(index: int, name: str, value: object, *, pan: bool = False) -> str:
    if isinstance(value, str) and value:
        shown = mask_pan(value) if pan else _show(value)
        return f"#{index} ({name} {shown})"
    return f"#{index}"


def _capk_label(index: int, rid: object, key_index: object) -> str:
    """``#2 (rid "A000000333" index "08")``: a CA key is named by both."""
    parts = [
        f"{name} {_show(value)}"
        for name, value in (("rid", rid), ("index", key_index))
        if isinstance(value, str) and value
    ]
    return f"#{index} ({' '.join(parts)})" if parts else f"#{index}"


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.report = _Report(source)
        # natural id -> where it was first declared, for duplicates and references
        self.mids: dict[str, str] = {}
        self.tids: dict[str, str] = {}
        self.pans: dict[str, str] = {}
        self.capk_ids: dict[tuple[str, str], str] = {}
        self.aid_ids: dict[str, str] = {}
        self.chip_cards: list[str] = []

    # -- the file -------------------------------------------------------------

    def world(self, document: dict[str, Any]) -> World:
        known = (*_SINGLE_TABLES, *_ARRAY_TABLES)
        headers = [f"[{name}]" for name in _SINGLE_TABLES] + [f"[[{n}]]" for n in _ARRAY_TABLES]
        for name, value in document.items():
            if name in known:
                continue
            if isinstance(value, dict):
                header = f"[{_show_key(name)}]"
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                header = f"[[{_show_key(name)}]]"
            else:
                self.report.add("", "", _show_key(name), self._unknown_table_message(name, known))
                continue
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean {headers[known.index(close[0])]}?" if close else ""
            self.report.add(header, "", "", f"unknown table{hint or self._tables_hint()}")

        acquirer = self.acquirer(document.get("acquirer"))
        issuer = self.issuer(document.get("issuer"))
        risk = self.risk(document.get("risk"))
        merchants = [self.merchant(e) for e in self.entries(document, "merchants")]
        terminals = [self.terminal(e) for e in self.entries(document, "terminals")]
        cards = [self.card(e) for e in self.entries(document, "cards")]
        maintenance = [self.maintenance(e) for e in self.entries(document, "maintenance")]
        fields = self.dialect(document.get("dialect"))
        capks, aids = self.emv(document.get("emv"))
        if "issuer" not in document and self.chip_cards:
            self.report.add(
                "[issuer]",
                "",
                "",
                f"missing; {self.chip_cards[0]} has a chip, and chip cards need the issuer's "
                "master keys imk_ac, imk_smi, imk_smc",
            )

        if self.report.problems:
            raise WorldError(self.report.problems)
        return World(
            source=self.source,
            acquirer=_present(acquirer),
            risk=_present(risk),
            merchants=tuple(map(_present, merchants)),
            terminals=tuple(map(_present, terminals)),
            cards=tuple(map(_present, cards)),
            maintenance=tuple(map(_present, maintenance)),
            private_fields=fields,
            issuer=issuer,
            capks=tuple(map(_present, capks)),
            aids=tuple(map(_present, aids)),
        )

    def _tables_hint(self) -> str:
        return (
            "; known tables: [acquirer] [issuer] [risk] [dialect] [[merchants]] [[terminals]] "
            "[[cards]] [[maintenance]] [[emv.capk]] [[emv.aid]]"
        )

    def _unknown_table_message(self, name: str, known: Sequence[str]) -> str:
        hint = _suggest(name, known)
        return f"unknown top-level key{hint or self._tables_hint()}"

    def table(self, value: object, name: str) -> _Entry | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.report.add(f"[{name}]", "", "", f"must be a table [{name}], got {_kind(value)}")
            return None
        return _Entry(self.report, f"[{name}]", "", value)

    def entries(self, document: dict[str, Any], name: str) -> list[_Entry]:
        header = f"[[{name}]]"
        value = document.get(name, [])
        if not isinstance(value, list):
            self.report.add(
                header, "", "", f"must be an array of tables: write {header} before each entry"
            )
            return []
        natural = {"merchants": "mid", "terminals": "tid", "cards": "pan", "maintenance": "who"}
        key = natural[name]
        result = []
        for index, raw in enumerate(value, start=1):
            if not isinstance(raw, dict):
                self.report.add(header, f"#{index}", "", f"must be a table, got {_kind(raw)}")
                continue
            label = _entry_label(index, key, raw.get(key), pan=name == "cards")
            result.append(_Entry(self.report, header, label, raw, anchor=f"{header} #{index}"))
        return result

    # -- single tables --------------------------------------------------------

    def acquirer(self, value: object) -> Acquirer | None:
        entry = self.table(value, "acquirer")
        if entry is None:
            return None if value is not None else Acquirer()
        entry.keys(_ACQUIRER_KEYS)
        institution = entry.digits("institution", 1, 11, DEFAULT_INSTITUTION)
        name = entry.label("name", DEFAULT_ACQUIRER_NAME)
        if name is not None and not name.strip():
            entry.problem("name", "must not be empty")
        single_des = entry.flag("single_des", False)
        company = entry.label("company", "")
        hotline = entry.text("hotline", "")
        if hotline and not _HOTLINE.match(hotline):
            entry.problem(
                "hotline", f"must be a phone number such as 95516 or 400-820-1234, got {hotline!r}"
            )
        hours = entry.label("hours", "")
        if hours is not None and len(hours) > 60:
            entry.problem("hours", f"must be at most 60 characters, got {len(hours)}")
        if (
            entry.bad
            or institution is None
            or name is None
            or single_des is None
            or company is None
            or hours is None
        ):
            return None
        return Acquirer(
            institution=institution,
            name=name,
            single_des=single_des,
            company=company,
            hotline=hotline or "",
            hours=hours,
        )

    def dialect(self, value: object) -> tuple[FieldSpec, ...]:
        """``[dialect]``: ``fields = [ { number, format, length_type, length, meaning,
        card_data } ]``, an acquirer's private fields (spec §9, issue 15)."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.report.add("[dialect]", "", "", f"must be a table [dialect], got {_kind(value)}")
            return ()
        for key in value:
            if key != "fields":
                self.report.add("[dialect]", "", _show_key(key), "unknown key; use fields")
        try:
            return private_fields(value.get("fields", []), self.source)
        except DialectError as exc:
            for entry, key, text in exc.items:
                self.report.add("[[dialect.fields]]", entry, key, text)
            return ()

    def risk(self, value: object) -> RiskRules | None:
        entry = self.table(value, "risk")
        if entry is None:
            return None if value is not None else RiskRules()
        entry.keys(_RISK_KEYS)
        no_pin = entry.money("quickpass_no_pin_limit", DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN)
        velocity: CardVelocity | None = None
        raw = entry.raw.get("card_velocity")
        if raw is not None:
            if not isinstance(raw, dict):
                entry.problem(
                    "card_velocity",
                    f"must be a table such as {{ count = 5, window_s = 60, lock_s = 1800 }}, "
                    f"got {_kind(raw)}",
                )
            else:
                sub = _Entry(self.report, entry.table, "", raw, prefix="card_velocity.")
                sub.keys(_VELOCITY_KEYS, required=_VELOCITY_KEYS)
                count, window, lock = (sub.positive(key) for key in _VELOCITY_KEYS)
                if count is not None and window is not None and lock is not None:
                    velocity = CardVelocity(count=count, window_s=window, lock_s=lock)
                entry.bad = entry.bad or sub.bad
        if entry.bad or no_pin is None:
            return None
        return RiskRules(card_velocity=velocity, quickpass_no_pin_limit_fen=no_pin)

    def issuer(self, value: object) -> Issuer | None:
        entry = self.table(value, "issuer")
        if entry is None:
            return None
        entry.keys(_ISSUER_KEYS, required=_ISSUER_KEYS)
        keys = [entry.hexa(key, 32, 32, secret=True) for key in _ISSUER_KEYS]
        ac, smi, smc = keys
        if entry.bad or ac is None or smi is None or smc is None:
            return None
        return Issuer(bytes.fromhex(ac), bytes.fromhex(smi), bytes.fromhex(smc))

    def emv(self, value: object) -> tuple[list[EmvCapk | None], list[EmvAid | None]]:
        entry = self.table(value, "emv")
        if entry is None:
            return [], []
        entry.keys(_EMV_KEYS)
        capks = [self.capk(e) for e in self.sub_entries(entry.raw, "emv.capk", "capk")]
        aids = [self.aid(e) for e in self.sub_entries(entry.raw, "emv.aid", "aid")]
        return capks, aids

    def sub_entries(self, raw: dict[str, Any], header_name: str, name: str) -> list[_Entry]:
        header = f"[[{header_name}]]"
        value = raw.get(name, [])
        if not isinstance(value, list):
            self.report.add(
                header, "", "", f"must be an array of tables: write {header} before each entry"
            )
            return []
        result = []
        for index, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                self.report.add(header, f"#{index}", "", f"must be a table, got {_kind(item)}")
                continue
            if name == "aid":
                label = _entry_label(index, "aid", item.get("aid"))
            else:
                label = _capk_label(index, item.get("rid"), item.get("index"))
            result.append(_Entry(self.report, header, label, item, anchor=f"{header} #{index}"))
        return result

    def capk(self, entry: _Entry) -> EmvCapk | None:
        entry.keys(_CAPK_KEYS, required=_CAPK_KEYS)
        rid = entry.hexa("rid", 10, 10)
        index = entry.hexa("index", 2, 2)
        # 512 to 1984 bits: the moduli EMV allows (Book 2 annex A2.1, 248 bytes at most)
        modulus = entry.hexa("modulus", 128, 496)
        exponent = entry.text("exponent")
        if exponent is not None and exponent.upper() not in ("03", "010001"):
            entry.problem(
                "exponent",
                f'must be "03" or "010001" (EMV allows 3 and 65537), got {_show(exponent)}',
            )
            exponent = None
        expiry = entry.digits("expiry", 8, 8)
        if expiry is not None:
            try:
                date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:]))
            except ValueError:
                entry.problem("expiry", f"must be a real date YYYYMMDD, got {_show(expiry)}")
                expiry = None
        if rid is not None and index is not None:
            key = (rid, index)
            if key in self.capk_ids:
                entry.problem(
                    "index", f"duplicate; {self.capk_ids[key]} has the same rid and index"
                )
            else:
                self.capk_ids[key] = entry.anchor
        if (
            entry.bad
            or rid is None
            or index is None
            or modulus is None
            or exponent is None
            or expiry is None
        ):
            return None
        exponent = exponent.upper()
        check = capk_check_value(rid, index, modulus, exponent)
        return EmvCapk(rid, index, modulus, exponent, expiry, check)

    def aid(self, entry: _Entry) -> EmvAid | None:
        entry.keys(_AID_KEYS, required=("aid",))
        aid = entry.hexa("aid", 10, 32)
        if aid is not None:
            if aid in self.aid_ids:
                entry.problem("aid", f"duplicate; {self.aid_ids[aid]} has the same aid")
            else:
                self.aid_ids[aid] = entry.anchor
        version = entry.hexa("app_version", 4, 4) if "app_version" in entry.raw else "0030"
        floor = entry.money("floor_limit", 0)
        cl_limit = entry.money("contactless_limit", 0)
        cvm_limit = entry.money("contactless_cvm_limit", 0)
        tacs = [
            entry.hexa(key, 10, 10) if key in entry.raw else "0000000000"
            for key in ("tac_default", "tac_online", "tac_denial")
        ]
        if cvm_limit is not None and cl_limit is not None and cl_limit and cvm_limit > cl_limit:
            entry.problem(
                "contactless_cvm_limit",
                "must not be above contactless_limit (taps above it are refused)",
            )
        for name, fen in (
            ("floor_limit", floor),
            ("contactless_limit", cl_limit),
            ("contactless_cvm_limit", cvm_limit),
        ):
            if fen is not None and fen > 999_999_999_999:
                entry.problem(name, "too large for a 6-byte n12 chip amount")
        default, online, denial = tacs
        if (
            entry.bad
            or aid is None
            or version is None
            or floor is None
            or cl_limit is None
            or cvm_limit is None
            or default is None
            or online is None
            or denial is None
        ):
            return None
        return EmvAid(aid, version, floor, cl_limit, cvm_limit, default, online, denial)

    # -- arrays of tables -----------------------------------------------------

    def merchant(self, entry: _Entry) -> Merchant | None:
        entry.keys(_MERCHANT_KEYS, required=("mid",))
        mid = entry.ans("mid", 15)
        if mid is not None:
            if mid in self.mids:
                entry.problem("mid", f"duplicate; {self.mids[mid]} has the same mid")
            else:
                self.mids[mid] = entry.anchor
        name = entry.label("name", "")
        status = entry.choice("status", MERCHANT_STATUSES, "active")
        cause = self._suspension_cause(entry, status)
        arrears = entry.money("arrears", 0)
        single_limit = entry.money("single_limit", 0)
        restricted = self._restricted_types(entry)
        if cause == "arrears" and arrears == 0:
            entry.problem("arrears", "must be more than 0 when suspended for arrears")
        if (
            entry.bad
            or mid is None
            or name is None
            or status is None
            or cause is None
            or arrears is None
            or single_limit is None
            or restricted is None
        ):
            return None
        return Merchant(mid, name, status, cause, arrears, single_limit, restricted)

    def _suspension_cause(
        self, entry: _Entry, status: MerchantStatus | None
    ) -> SuspensionCause | Literal[""] | None:
        value = entry.text("suspension_cause", "")
        if value is None or status is None:
            return None
        allowed = " | ".join(SUSPENSION_CAUSES)
        if status == "suspended":
            if value == "":
                entry.problem("suspension_cause", f'required when status is "suspended": {allowed}')
                return None
            if value not in SUSPENSION_CAUSES:
                message = f"{_show(value)} is not allowed; use one of {allowed}"
                entry.problem("suspension_cause", message + _suggest(value, SUSPENSION_CAUSES))
                return None
            return value
        if value != "":
            entry.problem("suspension_cause", 'must be empty unless status is "suspended"')
            return None
        return ""

    def _restricted_types(self, entry: _Entry) -> tuple[TransactionType, ...] | None:
        raw = entry.raw.get("restricted_types", [])
        allowed = " | ".join(TRANSACTION_TYPES)
        if not isinstance(raw, list):
            entry.problem("restricted_types", f"must be an array of strings, got {_kind(raw)}")
            return None
        result: list[TransactionType] = []
        ok = True
        for item in raw:
            if not isinstance(item, str) or item not in TRANSACTION_TYPES:
                shown = _show(item) if isinstance(item, str) else _kind(item)
                hint = _suggest(item, TRANSACTION_TYPES) if isinstance(item, str) else ""
                message = f"{shown} is not a transaction type; use {allowed}{hint}"
                entry.problem("restricted_types", message)
                ok = False
            elif item in result:
                entry.problem("restricted_types", f"{_show(item)} is listed twice")
                ok = False
            else:
                result.append(item)
        return tuple(result) if ok else None

    def terminal(self, entry: _Entry) -> Terminal | None:
        entry.keys(_TERMINAL_KEYS, required=("tid", "mid", "tmk"))
        tid = entry.ans("tid", 8)
        if tid is not None:
            if tid in self.tids:
                entry.problem("tid", f"duplicate; {self.tids[tid]} has the same tid")
            else:
                self.tids[tid] = entry.anchor
        mid = entry.ans("mid", 15)
        if mid is not None and mid not in self.mids:
            entry.problem("mid", f"no [[merchants]] entry has mid {_show(mid)}")
        tmk = self._tmk(entry)
        status = entry.choice("status", TERMINAL_STATUSES, "active")
        min_software = entry.text("min_software", "0")
        try:  # the earlier MMmmpp form ("000100") is read as the version it names (0.1.0)
            min_software = normalise_version(min_software) if min_software is not None else None
        except ValueError:
            entry.problem(
                "min_software",
                "must be an application version of up to 8 characters such as "
                f'"0.1.0" (compared with field 59 A2/05), got {_show(min_software)}',
            )
            min_software = None
        dialect = entry.choice("dialect", DIALECTS, "cup")
        operators = self._operators(entry)
        chip = entry.flag("chip", False)
        if (
            entry.bad
            or chip is None
            or tid is None
            or mid is None
            or tmk is None
            or status is None
            or min_software is None
            or operators is None
            or dialect is None
        ):
            return None
        return Terminal(tid, mid, tmk, status, min_software, operators, dialect, chip=chip)

    def _tmk(self, entry: _Entry) -> bytes | None:
        value = entry.text("tmk")
        if value is None:
            return None
        if not _HEX.fullmatch(value):
            entry.problem("tmk", "must be 32 hex digits (0-9, A-F only)")
            return None
        if len(value) != 32:
            entry.problem("tmk", f"must be exactly 32 hex digits, got {len(value)}")
            return None
        return bytes.fromhex(value)

    def _operators(self, entry: _Entry) -> tuple[Operator, ...] | None:
        raw = entry.raw.get("operators", [])
        if not isinstance(raw, list):
            entry.problem(
                "operators",
                'must be an array such as [ { no = "01", password = "0000" } ], '
                f"got {_kind(raw)}",
            )
            return None
        result: list[Operator] = []
        seen: dict[str, str] = {}
        ok = True
        for index, item in enumerate(raw, start=1):
            no_value = item.get("no") if isinstance(item, dict) else None
            label = "operators " + _entry_label(index, "no", no_value)
            if not isinstance(item, dict):
                entry.problem(
                    label, f"must be a table {{ no = ..., password = ... }}, got {_kind(item)}"
                )
                ok = False
                continue
            sub = _Entry(self.report, entry.table, entry.entry, item, prefix=f"{label}: ")
            sub.keys(_OPERATOR_KEYS, required=("no", "password"))
            no = sub.digits("no", 2, 3)
            if no is not None:
                if no in seen:
                    sub.problem("no", f"duplicate; {seen[no]} has the same no")
                else:
                    seen[no] = f"operators #{index}"
            password = sub.text("password")
            if password is not None and not (4 <= len(password) <= 12 and _printable(password)):
                sub.problem("password", "must be 4 to 12 printable ASCII characters, no spaces")
                password = None
            supervisor = sub.flag("supervisor", False)
            if sub.bad or no is None or password is None or supervisor is None:
                entry.bad = True
                ok = False
                continue
            result.append(Operator(no=no, password=password, supervisor=supervisor))
        return tuple(result) if ok else None

    def card(self, entry: _Entry) -> Card | None:
        entry.keys(_CARD_KEYS, required=("pan", "expiry", "pin", "balance"))
        # The PAN is checked for 13-19 digits but NOT for its Luhn check digit:
        # the contract's own example card 6222021234567890123 (spec/world.md and the
        # worked purchase in spec/pos8583.md) fails Luhn, and worlds must accept it.
        # The PANs invented for examples/world.toml are all Luhn-valid regardless.
        pan = entry.digits("pan", 13, 19, secret=True)
        if pan is not None:
            if pan in self.pans:
                entry.problem("pan", f"duplicate; {self.pans[pan]} has the same pan")
            else:
                self.pans[pan] = entry.anchor
        expiry = entry.digits("expiry", 4, 4, secret=True)
        if expiry is not None and not 1 <= int(expiry[2:]) <= 12:
            entry.problem("expiry", "must be YYMM with a month from 01 to 12")
            expiry = None
        pin = entry.digits("pin", 4, 12, secret=True)
        balance = entry.money("balance")
        status = entry.choice("status", CARD_STATUSES, "normal")
        daily_limit = entry.money("daily_limit", 0)
        organisation = entry.choice("organisation", ORGANISATIONS, "CUP")
        chip = self._chip(entry)
        if (
            entry.bad
            or pan is None
            or expiry is None
            or pin is None
            or balance is None
            or status is None
            or daily_limit is None
            or organisation is None
        ):
            return None
        if chip is not None:
            self.chip_cards.append(entry.anchor)
        return Card(pan, expiry, pin, balance, status, daily_limit, organisation, chip)

    def _chip(self, entry: _Entry) -> Chip | None:
        raw = entry.raw.get("chip")
        if raw is None:
            return None
        if not isinstance(raw, dict):
            entry.problem(
                "chip",
                'must be a table such as { psn = "01", cvn = "18", service_code = "220" }, '
                f"got {_kind(raw)}",
            )
            return None
        sub = _Entry(self.report, entry.table, entry.entry, raw, prefix="chip.")
        sub.keys(_CHIP_KEYS, required=("psn", "cvn"))
        psn = sub.digits("psn", 2, 2)
        cvn = sub.choice("cvn", CVNS)
        service_code = sub.digits("service_code", 3, 3, "220")
        if service_code is not None and service_code[0] not in "26":
            sub.problem(
                "service_code",
                f"{_show(service_code)} does not say chip; a chip card's service code "
                'starts with 2 (international) or 6 (national), such as "220"',
            )
            service_code = None
        if sub.bad or psn is None or cvn is None or service_code is None:
            entry.bad = True
            return None
        return Chip(psn, cvn, service_code)

    def maintenance(self, entry: _Entry) -> Maintenance | None:
        entry.keys(_MAINTENANCE_KEYS, required=_MAINTENANCE_KEYS)
        who = entry.choice("who", MAINTENANCE_WHO)
        start = entry.moment("start")
        end = entry.moment("end")
        if start is not None and end is not None and end <= start:
            entry.problem("end", "must be after start")
        notices: list[str | None] = []
        for key in ("notice_zh", "notice_en"):
            notice = entry.label(key)
            if notice is not None and not notice.strip():
                entry.problem(key, "must not be empty")
                notice = None
            notices.append(notice)
        notice_zh, notice_en = notices
        if (
            entry.bad
            or who is None
            or start is None
            or end is None
            or notice_zh is None
            or notice_en is None
        ):
            return None
        return Maintenance(who, start, end, notice_zh, notice_en)


_T = TypeVar("_T")


def _present(value: _T | None) -> _T:
    """Narrow after validation: with no problems reported, nothing is ``None``."""
    if value is None:  # pragma: no cover - guarded by the problem count
        raise AssertionError("world value missing although no problem was reported")
    return value
