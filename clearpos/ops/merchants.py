"""The merchant lifecycle: active, restricted, suspended (arrears | risk | manual), closed.

The host reads ``status``, ``suspension_cause``, ``restricted_types`` and
``arrears_fen`` on every message, and ``status_since`` / ``status_by`` /
``status_why`` become the facts of a ``merchant.*`` decline. Every change here
updates those columns and writes its audit row in the same transaction.

A merchant suspended for arrears comes back only through a resumption request
that a supervisor approves (:mod:`clearpos.ops.arrears`): nothing owed, then
the request, then the approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..money import fen_yuan
from ..store import MerchantRec, Tx
from ..world import SUSPENSION_CAUSES, TRANSACTION_TYPES
from .common import Change, Refused, check_actor, mask_text, now_iso, record
from .lifecycle import Lifecycle, Rule

__all__ = [
    "MERCHANT",
    "add_merchant",
    "close",
    "get_merchant",
    "lift",
    "restrict",
    "resume",
    "set_single_limit",
    "suspend",
]

_ALL = frozenset({"active", "restricted", "suspended"})

MERCHANT = Lifecycle(
    "merchant",
    ("active", "restricted", "suspended", "closed"),
    (
        Rule("restrict", frozenset({"active", "restricted"}), "restricted", "refuse some transaction types"),
        Rule("lift", frozenset({"restricted"}), "active", "lift the restriction"),
        Rule("suspend", frozenset({"active", "restricted"}), "suspended", "stop all trading (停机): arrears, risk or manual"),
        Rule("resume", frozenset({"suspended"}), "active", "trade again (复机); arrears: only by an approved request"),
        Rule("close", _ALL, "closed", "end the contract (final)"),
        Rule("set_limit", _ALL, None, "change the single-transaction cap"),
    ),
)  # fmt: skip


def get_merchant(tx: Tx, mid: str) -> MerchantRec:
    """The merchant, or Refused naming the unknown MID."""
    m = tx.merchant(mid)
    if m is None:
        raise Refused(f"no merchant {mid!r} in this store", entity="merchant", entity_id=mid)
    return m


def _why(why: str, action: str) -> str:
    text = mask_text((why or "").strip())
    if not text:
        raise Refused(f"say why: --why TEXT is required to {action} a merchant")
    return text


def _move(
    tx: Tx,
    m: MerchantRec,
    action: str,
    *,
    by: str,
    why: str,
    at: str,
    cause: str = "",
    detail: dict[str, object] | None = None,
    **cols: object,
) -> Change:
    target = MERCHANT.target(action, m.status, m.mid)
    tx.update_merchant(
        m.mid,
        status=target,
        suspension_cause=cause,
        status_since=at,
        status_by=by,
        status_why=why,
        **cols,
    )
    frm = m.status + (f"({m.suspension_cause})" if m.suspension_cause else "")
    to = target + (f"({cause})" if cause else "")
    return record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=m.mid,
        action=action,
        from_state=frm,
        to_state=to,
        why=why,
        detail=detail,
    )


def add_merchant(
    tx: Tx,
    mid: str,
    name: str,
    *,
    single_limit_fen: int = 0,
    by: str,
    why: str = "",
    now: datetime | None = None,
) -> Change:
    """Register a new, active merchant."""
    by = check_actor(by)
    if not (len(mid) == 15 and mid.isascii() and mid.isalnum()):
        raise Refused(f"MID must be 15 letters or digits, got {mid!r}")
    if not name.strip() or not name.isprintable():
        raise Refused("the merchant needs a printable --name")
    if tx.merchant(mid) is not None:
        raise Refused(f"merchant {mid} already exists", entity="merchant", entity_id=mid)
    at = now_iso(now)
    tx.insert_merchant(
        mid=mid,
        name=mask_text(name.strip()),
        status="active",
        suspension_cause="",
        arrears_fen=0,
        single_limit_fen=single_limit_fen,
        restricted_types="[]",
        status_since=at,
        status_by=by,
        status_why=mask_text(why.strip()) or "registered",
    )
    return record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=mid,
        action="add",
        to_state="active",
        why=why or "registered",
        detail={"name": name.strip(), "single_limit": fen_yuan(single_limit_fen)},
    )


def suspend(
    tx: Tx, mid: str, cause: str, *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Stop the merchant (停机) for ``arrears``, ``risk`` or ``manual`` reasons.

    Suspension for arrears needs something owed (record the fee or fine first).
    """
    by = check_actor(by)
    why = _why(why, "suspend")
    m = get_merchant(tx, mid)
    if cause not in SUSPENSION_CAUSES:
        raise Refused(f"suspension cause {cause!r} is unknown; use {', '.join(SUSPENSION_CAUSES)}")
    MERCHANT.target("suspend", m.status, mid)
    if cause == "arrears" and m.arrears_fen <= 0:
        raise Refused(
            f"merchant {mid} owes nothing: record the fee or fine first "
            f"(clearpos admin arrears charge --mid {mid} --kind fee --amount YUAN ...)",
            entity="merchant",
            entity_id=mid,
            state=m.status,
            action="suspend",
        )
    detail: dict[str, object] = {"cause": cause}
    if cause == "arrears":
        detail["owed"] = fen_yuan(m.arrears_fen)
    return _move(tx, m, "suspend", by=by, why=why, at=now_iso(now), cause=cause, detail=detail)


