"""Pipeline participants: one decision each (STYLE.md §5).

A participant is called with the context and returns True to go on or False
after recording exactly one reason key with ``ctx.decline``. The engine runs
journal and respond on every path, approved or not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from ..clock import parse_iso, show, utc_iso
from ..issuer import Issuer
from ..keys import SecurityModule
from ..keys.tokens import PanTokenizer
from ..money import fen_yuan
from ..store import JournalRec
from ..versions import version_at_least
from ..wire import (
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    CheckCode,
    FinancialRequest,
    Kind,
    Reversal,
    Settlement,
    Settlement48,
    Totals,
)
from ..wire.emvtags import masked_tags
from .context import Ctx
from .journal import move

# restricted_types of world.md -> kinds they cover
RESTRICTION_OF = {
    Kind.PURCHASE: "purchase",
    Kind.VOID: "void",
    Kind.REFUND: "refund",
    Kind.PREAUTH: "preauth",
    Kind.PREAUTH_VOID: "preauth",
    Kind.COMPLETION: "completion",
    Kind.COMPLETION_ADVICE: "completion",
    Kind.COMPLETION_VOID: "completion",
    Kind.BALANCE: "balance",
    Kind.OFFLINE: "offline",
}


class Participant(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, ctx: Ctx) -> bool: ...


class CheckTerminal:
    """The terminal is registered, active, and runs at least the required software.

    The application version is the one the terminal reports in field 59 (A2/05),
    compared part by part; a terminal that reports none is not refused (spec §3:
    the header's reserved digits carry nothing the host may rely on)."""

    name = "CheckTerminal"

    def __init__(self, *, allow_suspended: bool = False, check_software: bool = True) -> None:
        self.allow_suspended = allow_suspended
        self.check_software = check_software

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.tx.terminal(ctx.msg.tid)
        if t is None:
            return ctx.decline("terminal.unknown", tid=ctx.msg.tid)
        ctx.terminal = t
        if t.status != "active" and not self.allow_suspended:
            return ctx.decline(
                "terminal.suspended", since=show(t.status_since), by=t.status_by, why=t.status_why
            )
        software = ctx.software
        if self.check_software and software and not version_at_least(software, t.min_software):
            return ctx.decline(
                "terminal.update_required", software=software, minimum=t.min_software
            )
        return True


class CheckMid:
    """The request's MID (42) is the terminal's merchant (a sign-on for another
    merchant's terminal is refused)."""

    name = "CheckMid"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        if ctx.msg.mid != t.mid:
            return ctx.decline(
                "terminal.unknown", tid=ctx.msg.tid, mid=ctx.msg.mid, note="MID does not match"
            )
        return True


class CheckAmount:
    """A transaction that moves money names a positive amount (0 is 13)."""

    name = "CheckAmount"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        if m.kind.has_amount and not m.amount_fen:
            return ctx.decline("transaction.invalid_amount", amount=fen_yuan(m.amount_fen or 0))
        return True


class CheckMerchant:
    """The merchant may trade: not suspended, not closed."""

    name = "CheckMerchant"

    def __call__(self, ctx: Ctx) -> bool:
        assert ctx.terminal is not None
        # Read, not locked: the pipeline never changes a merchant, and every financial
        # message of one merchant reads it, so on PostgreSQL a FOR UPDATE here would
        # queue all of a merchant's traffic behind each other across all processes. At
        # READ COMMITTED the read sees the latest committed status; a suspension that
        # commits a moment later applies from the next message on.
        m = ctx.tx.merchant(ctx.terminal.mid, lock=False)
        if m is None:  # a terminal always has a merchant (foreign key); keep the check honest
            return ctx.decline("merchant.closed", mid=ctx.terminal.mid)
        ctx.merchant = m
        if m.status in ("suspended", "closed"):
            facts: dict[str, Any] = {
                "mid": m.mid,
                "since": show(m.status_since),
                "by": m.status_by,
                "why": m.status_why,
            }
            if m.status == "closed":
                return ctx.decline("merchant.closed", **facts)
            cause = m.suspension_cause or "manual"
            if cause == "arrears":
                facts["owed"] = fen_yuan(m.arrears_fen)
            return ctx.decline(f"merchant.suspended.{cause}", **facts)
        if ctx.msg.mid != m.mid:
            return ctx.decline(
                "terminal.unknown", tid=ctx.msg.tid, mid=ctx.msg.mid, note="MID does not match"
            )
        return True


class CheckMaintenance:
    """An announced window is active: host -> 96, issuer -> 91 (with its end time)."""

    name = "CheckMaintenance"

    def __init__(self, *, issuer_too: bool = True) -> None:
        self.issuer_too = issuer_too

    def __call__(self, ctx: Ctx) -> bool:
        for w in ctx.config.active(ctx.now_iso):
            facts = {
                "until": show(w.end_at),
                "notice_zh": w.notice_zh,
                "notice_en": w.notice_en,
                "window": w.id,
            }
            if w.who == "host":
                return ctx.decline("host.maintenance", **facts)
            if w.who == "issuer" and self.issuer_too:
                return ctx.decline("issuer.unavailable", **facts)
        return True


class CheckSignedOn:
    """The terminal holds working keys from a sign-on."""

    name = "CheckSignedOn"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        if not t.signed_on:
            return ctx.decline("terminal.not_signed_on")
        ctx.mak_sealed = t.mak_sealed
        ctx.pik_sealed = t.pik_sealed
        return True


class VerifyMac:
    """Field 64 verifies under the terminal's MAC key."""

    name = "VerifyMac"

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None and t.mak_sealed is not None
        if ctx.mac is None or ctx.mac_block is None:
            return ctx.decline("mac.invalid", detail="field 64 missing")
        if self.hsm.verify_mac(t.tid, t.mak_sealed, ctx.mac_block, ctx.mac):
            if not t.keys_proven:
                # the terminal holds the newest keys: the previous ones retire
                ctx.tx.update_terminal(
                    t.tid,
                    keys_proven=1,
                    unproven_signons=0,
                    prev_pik_sealed=None,
                    prev_mak_sealed=None,
                    prev_tdk_sealed=None,
                    prev_until=None,
                )
            return True
        if (
            not t.keys_proven
            and t.previous_keys_valid(ctx.now_iso)
            and t.prev_mak_sealed is not None
            and self.hsm.verify_mac(t.tid, t.prev_mak_sealed, ctx.mac_block, ctx.mac)
        ):
            # Signed on again since, but this terminal still holds the keys it last
            # proved: someone else's sign-on (or a lost 0810) must not take it down.
            # Both key sets stay valid until the new one is proven or the grace ends.
            ctx.mak_sealed = t.prev_mak_sealed
            ctx.pik_sealed = t.prev_pik_sealed
            ctx.facts["keys"] = "previous"
            return True
        return ctx.decline("mac.invalid")


def req_key(m: FinancialRequest) -> str:
    """What makes a request unique at the host: TID, batch and STAN (spec §7)."""
    return f"{m.tid}:{m.batch}:{m.stan}"


def declined_as_duplicate(ctx: Ctx, key: str) -> bool:
    """Decline with 94 when the host already processed the request ``key``."""
    prior = ctx.tx.journal_by_key(key)
    if prior is None:
        return False
    ctx.decline("transaction.duplicate", first_rrn=prior.rrn, first_reason=prior.reason)
    return True


class CheckBatch:
    """The request's batch (60.2) is the terminal's open batch at the host."""

    name = "CheckBatch"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        m = ctx.msg
        batch = getattr(m, "batch", t.batch)
        if batch != t.batch:
            # spec §7: a request the host already processed is a duplicate (94) even
            # when its batch has closed since; 77 then means "not applied", which lets
            # a terminal safely re-issue a stored offline sale in its current batch.
            if isinstance(m, FinancialRequest) and declined_as_duplicate(ctx, req_key(m)):
                return False
            return ctx.decline("terminal.batch_mismatch", terminal_batch=batch, host_batch=t.batch)
        return True


class CheckDuplicate:
    """(TID, batch, STAN) not processed before; the key is taken by this request."""

    name = "CheckDuplicate"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        key = req_key(m)
        if declined_as_duplicate(ctx, key):
            return False
        ctx.req_key = key
        return True


class LoadCard:
    """Find the card account (by PAN token; PANs are not stored in clear)."""

    name = "LoadCard"

    def __init__(self, tokens: PanTokenizer) -> None:
        self.tokens = tokens

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        if m.card is None:
            return ctx.decline(
                "message.format_error", detail="card data (field 2 or 35) missing", field=35
            )
        card = ctx.tx.card_by_token(ctx.card_token or self.tokens.token(m.card.pan))
        if card is None:
            return ctx.decline("card.unknown")
        ctx.card = card
        return True


class AssessRisk:
    """Merchant restrictions and single-transaction cap; card velocity lock."""

    name = "AssessRisk"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest) and ctx.merchant is not None
        mer = ctx.merchant
        if mer.status == "restricted" and RESTRICTION_OF[m.kind] in mer.restricted_types:
            return ctx.decline("merchant.restricted", kind=RESTRICTION_OF[m.kind], mid=mer.mid)
        amount = m.amount_fen or 0
        debit = m.kind.direction > 0 or m.kind is Kind.PREAUTH
        if debit and mer.single_limit_fen and amount > mer.single_limit_fen:
            return ctx.decline(
                "merchant.single_limit",
                limit=fen_yuan(mer.single_limit_fen),
                amount=fen_yuan(amount),
            )
        rule = ctx.config.velocity
        if m.kind is Kind.PURCHASE and rule and ctx.card is not None:
            card = ctx.card
            if card.velocity_until and card.velocity_until > ctx.now_iso:
                return ctx.decline("risk.card_velocity", until=show(card.velocity_until))
            since = utc_iso(ctx.now - timedelta(seconds=rule["window_s"]))
            n = ctx.tx.count_approved(card.id, "purchase", since)
            if n >= rule["count"]:
                until = utc_iso(ctx.now + timedelta(seconds=rule["lock_s"]))
                ctx.tx.update_card(card.id, velocity_until=until)
                return ctx.decline(
                    "risk.card_velocity", until=show(until), count=n, window_s=rule["window_s"]
                )
        return True


