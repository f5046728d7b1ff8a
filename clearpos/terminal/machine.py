"""The virtual POS terminal: commands, the reversal and offline rules, sign-on, settlement.

:class:`Terminal` holds one terminal's :class:`~clearpos.terminal.store.Store`
and a :class:`~clearpos.terminal.client.Link` to the host; each public method is
one operator command and returns an :class:`~clearpos.terminal.screens.Outcome`.

The rules it keeps (spec/pos8583.md §4-§6):

- a reversible request's reversal (reason 98) is stored durably *before* the
  request leaves; an answer clears it; an approved answer whose MAC fails turns
  it into reason A0, a crash between the answer and its recording into 96;
- the pending reversal goes out before any other online message, up to three
  tries per command, and 00 / 12 / 25 mean done;
- queued offline sales are uploaded (0220, 60.1 = 30) before the next
  transaction or settlement; 94 on an upload means the host already has it;
- 99, A0, 77 or processing requirement 3: sign on again by itself, then tell the
  operator to repeat -- nothing is ever re-sent silently, every request has a
  new STAN (persisted before it is sent);
- processing requirement 1: download the parameters and show the notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from clearpos.issuer.card import (
    ChipCard,
    FirstAc,
    TerminalData,
    bound,
    load_card,
    reversal_field55,
)
from clearpos.keys import KekError, KeyCheckError, KeyEncryptionKey, SealedKeyError, TerminalKeys
from clearpos.reasons import Lang
from clearpos.versions import normalise_version
from clearpos.wire import (
    TPDU,
    BatchRecord,
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    Card,
    FinancialRequest,
    FinancialResponse,
    Frame,
    Header,
    Kind,
    Message,
    NetCode,
    NetworkRequest,
    NetworkResponse,
    OriginalRef,
    Param,
    ParameterDownload,
    ParameterDownloadResponse,
    ParamRecord,
    Request,
    Reversal,
    ReversalResponse,
    Settlement,
    Settlement48,
    SettlementResponse,
    SignOn,
    SignOnResponse,
    Totals,
    WireError,
    build,
    encode_frame,
    encode_params,
    needs_mac,
    parse,
    request_mti,
    response_mti,
)
from clearpos.wire.mask import mask_pan
from clearpos.wire.terminfo import TerminalInfo

from . import store as st
from .client import Link, LinkError, NoAnswer, Unreachable
from .receipts import Receipt, SettlementSlip, save_text
from .screens import Outcome, fen_text, finish, note, reason_of, remedy_of, screen_of

if TYPE_CHECKING:
    from .doctor import DoctorReport
from .store import JournalRow, PendingReversal, RequestSealer, Store, now_text, without_pin

__all__ = [
    "DEFAULT_OPERATORS",
    "CardInput",
    "Terminal",
    "TerminalError",
    "parse_operators",
]

DEFAULT_OPERATORS = "01:0000,99:123456:supervisor"
DEFAULT_SOFTWARE = "0.1.0"
#: "clearpos": the project's own terminal (also reads the [ext] notice records);
#: "cup": behaves as a stock Q/CUP countertop terminal does (spec §9): sign-on 004,
#: TDK-encrypted tracks, voids naming the original by batch + STAN (12-digit 61)
DIALECTS = ("clearpos", "cup")
REVERSAL_DONE = frozenset({"00", "12", "25"})
RESIGN_CODES = frozenset({"99", "A0", "77"})
REVERSAL_TRIES = 3
VOID_OF = {
    Kind.PURCHASE: Kind.VOID,
    Kind.COMPLETION: Kind.COMPLETION_VOID,
    Kind.PREAUTH: Kind.PREAUTH_VOID,
}
DEBIT_KINDS = ("purchase", "completion", "offline")
CREDIT_KINDS = ("refund", "void", "completion_void")
FOREIGN_ORGS = frozenset({"VIS", "MCC", "JCB", "AMX"})
_PBKDF2_ROUNDS = 60_000


class TerminalError(Exception):
    """A configuration problem (wrong state directory, missing TMK...): bad usage."""


class TerminalKekError(TerminalError):
    """The state's keys cannot be opened (KEK unusable or not theirs): refused, not bad usage."""


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class CardInput:
    """Card data as the operator gave it; ``repr`` never shows the PAN or the PIN."""

    pan: str
    expiry: str
    pin: str | None = None
    keyed: bool = False
    #: a simulated chip card file (``clearpos admin cards personalise``): inserted, or
    #: tapped (QuickPass) with ``tap``; ``chip_fails`` makes the chip unreadable, so the
    #: terminal falls back to the swipe (22 = 80x)
    chip: Path | None = None
    tap: bool = False
    chip_fails: bool = False

    @classmethod
    def of_chip(
        cls, path: Path, *, pin: str | None = None, tap: bool = False, chip_fails: bool = False
    ) -> CardInput:
        """The card in a card file, as the reader will see it."""
        card = load_card(path)
        return cls(card.pan, card.expiry, pin, False, Path(path), tap, chip_fails)

    def card(self, keys: TerminalKeys | None) -> Card:
        """The wire card: track 2 for a swipe, field 2 for a keyed entry, PIN block if a PIN."""
        block = keys.pin_block(self.pin, self.pan) if keys is not None and self.pin else None
        if self.keyed:
            return Card.keyed(self.pan, self.expiry, pin_block=block)
        return Card.swiped(self.pan, self.expiry, pin_block=block)

    def __repr__(self) -> str:
        how = "tap" if self.tap else ("chip" if self.chip else ("keyed" if self.keyed else "swipe"))
        return f"CardInput(pan={mask_pan(self.pan)!r}, {how}, pin={bool(self.pin)})"

    __str__ = __repr__


def parse_operators(spec: str) -> dict[str, dict[str, Any]]:
    """``"01:0000,99:123456:supervisor"`` -> operators with salted password hashes.

    ValueError (naming the entry, never the password) when malformed.
    """
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(p.strip() for p in spec.split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "supervisor"):
            raise ValueError(
                f"operator entry {i + 1} must be NO:PASSWORD or NO:PASSWORD:supervisor"
            )
        no, password = parts[0], parts[1]
        if not (no.isdecimal() and 1 <= len(no) <= 3):
            raise ValueError(f"operator entry {i + 1}: operator number must be 1-3 digits")
        if not password:
            raise ValueError(f"operator entry {i + 1}: password must not be empty")
        out[no] = _hash_operator(password, supervisor=len(parts) == 3)
    if not out:
        raise ValueError("at least one operator is needed")
    return out


def _hash_operator(password: str, *, supervisor: bool) -> dict[str, Any]:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
    return {"salt": salt.hex(), "hash": digest.hex(), "supervisor": supervisor}


def _password_ok(entry: dict[str, Any], password: str) -> bool:
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(entry["salt"]), _PBKDF2_ROUNDS
    )
    return hmac.compare_digest(digest.hex(), str(entry["hash"]))


# ---------------------------------------------------------------------------- internals


@dataclass(frozen=True, slots=True)
class _Reply:
    msg: Message
    header: Header
    mac_ok: bool | None
    rtt: float


