"""The host engine: one message in, one journal row and one answer out.

``Engine.handle`` is a unit of work: it runs inside a store transaction (the
group-commit writer's), so the journal row, the balance changes and the answer
are decided together and the answer leaves only after the commit.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, local, utc_iso
from ..issuer import Issuer
from ..keys import SecurityModule
from ..keys.tokens import PanTokenizer
from ..reasons import Catalog
from ..store import Tx, rrn_of
from ..wire import (
    Balance,
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    EncodeError,
    FinancialRequest,
    FinancialResponse,
    Frame,
    Header,
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
    Settlement,
    Settlement48,
    SettlementResponse,
    SignOn,
    SignOnResponse,
    Totals,
    WireError,
    build,
    encode,
    encode_frame,
    mask_pan,
    needs_mac,
    parse,
    salvage,
)
from .context import Ctx, HostConfig
from .participants import (
    AcceptBatchUpload,
    AssessRisk,
    Authorize,
    CheckBatch,
    CheckDuplicate,
    CheckMaintenance,
    CheckMerchant,
    CheckSignedOn,
    CheckTerminal,
    LoadCard,
    Participant,
    Reverse,
    SettleBatch,
    VerifyMac,
)

log = logging.getLogger("clearpos.host")
txlog = logging.getLogger("clearpos.host.txn")

RE_SIGN_ON_REASONS = frozenset({"mac.invalid", "terminal.not_signed_on"})


@dataclass(slots=True)
class Outcome:
    """What the I/O loop does after the commit: send ``reply`` (if any), log."""

    reply: bytes | None
    record: dict[str, Any] = field(default_factory=dict)
    close: bool = False


class IssueKeys:
    """Sign-on: fresh PIN and MAC keys under the terminal's TMK (field 62)."""

    name = "IssueKeys"

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        m = ctx.msg
        assert isinstance(m, SignOn)
        if m.netcode != NetCode.SIGN_ON:
            return ctx.decline(
                "transaction.not_supported", netcode=m.netcode, note="60.3 must be 003"
            )
        keys = self.hsm.issue_working_keys(t.tid, t.tmk_sealed)
        ctx.tx.update_terminal(
            t.tid,
            pik_sealed=keys.sealed_pik,
            mak_sealed=keys.sealed_mak,
            keys_issued_at=ctx.now_iso,
            last_software=ctx.frame.header.reserved,
        )
        ctx.keys_field62 = keys.field62
        ctx.mak_sealed = keys.sealed_mak
        ctx.facts.update(
            pik_kcv=keys.pik_kcv, mak_kcv=keys.mak_kcv, batch=t.batch, operator=m.operator.strip()
        )
        return True


class SignOff:
    name = "SignOff"

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        ctx.tx.update_terminal(t.tid, pik_sealed=None, mak_sealed=None, keys_issued_at=None)
        self.hsm.forget(t.tid)
        return True


class Params:
    """Parameter download: host name and every maintenance notice not yet over."""

    name = "Params"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        records = [ParamRecord(Param.HOST_NAME, ctx.config.name)]
        for w in ctx.config.upcoming(ctx.now_iso):
            records += [
                ParamRecord(Param.NOTICE_ZH, w.notice_zh),
                ParamRecord(Param.NOTICE_EN, w.notice_en),
                ParamRecord(Param.NOTICE_START, local_stamp(w.start_at)),
                ParamRecord(Param.NOTICE_END, local_stamp(w.end_at)),
            ]
        ctx.facts["records"] = records
        ctx.facts["notices"] = (len(records) - 1) // 4
        ctx.tx.update_terminal(t.tid, notice_seen=ctx.config.latest_notice_id(ctx.now_iso))
        return True


def local_stamp(iso: str) -> str:
    from ..clock import parse_iso

    return local(parse_iso(iso)).strftime("%Y%m%d%H%M%S")