class Authorize:
    """The issuer's decision and the money it moves, per transaction kind."""

    name = "Authorize"

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self._handlers = self._handler_table()

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        return self._handlers[m.kind](ctx, m)

    def _handler_table(self) -> dict[Kind, Callable[[Ctx, FinancialRequest], bool]]:
        """Transaction kind -> the handler that authorises it (the call graph, in one place)."""
        return {
            Kind.BALANCE: self._balance,
            Kind.PURCHASE: self._purchase,
            Kind.OFFLINE: self._offline,
            Kind.PREAUTH: self._preauth,
            Kind.PREAUTH_VOID: self._preauth_void,
            Kind.COMPLETION: self._completion,
            # the advice form (0220, 60.1 = 24) is handled like completion (spec §4)
            Kind.COMPLETION_ADVICE: self._completion,
            Kind.COMPLETION_VOID: self._completion_void,
            Kind.VOID: self._void,
            Kind.REFUND: self._refund,
        }

    # -- common card checks --------------------------------------------------------

    def _card_ok(self, ctx: Ctx, m: FinancialRequest, *, pin: bool = True) -> bool:
        card = ctx.card
        assert card is not None and m.card is not None and ctx.terminal is not None
        today = ctx.yymm
        bad = self.issuer.check_status(card, m.card.expiry, today)
        if bad:
            return ctx.decline(bad.reason, **bad.facts)
        if pin and m.card.pin_block is not None:
            pik = ctx.pik_sealed or ctx.terminal.pik_sealed
            assert pik is not None
            bad = self.issuer.verify_pin(
                ctx.tx,
                card,
                ctx.terminal.tid,
                pik,
                m.card.pin_block,
                m.card.pan,
                pin_format=m.card.pin_format,
                algorithm=m.card.pin_algorithm,
            )
            if bad:
                return ctx.decline(bad.reason, **bad.facts)
        return True

    def _debit(self, ctx: Ctx, amount: int, *, hold: bool = False) -> bool:
        card = ctx.card
        assert card is not None
        bd = ctx.business_date
        bad = self.issuer.check_debit(card, amount, bd, hold=hold)
        if bad:
            return ctx.decline(bad.reason, **bad.facts)
        if hold:
            self.issuer.apply(ctx.tx, card, hold=amount, daily=amount, business_date=bd)
            ctx.hold_fen = amount
        else:
            self.issuer.apply(ctx.tx, card, delta=-amount, daily=amount, business_date=bd)
            ctx.delta_fen = -amount
        return True

    def _original(self, ctx: Ctx, m: FinancialRequest, kinds: tuple[str, ...]) -> JournalRec | None:
        """The original named by field 61 (batch + STAN) on this terminal, or by RRN."""
        tx = ctx.tx
        orig: JournalRec | None = None
        if m.original is not None:
            orig = tx.journal_original(m.tid, m.original.batch, m.original.stan, kinds)
        if orig is None and m.rrn:
            cand = tx.journal_by_rrn(m.rrn)
            if cand is not None and cand.kind in kinds and cand.mid == m.mid:
                orig = cand
        if orig is None or orig.code != "00":
            ctx.decline(
                "transaction.original_not_found", rrn=m.rrn, original=m.original and m.original.stan
            )
            return None
        if ctx.card is not None and orig.card_id != ctx.card.id:
            ctx.decline("transaction.original_not_found", note="card differs from the original")
            return None
        if m.rrn and orig.rrn != m.rrn:
            ctx.decline(
                "transaction.original_not_found", note="RRN differs from the original", rrn=m.rrn
            )
            return None
        ctx.original_id = orig.id
        return orig

    def _undo_credit(self, ctx: Ctx, orig: JournalRec, amount: int) -> None:
        """Give back money an original took (void, completion void)."""
        card = ctx.card
        assert card is not None
        bd = ctx.business_date
        same_day = orig.business_date == bd
        self.issuer.apply(
            ctx.tx, card, delta=amount, daily=-amount if same_day else 0, business_date=bd
        )
        ctx.delta_fen = amount

    # -- kinds ---------------------------------------------------------------------

    def _balance(self, ctx: Ctx, m: FinancialRequest) -> bool:
        if not self._card_ok(ctx, m):
            return False
        assert ctx.card is not None
        ctx.balance_fen = ctx.card.available_fen
        return True

    def _purchase(self, ctx: Ctx, m: FinancialRequest) -> bool:
        return self._card_ok(ctx, m) and self._debit(ctx, m.amount_fen or 0)

    def _offline(self, ctx: Ctx, m: FinancialRequest) -> bool:
        return self._card_ok(ctx, m, pin=False) and self._debit(ctx, m.amount_fen or 0)

    def _preauth(self, ctx: Ctx, m: FinancialRequest) -> bool:
        return self._card_ok(ctx, m) and self._debit(ctx, m.amount_fen or 0, hold=True)

    def _void_of(self, ctx: Ctx, m: FinancialRequest, kinds: tuple[str, ...]) -> JournalRec | None:
        orig = self._original(ctx, m, kinds)
        if orig is None:
            return None
        if orig.status != "approved":
            ctx.decline(
                "transaction.already_voided", original_status=orig.status, original_rrn=orig.rrn
            )
            return None
        if orig.amount_fen != m.amount_fen:
            ctx.decline(
                "transaction.original_amount_mismatch",
                original=fen_yuan(orig.amount_fen or 0),
                amount=fen_yuan(m.amount_fen or 0),
            )
            return None
        return orig

    def _same_batch(self, ctx: Ctx, orig: JournalRec) -> bool:
        assert ctx.terminal is not None
        if (
            orig.settlement_id is not None
            or orig.batch != ctx.terminal.batch
            or orig.tid != ctx.terminal.tid
        ):
            ctx.decline(
                "transaction.original_not_found",
                note="original is not in the open batch; use refund",
            )
            return False
        return True

    def _void_same_batch(self, ctx: Ctx, m: FinancialRequest, kinds: tuple[str, ...]) -> bool:
        orig = self._void_of(ctx, m, kinds)
        if orig is None or not self._same_batch(ctx, orig):
            return False
        self._undo_credit(ctx, orig, m.amount_fen or 0)
        move(ctx.tx, orig, "void")
        return True

    def _void(self, ctx: Ctx, m: FinancialRequest) -> bool:
        return self._void_same_batch(ctx, m, ("purchase",))

    def _completion_void(self, ctx: Ctx, m: FinancialRequest) -> bool:
        return self._void_same_batch(ctx, m, ("completion",))

    def _preauth_void(self, ctx: Ctx, m: FinancialRequest) -> bool:
        orig = self._void_of(ctx, m, ("preauth",))
        if orig is None:
            return False
        card = ctx.card
        assert card is not None
        bd = ctx.business_date
        amount = orig.hold_fen
        same_day = orig.business_date == bd
        self.issuer.apply(
            ctx.tx, card, hold=-amount, daily=-amount if same_day else 0, business_date=bd
        )
        ctx.hold_fen = -amount
        move(ctx.tx, orig, "void")
        return True

    def _completion(self, ctx: Ctx, m: FinancialRequest) -> bool:
        if not self._card_ok(ctx, m, pin=True):
            return False
        orig = self._original(ctx, m, ("preauth",))
        if orig is None:
            return False
        if orig.status != "approved":
            return ctx.decline(
                "transaction.already_voided", original_status=orig.status, original_rrn=orig.rrn
            )
        amount = m.amount_fen or 0
        if amount > (orig.amount_fen or 0):
            return ctx.decline(
                "transaction.original_amount_mismatch",
                original=fen_yuan(orig.amount_fen or 0),
                amount=fen_yuan(amount),
            )
        card = ctx.card
        assert card is not None
        bd = ctx.business_date
        refused = self.issuer.check_completion(card, amount, orig.hold_fen)
        if refused is not None:
            return ctx.decline(refused.reason, **refused.facts)
        # release the hold, take the money; today's used amount moves from hold to debit
        same_day = orig.business_date == bd
        daily = amount - (orig.hold_fen if same_day else 0)
        self.issuer.apply(
            ctx.tx, card, delta=-amount, hold=-orig.hold_fen, daily=daily, business_date=bd
        )
        ctx.delta_fen = -amount
        ctx.hold_fen = -orig.hold_fen
        move(ctx.tx, orig, "complete")
        return True

    def _refund(self, ctx: Ctx, m: FinancialRequest) -> bool:
        card = ctx.card
        assert card is not None
        refused = self.issuer.check_credit(card)
        if refused is not None:
            return ctx.decline(refused.reason, **refused.facts)
        orig = self._original(ctx, m, ("purchase", "completion", "offline"))
        if orig is None:
            return False
        if orig.status not in ("approved", "settled"):
            return ctx.decline(
                "transaction.already_voided", original_status=orig.status, original_rrn=orig.rrn
            )
        refunded = sum(
            r.amount_fen or 0
            for r in ctx.tx.journal_children(orig.id, ("refund",))
            if r.code == "00" and r.status == "approved"
        )
        amount = m.amount_fen or 0
        if refunded + amount > (orig.amount_fen or 0):
            return ctx.decline(
                "transaction.original_amount_mismatch",
                original=fen_yuan(orig.amount_fen or 0),
                refunded=fen_yuan(refunded),
                amount=fen_yuan(amount),
            )
        bd = ctx.business_date
        self.issuer.apply(ctx.tx, card, delta=amount, business_date=bd)
        ctx.delta_fen = amount
        return True


