"""``clearpos audit``: the money invariants, checked from the store alone.

Every discrepancy names the rows involved. An empty list means: every card's
balance and holds are explained by the journal, no request was processed
twice, every approved transaction is in exactly one state, closed batches add
up, and every decline carries a reason from the catalog.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from .reasons import catalog
from .store import CREDIT_KINDS, DEBIT_KINDS, StoreError, Tx, open_database
from .store.queries import audit as q

FINANCIAL = (
    "balance",
    "purchase",
    "void",
    "refund",
    "preauth",
    "preauth_void",
    "completion",
    "completion_void",
    "offline",
)
STATES = {"approved", "voided", "reversed", "completed"}


@dataclass(frozen=True, slots=True)
class Discrepancy:
    check: str
    detail: str
    rows: tuple[int, ...] = ()


def audit_tx(tx: Tx) -> list[Discrepancy]:
    out: list[Discrepancy] = []
    sums = q.card_journal_sums(tx)
    for c in tx.cards():
        d, h = sums.get(c.id, (0, 0))
        if c.balance_fen != c.opening_fen + d:
            out.append(
                Discrepancy(
                    "balance",
                    f"card {c.pan_masked}: balance {c.balance_fen} != opening {c.opening_fen} + journal {d}",
                    (c.id,),
                )
            )
        if c.holds_fen != h:
            out.append(
                Discrepancy(
                    "holds",
                    f"card {c.pan_masked}: holds {c.holds_fen} != journal holds {h}",
                    (c.id,),
                )
            )
        if c.holds_fen < 0:
            out.append(
                Discrepancy("holds", f"card {c.pan_masked}: negative holds {c.holds_fen}", (c.id,))
            )
    for r in q.duplicate_requests(tx):
        out.append(
            Discrepancy(
                "duplicate",
                f"{r['tid']} batch {r['batch']} STAN {r['stan']} processed {r['n']} times",
                (r["a"], r["b"]),
            )
        )
    for r in q.misfiled_requests(tx):
        out.append(
            Discrepancy(
                "duplicate",
                f"journal row {r['id']}: request key {r['req_key']!r} is not its TID:batch:STAN",
                (r["id"],),
            )
        )
    for r in q.approved_states(tx, FINANCIAL):
        if r["status"] not in STATES:
            out.append(
                Discrepancy("state", f"approved {r['kind']} in state {r['status']!r}", (r["id"],))
            )
    for r in q.reversed_after_settlement(tx):
        out.append(
            Discrepancy("state", f"{r['kind']} reversed after its batch was settled", (r["id"],))
        )
    for s in tx.settlements(status="closed"):
        by_kind = q.settlement_kind_sums(tx, s.id)
        debit = sum(a for k, (_, a) in by_kind.items() if k in DEBIT_KINDS)
        dn = sum(n for k, (n, _) in by_kind.items() if k in DEBIT_KINDS)
        credit = sum(a for k, (_, a) in by_kind.items() if k in CREDIT_KINDS)
        cn = sum(n for k, (n, _) in by_kind.items() if k in CREDIT_KINDS)
        host = s.host_sums
        if host != (debit, dn, credit, cn):
            out.append(
                Discrepancy(
                    "settlement",
                    f"{s.tid} batch {s.batch}: settled {host} but journal says {(debit, dn, credit, cn)}",
                    (s.id,),
                )
            )
    cat = catalog()
    for jid, reason in q.declines(tx):
        if reason not in cat:
            out.append(Discrepancy("reason", f"reason {reason!r} is not in the catalog", (jid,)))
    return out


def run_audit(url: str) -> list[Discrepancy]:
    """Every discrepancy of the store at ``url`` (which must exist)."""
    db = open_database(url, create=False)
    with db.reader() as tx:
        return audit_tx(tx)


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="store URL, e.g. sqlite:///clearpos.db")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from .progress import work

    try:
        with work(f"auditing {args.db}", quiet=args.json) as w:
            w.step("balances, holds, settlements and reasons")
            found = run_audit(args.db)
    except StoreError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        else:
            print(f"clearpos audit: {exc}", file=sys.stderr)
        return 1
    if args.json:
        doc: dict[str, Any] = {"ok": not found, "discrepancies": [asdict(d) for d in found]}
        print(json.dumps(doc, ensure_ascii=False))
    else:
        for d in found:
            print(f"{d.check}: {d.detail} (rows {', '.join(map(str, d.rows))})")
        print(
            "audit: OK — every fen accounted for"
            if not found
            else f"audit: {len(found)} discrepancies"
        )
    return 1 if found else 0
