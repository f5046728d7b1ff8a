"""The shared part of the virtual POS terminal: setup, state, outcomes, the wire."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

from clearpos.issuer.card import (
    ChipCard,
    FirstAc,
    load_card,
)
from clearpos.keys import KekError, KeyEncryptionKey, SealedKeyError, TerminalKeys
from clearpos.reasons import Lang
from clearpos.versions import normalise_version
from clearpos.wire import (
    TPDU,
    BatchUploadItem,
    Card,
    FinancialRequest,
    Frame,
    Header,
    Kind,
    Message,
    Request,
    Reversal,
    SignOn,
    WireError,
    build,
    encode_frame,
    needs_mac,
    parse,
    request_mti,
    response_mti,
)
from clearpos.wire.mask import mask_pan
from clearpos.wire.terminfo import TerminalInfo

from . import store as st
from .chipdownload import ChipDownloadDone, kinds_for
from .client import Link, LinkError, Unreachable
from .protocol import (
    Answer,
    OfflineDeclined,
    OfflineKept,
    OfflineMoved,
    OfflineUploaded,
    PreludeDone,
)
from .receipts import Receipt, save_text
from .screens import Outcome, finish, note, remedy_of, screen_of
from .store import JournalRow, RequestSealer, Store

__all__ = ["CardInput", "TerminalCore", "TerminalError", "TerminalKekError"]

DEFAULT_OPERATORS = "01:0000,99:123456:supervisor"
DEFAULT_SOFTWARE = "0.1.0"
#: "clearpos": the project's own terminal (also reads the [ext] notice records);
#: "cup": behaves as a stock Q/CUP countertop terminal does (spec §9): sign-on 004,
#: TDK-encrypted tracks, voids naming the original by batch + STAN (12-digit 61)
DIALECTS = ("clearpos", "cup")
VOID_OF = {
    Kind.PURCHASE: Kind.VOID,
    Kind.COMPLETION: Kind.COMPLETION_VOID,
    Kind.PREAUTH: Kind.PREAUTH_VOID,
}
DEBIT_KINDS = ("purchase", "completion", "offline")
CREDIT_KINDS = ("refund", "void", "completion_void")
FOREIGN_ORGS = frozenset({"VIS", "MCC", "JCB", "AMX"})


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
    #: terminal falls back to the swipe (22 = 80x); ``card_refuses`` makes the card's
    #: own risk management answer AAC at the second GENERATE AC (after an approval)
    chip: Path | None = None
    tap: bool = False
    chip_fails: bool = False
    card_refuses: bool = False

    @classmethod
    def of_chip(
        cls,
        path: Path,
        *,
        pin: str | None = None,
        tap: bool = False,
        chip_fails: bool = False,
        card_refuses: bool = False,
    ) -> CardInput:
        """The card in a card file, as the reader will see it."""
        card = load_card(path)
        return cls(card.pan, card.expiry, pin, False, Path(path), tap, chip_fails, card_refuses)

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


# ---------------------------------------------------------------------------- internals


@dataclass(frozen=True, slots=True)
class _Reply:
    msg: Message
    header: Header
    mac_ok: bool | None
    rtt: float


def _chip_download_extra(done: ChipDownloadDone) -> dict[str, Any]:
    """What an outcome says of a chip download: kinds loaded, counts, where it stopped."""
    extra: dict[str, Any] = {"loaded": list(done.loaded), "counts": dict(done.counts)}
    if done.failed is not None:
        extra.update(failed=done.failed, reason=done.key, error=done.error)
    return extra


def _answer_of(reply: _Reply, want: type) -> Answer:
    """What the protocol needs of an answer: 39 (None if not a ``want``), header, MAC."""
    m = reply.msg
    code = getattr(m, "code", None) if isinstance(m, want) else None
    return Answer(code, reply.header.processing, reply.mac_ok)


def _chip_lines(chip: object) -> dict[str, Any]:
    """A chip sale's receipt lines (AID, label, ARQC, TC, ATC) from the outcome's "chip"."""
    if not isinstance(chip, dict):
        return {}
    atc = chip.get("atc")
    return {
        "aid": str(chip.get("aid") or ""),
        "app_label": str(chip.get("label") or ""),
        "arqc": str(chip.get("arqc") or ""),
        "tc": str(chip.get("tc") or ""),
        "atc": atc if isinstance(atc, int) else None,
    }


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


class TerminalCore:
    """One virtual POS terminal whose state lives in ``state_dir``.

    ``tid``, ``mid`` and ``tmk`` are needed the first time; afterwards they are
    read from the state (a different ``tmk`` is a key injection: the working
    keys are dropped and the terminal must sign on again).

    The shared part: setup, state, outcomes and the wire; each concern
    (:mod:`.operators`, :mod:`.session`, :mod:`.reversal`, :mod:`.offline`,
    :mod:`.sale`, :mod:`.settle`) adds its commands on top.
    """

    if TYPE_CHECKING:  # provided by the concerns composed into Terminal (machine.py)

        @abstractmethod
        def _require_operator(self, command: str, financial: bool = True) -> str: ...

        @abstractmethod
        def _require_supervisor(self, command: str, password: str | None) -> None: ...

        @abstractmethod
        def _sign_on(self, operator: str) -> tuple[bool, str, str | None]: ...

        @abstractmethod
        def _resign(self) -> bool: ...

        @abstractmethod
        def _signon_outcome(self, operator: str, lines: Iterable[str] = ()) -> Outcome: ...

        @abstractmethod
        def _download_parameters(self) -> dict[str, str] | None: ...

        @abstractmethod
        def _download_chip(self, kinds: Sequence[str]) -> ChipDownloadDone: ...

        @abstractmethod
        def _deliver_reversal(self) -> bool: ...

        @abstractmethod
        def _prelude(
            self, command: str, *, offline: bool = True, need_keys: bool = True
        ) -> None: ...

        @abstractmethod
        def _drive_prelude(self, *, offline: bool, reversal: bool = True) -> PreludeDone: ...

        @abstractmethod
        def _upload_offline(self, command: str) -> None: ...

        @abstractmethod
        def _record_offline(
            self,
            action: OfflineMoved | OfflineUploaded | OfflineDeclined | OfflineKept,
            rows: dict[int, JournalRow],
            reply: _Reply | None,
        ) -> None: ...

        @abstractmethod
        def _offline_sale(self, amount_fen: int, card_in: CardInput) -> Outcome: ...

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
            from .operators import parse_operators  # operators.py builds on this module

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        self._card_refuses = False  # the simulated card answers AAC at its second AC
        self._requirements: set[int] = set()
        self._need_resign = False
        self._resigned = False
        self._downloaded = False
        self._chip_downloaded = False
        self._lines: list[str] = []
        self._extra: dict[str, Any] = {}
        self._link_error: LinkError | None = None

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
        chip_kinds = [k for r in (4, 5) if r in self._requirements for k in kinds_for(r)]
        if chip_kinds and not self.store.get("chip_terminal"):
            self.store.put(chip_terminal=True)  # the host asks this one for chip downloads
        if chip_kinds and not self._chip_downloaded and self.keys.signed_on:
            done = self._download_chip(chip_kinds)
            out.extra["chip_download"] = _chip_download_extra(done)
            if not done.ok:
                out.lines.append(note("chip_download_failed", self.lang))
        for line in self._lines:
            if line not in out.lines:
                out.lines.append(line)
        for k, v in self._extra.items():
            out.extra.setdefault(k, v)
        return out

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
            **_chip_lines(out.extra.get("chip")),
        )
        path = self.store.directory / "receipts" / f"{row.batch}-{row.stan}.txt"
        try:
            save_text(path, receipt.text(self.lang))
            out.extra["receipt"] = str(path)
        except OSError as exc:  # the transaction is recorded; only the slip is missing
            out.extra["receipt_error"] = exc.strerror or str(exc)