class Reverse:
    """Undo an original exactly once (reasons.md: 00 undone, 12 already, 25 nothing)."""

    name = "Reverse"

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, Reversal)
        r = m.request
        key = req_key(r)
        orig = ctx.tx.journal_original(r.tid, r.batch, r.stan, (r.kind.label,))
        ctx.facts["reversal_reason"] = m.reason_code
        if r.card is not None and r.card.chip:
            # the chip's TVR after its second GENERATE AC: why a card refused (06)
            ctx.facts["chip_data"] = masked_tags(r.card.chip)
        if orig is None:
            prior = ctx.tx.journal_by_key(key)
            if prior is not None and prior.kind == "reversal":
                return ctx.decline("transaction.already_voided", note="reversal already received")
            # A tombstone: should the original still arrive (late), it is a duplicate.
            ctx.req_key = key
            return ctx.decline("transaction.original_not_found", stan=r.stan)
        card = ctx.tx.card(orig.card_id) if orig.card_id is not None else None
        if card is not None:
            # The card row is locked now (PostgreSQL: FOR UPDATE). A void, completion or
            # another reversal of this original in another process locks the same card
            # first, so reading the original again sees what it committed.
            orig = ctx.tx.journal_original(r.tid, r.batch, r.stan, (r.kind.label,))
            assert orig is not None  # journal rows are never deleted
        ctx.original_id = orig.id
        if orig.code != "00":
            return ctx.decline("transaction.original_not_found", original_reason=orig.reason)
        if orig.status == "reversed":
            return ctx.decline("transaction.already_voided", original_status=orig.status)
        if orig.status != "approved":
            # voided / completed: money already moved back by a later transaction
            return ctx.decline("transaction.already_voided", original_status=orig.status)
        if orig.settlement_id is not None:
            return ctx.decline("transaction.original_not_found", note="original already settled")
        if card is not None and (orig.delta_fen or orig.hold_fen):
            bd = ctx.business_date
            same_day = orig.business_date == bd
            used = -daily_effect(orig) if same_day else 0
            self.issuer.apply(
                ctx.tx,
                card,
                delta=-orig.delta_fen,
                hold=-orig.hold_fen,
                daily=used,
                business_date=bd,
            )
            ctx.card = card
            ctx.delta_fen = -orig.delta_fen
            ctx.hold_fen = -orig.hold_fen
        move(ctx.tx, orig, "reverse")
        if orig.original_id is not None and orig.kind in (
            "void",
            "completion_void",
            "preauth_void",
            "completion",
        ):
            # the sale or pre-authorisation the reversed message had closed is open again
            closed = ctx.tx.journal(orig.original_id)
            assert closed is not None  # journal rows are never deleted
            move(ctx.tx, closed, "restore")
        return True


