"""Arrears and resumption (停机 / 复机, SCENARIOS.md D1, D5, D6).

The ledger records every fee and fine the merchant owes the provider and every
payment against them (with its voucher reference); ``merchants.arrears_fen``
is the running balance the host reads and is updated in the same transaction
as each ledger entry. A merchant suspended for arrears may ask for resumption
only when nothing is owed; a supervisor (a registered console user, not the
one who asked) approves — which reactivates the merchant — or rejects with a
reason. Each step is an audit row of the merchant, so it shows in the
merchant's history.

Resumption requests are themselves a small lifecycle: ``pending`` →
``approved`` | ``rejected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..store import Tx
from ..store.queries import ops as q
from .common import Change, Refused, check_actor, mask_text, now_iso, record
from .lifecycle import Lifecycle, Rule
from .merchants import get_merchant, reactivate_after_approval
from .users import APPROVER_ROLES, require_role

__all__ = [
    "CHARGE_KINDS",
    "REQUEST",
    "LedgerEntry",
    "ResumptionRequest",
    "approve",
    "charge",
    "ledger",
    "pay",
    "pending_request",
    "reject",
    "request_resumption",
    "requests",
]

CHARGE_KINDS = ("fee", "fine")

REQUEST = Lifecycle(
    "resumption request",
    ("pending", "approved", "rejected"),
    (
        Rule("approve", frozenset({"pending"}), "approved", "a supervisor lets the merchant trade again"),
        Rule("reject", frozenset({"pending"}), "rejected", "a supervisor refuses, with a reason"),
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A fee, a fine or a payment; ``balance_fen`` is what was owed after it."""

    id: int
    mid: str
    ts: str
    kind: str
    amount_fen: int
    balance_fen: int
    voucher: str
    actor: str
    note: str

    @classmethod
    def of(cls, r: Any) -> LedgerEntry:
        return cls(
            int(r["id"]),
            r["mid"],
            r["ts"],
            r["kind"],
            int(r["amount_fen"]),
            int(r["balance_fen"]),
            r["voucher"],
            r["actor"],
            r["note"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mid": self.mid,
            "ts": self.ts,
            "time": show(self.ts),
            "kind": self.kind,
            "amount": fen_yuan(self.amount_fen),
            "amount_fen": self.amount_fen,
            "owed_after": fen_yuan(self.balance_fen),
            "voucher": self.voucher,
            "by": self.actor,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ResumptionRequest:
    """A merchant's request to trade again after arrears, and its decision."""

    id: int
    mid: str
    requested_at: str
    requested_by: str
    note: str
    status: str
    decided_at: str | None
    decided_by: str | None
    decision_why: str

    @classmethod
    def of(cls, r: Any) -> ResumptionRequest:
        return cls(
            int(r["id"]),
            r["mid"],
            r["requested_at"],
            r["requested_by"],
            r["note"],
            r["status"],
            r["decided_at"],
            r["decided_by"],
            r["decision_why"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mid": self.mid,
            "requested_at": self.requested_at,
            "requested_time": show(self.requested_at),
            "requested_by": self.requested_by,
            "note": self.note,
            "status": self.status,
            "decided_at": self.decided_at,
            "decided_time": show(self.decided_at) if self.decided_at else None,
            "decided_by": self.decided_by,
            "why": self.decision_why,
        }


def ledger(tx: Tx, mid: str) -> list[LedgerEntry]:
    """The merchant's fees, fines and payments, oldest first."""
    return [LedgerEntry.of(r) for r in q.ledger_rows(tx, mid)]


def _entry(tx: Tx, eid: int) -> LedgerEntry:
    row = q.ledger_entry(tx, eid)
    assert row is not None, f"ledger entry {eid} was just written"
    return LedgerEntry.of(row)


def charge(
    tx: Tx,
    mid: str,
    kind: str,
    amount_fen: int,
    *,
    by: str,
    why: str,
    voucher: str = "",
    now: datetime | None = None,
) -> tuple[LedgerEntry, Change]:
    """Record a fee or fine the merchant owes; the running balance grows by ``amount_fen``."""
    by = check_actor(by)
    m = get_merchant(tx, mid)
    if kind not in CHARGE_KINDS:
        raise Refused(f"charge kind {kind!r} is unknown; use {' or '.join(CHARGE_KINDS)}")
    if amount_fen <= 0:
        raise Refused("the amount must be more than 0.00")
    if not why.strip():
        raise Refused("say what it is for: --why TEXT (e.g. 'service fee 2026-11')")
    at = now_iso(now)
    owed = m.arrears_fen + amount_fen
    tx.update_merchant(mid, arrears_fen=owed)
    eid = tx.insert_row(
        "arrears_ledger",
        {
            "mid": mid,
            "ts": at,
            "kind": kind,
            "amount_fen": amount_fen,
            "balance_fen": owed,
            "voucher": voucher.strip(),
            "actor": by,
            "note": mask_text(why.strip()),
        },
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=mid,
        action=f"arrears.{kind}",
        from_state=m.status,
        to_state=m.status,
        why=why.strip(),
        detail={"amount": fen_yuan(amount_fen), "owed": fen_yuan(owed), "entry": eid},
    )
    return _entry(tx, eid), change


def pay(
    tx: Tx,
    mid: str,
    amount_fen: int,
    voucher: str,
    *,
    by: str,
    note: str = "",
    now: datetime | None = None,
) -> tuple[LedgerEntry, Change]:
    """Record a payment against what the merchant owes, with its voucher reference.

    Refused without a voucher, for a voucher already recorded for this merchant
    (the same payment twice), when nothing is owed, or for more than is owed.
    """
    by = check_actor(by)
    m = get_merchant(tx, mid)
    voucher = voucher.strip()
    if not voucher or not voucher.isprintable():
        raise Refused("a payment needs its voucher reference: --voucher REF (保留凭证)")
    dup = q.payment_by_voucher(tx, mid, voucher)
    if dup is not None:
        raise Refused(
            f"voucher {voucher!r} was already recorded for merchant {mid} "
            f"(entry {dup['id']}, {show(dup['ts'])}); a payment is recorded once"
        )
    if amount_fen <= 0:
        raise Refused("the amount must be more than 0.00")
    if m.arrears_fen <= 0:
        raise Refused(f"merchant {mid} owes nothing; there is nothing to pay")
    if amount_fen > m.arrears_fen:
        raise Refused(
            f"merchant {mid} owes ¥{fen_yuan(m.arrears_fen)}; a payment of ¥{fen_yuan(amount_fen)} "
            f"is more than that: record ¥{fen_yuan(m.arrears_fen)} and refund the rest outside clearpos"
        )
    at = now_iso(now)
    owed = m.arrears_fen - amount_fen
    tx.update_merchant(mid, arrears_fen=owed)
    eid = tx.insert_row(
        "arrears_ledger",
        {
            "mid": mid,
            "ts": at,
            "kind": "payment",
            "amount_fen": amount_fen,
            "balance_fen": owed,
            "voucher": voucher,
            "actor": by,
            "note": mask_text(note.strip()),
        },
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=mid,
        action="arrears.payment",
        from_state=m.status,
        to_state=m.status,
        why=mask_text(note.strip()) or "payment",
        detail={
            "amount": fen_yuan(amount_fen),
            "owed": fen_yuan(owed),
            "voucher": voucher,
            "entry": eid,
        },
    )
    return _entry(tx, eid), change


def requests(tx: Tx, mid: str | None = None, status: str | None = None) -> list[ResumptionRequest]:
    """Resumption requests, oldest first."""
    return [ResumptionRequest.of(r) for r in q.resumption_rows(tx, mid, status)]


def pending_request(tx: Tx, mid: str) -> ResumptionRequest | None:
    found = requests(tx, mid, "pending")
    return found[-1] if found else None


def _request(tx: Tx, rid: int) -> ResumptionRequest:
    row = q.resumption_request(tx, rid)
    if row is None:
        raise Refused(
            f"no resumption request #{rid}", entity="resumption request", entity_id=str(rid)
        )
    return ResumptionRequest.of(row)


def request_resumption(
    tx: Tx, mid: str, *, by: str, note: str = "", now: datetime | None = None
) -> tuple[ResumptionRequest, Change]:
    """Ask for a merchant suspended for arrears to trade again (申请复机).

    Refused unless the merchant is suspended for arrears, owes nothing, and has
    no request already pending.
    """
    by = check_actor(by)
    m = get_merchant(tx, mid)
    if m.status != "suspended" or m.suspension_cause != "arrears":
        state = m.status + (f"({m.suspension_cause})" if m.suspension_cause else "")
        hint = (
            f"; a {m.suspension_cause} suspension is lifted with clearpos admin merchant resume --mid {mid}"
            if m.status == "suspended"
            else ""
        )
        raise Refused(
            f"merchant {mid} is {state}: a resumption request is only for a merchant "
            f"suspended for arrears{hint}",
            entity="merchant",
            entity_id=mid,
            state=state,
            action="resume request",
        )
    if m.arrears_fen > 0:
        raise Refused(
            f"merchant {mid} still owes ¥{fen_yuan(m.arrears_fen)}: record the payment first "
            f"(clearpos admin arrears pay --mid {mid} --amount {fen_yuan(m.arrears_fen)} --voucher REF --by NAME)",
            entity="merchant",
            entity_id=mid,
            state="suspended(arrears)",
            action="resume request",
            allowed=("arrears pay",),
        )
    pending = pending_request(tx, mid)
    if pending is not None:
        raise Refused(
            f"resumption request #{pending.id} for merchant {mid} is already pending "
            f"(asked by {pending.requested_by} at {show(pending.requested_at)}); "
            f"a supervisor approves or rejects it",
            entity="resumption request",
            entity_id=str(pending.id),
            state="pending",
            action="request",
            allowed=REQUEST.allowed("pending"),
        )
    at = now_iso(now)
    rid = tx.insert_row(
        "resumption_requests",
        {
            "mid": mid,
            "requested_at": at,
            "requested_by": by,
            "note": mask_text(note.strip()),
            "status": "pending",
            "decision_why": "",
        },
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=mid,
        action="resumption.request",
        from_state="suspended(arrears)",
        to_state="suspended(arrears)",
        why=note.strip() or "arrears paid, asks to trade again",
        detail={"request": rid},
    )
    return _request(tx, rid), change


def _check_decider(tx: Tx, req: ResumptionRequest, action: str, by: str) -> None:
    REQUEST.target(action, req.status, f"#{req.id}")
    require_role(tx, by, APPROVER_ROLES, f"{action} a resumption request")
    if by == req.requested_by:
        raise Refused(
            f"{by} asked for resumption #{req.id} and cannot also {action} it: "
            "another supervisor decides"
        )


def _mark(tx: Tx, req: ResumptionRequest, status: str, *, at: str, by: str, why: str) -> None:
    tx.update_row(
        "resumption_requests",
        "id",
        req.id,
        {"status": status, "decided_at": at, "decided_by": by, "decision_why": mask_text(why)},
    )


def approve(tx: Tx, rid: int, *, by: str, why: str = "", now: datetime | None = None) -> Change:
    """A supervisor approves: the merchant becomes active again (复机).

    Checked again at approval time: the merchant must still be suspended for
    arrears and owe nothing (a fee charged after the request blocks it).
    """
    by = check_actor(by)
    req = _request(tx, rid)
    _check_decider(tx, req, "approve", by)
    m = get_merchant(tx, req.mid)
    if m.status != "suspended" or m.suspension_cause != "arrears":
        raise Refused(
            f"merchant {m.mid} is no longer suspended for arrears ({m.status}); "
            f"reject request #{rid} with the reason"
        )
    if m.arrears_fen > 0:
        raise Refused(
            f"merchant {m.mid} owes ¥{fen_yuan(m.arrears_fen)} again since request #{rid} was "
            "made: record the payment, or reject the request with the reason"
        )
    at = now_iso(now)
    why_text = why.strip() or f"resumption request #{rid}: nothing owed"
    _mark(tx, req, "approved", at=at, by=by, why=why_text)
    record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=m.mid,
        action="resumption.approve",
        from_state="suspended(arrears)",
        to_state="suspended(arrears)",
        why=why_text,
        detail={"request": rid, "requested_by": req.requested_by},
    )
    return reactivate_after_approval(tx, m.mid, by=by, why=why_text, at=at, request_id=rid)


def reject(tx: Tx, rid: int, *, by: str, why: str, now: datetime | None = None) -> Change:
    """A supervisor rejects, saying why; the merchant stays suspended."""
    by = check_actor(by)
    if not why.strip():
        raise Refused("a rejection needs its reason: --why TEXT")
    req = _request(tx, rid)
    _check_decider(tx, req, "reject", by)
    at = now_iso(now)
    _mark(tx, req, "rejected", at=at, by=by, why=why.strip())
    return record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=req.mid,
        action="resumption.reject",
        from_state="suspended(arrears)",
        to_state="suspended(arrears)",
        why=why.strip(),
        detail={"request": rid, "requested_by": req.requested_by},
    )