KIND_OF = {
    SignOn: "signon",
    ParameterDownload: "params",
    Settlement: "settlement",
    BatchUpload: "batch_upload",
    BatchUploadItem: "batch_upload",
    BatchUploadEnd: "batch_upload_end",
    Reversal: "reversal",
}


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
        issuer = Issuer(hsm)
        mac = VerifyMac(hsm)
        lenient = CheckTerminal(allow_suspended=True, check_software=False)
        self.flows: dict[str, Sequence[Participant]] = {
            "financial": (
                CheckTerminal(),
                CheckMerchant(),
                CheckMaintenance(),
                CheckSignedOn(),
                mac,
                CheckBatch(),
                CheckDuplicate(),
                LoadCard(tokens),
                AssessRisk(),
                Authorize(issuer),
            ),
            "reversal": (lenient, CheckSignedOn(), mac, Reverse(issuer)),
            "signon": (CheckTerminal(), CheckMaintenance(issuer_too=False), IssueKeys(hsm)),
            "signoff": (lenient, SignOff(hsm)),
            "echo": (lenient,),
            "params": (lenient, Params()),
            "settlement": (lenient, SettleBatch()),
            "batch_upload": (lenient, AcceptBatchUpload(tokens)),
        }

    # ------------------------------------------------------------------ entry points

    def handle(self, tx: Tx, frame: Frame, received: float) -> Outcome:
        """Process one frame inside the caller's transaction."""
        try:
            msg, block, mac = parse(frame.body, base=13)
        except WireError as exc:
            return self.format_error(tx, frame, exc, received)
        ctx = self._ctx(tx, frame, msg, block, mac)
        flow = self._flow(msg)
        for participant in self.flows[flow]:
            ok = participant(ctx)
            ctx.trail.append(f"{participant.name}:{'ok' if ok else ctx.reason}")
            if not ok:
                break
        return self._finish(ctx, received)

    def host_error(self, tx: Tx, frame: Frame, exc: BaseException, received: float) -> Outcome:
        """A participant failed: nothing of it was committed; journal and answer 96."""
        try:
            msg, block, mac = parse(frame.body, base=13)
        except WireError as werr:
            return self.format_error(tx, frame, werr, received)
        ctx = self._ctx(tx, frame, msg, block, mac)
        ctx.terminal = tx.terminal(msg.tid)
        ctx.mak_sealed = None  # never MAC an error answer
        ctx.decline("host.error", error=type(exc).__name__)
        ctx.trail.append(f"error:{type(exc).__name__}")
        return self._finish(ctx, received)

    def format_error(self, tx: Tx, frame: Frame, exc: WireError, received: float) -> Outcome:
        """Answer 30 when the MTI and TID can be read; otherwise close the connection."""
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
            software=frame.header.reserved,
            latency_us=int((time.perf_counter() - received) * 1e6),
            trail=f"Decode:{exc.describe()}",
        )
        rrn = rrn_of(jid)
        record = {
            "tid": tid_s,
            "stan": stan_s,
            "mti": mti,
            "reason": "message.format_error",
            "error": str(exc),
        }
        if not (mti and mti[2] in "02468" and mti[3] == "0" and tid_s):
            return Outcome(None, record, close=True)
        reply_mti = mti[:2] + str(int(mti[2]) + 1) + mti[3]
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
        reply = encode_frame(frame.tpdu.swapped(), frame.header.with_processing(0), body)
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
        return Ctx(
            tx=tx,
            frame=frame,
            msg=msg,
            mac_block=block,
            mac=mac,
            now=now,
            now_iso=utc_iso(now),
            load_config=self.config,
            stamp=local(now).strftime("%Y%m%d%H%M%S"),
        )

    @staticmethod
    def _flow(msg: Message) -> str:
        if isinstance(msg, FinancialRequest):
            return "financial"
        if isinstance(msg, Reversal):
            return "reversal"
        if isinstance(msg, SignOn):
            return "signon"
        if isinstance(msg, NetworkRequest):
            return "signoff" if msg.netcode == NetCode.SIGN_OFF else "echo"
        if isinstance(msg, ParameterDownload):
            return "params"
        if isinstance(msg, Settlement):
            return "settlement"
        if isinstance(msg, BatchUpload | BatchUploadItem | BatchUploadEnd):
            return "batch_upload"
        return "echo"  # responses sent to the host: answered by the terminal check only

    def _kind(self, msg: Message) -> str:
        if isinstance(msg, FinancialRequest):
            return msg.kind.label
        if isinstance(msg, NetworkRequest):
            return {NetCode.SIGN_OFF: "signoff", NetCode.ECHO: "echo"}.get(msg.netcode, "status")
        return KIND_OF.get(type(msg), type(msg).__name__.lower())

    def _finish(self, ctx: Ctx, received: float) -> Outcome:
        tx, msg = ctx.tx, ctx.msg
        reason = (
            self.catalog[ctx.reason] if ctx.reason in self.catalog else self.catalog["host.error"]
        )
        code = reason.code or ""
        if ctx.reason in ("settlement.balanced", "settlement.unbalanced"):
            code = ""
        t = ctx.terminal
        if ctx.reason in RE_SIGN_ON_REASONS:
            ctx.processing = ProcessingRequirement.SIGN_ON_AGAIN
        elif ctx.reason == "terminal.update_required":
            ctx.processing = ProcessingRequirement.DOWNLOAD_SOFTWARE
        elif (
            t is not None
            and not isinstance(msg, ParameterDownload)
            and ctx.config.latest_notice_id(ctx.now_iso) > t.notice_seen
        ):
            ctx.processing = ProcessingRequirement.DOWNLOAD_PARAMETERS
        approved = ctx.reason == "approved"
        req = msg.request if isinstance(msg, Reversal) else msg
        card = req.card if isinstance(req, FinancialRequest) else None
        amount = req.amount_fen if isinstance(req, FinancialRequest) else None
        if approved and isinstance(msg, FinancialRequest) and msg.kind.label != "balance":
            ctx.auth_code = f"{secrets.randbelow(16**6):06X}"
        org = ctx.card.organisation if ctx.card is not None else "   "
        facts = {k: v for k, v in ctx.facts.items() if k not in _NOT_JOURNALED}
        mti, kind = _request_mti(msg), self._kind(msg)
        pan = mask_pan(card.pan) if card is not None else ""
        jid = tx.insert_journal(
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
            software=ctx.frame.header.reserved,
            processing=ctx.processing,
            latency_us=int((time.perf_counter() - received) * 1e6),
            trail=" ".join(ctx.trail),
        )
        ctx.rrn = rrn_of(jid)
        if t is not None and (t.last_seen is None or t.last_seen < ctx.now_iso[:17]):
            tx.update_terminal(
                t.tid, last_seen=ctx.now_iso, last_software=ctx.frame.header.reserved
            )
        response = self._response(ctx, code, org)
        mac_fn = None
        if needs_mac(response) and ctx.mak_sealed is not None and t is not None:
            sealed, tid = ctx.mak_sealed, t.tid
            mac_fn = lambda block: self.hsm.generate_mac(tid, sealed, block)  # noqa: E731
        body = build(response, mac=mac_fn)
        header: Header = ctx.frame.header.with_processing(ctx.processing)
        reply = encode_frame(ctx.frame.tpdu.swapped(), header, body)
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
        if isinstance(msg, FinancialRequest):
            return FinancialResponse(
                kind=msg.kind,
                batch=msg.batch,
                amount_fen=msg.amount_fen,
                auth_code=ctx.auth_code or None,
                settle_date=ctx.mmdd if approved else None,
                expiry=msg.card.expiry if approved and msg.card is not None else None,
                balance=Balance(ctx.balance_fen)
                if approved and ctx.balance_fen is not None
                else None,
                currency=msg.currency,
                netcode=msg.netcode,
                **common,
            )
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
                batch=batch, records=recs, netcode=msg.netcode, **common
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
            return NetworkResponse(batch=msg.batch, netcode=msg.netcode, mti="0830", **common)
        # a response message sent to the host: answer as an echo would
        return NetworkResponse(
            batch=batch,
            netcode=NetCode.ECHO,
            mti="0830",
            **{**common, "code": "40", "reason": "transaction.not_supported"},
        )


#: facts that answer the terminal (field 48/62 content), not kept in the journal
_NOT_JOURNALED = frozenset(("records", "totals", "checks"))


def _request_mti(msg: Message) -> str:
    if isinstance(msg, FinancialRequest):
        return msg.kind.mti
    if isinstance(msg, Reversal):
        return "0400"
    if isinstance(msg, SignOn | ParameterDownload):
        return "0800"
    if isinstance(msg, NetworkRequest):
        return "0820"
    if isinstance(msg, Settlement):
        return "0500"
    if isinstance(msg, BatchUpload | BatchUploadItem | BatchUploadEnd):
        return "0320"
    return ""


def log_record(record: dict[str, Any], latency_ms: float) -> None:
    """One structured line per transaction (PAN already masked)."""
    if not txlog.isEnabledFor(logging.INFO):
        return
    record["latency_ms"] = round(latency_ms, 3)
    txlog.info(json.dumps(record, ensure_ascii=False, sort_keys=True))


__all__ = ["Engine", "Outcome", "Totals", "log_record"]