class SettleBatch:
    """Compare the terminal's totals with the host's view of the open batch."""

    name = "SettleBatch"

    @staticmethod
    def resettle(ctx: Ctx, m: Settlement) -> bool:
        """A 0500 for a batch this host already closed (the terminal never heard the
        0510): when its totals are the ones that closed it, answer the same again, so
        the terminal closes its batch too. Nothing changes at the host."""
        t = ctx.terminal
        assert t is not None
        closed = ctx.tx.closed_settlement(t.tid, m.batch)
        if closed is None:
            return False
        d, f = m.totals.domestic, m.totals.foreign
        theirs = (
            d.debit_fen + f.debit_fen,
            d.debit_count + f.debit_count,
            d.credit_fen + f.credit_fen,
            d.credit_count + f.credit_count,
        )
        stored = tuple(
            int(closed[c])
            for c in ("term_debit_fen", "term_debit_count", "term_credit_fen", "term_credit_count")
        )
        if theirs != stored:
            return False
        ctx.facts.update(settlement_id=int(closed["id"]), repeated=True)
        ctx.facts["totals"] = Settlement48(d.with_check(1), f.with_check(1)).encode()
        ctx.reason = "settlement.balanced"
        return True

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        t = ctx.terminal
        assert isinstance(m, Settlement) and t is not None
        if m.batch != t.batch:
            return self.resettle(ctx, m) or ctx.decline(
                "terminal.batch_mismatch", terminal_batch=m.batch, host_batch=t.batch
            )
        dom, fgn = host_totals(ctx, t.tid, t.batch)
        checks = []
        for theirs, ours in ((m.totals.domestic, dom), (m.totals.foreign, fgn)):
            checks.append(CheckCode.BALANCED if theirs.same_sums(ours) else CheckCode.UNBALANCED)
        balanced = all(c == CheckCode.BALANCED for c in checks)
        cols = dict(
            ts=ctx.now_iso,
            tid=t.tid,
            mid=t.mid,
            batch=t.batch,
            term_debit_fen=m.totals.domestic.debit_fen + m.totals.foreign.debit_fen,
            term_debit_count=m.totals.domestic.debit_count + m.totals.foreign.debit_count,
            term_credit_fen=m.totals.domestic.credit_fen + m.totals.foreign.credit_fen,
            term_credit_count=m.totals.domestic.credit_count + m.totals.foreign.credit_count,
            host_debit_fen=dom.debit_fen + fgn.debit_fen,
            host_debit_count=dom.debit_count + fgn.debit_count,
            host_credit_fen=dom.credit_fen + fgn.credit_fen,
            host_credit_count=dom.credit_count + fgn.credit_count,
            check_code=CheckCode.BALANCED if balanced else CheckCode.UNBALANCED,
            status="unbalanced",
        )
        # A settlement already waiting for its batch upload (a re-sent or duplicated
        # 0500) is the same settlement: update it, never open a second one.
        prior = ctx.tx.open_settlement(t.tid, t.batch)
        if prior is not None:
            sid = int(prior["id"])
            ctx.tx.update_settlement(sid, **cols)
        else:
            sid = ctx.tx.insert_settlement(**cols)
        ctx.facts.update(
            settlement_id=sid,
            host_debit=fen_yuan(dom.debit_fen + fgn.debit_fen),
            host_credit=fen_yuan(dom.credit_fen + fgn.credit_fen),
        )
        ctx.facts["checks"] = checks
        ctx.facts["totals"] = Settlement48(
            m.totals.domestic.with_check(checks[0]), m.totals.foreign.with_check(checks[1])
        ).encode()
        if balanced:
            close_batch(ctx, sid)
            ctx.reason = "settlement.balanced"
        else:
            ctx.reason = "settlement.unbalanced"
            ctx.status = "unbalanced"
        return True


