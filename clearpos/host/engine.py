"""The host engine: one message in, one journal row and one answer out.

``Engine.handle`` is a unit of work: it runs inside a store transaction (the
group-commit writer's), so the journal row, the balance changes and the answer
are decided together and the answer leaves only after the commit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..clock import Clock, cst_stamp, local, utc_iso
from ..issuer import Issuer
from ..keys import SecurityModule
from ..keys.tokens import PanTokenizer
from ..reasons import Catalog
from ..store import JournalEntry, JournalRec, TerminalRec, Tx, rrn_of
from ..wire import (
    AdviceResponse,
    Balance,
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    ChipDetailUpload,
    EncodeError,
    FinancialRequest,
    Frame,
    Kind,
    Message,
    NetCode,
    NetworkRequest,
    NetworkResponse,
    Param,
    ParameterDownload,
    ParameterDownloadResponse,
    ParamRecord,
    ProcessingRequirement,
    Reversal,
    ReversalResponse,
    ScriptResult,
    Settlement,
    Settlement48,
    SettlementResponse,
    SignOn,
    SignOnResponse,
    Totals,
    WireError,
    encode,
    encode_answer,
    encode_params,
    financial_answer_fields,
    mask_pan,
    needs_mac,
    parse,
    request_mti,
    response_mti,
    salvage,
    to_fields,
)
from ..wire.codec import PRIVATE, Fields, Value
from ..wire.mask import render_value
from ..wire.terminfo import TerminalInfo
from .chip import (
    CheckFallback,
    CheckQuickPassPin,
    ChipDownloaded,
    ChipIssuer,
    ChipItem,
    ChipList,
    VerifyCryptogram,
    answer_field55,
)
from .chiprules import entry_kind
from .context import Ctx, HostConfig
from .participants import (
    AcceptBatchUpload,
    AssessRisk,
    Authorize,
    CheckAmount,
    CheckBatch,
    CheckDuplicate,
    CheckMaintenance,
    CheckMerchant,
    CheckMid,
    CheckSignedOn,
    CheckTerminal,
    LoadCard,
    Participant,
    Reverse,
    SettleBatch,
    VerifyMac,
    req_key,
)

log = logging.getLogger("clearpos.host")
txlog = logging.getLogger("clearpos.host.txn")


@dataclass(slots=True)
class Outcome:
    """What the I/O loop does after the commit: send ``reply`` (if any), log."""

    reply: bytes | None
    record: dict[str, Any] = field(default_factory=dict)
    close: bool = False


#: sign-ons in a row, each within SIGNON_WINDOW of the last, whose keys were never used,
#: after which the host stops issuing keys
SIGNON_LIMIT = 6
SIGNON_WINDOW = timedelta(minutes=10)
#: how long the last proven keys stay valid beside newer, unproven ones
PROVEN_KEYS_GRACE = timedelta(hours=24)


class IssueKeys:
    """Sign-on: fresh working keys under the terminal's TMK (field 62), in the
    layout 60.3 asks for (001, 003, 004), at most SIGNON_LIMIT per SIGNON_WINDOW.

    A sign-on needs no secret (spec §4), so anyone who knows a TID can ask for one.
    The keys the terminal last *proved* it holds (a request MAC'd under them) stay
    valid beside the new ones until the terminal proves the new ones, or for
    PROVEN_KEYS_GRACE: a stranger's sign-on cannot take the real terminal off the
    host (docs/security.md, "Sign-on abuse")."""

    name = "IssueKeys"

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        m = ctx.msg
        assert isinstance(m, SignOn)
        if m.netcode not in NetCode.SIGN_ON_SCHEMES:
            return ctx.decline(
                "transaction.not_supported",
                netcode=m.netcode,
                note="60.3 of a sign-on must be 001, 003 or 004",
            )
        if m.netcode == NetCode.SIGN_ON_SINGLE and not ctx.config.single_des:
            return ctx.decline("terminal.single_des_refused", netcode=m.netcode)
        # A terminal that trades proves its keys after each sign-on; only sign-on after
        # sign-on with none of the keys ever used (a loop, or a stranger) is stopped.
        since = utc_iso(ctx.now - SIGNON_WINDOW)
        recent = t.keys_issued_at is not None and t.keys_issued_at >= since
        count = t.unproven_signons + 1 if t.signed_on and not t.keys_proven and recent else 1
        if count > SIGNON_LIMIT:
            return ctx.decline(
                "terminal.signon_rate_limited",
                count=count - 1,
                window_min=int(SIGNON_WINDOW.total_seconds() // 60),
            )
        keys = self.hsm.issue_working_keys(t.tid, t.tmk_sealed, m.netcode)
        cols: dict[str, Any] = dict(
            pik_sealed=keys.sealed_pik,
            mak_sealed=keys.sealed_mak,
            tdk_sealed=keys.sealed_tdk,
            key_scheme=m.netcode,
            keys_issued_at=ctx.now_iso,
            keys_proven=0,
            unproven_signons=count,
            last_software=ctx.software or None,
        )
        if t.signed_on and t.keys_proven:
            # the proven keys step aside, valid until the new ones are proven (or grace ends)
            cols.update(
                prev_pik_sealed=t.pik_sealed,
                prev_mak_sealed=t.mak_sealed,
                prev_tdk_sealed=t.tdk_sealed,
                prev_until=utc_iso(ctx.now + PROVEN_KEYS_GRACE),
            )
        ctx.tx.update_terminal(t.tid, **cols)
        ctx.keys_field62 = keys.field62
        ctx.mak_sealed = keys.sealed_mak
        ctx.facts.update(
            pik_kcv=keys.pik_kcv,
            mak_kcv=keys.mak_kcv,
            batch=t.batch,
            operator=m.operator.strip(),
            scheme=m.netcode,
            unproven_signons=count,
        )
        if keys.tdk_kcv:
            ctx.facts["tdk_kcv"] = keys.tdk_kcv
        if m.serial:
            ctx.facts["serial"] = m.serial.decode("gbk", "replace").strip("\x00 ")
        if t.signed_on and not t.keys_proven and t.prev_mak_sealed is not None:
            ctx.facts["unproven_keys_replaced"] = True
        return True


class SignOff:
    name = "SignOff"

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        ctx.tx.update_terminal(
            t.tid,
            pik_sealed=None,
            mak_sealed=None,
            tdk_sealed=None,
            keys_issued_at=None,
            prev_pik_sealed=None,
            prev_mak_sealed=None,
            prev_tdk_sealed=None,
            prev_until=None,
        )
        self.hsm.forget(t.tid)
        return True


#: standard parameter values this host sends to every terminal (spec §4, 360)
STANDARD_PARAMETERS = ((Param.TIMEOUT, "60"), (Param.REDIAL, "3"), (Param.MANUAL_ENTRY, "1"))


#: field 62 is b..512 LLLVAR (spec §3)
FIELD62_MAX = 512


class Params:
    """Parameter download: the standard records every terminal reads; for terminals
    of ``dialect = "clearpos"`` also the [ext] host name and every maintenance
    notice not yet over (a stock terminal never receives those)."""

    name = "Params"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        records = [ParamRecord(tag, value) for tag, value in STANDARD_PARAMETERS]
        merchant = ctx.tx.merchant(t.mid, lock=False)
        if merchant is not None:
            records.append(ParamRecord(Param.MERCHANT_NAME, merchant.name))
        notices = left_out = 0
        if t.dialect == "clearpos":
            records.append(ParamRecord(Param.HOST_NAME, ctx.config.name))
            size = len(encode_params(tuple(records)))
            # soonest first, as many as field 62 holds (b..512); the journal counts
            # the ones left out, which a later download brings once earlier windows
            # are over (a new notice, or the terminal's own download)
            for w in ctx.config.upcoming(ctx.now_iso):
                notice = [
                    ParamRecord(Param.NOTICE_ZH, w.notice_zh),
                    ParamRecord(Param.NOTICE_EN, w.notice_en),
                    ParamRecord(Param.NOTICE_START, local_stamp(w.start_at)),
                    ParamRecord(Param.NOTICE_END, local_stamp(w.end_at)),
                ]
                more = len(encode_params(tuple(notice)))
                if left_out or size + more > FIELD62_MAX:
                    left_out += 1
                    continue
                records += notice
                size += more
                notices += 1
        ctx.facts["records"] = records
        ctx.facts["notices"] = notices
        if left_out:
            ctx.facts["notices_left_out"] = left_out
        ctx.facts["dialect"] = t.dialect
        ctx.tx.update_terminal(t.tid, notice_seen=ctx.config.latest_notice_id(ctx.now_iso))
        return True


class StoreStatus:
    """0820 362: keep the terminal's status records with it (help desk, doctor)."""

    name = "StoreStatus"

    def __call__(self, ctx: Ctx) -> bool:
        t, m = ctx.terminal, ctx.msg
        assert t is not None and isinstance(m, NetworkRequest)
        raw = m.data or b""
        ctx.tx.update_terminal(
            t.tid, status_records=raw.hex().upper(), status_uploaded_at=ctx.now_iso
        )
        ctx.facts["status_records"] = raw.decode("gbk", "replace")
        return True


class JournalAdvice:
    """0620 951 script results and 0320 203/205 chip detail (TC) uploads: journaled
    against their original, found by 61 (batch + STAN), else by RRN (37)."""

    name = "JournalAdvice"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        t = ctx.terminal
        assert isinstance(m, ScriptResult | ChipDetailUpload) and t is not None
        orig: JournalRec | None = None
        kinds = tuple(k.label for k in Kind)
        if m.original is not None:
            orig = ctx.tx.journal_original(t.tid, m.original.batch, m.original.stan, kinds)
        if orig is None and m.rrn:
            cand = ctx.tx.journal_by_rrn(m.rrn)
            if cand is not None and cand.tid == t.tid:
                orig = cand
        if orig is None and isinstance(m, ChipDetailUpload):
            orig = ctx.tx.journal_original(t.tid, m.batch, m.stan, kinds)
        if m.chip:
            ctx.facts["chip"] = m.chip.hex().upper()
        if orig is None:
            return ctx.decline(
                "transaction.original_not_found",
                rrn=m.rrn,
                original=m.original.stan if m.original else None,
            )
        ctx.original_id = orig.id
        ctx.facts["original_rrn"] = orig.rrn
        return True


class Unsupported:
    """A message of the dialect this host does not serve: 40, never silence."""

    name = "Unsupported"

    def __call__(self, ctx: Ctx) -> bool:
        return ctx.decline("transaction.not_supported", netcode=getattr(ctx.msg, "netcode", None))


def local_stamp(iso: str) -> str:
    from ..clock import parse_iso

    return local(parse_iso(iso)).strftime("%Y%m%d%H%M%S")


KIND_OF: dict[type, str] = {
    SignOn: "signon",
    ParameterDownload: "params",
    Settlement: "settlement",
    BatchUpload: "batch_upload",
    BatchUploadItem: "batch_upload",
    BatchUploadEnd: "batch_upload_end",
    Reversal: "reversal",
    ScriptResult: "script_result",
    ChipDetailUpload: "chip_detail",
}

#: message class -> flow (the participants are in ``Engine.flows``)
FLOW_OF: dict[type, str] = {
    FinancialRequest: "financial",
    Reversal: "reversal",
    SignOn: "signon",
    ParameterDownload: "params",
    Settlement: "settlement",
    BatchUpload: "batch_upload",
    BatchUploadItem: "batch_upload",
    BatchUploadEnd: "batch_upload",
    ScriptResult: "script_result",
    ChipDetailUpload: "chip_detail",
}

#: 0820 by 60.3: flow and journal kind; any other 60.3 is answered 40 (never silence)
NETWORK_FLOWS = {
    NetCode.SIGN_OFF: "signoff",
    NetCode.ECHO: "echo",
    NetCode.STATUS_UPLOAD: "status",
    NetCode.CAPK_QUERY: "capk_query",
    NetCode.AID_QUERY: "aid_query",
}
NETWORK_KINDS = dict(NETWORK_FLOWS)

#: 0800 downloads by 60.3: flow (and journal kind)
DOWNLOAD_FLOWS = {
    NetCode.PARAMETERS: "params",
    NetCode.PARAMETERS_MORE: "params",
    NetCode.CAPK_DOWNLOAD: "capk_item",
    NetCode.CAPK_END: "capk_end",
    NetCode.AID_DOWNLOAD: "aid_item",
    NetCode.AID_END: "aid_end",
}

#: a reason's terminal action (catalog) -> the header processing requirement it sets
PROCESSING_OF_ACTION = {
    "re_sign_on": ProcessingRequirement.SIGN_ON_AGAIN,
    "update_software": ProcessingRequirement.DOWNLOAD_SOFTWARE,
}


#: what :meth:`Engine.read` found in a frame: (message, MAC block, MAC, the private
#: fields as journaled), the format error it answers, or None (parsed in the unit)
Read = tuple[Message, bytes | None, bytes | None, dict[str, str]] | WireError | None


class _AuthCodes(threading.local):
    """Authorization codes (field 38): 6 hex digits from the OS's CSPRNG, as
    ``secrets.token_hex(3)`` gives them, but fetched 512 codes at a time: one
    system call per 512 approvals instead of one each, on the writer thread that
    every message waits for. One buffer per thread (PostgreSQL runs several)."""

    def __init__(self) -> None:
        self.codes = ""
        self.at = 0

    def next(self) -> str:
        at = self.at
        if at >= len(self.codes):
            self.codes, at = os.urandom(3 * 512).hex().upper(), 0
        self.at = at + 6
        return self.codes[at : at + 6]


_AUTH_CODES = _AuthCodes()


class _NeedsTrackKey(Exception):
    """Raised where a frame's tracks need the terminal's TDK: :meth:`Engine.read`
    leaves that frame to the unit of work, which reads the terminal."""


def _needs_track_key(tid: str) -> Callable[[bytes], bytes] | None:
    raise _NeedsTrackKey(tid)


def _private_keeper(
    private: dict[str, str] | None,
) -> Callable[[Mapping[int, Value]], None] | None:
    """``parse``'s ``keep``: an acquirer's private fields, masked, into ``private``
    (None when there are none to keep, or nowhere to keep them)."""
    if not PRIVATE or private is None:
        return None

    def keep(fields: Mapping[int, Value]) -> None:
        private.update({str(n): render_value(n, v) for n, v in fields.items() if n in PRIVATE})

    return keep


class Engine:
    """Runs the participants for one message and builds the journal row and reply."""

    def __init__(
        self,
        hsm: SecurityModule,
        tokens: PanTokenizer,
        catalog: Catalog,
        clock: Clock | None = None,
    ) -> None:
        self.hsm = hsm
        self.tokens = tokens
        self.catalog = catalog
        self.clock = clock or Clock()
        self._config: HostConfig | None = None
        #: the second of the last message, and its texts (ISO prefix, CST stamp): a
        #: host handles hundreds of messages a second, so they are formatted once
        #: (one tuple, replaced whole: PostgreSQL writer threads share this engine)
        self._second: tuple[datetime | None, str, str] = (None, "", "")
        issuer = Issuer(hsm)
        self.chip = ChipIssuer(hsm)
        mac = VerifyMac(hsm)
        lenient = CheckTerminal(allow_suspended=True, check_software=False)
        # The participants of each flow, in order (jPOS keeps this in configuration).
        # Journal and respond (``_finish``) run after every flow, approved or not.
        self.flows: dict[str, Sequence[Participant]] = {
            "financial": (
                CheckTerminal(),
                CheckMerchant(),
                CheckMaintenance(),
                CheckSignedOn(),
                mac,
                CheckBatch(),
                CheckDuplicate(),
                CheckAmount(),
                CheckFallback(),
                CheckQuickPassPin(),
                LoadCard(tokens),
                VerifyCryptogram(self.chip),
                AssessRisk(),
                Authorize(issuer),
            ),
            "reversal": (lenient, CheckSignedOn(), mac, Reverse(issuer)),
            "signon": (
                CheckTerminal(),
                CheckMid(),
                CheckMaintenance(issuer_too=False),
                IssueKeys(hsm),
            ),
            "signoff": (lenient, SignOff(hsm)),
            "echo": (lenient,),
            "status": (lenient, StoreStatus()),
            "params": (lenient, Params()),
            "capk_query": (lenient, ChipList("capk")),
            "aid_query": (lenient, ChipList("aid")),
            "capk_item": (lenient, ChipItem("capk")),
            "aid_item": (lenient, ChipItem("aid")),
            "capk_end": (lenient, ChipDownloaded("capk")),
            "aid_end": (lenient, ChipDownloaded("aid")),
            "settlement": (lenient, SettleBatch()),
            "batch_upload": (lenient, AcceptBatchUpload(tokens)),
            "script_result": (lenient, CheckSignedOn(), mac, JournalAdvice()),
            "chip_detail": (lenient, JournalAdvice()),
            "unsupported": (lenient, Unsupported()),
        }
        #: each flow's participants with their places in it, and the trail when the
        #: first k of them passed (``"CheckTerminal:ok CheckMerchant:ok"`` for k = 2),
        #: made once
        self._steps: dict[str, _Steps] = {
            flow: (
                tuple(enumerate(participants)),
                tuple(
                    " ".join(f"{p.name}:ok" for p in participants[:k])
                    for k in range(len(participants) + 1)
                ),
            )
            for flow, participants in self.flows.items()
        }
        #: a financial request's steps by its card data (22.1 and whether 55 came)
        self._card_steps: dict[tuple[str, bool], _Steps] = {}

    # ------------------------------------------------------------------ entry points

    def _parse(
        self, tx: Tx, frame: Frame, private: dict[str, str] | None = None
    ) -> tuple[Message, bytes | None, bytes | None]:
        """Parse a body; TDK-encrypted tracks (53.3 = 1) are decrypted with the
        terminal's track key (the last proven one when the newest does not fit).
        ``private`` receives the acquirer's private fields, masked, for the journal
        (a dict of the caller's: PostgreSQL writer threads share this engine)."""
        seen: dict[str, TerminalRec | None] = {}
        keep = _private_keeper(private)

        def tdk(tid: str, *, previous: bool = False) -> Callable[[bytes], bytes] | None:
            t = seen[tid] if tid in seen else tx.terminal(tid)
            seen[tid] = t
            if t is None:
                return None
            if previous and not t.previous_keys_valid(utc_iso(self.clock.now())):
                return None
            sealed = t.prev_tdk_sealed if previous else t.tdk_sealed
            return self.hsm.track_decryptor(tid, sealed) if sealed else None

        try:
            return parse(frame.body, base=13, tdk=tdk, keep=keep)
        except WireError as exc:
            if exc.field not in (35, 36) or not seen:
                raise
            try:
                return parse(
                    frame.body,
                    base=13,
                    tdk=lambda tid: tdk(tid, previous=True),
                    keep=keep,
                )
            except WireError:
                raise exc from None

    def read(self, frame: Frame) -> Read:
        """Parse ``frame`` before its unit of work runs, on the caller's thread: the
        host does it on the event loop, so that the writer thread, which every message
        waits for in turn, only runs what needs the store. Nothing here reads the
        store or the clock; a frame whose tracks are TDK-encrypted needs its
        terminal's key, so it is left to :meth:`handle` (None).

        What comes back is given to :meth:`handle` as ``read``: the message, or the
        format error it answers (a PostgreSQL writer may run the unit twice: both
        runs use the one reading). Any other exception leaves the frame to the
        unit, where a fault is answered and journaled as ``host.error``."""
        private: dict[str, str] = {}
        try:
            msg, block, mac = self._parse_alone(frame, private)
        except WireError as exc:
            return exc
        except Exception:  # _NeedsTrackKey, or a fault: the unit parses and answers it
            return None
        return msg, block, mac, private

    def _parse_alone(
        self, frame: Frame, private: dict[str, str]
    ) -> tuple[Message, bytes | None, bytes | None]:
        return parse(frame.body, base=13, tdk=_needs_track_key, keep=_private_keeper(private))

    def handle(self, tx: Tx, frame: Frame, received: float, read: Read = None) -> Outcome:
        """Process one frame inside the caller's transaction (``read``: what
        :meth:`read` gave for it, when it was called; else the frame is parsed here)."""
        if read is None:
            private: dict[str, str] = {}
            try:
                msg, block, mac = self._parse(tx, frame, private)
            except WireError as exc:
                return self.format_error(tx, frame, exc, received)
        elif isinstance(read, WireError):
            return self.format_error(tx, frame, read, received)
        else:
            msg, block, mac, private = read
        token = None
        if tx.prefetches_duplicates and isinstance(msg, FinancialRequest):
            # PostgreSQL: the duplicate check and the card (LoadCard) asked with the
            # terminal read
            card = msg.card
            token = self.tokens.token(card.pan) if card else None
            tx.expect_request(req_key(msg), token)
        ctx = self._ctx(tx, frame, msg, block, mac)
        ctx.private = private
        ctx.card_token = token
        card = msg.card if type(msg) is FinancialRequest else None
        if card is None:
            steps, passed = self._steps[self._flow(msg)]
        else:
            key = (card.entry_mode[:2], card.chip is not None)
            steps, passed = self._card_steps.get(key) or self._steps_for_card(key)
        for n, participant in steps:
            if not participant(ctx):
                stop = f"{participant.name}:{ctx.reason}"
                ctx.trail = [passed[n], stop] if n else [stop]
                break
        else:
            ctx.trail = [passed[-1]]
        return self._finish(ctx, received)

    def _steps_for_card(self, key: tuple[str, bool]) -> _Steps:
        """The financial flow for card data read so (22.1, field 55 or not): without the
        participants whose ``decides_for`` says they would let it through untouched.
        Their places stay, so the trail names them as passed, as when they ran."""
        steps, passed = self._steps["financial"]
        entry, chip_data = entry_kind(key[0]), key[1]
        kept = []
        for n, p in steps:
            decides_for = getattr(p, "decides_for", None)
            if decides_for is None or decides_for(entry, chip_data):
                kept.append((n, p))
        plan = self._card_steps[key] = (tuple(kept), passed)  # at most 100 x 2 keys
        return plan

    def host_error(self, tx: Tx, frame: Frame, exc: BaseException, received: float) -> Outcome:
        """A participant failed: nothing of it was committed; journal and answer 96."""
        try:
            msg, block, mac = self._parse(tx, frame)
        except WireError as werr:
            return self.format_error(tx, frame, werr, received)
        ctx = self._ctx(tx, frame, msg, block, mac)
        ctx.terminal = tx.terminal(msg.tid)
        ctx.mak_sealed = None  # never MAC an error answer
        ctx.decline("host.error", error=type(exc).__name__)
        ctx.trail.append(f"error:{type(exc).__name__}")
        return self._finish(ctx, received)

    def format_error(self, tx: Tx, frame: Frame, exc: WireError, received: float) -> Outcome:
        """Answer 30 whenever the MTI and TID can be read (any MTI: a response or an
        odd message class gets the answer of its class); otherwise close the connection."""
        mti, fields = salvage(frame.body)
        tid = fields.get(41)
        tid_s = tid if isinstance(tid, str) and len(tid) == 8 else ""
        mid = fields.get(42)
        mid_s = mid if isinstance(mid, str) and len(mid) == 15 else ""
        stan = fields.get(11)
        stan_s = stan if isinstance(stan, str) else ""
        now = self.clock.now()
        facts = {"field": exc.field, "offset": exc.offset, "expected": exc.expected}
        jid = tx.insert_journal(
            JournalEntry(
                ts=utc_iso(now),
                business_date=local(now).strftime("%Y%m%d"),
                tid=tid_s,
                mid=mid_s,
                batch="",
                stan=stan_s,
                mti=mti or "",
                kind="invalid",
                reason="message.format_error",
                code="30",
                facts=facts,
                status="declined",
                software="",
                latency_us=int((time.perf_counter() - received) * 1e6),
                trail=f"Decode:{exc.describe()}",
            )
        )
        rrn = rrn_of(jid)
        record = {
            "tid": tid_s,
            "stan": stan_s,
            "mti": mti,
            "reason": "message.format_error",
            "error": str(exc),
        }
        if not (mti and tid_s):
            # nothing says who sent it: only then may the host close (spec §9)
            return Outcome(None, record, close=True)
        # the answer of the message's class (0200 -> 0210; a stray 0211 or 0210 -> 0210)
        reply_mti = mti[:2] + str(int(mti[2]) | 1) + "0"
        out: dict[int, str | bytes] = {39: "30", 41: tid_s, 63: "   message.format_error", 37: rrn}
        for n in (3, 4, 11, 25, 60):
            v = fields.get(n)
            if isinstance(v, str):
                out[n] = v
        if mid_s:
            out[42] = mid_s
        try:
            body = encode(reply_mti, out)
        except EncodeError:
            body = encode(reply_mti, {39: "30", 41: tid_s, 63: "   message.format_error"})
        reply = encode_answer(frame, 0, body)
        return Outcome(reply, record)

    # ------------------------------------------------------------------ internals

    def config(self, tx: Tx) -> HostConfig:
        """The cached configuration, reloaded when another process changed it."""
        cfg = self._config
        if cfg is None or tx.config_generation() != cfg.generation:
            cfg = self._config = HostConfig.load(tx)
        return cfg

    def _ctx(
        self, tx: Tx, frame: Frame, msg: Message, block: bytes | None, mac: bytes | None
    ) -> Ctx:
        now = self.clock.now()
        second = now.replace(microsecond=0)
        known, iso, stamp = self._second
        if second != known:
            iso, stamp = utc_iso(second)[:-7], cst_stamp(second)  # "2026-11-23T02:00:00."
            self._second = (second, iso, stamp)
        return Ctx(
            tx,
            frame,
            msg,
            block,
            mac,
            now,
            f"{iso}{now.microsecond:06d}Z",  # = utc_iso(now)
            self.config,
            stamp,
        )

    @staticmethod
    def _flow(msg: Message) -> str:
        if isinstance(msg, NetworkRequest):
            return NETWORK_FLOWS.get(msg.netcode, "unsupported")
        if isinstance(msg, ParameterDownload):
            return DOWNLOAD_FLOWS.get(msg.netcode, "unsupported")
        return FLOW_OF.get(type(msg), "unsupported")  # e.g. a response sent to the host

    def _kind(self, msg: Message) -> str:
        if isinstance(msg, FinancialRequest):
            # an advice completion is a completion in the books (journal and settlement)
            return "completion" if msg.kind is Kind.COMPLETION_ADVICE else msg.kind.label
        if isinstance(msg, NetworkRequest):
            return NETWORK_KINDS.get(msg.netcode, "network")
        if isinstance(msg, ParameterDownload):
            return DOWNLOAD_FLOWS.get(msg.netcode, "params")
        return KIND_OF.get(type(msg), type(msg).__name__.lower())

    def _finish(self, ctx: Ctx, received: float) -> Outcome:
        tx, msg = ctx.tx, ctx.msg
        reason = self.catalog.get(ctx.reason) or self.catalog["host.error"]
        code = reason.code or ""
        if ctx.reason in ("settlement.balanced", "settlement.unbalanced"):
            code = ""
        t = ctx.terminal
        action = PROCESSING_OF_ACTION.get(reason.terminal_action or "")
        if action is not None:
            ctx.processing = action
        elif isinstance(msg, SignOn) and t is not None and t.chip and ctx.reason == "approved":
            # a chip terminal downloads CA keys (4), then chip parameters (5), until it
            # holds what the host has (spec §8)
            ctx.processing = tx.emv_requirement(t)
        elif (
            t is not None
            and t.dialect == "clearpos"  # a stock terminal never receives the [ext] notices
            and not isinstance(msg, ParameterDownload)
            and ctx.config.latest_notice_id(ctx.now_iso) > t.notice_seen
        ):
            ctx.processing = ProcessingRequirement.DOWNLOAD_PARAMETERS
        approved = ctx.reason == "approved"
        fin = msg if isinstance(msg, FinancialRequest) else None  # tested once
        req = msg.request if isinstance(msg, Reversal) else msg
        if isinstance(req, FinancialRequest):
            card, amount = req.card, req.amount_fen
        else:
            card = amount = None
        if approved and fin is not None and fin.kind is not Kind.BALANCE:
            ctx.auth_code = _AUTH_CODES.next()
        if fin is not None and (fin.extra60 or fin.info):
            ctx.facts.update(_kept_optional(fin))
        if PRIVATE and ctx.private:
            ctx.facts["private_fields"] = ctx.private
        org = ctx.card.organisation if ctx.card is not None else "   "
        facts = {k: v for k, v in ctx.facts.items() if k not in _NOT_JOURNALED} if ctx.facts else {}
        mti, kind = _request_mti(msg), self._kind(msg)
        pan = mask_pan(card.pan) if card is not None else ""
        jid = tx.insert_journal(
            JournalEntry(
                ts=ctx.now_iso,
                business_date=ctx.business_date,
                tid=msg.tid,
                mid=t.mid if t is not None else msg.mid,
                batch=getattr(req, "batch", "") or "",
                stan=msg.stan,
                mti=mti,
                kind=kind,
                amount_fen=amount,
                card_id=ctx.card.id if ctx.card is not None else None,
                pan_masked=pan,
                organisation=org,
                code=code,
                reason=ctx.reason,
                facts=facts,
                auth_code=ctx.auth_code,
                status=ctx.status if not approved else "approved",
                delta_fen=ctx.delta_fen,
                hold_fen=ctx.hold_fen,
                original_id=ctx.original_id,
                req_key=ctx.req_key,
                entry_mode=card.entry_mode if card is not None else "",
                software=ctx.software,
                processing=ctx.processing,
                latency_us=int((time.perf_counter() - received) * 1e6),
                trail=" ".join(ctx.trail),
            )
        )
        ctx.rrn = rrn_of(jid)
        if t is not None and (t.last_seen is None or t.last_seen < ctx.now_iso[:17]):
            tx.update_terminal(
                t.tid, last_seen=ctx.now_iso, last_software=ctx.software or t.last_software
            )
        if fin is not None and ctx.chip_check is not None:
            ctx.answer_chip = answer_field55(self.chip, ctx, code)
        if fin is not None:
            # the answer straight from the request: no typed answer to build and check
            # (the codec checks each value as it writes it)
            reply_mti, out = fin.kind.response_mti, self._financial_answer(ctx, fin, code, org)
            mac_needed = code == "00"
        else:
            response = self._response(ctx, code, org)
            reply_mti, out = to_fields(response)
            mac_needed = needs_mac(response)
        mac_fn = None
        if mac_needed and ctx.mak_sealed is not None and t is not None:
            sealed, tid = ctx.mak_sealed, t.tid
            mac_fn = lambda block: self.hsm.generate_mac(tid, sealed, block)  # noqa: E731
        reply = encode_answer(ctx.frame, ctx.processing, encode(reply_mti, out, mac=mac_fn))
        record = {
            "tid": msg.tid,
            "stan": msg.stan,
            "rrn": ctx.rrn,
            "mti": mti,
            "kind": kind,
            "reason": ctx.reason,
            "code": code,
            "amount_fen": amount,
            "pan": pan,
            "processing": ctx.processing,
        }
        return Outcome(reply, record)

    @staticmethod
    def _financial_answer(ctx: Ctx, msg: FinancialRequest, code: str, org: str) -> Fields:
        approved = ctx.reason == "approved"
        return financial_answer_fields(
            msg.kind,
            batch=msg.batch,
            netcode=msg.netcode,
            currency=msg.currency,
            amount_fen=msg.amount_fen,
            tid=msg.tid,
            mid=msg.mid,
            stan=msg.stan,
            code=code or None,
            organisation=org,
            reason=ctx.reason,
            host_time=ctx.hhmmss,
            host_date=ctx.mmdd,
            acquirer=ctx.config.institution,
            rrn=ctx.rrn,
            auth_code=ctx.auth_code or None,
            settle_date=ctx.mmdd if approved else None,
            expiry=msg.card.expiry if approved and msg.card is not None else None,
            balance=Balance(ctx.balance_fen) if approved and ctx.balance_fen is not None else None,
            chip=ctx.answer_chip,
        )

    def _response(self, ctx: Ctx, code: str, org: str) -> Message:
        msg = ctx.msg
        common: dict[str, Any] = {
            "tid": msg.tid,
            "mid": msg.mid,
            "stan": msg.stan,
            "code": code or None,
            "organisation": org,
            "reason": ctx.reason,
            "host_time": ctx.hhmmss,
            "host_date": ctx.mmdd,
            "acquirer": ctx.config.institution,
            "rrn": ctx.rrn,
        }
        approved = ctx.reason == "approved"
        if isinstance(msg, Reversal):
            r = msg.request
            return ReversalResponse(
                kind=r.kind, batch=r.batch, amount_fen=r.amount_fen, netcode=r.netcode, **common
            )
        batch = ctx.terminal.batch if ctx.terminal is not None else getattr(msg, "batch", "000000")
        if isinstance(msg, SignOn):
            return SignOnResponse(
                batch=batch,
                keys=ctx.keys_field62 if approved else None,
                netcode=msg.netcode,
                **common,
            )
        if isinstance(msg, ParameterDownload):
            recs = tuple(ctx.facts.get("records", ()))
            return ParameterDownloadResponse(
                batch=batch, records=recs, netcode=msg.netcode, raw=ctx.data62, **common
            )
        if isinstance(msg, Settlement):
            totals_text = ctx.facts.get("totals")
            if totals_text:
                totals = Settlement48.decode(totals_text)
            else:
                totals = Settlement48(
                    msg.totals.domestic.with_check(3), msg.totals.foreign.with_check(3)
                )
            common["code"] = None
            return SettlementResponse(
                batch=msg.batch, totals=totals, currency=msg.currency, **common
            )
        if isinstance(msg, BatchUpload | BatchUploadEnd):
            nc = (
                NetCode.BATCH_UPLOAD_END
                if isinstance(msg, BatchUploadEnd)
                else NetCode.BATCH_UPLOAD
            )
            return NetworkResponse(batch=msg.batch, netcode=nc, mti="0330", **common)
        if isinstance(msg, BatchUploadItem):
            return NetworkResponse(
                batch=msg.request.batch, netcode=NetCode.BATCH_UPLOAD, mti="0330", **common
            )
        if isinstance(msg, NetworkRequest):
            return NetworkResponse(
                batch=msg.batch, netcode=msg.netcode, mti="0830", data=ctx.data62, **common
            )
        if isinstance(msg, ScriptResult | ChipDetailUpload):
            return AdviceResponse(
                batch=msg.batch,
                netcode=msg.netcode,
                mti=response_mti(_request_mti(msg)),
                processing_code=msg.processing_code,
                amount_fen=msg.amount_fen,
                **common,
            )
        # a response message sent to the host: answer as an echo would
        return NetworkResponse(
            batch=batch,
            netcode=NetCode.ECHO,
            mti="0830",
            **{**common, "code": "40", "reason": "transaction.not_supported"},
        )


#: a flow's participants with their places in it, and the trail when the first k passed
_Steps = tuple[tuple[tuple[int, Participant], ...], tuple[str, ...]]

#: facts that answer the terminal (field 48/62 content), not kept in the journal
_NOT_JOURNALED = frozenset(("records", "totals", "checks"))


def _request_mti(msg: Message) -> str:
    return request_mti(msg) or ""


def _kept_optional(msg: FinancialRequest) -> dict[str, Any]:
    """Optional data a stock terminal sends (60.4-60.7, field 59), kept for the help desk."""
    kept: dict[str, Any] = {}
    if msg.extra60:
        kept["f60_extra"] = msg.extra60
    if msg.info and _more_than_version(msg.info):
        kept["terminal_info"] = msg.info
    return kept


def _more_than_version(info: str) -> bool:
    """Field 59 says more than the device type and application version (which the
    journal keeps in its ``software`` column): serials, model, SIM, location."""
    try:
        parsed = TerminalInfo.decode(info)
    except WireError:
        return True
    return bool(set(parsed.tags) - {"A2"} or set(parsed.device) - {"01", "05"})


def log_record(record: dict[str, Any], latency_ms: float) -> None:
    """One structured line per transaction (PAN already masked)."""
    if not txlog.isEnabledFor(logging.INFO):
        return
    record["latency_ms"] = round(latency_ms, 3)
    txlog.info(json.dumps(record, ensure_ascii=False, sort_keys=True))


__all__ = ["Engine", "Outcome", "Totals", "log_record"]
