"""``clearpos admin ticket``: the help desk's tickets (a group of ``clearpos admin``,
which ``clearpos.cli`` composes: ops may not import diagnosis)."""

from __future__ import annotations

import argparse
from typing import Any

from ..clock import show
from ..ops.cli.base import (
    ID,
    _change,
    _changer,
    _group,
    _leaf,
    _lines,
    _positive,
    _run,
)
from ..store import Tx
from . import tickets


def _ticket_text(tk: tickets.Ticket) -> str:
    about = tk.rrn or tk.tid or tk.mid
    owner = f" owner {tk.owner}" if tk.owner else ""
    return f"#{tk.id}  {tk.status:<11} {tk.subject} {about}{owner}  {tk.title}"


def register_group(sub: Any) -> None:
    """Add ``ticket`` to the subcommands ``sub`` of ``clearpos admin``."""
    g = _group(sub, "ticket", "support tickets with evidence attached automatically")
    _tickets_open(g)
    _tickets_reads(g)
    _tickets_workflow(g)


def _tickets_open(g: Any) -> None:
    def open_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            tk, _ = tickets.open_ticket(
                tx,
                a.title,
                by=a.by,
                tid=a.tid or "",
                mid=a.mid or "",
                rrn=a.rrn or "",
                owner=a.owner,
                last=a.last,
            )
            n = len(tk.evidence.get("transactions", []))
            return (
                {"ok": True, **tk.to_dict()},
                f"opened ticket {_ticket_text(tk)}\n  evidence: states, {n} transactions, diagnosis (zh, en)",
            )

        return _run(a, body, write=True)

    p = _leaf(
        g, "open", "open a ticket for a terminal, a transaction or a merchant", open_, by=True
    )
    about = p.add_mutually_exclusive_group(required=True)
    about.add_argument("--tid")
    about.add_argument("--rrn")
    about.add_argument("--mid")
    p.add_argument("--title", required=True)
    p.add_argument("--owner", default="", help="who works on it (the ticket starts in_progress)")
    p.add_argument(
        "--last", type=_positive, default=20, help="transactions in the evidence (default 20)"
    )


def _tickets_reads(g: Any) -> None:
    def show_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            tk = tickets.get_ticket(tx, a.id)
            notes = tickets.comments(tx, a.id)
            hist = tickets.history(tx, a.id)
            doc = {
                **tk.to_dict(evidence=not a.brief),
                "comments": [c.to_dict() for c in notes],
                "history": hist,
                "allowed": list(tickets.TICKET.allowed(tk.status)),
            }
            lines = [_ticket_text(tk), f"  opened {show(tk.opened_at)} by {tk.opened_by}"]
            if tk.resolution:
                lines.append(f"  resolution: {tk.resolution}")
            diag = tk.evidence.get("diagnosis", {}).get(a.lang) or {}
            fix = diag.get("fix") if isinstance(diag, dict) else None
            if fix:
                lines.append(f"  diagnosis at opening: {fix['headline']} ({fix['reason']})")
            ev = tk.evidence.get("transactions", [])
            if ev:
                lines.append(f"  last {len(ev)} transactions at opening:")
                lines += [
                    f"    {e['rrn']} {e['time']} {e['tid']} {e['kind']:<9} {e['amount'] or '':>9} {e['pan']:<19} {e['code'] or '--'} {e['reason']}"
                    for e in ev
                ]
            lines.append("  history:")
            lines += [
                f"    {h['time']} {h['by']}: {h['action']}"
                + (f" {h['from'] or '-'} → {h['to']}" if h["from"] != h["to"] else "")
                + (f" — {h['why']}" if h["why"] else "")
                for h in hist
            ]
            if notes:
                lines.append("  comments:")
                lines += [f"    {c.to_dict()['time']} {c.author}: {c.body}" for c in notes]
            lines.append(f"  allowed now: {', '.join(doc['allowed']) or 'nothing'}")
            return doc, "\n".join(lines)

        return _run(a, body, write=False)

    p = _leaf(g, "show", "a ticket with its evidence, history and comments", show_)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--lang", choices=["zh", "en"], default="zh")
    p.add_argument("--brief", action="store_true", help="leave the evidence out of --json")

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (tk.to_dict(evidence=False), _ticket_text(tk))
                for tk in tickets.list_tickets(
                    tx, status=a.status, owner=a.owner, tid=a.tid, mid=a.mid
                )
            ],
            "no tickets",
        )

    p = _leaf(g, "list", "tickets, newest first", list_)
    p.add_argument("--status", choices=list(tickets.STATUSES))
    p.add_argument("--owner")
    p.add_argument("--tid")
    p.add_argument("--mid")


def _tickets_workflow(g: Any) -> None:
    def comment(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            c = tickets.comment(tx, a.id, a.text, by=a.by)
            return {
                "ok": True,
                "ticket": a.id,
                **c.to_dict(),
            }, f"ticket #{a.id}: comment by {c.author}"

        return _run(a, body, write=True)

    p = _leaf(g, "comment", "add a comment", comment, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--text", required=True)

    def assign(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: tickets.assign(tx, a.id, a.owner, by=a.by))

    p = _leaf(g, "assign", "give it an owner (open → in_progress)", assign, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--owner", required=True)

    def resolve(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: tickets.resolve(tx, a.id, a.resolution, by=a.by))

    p = _leaf(g, "resolve", "say what fixed it", resolve, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--resolution", required=True)

    _changer(g, "close", "close a resolved ticket", tickets.close, ID, why=False)
    _changer(g, "reopen", "reopen a resolved or closed ticket", tickets.reopen, ID)