def resume(tx: Tx, mid: str, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Let a suspended merchant trade again (复机).

    For risk and manual suspensions this is the resumption itself. A merchant
    suspended for arrears needs a resumption request approved by a supervisor:
    if one is pending, this approves it (``by`` must be a supervisor);
    otherwise it is refused with the steps that are missing.
    """
    by = check_actor(by)
    m = get_merchant(tx, mid)
    MERCHANT.target("resume", m.status, mid)
    if m.suspension_cause == "arrears":
        from .arrears import approve, pending_request

        req = pending_request(tx, mid)
        if req is None:
            if m.arrears_fen > 0:
                step = (
                    f"it owes ¥{fen_yuan(m.arrears_fen)}: record the payment "
                    f"(clearpos admin arrears pay --mid {mid} --amount {fen_yuan(m.arrears_fen)} "
                    "--voucher REF --by NAME), then"
                )
            else:
                step = "nothing is owed any more:"
            raise Refused(
                f"merchant {mid} is suspended for arrears; {step} request resumption "
                f"(clearpos admin resume request --mid {mid} --by NAME) and have a supervisor "
                "approve it",
                entity="merchant",
                entity_id=mid,
                state="suspended(arrears)",
                action="resume",
                allowed=("resume request", "arrears pay"),
            )
        return approve(tx, req.id, by=by, why=why, now=now)
    return _move(tx, m, "resume", by=by, why=_why(why, "resume"), at=now_iso(now))


def reactivate_after_approval(
    tx: Tx, mid: str, *, by: str, why: str, at: str, request_id: int
) -> Change:
    """The state change of an approved resumption request (called by :mod:`.arrears`)."""
    m = get_merchant(tx, mid)
    return _move(tx, m, "resume", by=by, why=why, at=at, detail={"request": request_id})


def restrict(
    tx: Tx, mid: str, types: Sequence[str], *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Refuse the given transaction types for this merchant (58 ``merchant.restricted``)."""
    by = check_actor(by)
    why = _why(why, "restrict")
    m = get_merchant(tx, mid)
    wanted = sorted(set(types))
    bad = [t for t in wanted if t not in TRANSACTION_TYPES]
    if not wanted or bad:
        raise Refused(
            f"restricted types must be some of {', '.join(TRANSACTION_TYPES)}"
            + (f"; unknown: {', '.join(bad)}" if bad else "")
        )
    return _move(
        tx,
        m,
        "restrict",
        by=by,
        why=why,
        at=now_iso(now),
        detail={"types": wanted, "before": list(m.restricted_types)},
        restricted_types=wanted,
    )


def lift(tx: Tx, mid: str, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Lift a restriction: every transaction type is accepted again."""
    by = check_actor(by)
    m = get_merchant(tx, mid)
    return _move(
        tx,
        m,
        "lift",
        by=by,
        why=_why(why, "lift the restriction of"),
        at=now_iso(now),
        detail={"before": list(m.restricted_types)},
        restricted_types=[],
    )


def close(tx: Tx, mid: str, *, by: str, why: str, now: datetime | None = None) -> Change:
    """End the merchant's contract; final (a new contract gets a new MID)."""
    by = check_actor(by)
    m = get_merchant(tx, mid)
    detail: dict[str, object] = {}
    if m.arrears_fen:
        detail["owed"] = fen_yuan(m.arrears_fen)
    return _move(tx, m, "close", by=by, why=_why(why, "close"), at=now_iso(now), detail=detail)


def set_single_limit(
    tx: Tx, mid: str, limit_fen: int, *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Change the single-transaction cap (0 = none); the state stays."""
    by = check_actor(by)
    m = get_merchant(tx, mid)
    MERCHANT.target("set_limit", m.status, mid)
    at = now_iso(now)
    tx.update_merchant(mid, single_limit_fen=limit_fen)
    return record(
        tx,
        at=at,
        by=by,
        entity="merchant",
        entity_id=mid,
        action="set_limit",
        from_state=m.status,
        to_state=m.status,
        why=_why(why, "change the limit of"),
        detail={"before": fen_yuan(m.single_limit_fen), "after": fen_yuan(limit_fen)},
    )
