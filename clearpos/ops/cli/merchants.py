"""``clearpos admin merchant``: register, show, list, suspend, resume, restrict, limits, close."""

from __future__ import annotations

import argparse
from typing import Any

from ...clock import show
from ...money import fen_yuan
from ...store import StoreError, Tx
from ...store.queries import read
from .. import merchants
from .base import (
    FOUR_EYES,
    MID,
    _change,
    _changer,
    _db,
    _decide,
    _decider_args,
    _error,
    _group,
    _leaf,
    _lines,
    _run,
    _yuan0,
)


def _merchant_doc(tx: Tx, mid: str) -> tuple[dict[str, Any], str]:
    m = merchants.get_merchant(tx, mid)
    allowed = merchants.MERCHANT.allowed(m.status)
    doc = {
        "mid": m.mid,
        "name": m.name,
        "status": m.status,
        "suspension_cause": m.suspension_cause,
        "owed": fen_yuan(m.arrears_fen),
        "single_limit": fen_yuan(m.single_limit_fen),
        "restricted_types": list(m.restricted_types),
        "since": m.status_since,
        "since_local": show(m.status_since),
        "by": m.status_by,
        "why": m.status_why,
        "terminals": [t.tid for t in tx.terminals(mid)],
        "allowed": list(allowed),
    }
    cause = f" ({m.suspension_cause})" if m.suspension_cause else ""
    text = "\n".join(
        [
            f"merchant {m.mid} {m.name}",
            f"  status: {m.status}{cause} since {show(m.status_since)} by {m.status_by}"
            + (f" — {m.status_why}" if m.status_why else ""),
            f"  owes: ¥{fen_yuan(m.arrears_fen)} · single limit: ¥{fen_yuan(m.single_limit_fen)}"
            + (f" · restricted: {', '.join(m.restricted_types)}" if m.restricted_types else ""),
            f"  terminals: {', '.join(doc['terminals']) or '-'}",
            f"  allowed now: {', '.join(allowed) or 'nothing (final)'}",
        ]
    )
    return doc, text


def _merchants(sub: Any) -> None:
    g = _group(
        sub, "merchant", "merchants: register, suspend (停机), resume (复机), restrict, close"
    )
    _merchants_register_and_state(g)
    _merchants_restrictions(g)


def _merchants_register_and_state(g: Any) -> None:
    def add(a: argparse.Namespace) -> int:
        return _change(
            a,
            lambda tx: merchants.add_merchant(
                tx, a.mid, a.name, single_limit_fen=a.single_limit, by=a.by, why=a.why
            ),
        )

    p = _leaf(g, "add", "register a new, active merchant", add, by=True, why=False)
    p.add_argument("--mid", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--single-limit", type=_yuan0, default=0, help="yuan, 0 = none")

    def show_(a: argparse.Namespace) -> int:
        return _run(a, lambda tx: _merchant_doc(tx, a.mid), write=False)

    _leaf(g, "show", "state, what is owed, terminals, allowed actions", show_).add_argument(
        "--mid", required=True
    )

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    {
                        "mid": m.mid,
                        "name": m.name,
                        "status": m.status,
                        "cause": m.suspension_cause,
                        "owed": fen_yuan(m.arrears_fen),
                    },
                    f"{m.mid}  {m.status:<10} {m.suspension_cause:<8} ¥{fen_yuan(m.arrears_fen):>9}  {m.name}",
                )
                for m in tx.merchants()
            ],
            "no merchants",
        )

    _leaf(g, "list", "every merchant with its state", list_)

    _changer(
        g,
        "suspend",
        "stop the merchant (停机): every transaction declines 03",
        merchants.suspend,
        MID,
        ("--cause", {"choices": ["arrears", "risk", "manual"]}),
    )

    def resume(a: argparse.Namespace) -> int:
        try:
            with read(_db(a)) as tx:
                m = tx.merchant(a.mid)
        except StoreError as exc:
            return _error(a, str(exc))
        if m is not None and m.suspension_cause == "arrears" and m.status == "suspended":
            # this approves the pending resumption request: the approver signs in
            return _decide(a, lambda tx, by: merchants.resume(tx, a.mid, by=by, why=a.why))
        if not a.by:
            return _error(a, "say who resumes it: --by NAME")
        return _change(a, lambda tx: merchants.resume(tx, a.mid, by=a.by, why=a.why))

    p = _leaf(
        g,
        "resume",
        "let a suspended merchant trade again (复机); arrears: approves the pending request "
        "(supervisor)" + FOUR_EYES,
        resume,
    )
    p.add_argument("--mid", required=True)
    p.add_argument("--why", default="", help="why (recorded in the audit trail)")
    _decider_args(p)


def _merchants_restrictions(g: Any) -> None:
    def restrict(a: argparse.Namespace) -> int:
        types = [t for chunk in a.types for t in chunk.split(",") if t]
        return _change(a, lambda tx: merchants.restrict(tx, a.mid, types, by=a.by, why=a.why))

    p = _leaf(
        g,
        "restrict",
        "refuse some transaction types (58 merchant.restricted)",
        restrict,
        by=True,
        why=True,
    )
    p.add_argument("--mid", required=True)
    p.add_argument(
        "--types", required=True, nargs="+", help="e.g. refund preauth (or refund,preauth)"
    )

    _changer(g, "lift", "lift the restriction", merchants.lift, MID)
    _changer(g, "close", "end the contract (final)", merchants.close, MID)
    _changer(
        g,
        "limit",
        "change the single-transaction cap (61 merchant.single_limit)",
        merchants.set_single_limit,
        MID,
        ("--amount", {"type": _yuan0, "help": "yuan, 0 = none"}),
    )