def daily_effect(j: JournalRec) -> int:
    """What a journal row did to the card's 'used today' amount."""
    amount = j.amount_fen or 0
    if j.kind in ("purchase", "offline", "preauth"):
        return amount
    if j.kind in ("void", "completion_void"):
        return -amount
    if j.kind == "preauth_void":
        return j.hold_fen
    if j.kind == "completion":
        return amount + j.hold_fen
    return 0


def host_totals(ctx: Ctx, tid: str, batch: str) -> tuple[Totals, Totals]:
    """Domestic (CUP) and foreign totals of an open batch from the journal."""
    dom, fgn = ctx.tx.batch_totals(tid, batch)
    return Totals(*dom), Totals(*fgn)


def close_batch(ctx: Ctx, settlement_id: int) -> None:
    t = ctx.terminal
    assert t is not None
    ctx.tx.close_batch(t.tid, t.batch, settlement_id)
    ctx.tx.update_settlement(settlement_id, status="closed", closed_at=ctx.now_iso)
    nxt = f"{int(t.batch) % 999999 + 1:06d}"
    ctx.tx.update_terminal(t.tid, batch=nxt)
    ctx.facts["next_batch"] = nxt


class AcceptBatchUpload:
    """Record batch-upload records; the end message closes the batch."""

    name = "AcceptBatchUpload"

    def __init__(self, tokens: PanTokenizer) -> None:
        self.tokens = tokens

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        t = ctx.terminal
        assert t is not None
        batch = getattr(m, "batch", None) or (
            m.request.batch if isinstance(m, BatchUploadItem) else t.batch
        )
        st = ctx.tx.open_settlement(t.tid, batch)
        if st is None:
            return ctx.decline(
                "transaction.original_not_found", note="no unbalanced settlement for this batch"
            )
        sid = int(st["id"])
        ctx.facts["settlement_id"] = sid
        if isinstance(m, BatchUpload):
            for rec in m.records:
                j = ctx.tx.journal_original(
                    t.tid, batch, rec.stan, ("purchase", "completion", "offline")
                )
                ctx.tx.insert_batch_upload(
                    settlement_id=sid,
                    stan=rec.stan,
                    pan_masked=mask(rec.pan),
                    amount_fen=rec.amount_fen,
                    kind="debit",
                    journal_id=j.id if j else None,
                )
            ctx.tx.update_settlement(sid, uploaded=int(st["uploaded"]) + len(m.records))
            ctx.facts["records"] = len(m.records)
        elif isinstance(m, BatchUploadItem):
            r = m.request
            j = ctx.tx.journal_original(t.tid, batch, r.stan, (r.kind.label,))
            ctx.tx.insert_batch_upload(
                settlement_id=sid,
                stan=r.stan,
                pan_masked=mask(r.card.pan) if r.card else "",
                amount_fen=r.amount_fen or 0,
                kind=r.kind.label,
                journal_id=j.id if j else None,
            )
            ctx.tx.update_settlement(sid, uploaded=int(st["uploaded"]) + 1)
        elif isinstance(m, BatchUploadEnd):
            ctx.facts["count"] = m.count
            close_batch(ctx, sid)
        return True


def mask(pan: str) -> str:
    from ..wire import mask_pan

    return mask_pan(pan)


def parse_window_end(text: str) -> str:
    return show(parse_iso(text))
