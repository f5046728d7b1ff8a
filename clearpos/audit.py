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
    sums = {
        int(r["card_id"]): (int(r["d"]), int(r["h"]))
        for r in tx.conn.execute(
            "SELECT card_id, COALESCE(SUM(delta_fen), 0) AS d, COALESCE(SUM(hold_fen), 0) AS h "
            "FROM journal WHERE card_id IS NOT NULL GROUP BY card_id"
        ).fetchall()
    }
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
    for r in tx.conn.execute(
        "SELECT tid, batch, stan, COUNT(*) AS n, MIN(id) AS a, MAX(id) AS b FROM journal "
        "WHERE req_key IS NOT NULL GROUP BY tid, batch, stan HAVING COUNT(*) > 1"
    ).fetchall():
        out.append(
            Discrepancy(
                "duplicate",
                f"{r['tid']} batch {r['batch']} STAN {r['stan']} processed {r['n']} times",
                (r["a"], r["b"]),
            )
        )
    marks = ", ".join("?" for _ in FINANCIAL)
    for r in tx.conn.execute(
        f"SELECT id, kind, status FROM journal WHERE code = '00' AND req_key IS NOT NULL AND kind IN ({marks})",
        FINANCIAL,
    ).fetchall():
        if r["status"] not in STATES:
            out.append(
                Discrepancy("state", f"approved {r['kind']} in state {r['status']!r}", (r["id"],))
            )
    for r in tx.conn.execute(
        "SELECT j.id, j.kind FROM journal j WHERE j.status = 'reversed' AND j.settlement_id IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM journal r WHERE r.original_id = j.id AND r.kind = 'reversal' AND r.code = '00' "
        "AND r.ts > (SELECT closed_at FROM settlements s WHERE s.id = j.settlement_id))"
    ).fetchall():
        out.append(
            Discrepancy("state", f"{r['kind']} reversed after its batch was settled", (r["id"],))
        )
    for s in tx.conn.execute("SELECT * FROM settlements WHERE status = 'closed'").fetchall():
        rows = tx.conn.execute(
            "SELECT kind, COUNT(*) AS n, COALESCE(SUM(amount_fen), 0) AS a FROM journal WHERE settlement_id = ? "
            "AND code = '00' AND status <> 'reversed' GROUP BY kind",
            (s["id"],),
        ).fetchall()
        debit = sum(int(r["a"]) for r in rows if r["kind"] in DEBIT_KINDS)
        dn = sum(int(r["n"]) for r in rows if r["kind"] in DEBIT_KINDS)
        credit = sum(int(r["a"]) for r in rows if r["kind"] in CREDIT_KINDS)
        cn = sum(int(r["n"]) for r in rows if r["kind"] in CREDIT_KINDS)
        host = (
            s["host_debit_fen"],
            s["host_debit_count"],
            s["host_credit_fen"],
            s["host_credit_count"],
        )
        if host != (debit, dn, credit, cn):
            out.append(
                Discrepancy(
                    "settlement",
                    f"{s['tid']} batch {s['batch']}: settled {host} but journal says {(debit, dn, credit, cn)}",
                    (s["id"],),
                )
            )
    cat = catalog()
    for r in tx.conn.execute("SELECT id, reason FROM journal WHERE code <> '00'").fetchall():
        if r["reason"] not in cat:
            out.append(
                Discrepancy("reason", f"reason {r['reason']!r} is not in the catalog", (r["id"],))
            )
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
