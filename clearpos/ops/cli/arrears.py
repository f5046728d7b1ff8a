"""``clearpos admin arrears``: payments, the ledger, resumption requests and their
four-eyes decisions."""

from __future__ import annotations

import argparse
from typing import Any

from ...clock import show
from ...money import fen_yuan
from ...store import Tx
from .. import arrears, merchants
from .base import (
    FOUR_EYES,
    _decide,
    _decider_args,
    _group,
    _leaf,
    _lines,
    _positive,
    _run,
    _yuan,
)


def _entry_text(e: arrears.LedgerEntry) -> str:
    voucher = f" voucher {e.voucher}" if e.voucher else ""
    return f"{show(e.ts)}  {e.mid}  {e.kind:<8} ¥{fen_yuan(e.amount_fen):>10}  owes ¥{fen_yuan(e.balance_fen)}  by {e.actor}{voucher}  {e.note}"


def _arrears(sub: Any) -> None:
    g = _group(sub, "arrears", "fees and fines owed to the provider, and payments (with vouchers)")
    _arrears_ledger(g)
    _arrears_resumption(sub)


def _arrears_ledger(g: Any) -> None:
    def charge(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            e, _ = arrears.charge(
                tx, a.mid, a.kind, a.amount, by=a.by, why=a.why, voucher=a.voucher
            )
            return {"ok": True, **e.to_dict()}, _entry_text(e)

        return _run(a, body, write=True)

    p = _leaf(g, "charge", "record a fee or fine the merchant owes", charge, by=True, why=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--kind", required=True, choices=list(arrears.CHARGE_KINDS))
    p.add_argument("--amount", required=True, type=_yuan, help="yuan, e.g. 58.00")
    p.add_argument("--voucher", default="", help="invoice or notice reference")

    def pay(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            e, _ = arrears.pay(tx, a.mid, a.amount, a.voucher, by=a.by, note=a.note)
            return {"ok": True, **e.to_dict()}, _entry_text(e)

        return _run(a, body, write=True)

    p = _leaf(g, "pay", "record a payment with its voucher reference (保留凭证)", pay, by=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--amount", required=True, type=_yuan, help="yuan, at most what is owed")
    p.add_argument("--voucher", required=True, help="payment voucher reference")
    p.add_argument("--note", default="")

    def show_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            m = merchants.get_merchant(tx, a.mid)
            entries = arrears.ledger(tx, a.mid)
            doc = {
                "mid": a.mid,
                "owed": fen_yuan(m.arrears_fen),
                "entries": [e.to_dict() for e in entries],
            }
            lines = [f"merchant {a.mid} owes ¥{fen_yuan(m.arrears_fen)}"] + [
                _entry_text(e) for e in entries
            ]
            return doc, "\n".join(lines)

        return _run(a, body, write=False)

    _leaf(g, "show", "what the merchant owes, and every fee, fine and payment", show_).add_argument(
        "--mid", required=True
    )


def _arrears_resumption(sub: Any) -> None:
    r = _group(sub, "resume", "resumption after arrears (复机): request, approve, reject")

    def request(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            req, _ = arrears.request_resumption(tx, a.mid, by=a.by, note=a.note)
            return (
                {"ok": True, **req.to_dict()},
                f"resumption request #{req.id} for merchant {a.mid} pending; a supervisor approves it: "
                f"clearpos admin resume approve --id {req.id} --by SUPERVISOR",
            )

        return _run(a, body, write=True)

    p = _leaf(r, "request", "ask to trade again (only when nothing is owed)", request, by=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--note", default="", help="e.g. the voucher of the last payment")

    def approve(a: argparse.Namespace) -> int:
        return _decide(a, lambda tx, by: arrears.approve(tx, a.id, by=by, why=a.why))

    def reject(a: argparse.Namespace) -> int:
        return _decide(a, lambda tx, by: arrears.reject(tx, a.id, by=by, why=a.why))

    for name, text, fn, why in (
        ("approve", "a supervisor approves: the merchant is active again", approve, False),
        ("reject", "a supervisor rejects, with the reason", reject, True),
    ):
        p = _leaf(r, name, text + FOUR_EYES, fn, why=why)
        p.add_argument("--id", type=_positive, required=True)
        _decider_args(p)

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    q.to_dict(),
                    f"#{q.id}  {q.mid}  {q.status:<8} asked {show(q.requested_at)} by {q.requested_by}"
                    + (
                        f"; {q.status} {show(q.decided_at)} by {q.decided_by}: {q.decision_why}"
                        if q.decided_at
                        else ""
                    ),
                )
                for q in arrears.requests(tx, a.mid, a.status)
            ],
            "no resumption requests",
        )

    p = _leaf(r, "list", "resumption requests", list_)
    p.add_argument("--mid")
    p.add_argument("--status", choices=["pending", "approved", "rejected"])