class _Abort(Exception):
    """Stop the command with this outcome (nothing more is sent)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


def _batch_of(msg: Request) -> str | None:
    """The 60.2 an answer to ``msg`` must echo (None: not checked)."""
    if isinstance(msg, SignOn):
        return None
    if isinstance(msg, Reversal | BatchUploadItem):
        return msg.request.batch
    return msg.batch


def _next_batch(batch: str) -> str:
    return f"{int(batch) % 999999 + 1:06d}"


class Terminal:
    """One virtual POS terminal whose state lives in ``state_dir``.

    ``tid``, ``mid`` and ``tmk`` are needed the first time; afterwards they are
    read from the state (a different ``tmk`` is a key injection: the working
    keys are dropped and the terminal must sign on again).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        link: Link,
        tid: str | None = None,
        mid: str | None = None,
        tmk: bytes | None = None,
        software: str | None = None,
        operators: str | None = None,
        floor_limit_fen: int | None = None,
        lang: Lang = "zh",
        tz: str = "Asia/Shanghai",
        kek: KeyEncryptionKey | None = None,
        dialect: str | None = None,
    ) -> None:
        self.lang: Lang = lang
        self.link = link
        self.tz = ZoneInfo(tz)
        self.store = Store(state_dir)
        try:
            self._configure(state_dir, tid, mid, tmk, software, operators, floor_limit_fen, kek)
            if dialect is not None:
                if dialect not in DIALECTS:
                    raise TerminalError(f"dialect must be one of {' | '.join(DIALECTS)}")
                self.store.put(dialect=dialect)
        except BaseException:
            self.store.close()
            raise
        self._reset_command()

    # ------------------------------------------------------------------ setup

    def _configure(
        self,
        state_dir: Path,
        tid: str | None,
        mid: str | None,
        tmk: bytes | None,
        software: str | None,
        operators: str | None,
        floor_limit_fen: int | None,
        kek: KeyEncryptionKey | None,
    ) -> None:
        s = self.store
        stored_tid = s.get("tid")
        if tid and stored_tid and tid != stored_tid:
            raise TerminalError(
                f"state directory {state_dir} belongs to terminal {stored_tid}, not {tid}"
            )
        tid = tid or stored_tid
        if not tid or len(tid) != 8:
            raise TerminalError("terminal id (--tid) must be 8 characters")
        stored_mid = s.get("mid")
        if mid and stored_mid and mid != stored_mid:
            raise TerminalError(
                f"state directory {state_dir} belongs to merchant {stored_mid}, not {mid}"
            )
        mid = mid or stored_mid
        if not mid or len(mid) != 15:
            raise TerminalError("merchant id (--mid) must be 15 characters (first use)")
        try:
            self.kek = kek or KeyEncryptionKey.load(state_dir / "kek")
        except KekError as exc:
            raise TerminalKekError(str(exc)) from None
        self.sealer = RequestSealer(self.kek, tid)
        sealed = s.get("keys")
        keys: TerminalKeys | None = None
        if sealed:
            try:
                keys = TerminalKeys.from_sealed(self.kek, sealed, tid)
            except SealedKeyError as exc:
                raise TerminalKekError(
                    f"the keys in {state_dir} do not open with this KEK ({exc}); "
                    "use the KEK they were sealed with"
                ) from None
        updates: dict[str, Any] = {"tid": tid, "mid": mid}
        if tmk is not None:
            fresh = TerminalKeys(tmk)
            if keys is None or keys.check_values()["tmk"] != fresh.check_values()["tmk"]:
                keys = fresh
                updates["keys"] = keys.to_sealed(self.kek, tid)
                updates["signed_on"] = False
        if keys is None:
            raise TerminalError("first use of this state directory: give the TMK with --tmk HEX")
        self.keys = keys
        if software is not None:
            updates["software"] = software
        if floor_limit_fen is not None:
            updates["floor_limit_fen"] = floor_limit_fen
        if s.get("operators") is None:
            updates["operators"] = parse_operators(operators or DEFAULT_OPERATORS)
        if s.get("batch") is None:
            updates["batch"] = "000001"
        s.put(**updates)
        if not s.get("signed_on", False) and self.keys.signed_on:
            self.keys.sign_off()

    def close(self) -> None:
        """Drop the connection and release the state directory."""
        try:
            self.link.close()
        finally:
            self.store.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    @property
    def tid(self) -> str:
        return str(self.store.get("tid"))

    @property
    def mid(self) -> str:
        return str(self.store.get("mid"))

    @property
    def batch(self) -> str:
        return str(self.store.get("batch", "000001"))

    @property
    def software(self) -> str:
        """The application version this terminal reports in field 59 (A2/05)."""
        return normalise_version(str(self.store.get("software", DEFAULT_SOFTWARE)))

    @property
    def dialect(self) -> str:
        return str(self.store.get("dialect", "clearpos"))

    @property
    def floor_limit_fen(self) -> int:
        return int(self.store.get("floor_limit_fen", 0))

    @property
    def operator(self) -> str | None:
        """The signed-in operator number, if any."""
        op = self.store.get("operator")
        return str(op) if op else None

    @property
    def signed_on(self) -> bool:
        return bool(self.store.get("signed_on", False)) and self.keys.signed_on

    def operators(self) -> dict[str, bool]:
        """Operator numbers and whether each is a supervisor (no passwords)."""
        ops: dict[str, dict[str, Any]] = self.store.get("operators", {})
        return {no: bool(e.get("supervisor")) for no, e in sorted(ops.items())}

    def set_floor_limit(self, fen: int) -> None:
        """Offline floor limit in fen (0 disables offline sales)."""
        self.store.put(floor_limit_fen=fen)

    def _save_keys(self, signed_on: bool, **more: Any) -> None:
        self.store.put(keys=self.keys.to_sealed(self.kek, self.tid), signed_on=signed_on, **more)

    def _reset_command(self) -> None:
        #: the chip card of the sale in progress and its first GENERATE AC
        self._chip: tuple[ChipCard, FirstAc] | None = None
        self._requirements: set[int] = set()
        self._need_resign = False
        self._resigned = False
        self._downloaded = False
        self._lines: list[str] = []
        self._extra: dict[str, Any] = {}

    # ------------------------------------------------------------------ commands

    def _run(self, command: str, body: Callable[[], Outcome]) -> Outcome:
        self._reset_command()
        try:
            try:
                out = body()
            except _Abort as stop:
                out = stop.outcome
            return finish(self._after(out), self.lang)  # the words of the outcome's kind
        finally:
            self.link.close()  # one connection per command

    def login(self, operator: str, password: str) -> Outcome:
        """Operator sign-in (checked locally), then sign-on if the terminal is not signed on."""
        return self._run("login", lambda: self._login(operator, password))

    def logout(self) -> Outcome:
        """Operator sign-out (local)."""

        def body() -> Outcome:
            self.store.put(operator=None)
            self.store.journal_add(kind="logout", stan="", batch=self.batch, status=st.LOCAL)
            return self._ok("logout", "approved", [note("operator_out", self.lang)])

        return self._run("logout", body)

    def set_operators(self, spec: str, supervisor_password: str | None) -> Outcome:
        """Replace the operator list (needs a supervisor's password)."""

        def body() -> Outcome:
            self._require_supervisor("operators", supervisor_password)
            try:
                ops = parse_operators(spec)
            except ValueError as exc:
                raise TerminalError(str(exc)) from None
            self.store.put(operators=ops)
            return self._ok("operators", "approved", [])

        return self._run("operators", body)

    def signon(self) -> Outcome:
        """POS sign-on (0800, 60.3 003) with the signed-in operator."""
        return self._run("signon", self._signon_command)

    def signoff(self) -> Outcome:
        """POS sign-off (0820, 60.3 002): the working keys are forgotten."""
        return self._run("signoff", self._signoff)

    def parameters(self) -> Outcome:
        """Parameter download (0800, 60.3 360): the standard records (timeout, redial,
        merchant name …) and, for the clearpos dialect, the [ext] notices."""
        return self._run("parameters", self._parameters_command)

    def status_upload(self) -> Outcome:
        """Status upload (0820, 60.3 362): hardware states 01-05 and the parameters this
        terminal holds, as the public terminal code sends them."""
        return self._run("status", self._status_command)

    def echo(self) -> Outcome:
        """Echo test (0820, 60.3 301), after any pending reversal and offline upload."""
        return self._run("echo", self._echo)

    def purchase(self, amount_fen: int, card: CardInput) -> Outcome:
        """Purchase (0200, 60.1 22); offline when the host is unreachable and under the floor."""
        return self._run("purchase", lambda: self._sale(Kind.PURCHASE, amount_fen, card))

    def preauth(self, amount_fen: int, card: CardInput) -> Outcome:
        """Pre-authorisation (0100, 60.1 10)."""
        return self._run("preauth", lambda: self._sale(Kind.PREAUTH, amount_fen, card))

    def balance(self, card: CardInput) -> Outcome:
        """Balance inquiry (0200, 60.1 01)."""
        return self._run("balance", lambda: self._sale(Kind.BALANCE, None, card))

    def void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the sale, completion or pre-authorisation with this STAN."""
        return self._run("void", lambda: self._void(stan, supervisor_password, None))

    def preauth_void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the pre-authorisation with this STAN (0100, 60.1 11)."""
        return self._run(
            "preauth_void", lambda: self._void(stan, supervisor_password, Kind.PREAUTH)
        )

    def completion_void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the completion with this STAN (0200, 60.1 21)."""
        return self._run(
            "completion_void", lambda: self._void(stan, supervisor_password, Kind.COMPLETION)
        )

    def complete(
        self, amount_fen: int, preauth_stan: str, card: CardInput | None = None
    ) -> Outcome:
        """Pre-authorisation completion (0200, 60.1 20) of the pre-auth with this STAN."""
        return self._run("complete", lambda: self._complete(amount_fen, preauth_stan, card))

    def refund(
        self,
        amount_fen: int,
        rrn: str,
        card: CardInput | None = None,
        *,
        original_date: str | None = None,
        supervisor_password: str | None = None,
    ) -> Outcome:
        """Refund (0220, 60.1 25) of the sale with this RRN; never reversed, never re-sent."""
        return self._run(
            "refund",
            lambda: self._refund(amount_fen, rrn, card, original_date, supervisor_password),
        )

    def settle(self) -> Outcome:
        """Settlement (0500), batch upload when unbalanced, then a new batch."""
        return self._run("settle", self._settle)

    # ------------------------------------------------------------------ outcomes

    def _ok(self, command: str, key: str, lines: list[str], **extra: Any) -> Outcome:
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=True,
            screen=screen_of(key, None, self.lang),
            lines=lines,
            extra=extra,
        )

    def _local(
        self,
        command: str,
        key: str,
        *,
        financial: bool = False,
        detail: str | None = None,
        more_lines: list[str] | None = None,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Outcome:
        """Refused or failed on the terminal's side: nothing was answered by the host."""
        row: dict[str, Any] = {"kind": command, "stan": "", "batch": self.batch, "status": st.LOCAL}
        if detail is not None:
            row["detail"] = detail
        self.store.journal_add(reason=key, **row)
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=False,
            screen=screen_of(key, None, self.lang),
            financial=financial,
            charged=False if financial else None,
            remedy=remedy_of(key, self.lang),
            lines=(self._not_sent(command) if financial else []) + (more_lines or []),
            extra={**(fields or {}), **extra},
        )

    def _not_sent(self, command: str) -> list[str]:
        plain = command in ("void", "refund", "completion_void", "preauth_void", "balance")
        return [note("not_sent_plain" if plain else "not_sent", self.lang)]

    def _require_operator(self, command: str, financial: bool = True) -> str:
        op = self.operator
        if op is None:
            raise _Abort(self._local(command, "operator.not_signed_in", financial=financial))
        return op

    def _require_supervisor(self, command: str, password: str | None) -> None:
        ops: dict[str, dict[str, Any]] = self.store.get("operators", {})
        current = self.operator
        if password is None:
            if current is not None and ops.get(current, {}).get("supervisor"):
                return
            raise _Abort(
                self._local(command, "operator.wrong_password", financial=True, needs="supervisor")
            )
        if any(e.get("supervisor") and _password_ok(e, password) for e in ops.values()):
            return
        raise _Abort(self._local(command, "operator.wrong_password", financial=True))

    def _require_signed_on(self, command: str) -> None:
        if not self.signed_on:
            raise _Abort(self._local(command, "terminal.not_signed_on", financial=True))

    def _unreachable(self, command: str, exc: LinkError, *, financial: bool) -> Outcome:
        key = "network.unreachable" if isinstance(exc, Unreachable) else "network.timeout"
        return self._local(
            command,
            key,
            financial=financial,
            detail=str(exc),
            more_lines=self._lines,
            fields={"error": str(exc), **self._extra},
        )

    def _after(self, out: Outcome) -> Outcome:
        """Act on what the host asked (re-sign-on, parameters), then finish the outcome."""
        if (self._need_resign or 3 in self._requirements) and not self._resigned:
            ok = self._resign()
            if not out.approved and out.financial:
                out.lines.append(note("repeat" if ok else "resign_failed", self.lang))
        elif self._resigned and self._need_resign and not out.approved and out.financial:
            out.lines.append(note("repeat", self.lang))
        if self._resigned:
            out.extra["resigned_on"] = True
        if 1 in self._requirements and not self._downloaded:
            notice = self._download_parameters()
            if notice:
                out.notice = notice
        for line in self._lines:
            if line not in out.lines:
                out.lines.append(line)
        for k, v in self._extra.items():
            out.extra.setdefault(k, v)
        return out

    # ------------------------------------------------------------------ the wire

    def _on_the_wire(self, msg: Request) -> Request:
        """The request as this terminal's dialect sends it: field 59 with the
        application version in every request; a stock (cup) terminal holding a TDK
        also encrypts the tracks (53.3 = 1)."""
        if getattr(msg, "info", "") is None:
            msg = replace(msg, info=TerminalInfo.build(app_version=self.software).encode())
        if self.dialect == "cup" and self.keys.has_tdk:
            if isinstance(msg, FinancialRequest) and msg.card is not None:
                msg = replace(msg, card=replace(msg.card, tracks_encrypted=True))
            elif isinstance(msg, Reversal | BatchUploadItem) and msg.request.card is not None:
                card = replace(msg.request.card, tracks_encrypted=True)
                msg = replace(msg, request=replace(msg.request, card=card))
        return msg

    def _exchange(self, msg: Request) -> _Reply:
        """Send one request and wait for its answer (raises LinkError)."""
        msg = self._on_the_wire(msg)
        mac = self.keys.mac if needs_mac(msg) else None
        tdk = self.keys.track_encryptor() if self.keys.has_tdk else None
        body = build(msg, mac=mac, tdk=tdk)
        want = response_mti(request_mti(msg) or "")
        # the header's reserved digits carry nothing (spec §1): 000000, as stock terminals
        frame = encode_frame(TPDU(), Header(), body)
        got: list[tuple[Message, bytes | None, bytes | None]] = []
        batch = _batch_of(msg)

        def accept(f: Frame) -> bool:
            if f.body[:2].hex() != want:
                return False
            try:
                parsed = parse(f.body, base=13)
            except WireError:
                return False
            m = parsed[0]
            if (m.stan, m.tid, m.mid) != (msg.stan, msg.tid, msg.mid):
                return False
            # 60.2 too (spec §3), except for a sign-on: its answer brings the host's batch
            if batch is not None and getattr(m, "batch", batch) != batch:
                return False
            got.append(parsed)
            return True

        started = time.monotonic()
        answer = self.link.exchange(frame, accept)
        rtt = time.monotonic() - started
        m, block, code = got[-1]
        if answer.header.processing:
            self._requirements.add(answer.header.processing)
        mac_ok: bool | None = None
        if needs_mac(m):
            mac_ok = bool(
                code is not None
                and block is not None
                and self.keys.signed_on
                and self.keys.verify_mac(block, code)
            )
        return _Reply(m, answer.header, mac_ok, rtt)

    # ------------------------------------------------------------------ reversal

    def _deliver_reversal(self) -> bool:
        """Send the pending reversal (up to 3 tries); True when none is pending any more."""
        pending = self.store.reversal()
        if pending is None:
            return True
        if not self.keys.signed_on:
            return False
        original = self.sealer.open(pending.sealed)
        resigned = False
        for _ in range(REVERSAL_TRIES):
            current = self.store.reversal()
            if current is None:
                return True
            rev = Reversal.of(original, current.reason_code)
            try:
                reply = self._exchange(rev)
            except LinkError as exc:
                self.store.reversal_attempt(str(exc))
                self._journal_reversal(
                    current, st.TIMEOUT, "network.timeout", current.reason_code, str(exc)
                )
                continue
            m = reply.msg
            answer = m.code if isinstance(m, ReversalResponse) else None
            if answer in REVERSAL_DONE:
                self.store.reversal_done(
                    st.REVERSED, detail=f"reversal (reason {current.reason_code}) answered {answer}"
                )
                self._journal_reversal(
                    current,
                    st.APPROVED,
                    reason_of(answer, getattr(m, "reason", "")),
                    answer or "",
                    f"reversal reason {current.reason_code} for {current.kind}",
                )
                self._extra["reversal"] = {
                    "stan": current.stan,
                    "kind": current.kind,
                    "reason_code": current.reason_code,
                    "answer": answer,
                    "done": True,
                }
                return True
            self.store.reversal_attempt(f"answered {answer}")
            self._journal_reversal(
                current, st.DECLINED, reason_of(answer, getattr(m, "reason", "")), answer or ""
            )
            if (answer in RESIGN_CODES or reply.header.processing == 3) and not resigned:
                resigned = True
                if not self._resign():
                    break
        left = self.store.reversal()
        if left is not None:
            self._extra["reversal"] = {
                "stan": left.stan,
                "kind": left.kind,
                "reason_code": left.reason_code,
                "done": False,
                "tries": left.tries,
            }
            return False
        return True

    def _journal_reversal(
        self, pending: PendingReversal, status: str, reason: str, code: str, detail: str = ""
    ) -> None:
        """One journal row per reversal attempt, with the original's identity."""
        self.store.journal_add(
            kind="reversal",
            stan=pending.stan,
            batch=pending.batch,
            amount_fen=pending.amount_fen,
            pan=pending.pan,
            status=status,
            reason=reason,
            code=code,
            detail=detail,
        )

    def _reversal_blocked(self, command: str) -> Outcome:
        key = "reversal.pending"
        pending = self.store.reversal()
        self.store.journal_add(
            kind=command,
            stan="",
            batch=self.batch,
            status=st.LOCAL,
            reason=key,
            detail=f"pending reversal STAN {pending.stan if pending else '?'} not delivered",
        )
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=False,
            screen=screen_of(key, None, self.lang),
            financial=True,
            charged=False,
            remedy=remedy_of(key, self.lang),
            lines=self._not_sent(command),
        )

    # ------------------------------------------------------------------ offline

    def _upload_offline(self, command: str) -> None:
        """Upload queued offline sales; raises _Abort when the link fails."""
        for row in self.store.journal("status = ?", (st.OFFLINE_STORED,)):
            if row.sealed is None:
                continue
            req = self.sealer.open(row.sealed)
            try:
                reply = self._exchange(req)
                m = reply.msg
                if (
                    isinstance(m, FinancialResponse)
                    and m.code == "77"
                    and req.batch != self.batch
                    and self.keys.signed_on
                ):
                    # The host closed the sale's batch without it (a settlement whose
                    # answer was lost) and, not answering 94, does not have it: the sale
                    # moves to the current batch under a new STAN and goes now.
                    req = self._move_offline(row, req)
                    reply = self._exchange(req)
                    m = reply.msg
            except LinkError as exc:
                self.store.journal_update(row.id, detail=f"upload failed: {exc}")
                raise _Abort(self._unreachable(command, exc, financial=True)) from None
            if not isinstance(m, FinancialResponse):
                continue
            code = m.code or ""
            key = reason_of(code, m.reason)
            if code == "00" and reply.mac_ok is False:
                self._need_resign = True
                continue  # stays queued; the host has it or will say 94 next time
            if code in ("00", "94"):
                self.store.journal_update(
                    row.id,
                    status=st.OFFLINE_UPLOADED,
                    code=code,
                    reason=key,
                    rrn=m.rrn or row.rrn,
                    org=m.organisation.strip(),
                    host_date=m.host_date or "",
                    host_time=m.host_time or "",
                )
                self._lines.append(note("offline_uploaded", self.lang, stan=row.stan))
                self._extra.setdefault("offline_uploads", []).append(
                    {"stan": row.stan, "code": code, "reason": key, "uploaded": True}
                )
            elif code in RESIGN_CODES:
                self._need_resign = True
                break
            else:
                self.store.journal_update(row.id, status=st.OFFLINE_DECLINED, code=code, reason=key)
                self._lines.append(note("offline_declined", self.lang, stan=row.stan))
                self._extra.setdefault("offline_uploads", []).append(
                    {"stan": row.stan, "code": code, "reason": key, "uploaded": False}
                )

    def _move_offline(self, row: JournalRow, req: FinancialRequest) -> FinancialRequest:
        """Re-issue a stored offline sale in the current batch with a new STAN."""
        moved = replace(req, stan=self.store.next_stan(), batch=self.batch)
        self.store.journal_update(
            row.id,
            stan=moved.stan,
            batch=moved.batch,
            sealed=self.sealer.seal(moved),
            detail=f"moved from batch {req.batch} STAN {req.stan}: the host had closed that batch",
        )
        self._lines.append(
            note("offline_moved", self.lang, old=req.stan, batch=req.batch, stan=moved.stan)
        )
        return moved

    def _prelude(self, command: str, *, offline: bool = True, need_keys: bool = True) -> None:
        """What must go before any online message: the reversal, then offline sales.

        Raises :class:`Unreachable` when the host cannot be reached at all, and
        stops the command when the reversal cannot be delivered or (``need_keys``)
        an automatic sign-on on the way failed and left the terminal without keys.
        """
        self.link.connect()
        if self.store.reversal() is not None and self.keys.signed_on:
            if not self._deliver_reversal():
                raise _Abort(self._reversal_blocked(command))
            self._lines.append(
                note("reversal_sent", self.lang, stan=self._extra["reversal"]["stan"])
            )
        if offline and self.keys.signed_on:
            self._upload_offline(command)
        if need_keys and not self.keys.signed_on:
            raise _Abort(self._local(command, "terminal.not_signed_on", financial=True))

    # ------------------------------------------------------------------ sign-on

    def _sign_on(self, operator: str) -> tuple[bool, str, str | None]:
        """0800 sign-on; returns (ok, reason key, field 39)."""
        stan = self.store.next_stan()
        msg = SignOn(
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            operator=operator.ljust(3)[:3],
            # a stock terminal asks for keys with a track data key (004)
            netcode=NetCode.SIGN_ON_TDK if self.dialect == "cup" else NetCode.SIGN_ON,
        )
        try:
            reply = self._exchange(msg)
        except LinkError as exc:
            key = "network.unreachable" if isinstance(exc, Unreachable) else "network.timeout"
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.TIMEOUT,
                reason=key,
                operator=operator,
                detail=str(exc),
            )
            return False, key, None
        m = reply.msg
        if not isinstance(m, SignOnResponse):
            return False, "message.format_error", None
        code = m.code or ""
        key = reason_of(code, m.reason)
        record: dict[str, Any] = {
            "at": now_text(),
            "code": code,
            "reason": key,
            "software": self.software,
        }
        self._clock(m.host_date, m.host_time, reply.rtt)
        if code != "00":
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                reason=key,
                code=code,
                operator=operator,
            )
            self.store.put(last_signon=record)
            return False, key, code
        try:
            self.keys.accept_field62(m.keys or b"")
        except KeyCheckError as exc:
            self.keys.sign_off()
            self._save_keys(False, last_signon={**record, "reason": "terminal.key_check_failed"})
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                reason="terminal.key_check_failed",
                code=code,
                operator=operator,
                detail=str(exc),
            )
            return False, "terminal.key_check_failed", code
        self._save_keys(True, batch=m.batch, last_signon=record, last_operator=operator)
        self.store.journal_add(
            kind="signon",
            stan=stan,
            batch=m.batch,
            status=st.APPROVED,
            reason=key,
            code=code,
            operator=operator,
            host_date=m.host_date or "",
            host_time=m.host_time or "",
            detail="keys " + " ".join(f"{k}={v}" for k, v in self.keys.check_values().items()),
        )
        return True, key, code

    def _resign(self) -> bool:
        """Sign on again by itself (the host asked); True when it worked."""
        self._resigned = True
        operator = self.operator or self.store.get("last_operator") or "01"
        ok, _, _ = self._sign_on(str(operator))
        if ok and self.store.reversal() is not None:
            self._deliver_reversal()
        return ok

    def _clock(self, host_date: str | None, host_time: str | None, rtt: float) -> None:
        """Remember the skew between the host's clock (fields 13/12) and ours."""
        if not host_date or not host_time or len(host_date) != 4 or len(host_time) != 6:
            return
        now = datetime.now(self.tz)
        best: float | None = None
        for year in (now.year - 1, now.year, now.year + 1):
            try:
                host = datetime(
                    year,
                    int(host_date[:2]),
                    int(host_date[2:]),
                    int(host_time[:2]),
                    int(host_time[2:4]),
                    int(host_time[4:]),
                    tzinfo=self.tz,
                )
            except ValueError:
                continue
            skew = (now - timedelta(seconds=rtt / 2) - host).total_seconds()
            if best is None or abs(skew) < abs(best):
                best = skew
        if best is not None:
            self.store.put(clock_skew={"seconds": round(best, 1), "at": now_text()})

    def _download_parameters(self) -> dict[str, str] | None:
        """0800 60.3 360: store and return the notice, if the host sent one."""
        self._downloaded = True
        stan = self.store.next_stan()
        msg = ParameterDownload(tid=self.tid, mid=self.mid, stan=stan, batch=self.batch)
        try:
            reply = self._exchange(msg)
        except LinkError as exc:
            self.store.journal_add(
                kind="parameters",
                stan=stan,
                batch=self.batch,
                status=st.TIMEOUT,
                reason="network.timeout",
                detail=str(exc),
            )
            return None
        m = reply.msg
        if not isinstance(m, ParameterDownloadResponse) or m.code not in ("00", None):
            self.store.journal_add(
                kind="parameters",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                code=getattr(m, "code", "") or "",
            )
            return None
        self.store.put(
            parameters={r.tag: r.value for r in m.records if not r.ext},
            parameters_at=now_text(),
        )
        notice = {
            "text_zh": m.param(Param.NOTICE_ZH) or "",
            "text_en": m.param(Param.NOTICE_EN) or "",
            "start": m.param(Param.NOTICE_START) or "",
            "end": m.param(Param.NOTICE_END) or "",
        }
        updates: dict[str, Any] = {}
        host_name = m.param(Param.HOST_NAME)
        if host_name:
            updates["host_name"] = host_name
        self.store.journal_add(
            kind="parameters",
            stan=stan,
            batch=self.batch,
            status=st.APPROVED,
            code="00",
            detail=f"{len(m.records)} records",
        )
        if not any(notice.values()):
            if updates:
                self.store.put(**updates)
            return None
        notice["text"] = notice["text_" + self.lang] or notice["text_zh"]
        self.store.put(notice=notice, **updates)
        return notice

    def _signon_command(self) -> Outcome:
        operator = self._require_operator("signon", financial=False)
        return self._signon_outcome(operator)

    def _signon_outcome(self, operator: str, lines: Iterable[str] = ()) -> Outcome:
        try:
            self.link.connect()
        except Unreachable as exc:
            return self._unreachable("signon", exc, financial=False)
        if self.keys.signed_on and self.store.reversal() is not None:
            self._deliver_reversal()
        ok, key, code = self._sign_on(operator)
        out_lines = list(lines)
        if ok:
            self._resigned = True  # this command signed on: no second sign-on afterwards
            if self.store.reversal() is not None and self._deliver_reversal():
                out_lines.append(
                    note("reversal_sent", self.lang, stan=self._extra["reversal"]["stan"])
                )
            with contextlib.suppress(_Abort):
                self._upload_offline("signon")
            out_lines.append(note("signed_on", self.lang, batch=self.batch))
        return Outcome(
            command="signon",
            reason=key,
            code=code,
            approved=ok,
            screen=screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            lines=out_lines,
            extra={
                "batch": self.batch,
                "check_values": self.keys.check_values(),
                "operator": operator,
            },
        )

    def _login(self, operator: str, password: str) -> Outcome:
        ops: dict[str, dict[str, Any]] = self.store.get("operators", {})
        entry = ops.get(operator)
        if entry is None or not _password_ok(entry, password):
            return self._local("login", "operator.wrong_password", operator=operator)
        self.store.put(operator=operator, last_operator=operator)
        self.store.journal_add(
            kind="login", stan="", batch=self.batch, status=st.APPROVED, operator=operator
        )
        lines = [note("operator", self.lang, no=operator)]
        if self.signed_on:
            return self._ok(
                "login",
                "approved",
                lines,
                operator=operator,
                supervisor=bool(entry.get("supervisor")),
            )
        out = self._signon_outcome(operator, lines)
        out.command = "login"
        out.extra["supervisor"] = bool(entry.get("supervisor"))
        return out

    def _signoff(self) -> Outcome:
        self._require_operator("signoff", financial=False)
        code: str | None = None
        key = "approved"
        try:
            self._prelude("signoff", need_keys=False)
            stan = self.store.next_stan()
            reply = self._exchange(
                NetworkRequest(
                    tid=self.tid,
                    mid=self.mid,
                    stan=stan,
                    batch=self.batch,
                    netcode=NetCode.SIGN_OFF,
                    operator=(self.operator or "01").ljust(3),
                )
            )
            code = getattr(reply.msg, "code", None)
            key = reason_of(code, getattr(reply.msg, "reason", ""))
        except LinkError as exc:
            self._lines.append(str(exc))
        self._requirements.discard(3)
        self._requirements.discard(1)
        self.keys.sign_off()
        self._save_keys(False)
        self._resigned = True
        self.store.journal_add(
            kind="signoff", stan="", batch=self.batch, status=st.APPROVED, code=code or ""
        )
        return Outcome(
            command="signoff",
            reason=key,
            code=code,
            approved=True,
            screen=note("signed_off", self.lang),
            lines=[],
        )

    def _echo(self) -> Outcome:
        try:
            self._prelude("echo", need_keys=False)
            stan = self.store.next_stan()
            reply = self._exchange(
                NetworkRequest(
                    tid=self.tid, mid=self.mid, stan=stan, batch=self.batch, netcode=NetCode.ECHO
                )
            )
        except LinkError as exc:
            return self._unreachable("echo", exc, financial=False)
        m = reply.msg
        code = m.code if isinstance(m, NetworkResponse) else None
        key = reason_of(code, m.reason if isinstance(m, NetworkResponse) else "")
        if isinstance(m, NetworkResponse):
            self._clock(m.host_date, m.host_time, reply.rtt)
        ms = round(reply.rtt * 1000)
        self.store.journal_add(
            kind="echo",
            stan=stan,
            batch=self.batch,
            status=st.APPROVED if code == "00" else st.DECLINED,
            code=code or "",
            reason=key,
            detail=f"rtt {ms} ms",
        )
        ok = code == "00"
        return Outcome(
            command="echo",
            reason=key,
            code=code,
            approved=ok,
            screen=note("echo_ok", self.lang, ms=ms) if ok else screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            stan=stan,
            extra={
                "rtt_ms": ms,
                "clock_skew_s": (self.store.get("clock_skew") or {}).get("seconds"),
            },
        )

    def _management(self, command: str, msg: Request, detail: str) -> Outcome:
        """One management exchange (no card, no money): journaled, 00 or the host's reason."""
        try:
            self._prelude(command, need_keys=False)
            reply = self._exchange(msg)
        except LinkError as exc:
            return self._unreachable(command, exc, financial=False)
        m = reply.msg
        code = getattr(m, "code", None)
        key = reason_of(code, getattr(m, "reason", ""))
        ok = code == "00"
        self.store.journal_add(
            kind=command,
            stan=msg.stan,
            batch=self.batch,
            status=st.APPROVED if ok else st.DECLINED,
            code=code or "",
            reason=key,
            detail=detail,
        )
        return Outcome(
            command=command,
            reason=key,
            code=code,
            approved=ok,
            screen=note(f"{command}_ok", self.lang) if ok else screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            stan=msg.stan,
        )

    def _parameters_command(self) -> Outcome:
        try:
            self._prelude("parameters", need_keys=False)
        except LinkError as exc:
            return self._unreachable("parameters", exc, financial=False)
        before = self.store.get("parameters_at")
        notice = self._download_parameters()
        got = self.store.get("parameters_at") != before
        params = self.store.get("parameters") or {}
        key = "approved" if got else "network.timeout"
        lines = [note("parameters_ok", self.lang)] if got else []
        if notice:
            lines.append(note("notice", self.lang, text=notice["text"]))
        return Outcome(
            command="parameters",
            reason=key,
            code="00" if got else None,
            approved=got,
            screen=lines[0] if lines else screen_of(key, None, self.lang),
            lines=lines,
            extra={"parameters": params},
        )

    def _status_command(self) -> Outcome:
        params = self.store.get("parameters") or {}
        records = b"011021031041051" + encode_params(
            tuple(ParamRecord(tag, str(v)) for tag, v in sorted(params.items()))
        )
        msg = NetworkRequest(
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            netcode=NetCode.STATUS_UPLOAD,
            data=records,
        )
        return self._management("status", msg, f"{len(records)} bytes of status records")

    # ------------------------------------------------------------------ financial

    def _sale(self, kind: Kind, amount_fen: int | None, card_in: CardInput) -> Outcome:
        command = {Kind.PURCHASE: "purchase", Kind.PREAUTH: "preauth", Kind.BALANCE: "balance"}[
            kind
        ]
        self._require_operator(command)
        self._require_signed_on(command)
        try:
            self._prelude(command)
        except Unreachable as exc:
            if (
                kind is Kind.PURCHASE
                and amount_fen is not None
                and 0 < amount_fen <= self.floor_limit_fen
            ):
                return self._offline_sale(amount_fen, card_in)
            return self._unreachable(command, exc, financial=True)
        stan = self.store.next_stan()
        card = self._read_chip(card_in, amount_fen or 0, kind) if card_in.chip else None
        req = FinancialRequest(
            kind=kind,
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            card=card or card_in.card(self.keys),
        )
        return self._transact(command, req)

    def _read_chip(self, card_in: CardInput, amount_fen: int, kind: Kind) -> Card:
        """The card data of a chip read (22 = 05x contact, 07x QuickPass): the card's
        first GENERATE AC makes the ARQC and the 55 this terminal sends; the card file
        keeps the ATC. An unreadable chip falls back to the swipe (80x)."""
        assert card_in.chip is not None
        chip = bound(load_card(card_in.chip), card_in.chip)
        block = self.keys.pin_block(card_in.pin, chip.pan) if card_in.pin else None
        pin_digit = "1" if block is not None else "2"
        if card_in.chip_fails:
            self._chip = None
            return Card(chip.pan, chip.expiry, chip.track2(), entry_mode="80" + pin_digit,
                        pin_block=block)  # fmt: skip
        txn_type = "31" if kind is Kind.BALANCE else ("03" if kind is Kind.PREAUTH else "00")
        data = TerminalData(
            amount_fen,
            datetime.now(self.tz).strftime("%y%m%d"),
            txn_type=txn_type,
            cvm_results="420300" if block is not None else "1F0302",
            contactless=card_in.tap,
        )
        first = chip.first_generate_ac(data)
        self._chip = (chip, first)
        return Card(
            chip.pan,
            chip.expiry,
            chip.track2(),
            entry_mode=("07" if card_in.tap else "05") + pin_digit,
            pin_block=block,
            sequence=f"0{chip.psn}"[-3:],
            chip=first.field55,
            send_pan=True,
        )

    def _offline_sale(self, amount_fen: int, card_in: CardInput) -> Outcome:
        stan = self.store.next_stan()
        auth = "L" + stan[1:]
        card = without_pin(card_in.card(None))
        req = FinancialRequest(
            kind=Kind.OFFLINE,
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            card=card,
            auth_code=auth,
        )
        now = datetime.now(self.tz)
        jid = self.store.journal_add(
            kind="offline",
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            pan=card.masked_pan,
            entry=card.entry_mode,
            status=st.OFFLINE_STORED,
            reason="offline.stored",
            auth_code=auth,
            operator=self.operator or "",
            host_date=now.strftime("%m%d"),
            host_time=now.strftime("%H%M%S"),
            sealed=self.sealer.seal(req),
        )
        out = Outcome(
            command="purchase",
            reason="offline.stored",
            code=None,
            approved=True,
            screen=screen_of("offline.stored", None, self.lang),
            stan=stan,
            amount_fen=amount_fen,
            financial=True,
            charged=True,
            lines=[note("offline_stored", self.lang)],
            remedy=remedy_of("offline.stored", self.lang),
            extra={"auth_code": auth, "batch": self.batch, "pan": card.masked_pan, "offline": True},
        )
        self._receipt(self.store.journal_row(jid), out)
        return out

    def _find(self, where: str, params: tuple[Any, ...]) -> JournalRow | None:
        rows = self.store.journal(where, params)
        return rows[-1] if rows else None

    def _void(self, stan: str, password: str | None, only: Kind | None) -> Outcome:
        command = {None: "void", Kind.PREAUTH: "preauth_void", Kind.COMPLETION: "completion_void"}[
            only
        ]
        stan = stan.zfill(6)
        self._require_operator(command)
        self._require_supervisor(command, password)
        self._require_signed_on(command)
        kinds = [only.label] if only else ["purchase", "completion", "preauth"]
        marks = ",".join("?" for _ in kinds)
        orig = self._find(
            f"stan = ? AND status = 'approved' AND kind IN ({marks}) AND settled = 0 "
            "AND (batch = ? OR kind = 'preauth')",
            (stan, *kinds, self.batch),
        )
        kind = VOID_OF[Kind.by_label(orig.kind)] if orig is not None else Kind.VOID
        return self._follow_up(command, kind, orig, stan, None, None)

    def _mmdd(self) -> str:
        return datetime.now(self.tz).strftime("%m%d")

    def _complete(self, amount_fen: int, preauth_stan: str, card_in: CardInput | None) -> Outcome:
        command = "complete"
        self._require_operator(command)
        self._require_signed_on(command)
        orig = self._find(
            "stan = ? AND kind = 'preauth' AND status = 'approved'", (preauth_stan.zfill(6),)
        )
        return self._follow_up(command, Kind.COMPLETION, orig, preauth_stan, amount_fen, card_in)

    def _follow_up(
        self,
        command: str,
        kind: Kind,
        orig: JournalRow | None,
        original_stan: str,
        amount_fen: int | None,
        card_in: CardInput | None,
    ) -> Outcome:
        """A void or completion of an original in the journal: refused on the terminal
        when it is not there or already voided; otherwise the prelude, then the request
        naming it (field 61, RRN, auth code), with its amount and card unless given. The
        card is read after the prelude: an automatic sign-on there changes the PIN key."""
        if orig is None or orig.sealed is None:
            return self._local(
                command,
                "transaction.original_not_found",
                financial=True,
                original_stan=original_stan,
            )
        if orig.voided:
            return self._local(
                command, "transaction.already_voided", financial=True, original_stan=original_stan
            )
        try:
            self._prelude(command)
        except Unreachable as exc:
            return self._unreachable(command, exc, financial=True)
        original = self.sealer.open(orig.sealed)
        req = FinancialRequest(
            kind=kind,
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            amount_fen=orig.amount_fen if amount_fen is None else amount_fen,
            card=card_in.card(self.keys) if card_in else original.card,
            rrn=orig.rrn or None,
            auth_code=orig.auth_code or None,
            original=self._original_ref(kind, orig),
        )
        return self._transact(command, req, original=orig)

    def _original_ref(self, kind: Kind, orig: JournalRow) -> OriginalRef:
        """Field 61 of a void or completion: a stock terminal names a same-batch original
        by batch + STAN (12 digits); this terminal adds the original's date."""
        same_batch = kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID)
        if self.dialect == "cup" and same_batch:
            return OriginalRef(orig.batch, orig.stan)
        return OriginalRef(orig.batch, orig.stan, orig.host_date or self._mmdd())

    def _refund(
        self,
        amount_fen: int,
        rrn: str,
        card_in: CardInput | None,
        original_date: str | None,
        password: str | None,
    ) -> Outcome:
        command = "refund"
        self._require_operator(command)
        self._require_supervisor(command, password)
        self._require_signed_on(command)
        orig = self._find(
            "rrn = ? AND status IN ('approved', 'offline_uploaded') "
            "AND kind IN ('purchase', 'completion', 'offline')",
            (rrn,),
        )
        card: Card | None = None
        if card_in is not None:
            card = without_pin(card_in.card(None))
        elif orig is not None and orig.sealed is not None:
            card = self.sealer.open(orig.sealed).card
        if card is None:
            where = (
                "its card data is no longer kept (batch settled)"
                if orig is not None
                else "it is not in this terminal's journal"
            )
            raise TerminalError(f"refund of RRN {rrn}: {where}; give the card with --card/--expiry")
        if orig is not None:
            ref = OriginalRef(
                orig.batch, orig.stan, original_date or orig.host_date or self._mmdd()
            )
        else:
            ref = OriginalRef("000000", "000000", original_date or self._mmdd())
        try:
            self._prelude(command)
        except Unreachable as exc:
            return self._unreachable(command, exc, financial=True)
        req = FinancialRequest(
            kind=Kind.REFUND,
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            amount_fen=amount_fen,
            card=card,
            rrn=rrn,
            original=ref,
        )
        return self._transact(command, req, original=orig)

    def _transact(
        self, command: str, req: FinancialRequest, *, original: JournalRow | None = None
    ) -> Outcome:
        """Send one financial request under the reversal rules and build its outcome."""
        kind = req.kind
        card = req.card
        pan = card.masked_pan if card else (original.pan if original else "")
        fields: dict[str, Any] = {
            "kind": kind.label,
            "stan": req.stan,
            "batch": req.batch,
            "amount_fen": req.amount_fen,
            "pan": pan,
            "entry": card.entry_mode if card else "",
            "operator": self.operator or "",
            "original_stan": original.stan if original else "",
            "original_batch": original.batch if original else "",
            "sealed": self.sealer.seal(req) if kind is not Kind.BALANCE else None,
        }
        reversal = None
        if kind.reversible:
            reversal = {
                "stan": req.stan,
                "batch": req.batch,
                "kind": kind.label,
                "amount_fen": req.amount_fen,
                "pan": pan,
                "sealed": fields["sealed"],
            }
        jid = self.store.begin_send(fields, reversal)
        base = {"batch": req.batch, "pan": pan, "kind": kind.label}
        try:
            reply = self._exchange(req)
        except Unreachable as exc:  # the connection could not be re-opened: nothing left
            self.store.finish(
                jid,
                clear_reversal=True,
                status=st.LOCAL,
                reason="network.unreachable",
                detail=str(exc),
            )
            return self._unreachable(command, exc, financial=True)
        except NoAnswer as exc:
            self.store.finish(
                jid,
                clear_reversal=False,
                status=st.TIMEOUT,
                reason="network.timeout",
                detail=str(exc),
            )
            return self._timeout(command, req, jid, exc, base)
        m = reply.msg
        if not isinstance(m, FinancialResponse):
            return self._timeout(command, req, jid, NoAnswer("unexpected answer"), base)
        code = m.code or ""
        key = reason_of(code, m.reason)
        org = m.organisation.strip()
        answer: dict[str, Any] = {
            "rrn": m.rrn or "",
            "org": org,
            "host_date": m.host_date or "",
            "host_time": m.host_time or "",
        }
        if code == "00" and reply.mac_ok is False:
            # The answer says approved but cannot be trusted. A reversible request is
            # undone; a refund is never reversed, so whether the host credited it is
            # unknown here, exactly as when its answer is lost (never "not credited").
            unknown = kind is Kind.REFUND
            if kind.reversible:
                self.store.set_reversal_reason("A0")
            self.store.finish(
                jid,
                clear_reversal=not kind.reversible,
                status=st.UNKNOWN if unknown else st.DECLINED,
                reason="mac.invalid",
                code="A0",
                detail="approved answer failed its MAC",
                **answer,
            )
            done = self._deliver_reversal() if kind.reversible else None
            self._need_resign = True
            return self._fin_outcome(
                command,
                req,
                jid,
                "mac.invalid",
                "A0",
                approved=False,
                reversed_=done,
                base=base,
                host_code="00",
                unknown=unknown,
            )
        chip_read = self._chip if card is not None and card.chip is not None else None
        self._chip = None
        if chip_read is not None:
            refused = self._second_generate_ac(chip_read, m, req, jid, answer, command, base)
            if refused is not None:
                return refused
        if code == "00":
            if kind.reversible:
                self.store.set_reversal_reason("96")  # answer in hand, not yet recorded
            self.store.finish(
                jid,
                clear_reversal=True,
                status=st.APPROVED,
                reason=key,
                code=code,
                auth_code=m.auth_code or "",
                void_of=original.id
                if original is not None
                and kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID)
                else None,
                **answer,
            )
            extra: dict[str, Any] = dict(base)
            if m.auth_code:
                extra["auth_code"] = m.auth_code
            if org:
                extra["organisation"] = org
            if m.balance is not None:
                extra["balance_fen"] = m.balance.amount_fen
            return self._fin_outcome(
                command, req, jid, key, code, approved=True, base=extra, rrn=m.rrn
            )
        self.store.finish(
            jid, clear_reversal=True, status=st.DECLINED, reason=key, code=code, **answer
        )
        if code in RESIGN_CODES:
            self._need_resign = True
        return self._fin_outcome(command, req, jid, key, code, approved=False, base=base, rrn=m.rrn)

    def _second_generate_ac(
        self,
        chip_read: tuple[ChipCard, FirstAc],
        m: FinancialResponse,
        req: FinancialRequest,
        jid: int,
        answer: dict[str, Any],
        command: str,
        base: dict[str, Any],
    ) -> Outcome | None:
        """The card's second GENERATE AC on the host's 91 and scripts. A card that
        refuses (AAC) an approved sale makes the terminal reverse it at once (reason
        06, 55 with 95, 9F10, 9F36, DF31) and say the customer was not charged;
        None when the card agrees (or the host declined anyway)."""
        chip, first = chip_read
        approved = m.code == "00"
        second = chip.second_generate_ac(first, m.chip, host_approved=approved)
        base["chip"] = {
            "aid": chip.aid,
            "label": chip.label,
            "atc": first.atc,
            "cryptogram": second.cryptogram,
            "issuer_auth": second.issuer_auth,
            "tc": second.tags.get("9F26", b"").hex().upper() if second.accepted else "",
        }
        if second.blocked:
            base["chip"]["blocked"] = True
        if not approved or second.accepted or not req.kind.reversible:
            return None
        assert req.card is not None
        undone = replace(req, card=replace(req.card, chip=reversal_field55(first, second)))
        self.store.set_reversal_reason("06", sealed=self.sealer.seal(undone))
        self.store.finish(
            jid,
            clear_reversal=False,
            status=st.DECLINED,
            reason="card.refused_after_approval",
            code="00",
            detail=f"the card answered AAC (issuer authentication {second.issuer_auth})",
            **answer,
        )
        done = self._deliver_reversal()
        return self._fin_outcome(
            command,
            req,
            jid,
            "card.refused_after_approval",
            "06",
            approved=False,
            reversed_=done,
            base=base,
            host_code="00",
        )

    def _timeout(
        self, command: str, req: FinancialRequest, jid: int, exc: LinkError, base: dict[str, Any]
    ) -> Outcome:
        kind = req.kind
        if kind.reversible:
            done = self._deliver_reversal()
            return self._fin_outcome(
                command,
                req,
                jid,
                "network.timeout",
                None,
                approved=False,
                reversed_=done,
                base={**base, "error": str(exc)},
            )
        if kind is Kind.REFUND:
            self.store.journal_update(jid, status=st.UNKNOWN)
        return self._fin_outcome(
            command,
            req,
            jid,
            "network.timeout",
            None,
            approved=False,
            base={**base, "error": str(exc)},
            unknown=kind is Kind.REFUND,
        )

    def _fin_outcome(
        self,
        command: str,
        req: FinancialRequest,
        jid: int,
        key: str,
        code: str | None,
        *,
        approved: bool,
        base: dict[str, Any],
        rrn: str | None = None,
        reversed_: bool | None = None,
        unknown: bool = False,
        host_code: str | None = None,
    ) -> Outcome:
        kind = req.kind
        lang = self.lang
        debit = kind.label in DEBIT_KINDS
        charged = approved and debit
        lines: list[str] = []
        extra = dict(base)
        if host_code is not None:
            extra["host_code"] = host_code
        if kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.REFUND):
            extra["credited"] = None if unknown else approved
        if kind is Kind.PREAUTH:
            extra["held"] = approved
        if approved:
            if debit:
                lines.append(note("charged", lang))
            elif kind is Kind.PREAUTH:
                lines.append(note("held", lang))
            elif kind is Kind.PREAUTH_VOID:
                lines.append(note("hold_released", lang))
            elif kind is Kind.BALANCE:
                if "balance_fen" in extra:
                    lines.append(note("balance", lang, amount=fen_text(extra["balance_fen"])))
                lines.append(note("balance_only", lang))
            else:
                lines.append(note("credited", lang))
        elif reversed_ is not None:
            extra["reversal_pending"] = not reversed_
            if kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID):
                lines.append(note("void_reversed" if reversed_ else "void_pending", lang))
            elif kind is Kind.PREAUTH:
                lines.append(note("not_held" if reversed_ else "reversal_pending", lang))
            else:
                lines.append(
                    note("reversed_not_charged" if reversed_ else "reversal_pending", lang)
                )
        elif unknown:
            lines.append(note("refund_unknown", lang))
        elif debit or kind is Kind.BALANCE:
            lines.append(note("not_charged", lang))
        elif kind is Kind.PREAUTH:
            lines.append(note("not_held", lang))
        else:
            lines.append(note("not_credited", lang))
        facts = self._facts(key)
        remedy = remedy_of(key, lang, **facts)
        if unknown:
            remedy = [note("refund_unknown", lang), *remedy[1:]]
        out = Outcome(
            command=command,
            reason=key,
            code=code,
            approved=approved,
            screen=screen_of(key, code, lang, **facts),
            stan=req.stan,
            rrn=rrn or None,
            amount_fen=req.amount_fen,
            financial=True,
            charged=charged,
            remedy=remedy,
            lines=lines,
            extra=extra,
        )
        if kind is not Kind.BALANCE:
            self._receipt(self.store.journal_row(jid), out)
        return out

    def _facts(self, key: str) -> dict[str, object]:
        """Run-time facts for a reason's texts: the announced maintenance window."""
        if key not in ("host.maintenance", "issuer.unavailable"):
            return {}
        notice = self.store.get("notice") or {}
        end = str(notice.get("end", ""))
        facts: dict[str, object] = {}
        if len(end) >= 12 and end.isdecimal():
            facts["until"] = f"{end[:4]}-{end[4:6]}-{end[6:8]} {end[8:10]}:{end[10:12]}"
        text = notice.get("text_" + self.lang) or notice.get("text_zh")
        if text:
            facts["notice"] = text
        return facts

    def _receipt(self, row: JournalRow, out: Outcome) -> None:
        when = ""
        if row.host_date and row.host_time:
            when = f"{row.host_date[:2]}-{row.host_date[2:]} {row.host_time[:2]}:{row.host_time[2:4]}:{row.host_time[4:]}"
        else:
            when = row.at.replace("T", " ")[:19]
        receipt = Receipt(
            kind=row.kind,
            tid=self.tid,
            mid=self.mid,
            operator=row.operator,
            pan=row.pan,
            entry=row.entry,
            amount_fen=row.amount_fen,
            batch=row.batch,
            stan=row.stan,
            approved=out.approved,
            screen=out.screen,
            reason=out.reason,
            code=out.code,
            rrn=row.rrn,
            auth_code=row.auth_code,
            when=when,
            original_stan=row.original_stan,
            lines=tuple(out.lines),
            merchant_name=str(self.store.get("host_name") or ""),
        )
        path = self.store.directory / "receipts" / f"{row.batch}-{row.stan}.txt"
        try:
            save_text(path, receipt.text(self.lang))
            out.extra["receipt"] = str(path)
        except OSError as exc:  # the transaction is recorded; only the slip is missing
            out.extra["receipt_error"] = exc.strerror or str(exc)

    # ------------------------------------------------------------------ settlement

    def totals(self, batch: str | None = None) -> tuple[Totals, Totals]:
        """Local (domestic, foreign) totals of a batch, by the rules of spec §4."""
        batch = batch or self.batch
        sums = {False: [0, 0, 0, 0], True: [0, 0, 0, 0]}
        for row in self.store.journal(
            "batch = ? AND status IN ('approved', 'offline_uploaded')", (batch,)
        ):
            foreign = row.org in FOREIGN_ORGS
            acc = sums[foreign]
            if row.kind in DEBIT_KINDS:
                acc[0] += row.amount_fen or 0
                acc[1] += 1
            elif row.kind in CREDIT_KINDS:
                acc[2] += row.amount_fen or 0
                acc[3] += 1
        return Totals(*sums[False]), Totals(*sums[True])

    def _settle(self) -> Outcome:
        command = "settle"
        operator = self._require_operator(command, financial=False)
        if not self.signed_on:
            raise _Abort(self._local(command, "terminal.not_signed_on"))
        try:
            self._prelude(command)
            if self.store.journal("status = ?", (st.OFFLINE_STORED,)):
                raise NoAnswer("offline sales could not be uploaded")
            batch = self.batch
            domestic, foreign = self.totals(batch)
            stan = self.store.next_stan()
            reply = self._exchange(
                Settlement(
                    tid=self.tid,
                    mid=self.mid,
                    stan=stan,
                    batch=batch,
                    totals=Settlement48(domestic, foreign),
                    operator=operator.ljust(3),
                )
            )
        except LinkError as exc:
            out = self._unreachable(command, exc, financial=False)
            out.lines.append(note("batch_open", self.lang))
            return out
        m = reply.msg
        if not isinstance(m, SettlementResponse):
            return self._settle_failed(command, "message.format_error", batch, domestic, foreign)
        checks = (m.totals.domestic.check, m.totals.foreign.check)
        lines: list[str] = []
        if 3 in checks or not all(c in (0, 1, 2) for c in checks):
            return self._settle_failed(command, "settlement.error", batch, domestic, foreign)
        uploaded: int | None = None
        if 2 in checks:
            key = "settlement.unbalanced"
            try:
                uploaded = self._batch_upload(batch)
            except LinkError as exc:
                self.store.journal_add(
                    kind="settle",
                    stan=stan,
                    batch=batch,
                    status=st.TIMEOUT,
                    reason="network.timeout",
                    detail=f"batch upload: {exc}",
                )
                out = self._settle_failed(command, "network.timeout", batch, domestic, foreign)
                out.extra["error"] = str(exc)
                return out
            lines.append(note("uploading", self.lang, count=uploaded))
        else:
            key = "settlement.balanced"
        new_batch = _next_batch(batch)
        self.store.journal_add(
            kind="settle",
            stan=stan,
            batch=batch,
            status=st.APPROVED,
            reason=key,
            amount_fen=domestic.debit_fen + foreign.debit_fen,
            detail=f"domestic {domestic.encode()} foreign {foreign.encode()}",
        )
        self.store.close_batch(batch, new_batch)
        lines.append(note("new_batch", self.lang, batch=new_batch))
        screen = screen_of(key, None, self.lang)
        slip = SettlementSlip(
            tid=self.tid,
            mid=self.mid,
            batch=batch,
            when=datetime.now(self.tz).strftime("%Y-%m-%d %H:%M:%S"),
            domestic=(
                domestic.debit_fen,
                domestic.debit_count,
                domestic.credit_fen,
                domestic.credit_count,
            ),
            foreign=(
                foreign.debit_fen,
                foreign.debit_count,
                foreign.credit_fen,
                foreign.credit_count,
            ),
            screen=screen,
            lines=tuple(lines),
        )
        path = self.store.directory / "receipts" / f"settle-{batch}.txt"
        save_text(path, slip.text(self.lang))
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=True,
            screen=screen,
            stan=stan,
            amount_fen=domestic.debit_fen + foreign.debit_fen,
            lines=lines,
            extra={
                "batch": batch,
                "new_batch": new_batch,
                "receipt": str(path),
                "totals": self._totals_json(domestic, foreign),
                "uploaded_records": uploaded,
                "check_codes": list(checks),
            },
        )

    @staticmethod
    def _totals_json(domestic: Totals, foreign: Totals) -> dict[str, Any]:
        def one(t: Totals) -> dict[str, int]:
            return {
                "debit_fen": t.debit_fen,
                "debit_count": t.debit_count,
                "credit_fen": t.credit_fen,
                "credit_count": t.credit_count,
            }

        return {"domestic": one(domestic), "foreign": one(foreign)}

    def _settle_failed(
        self, command: str, key: str, batch: str, domestic: Totals, foreign: Totals
    ) -> Outcome:
        self.store.journal_add(kind="settle", stan="", batch=batch, status=st.DECLINED, reason=key)
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=False,
            screen=screen_of(key, None, self.lang),
            remedy=remedy_of(key, self.lang),
            lines=[note("batch_open", self.lang)],
            extra={"batch": batch, "totals": self._totals_json(domestic, foreign)},
        )

    def _batch_upload(self, batch: str) -> int:
        """0320 records (8 debits each), refunds and offline sales whole, then the end (202)."""
        rows = self.store.journal(
            "batch = ? AND status IN ('approved', 'offline_uploaded')", (batch,)
        )
        debits: list[BatchRecord] = []
        items: list[FinancialRequest] = []
        for row in rows:
            if row.sealed is None:
                continue
            if row.kind in ("purchase", "completion"):
                req = self.sealer.open(row.sealed)
                assert req.card is not None
                debits.append(BatchRecord(row.stan, req.card.pan, row.amount_fen or 0))
            elif row.kind in ("refund", "offline"):
                items.append(self.sealer.open(row.sealed))
        count = 0
        for i in range(0, len(debits), 8):
            chunk = tuple(debits[i : i + 8])
            self._exchange(
                BatchUpload(
                    tid=self.tid,
                    mid=self.mid,
                    stan=self.store.next_stan(),
                    batch=batch,
                    records=chunk,
                )
            )
            count += len(chunk)
        for item in items:
            self._exchange(BatchUploadItem.of(item))
            count += 1
        self._exchange(
            BatchUploadEnd(
                tid=self.tid, mid=self.mid, stan=self.store.next_stan(), batch=batch, count=count
            )
        )
        return count

    # ------------------------------------------------------------------ doctor

    def doctor(self) -> DoctorReport:
        """The self-check of SCENARIOS.md B1 (see :mod:`clearpos.terminal.doctor`)."""
        from .doctor import run_doctor

        return run_doctor(self)
