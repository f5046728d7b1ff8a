"""Support tickets (SCENARIOS.md A11, B2, C6): evidence attached automatically.

A ticket is opened for a terminal, a transaction (RRN) or a merchant. At
opening, a JSON snapshot is stored with it: the terminal's and merchant's
state, the last N transactions with their reasons, and the diagnosis in
Chinese and English — card numbers masked, as everywhere. The ticket then has
an owner, comments, a resolution and a status:

    open → in_progress → resolved → closed, and reopen from resolved or closed.

Free text typed by people (titles, comments, resolutions) has any 16-19 digit
run masked like a PAN, in case someone pastes a card number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..clock import Clock, show, utc_iso
from ..money import fen_yuan
from ..ops.common import Change, Refused, check_actor, mask_text, now_iso, record
from ..ops.lifecycle import Lifecycle, Rule
from ..store import JournalRec, Tx
from ..store.queries import ops as q
from ..store.queries.ops import audit_rows, journal_rows

__all__ = [
    "STATUSES",
    "TICKET",
    "Comment",
    "Ticket",
    "assign",
    "close",
    "comment",
    "comments",
    "evidence",
    "get_ticket",
    "history",
    "list_tickets",
    "mask_text",
    "open_ticket",
    "reopen",
    "resolve",
]

STATUSES = ("open", "in_progress", "resolved", "closed")

TICKET = Lifecycle(
    "ticket",
    STATUSES,
    (
        Rule("assign", frozenset({"open", "in_progress"}), "in_progress", "give it an owner who works on it"),
        Rule("comment", frozenset({"open", "in_progress", "resolved"}), None, "add a comment"),
        Rule("resolve", frozenset({"open", "in_progress"}), "resolved", "say what fixed it"),
        Rule("close", frozenset({"resolved"}), "closed", "the reporter agrees: done"),
        Rule("reopen", frozenset({"resolved", "closed"}), "open", "it is not fixed after all"),
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    ts: str
    author: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "time": show(self.ts),
            "author": self.author,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    opened_at: str
    opened_by: str
    subject: str
    tid: str
    mid: str
    rrn: str
    title: str
    status: str
    owner: str
    resolution: str
    updated_at: str
    evidence: dict[str, Any]

    @classmethod
    def of(cls, r: Any) -> Ticket:
        d = dict(r)
        d["evidence"] = json.loads(d["evidence"] or "{}")
        return cls(**d)

    def to_dict(self, *, evidence: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "opened_at": self.opened_at,
            "opened_time": show(self.opened_at),
            "opened_by": self.opened_by,
            "subject": self.subject,
            "tid": self.tid,
            "mid": self.mid,
            "rrn": self.rrn,
            "title": self.title,
            "status": self.status,
            "owner": self.owner,
            "resolution": self.resolution,
            "updated_at": self.updated_at,
            "updated_time": show(self.updated_at),
        }
        if evidence:
            d["evidence"] = self.evidence
        return d


def get_ticket(tx: Tx, tid: int) -> Ticket:
    row = q.ticket_row(tx, tid)
    if row is None:
        raise Refused(f"no ticket #{tid}", entity="ticket", entity_id=str(tid))
    return Ticket.of(row)


def comments(tx: Tx, ticket_id: int) -> list[Comment]:
    rows = q.ticket_comment_rows(tx, ticket_id)
    return [Comment(int(r["id"]), r["ts"], r["author"], r["body"]) for r in rows]


def history(tx: Tx, ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's audit rows as JSON-friendly data."""
    return [
        {
            "ts": a.ts,
            "time": show(a.ts),
            "by": a.actor,
            "action": a.action,
            "from": a.from_state,
            "to": a.to_state,
            "why": a.reason,
        }
        for a in audit_rows(tx, "ticket", [str(ticket_id)])
    ]


def list_tickets(
    tx: Tx,
    *,
    status: str | None = None,
    owner: str | None = None,
    tid: str | None = None,
    mid: str | None = None,
) -> list[Ticket]:
    """Tickets matching every filter, newest first."""
    rows = q.ticket_rows(tx, status=status, owner=owner, tid=tid, mid=mid)
    return [Ticket.of(r) for r in rows]


def _tx_line(j: JournalRec) -> dict[str, Any]:
    return {
        "rrn": j.rrn,
        "ts": j.ts,
        "time": show(j.ts),
        "tid": j.tid,
        "kind": j.kind,
        "amount": fen_yuan(j.amount_fen) if j.amount_fen is not None else None,
        "pan": j.pan_masked,
        "code": j.code,
        "reason": j.reason,
        "status": j.status,
        "stan": j.stan,
        "batch": j.batch,
    }


def evidence(
    tx: Tx,
    *,
    tid: str = "",
    mid: str = "",
    rrn: str = "",
    last: int = 20,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The snapshot stored with a ticket: states, last transactions, diagnosis (zh and en)."""
    from . import (
        NotFound,
        diagnose_merchant,
        diagnose_terminal,
        explain_row,
    )
    from .subjects import merchant_snapshot, terminal_snapshot

    clock_now = now or Clock().now()
    since = clock_now - timedelta(days=30)
    doc: dict[str, Any] = {"captured_at": utc_iso(clock_now), "last": last}
    if rrn:
        row = tx.journal_by_rrn(rrn)
        if row is None:
            raise Refused(f"no transaction with RRN {rrn!r}")
        tid, mid = row.tid, row.mid
        doc["transaction"] = {
            **_tx_line(row),
            "facts": row.facts,
            "trail": row.trail,
            "explained": {lang: explain_row(tx, row, lang).to_dict() for lang in ("zh", "en")},
        }
    term = tx.terminal(tid) if tid else None
    if term is not None:
        mid = mid or term.mid
        doc["terminal"] = terminal_snapshot(tx, term).to_dict()
    merchant = tx.merchant(mid) if mid else None
    if merchant is not None:
        doc["merchant"] = merchant_snapshot(tx, merchant).to_dict()
    if tid:
        rows = journal_rows(tx, tids=[tid], limit=last)
    elif mid:
        rows = journal_rows(tx, mid=mid, limit=last)
    else:
        rows = []
    doc["transactions"] = [_tx_line(j) for j in rows]
    diagnosis: dict[str, Any] = {}
    try:
        for lang in ("zh", "en"):
            if tid:
                diagnosis[lang] = diagnose_terminal(
                    tx, tid, since=since, lang=lang, limit=5
                ).to_dict()
            elif mid:
                diagnosis[lang] = diagnose_merchant(
                    tx, mid, since=since, lang=lang, limit=5
                ).to_dict()
    except NotFound as exc:
        diagnosis["note"] = str(exc)
    doc["diagnosis"] = diagnosis
    doc["subject"] = {"tid": tid, "mid": mid, "rrn": rrn}
    return doc


def open_ticket(
    tx: Tx,
    title: str,
    *,
    by: str,
    tid: str = "",
    mid: str = "",
    rrn: str = "",
    owner: str = "",
    last: int = 20,
    now: datetime | None = None,
) -> tuple[Ticket, Change]:
    """Open a ticket for a terminal, a transaction or a merchant, with its evidence."""
    by = check_actor(by)
    given = [x for x in (tid, mid, rrn) if x]
    if len(given) != 1:
        raise Refused("a ticket is about exactly one thing: --tid, --rrn or --mid")
    if not title.strip():
        raise Refused("a ticket needs a --title saying what is wrong")
    if tid and tx.terminal(tid) is None and not journal_rows(tx, tids=[tid], limit=1):
        raise Refused(f"no terminal {tid!r} and no transactions from it")
    if mid and tx.merchant(mid) is None:
        raise Refused(f"no merchant {mid!r} in this store")
    if not 1 <= last <= 200:
        raise Refused("--last must be between 1 and 200")
    owner = _owner(tx, owner) if owner.strip() else ""
    clock_now = now or Clock().now()
    at = utc_iso(clock_now)
    snap = evidence(tx, tid=tid, mid=mid, rrn=rrn, last=last, now=clock_now)
    subject = "transaction" if rrn else "terminal" if tid else "merchant"
    sub = snap["subject"]
    status = "in_progress" if owner else "open"
    ticket_id = tx.insert_row(
        "tickets",
        {
            "opened_at": at,
            "opened_by": by,
            "subject": subject,
            "tid": sub["tid"] or "",
            "mid": sub["mid"] or "",
            "rrn": rrn,
            "title": mask_text(title.strip()),
            "status": status,
            "owner": owner.strip(),
            "resolution": "",
            "updated_at": at,
            "evidence": json.dumps(snap, ensure_ascii=False, sort_keys=True),
        },
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="ticket",
        entity_id=str(ticket_id),
        action="open",
        to_state=status,
        why=mask_text(title.strip()),
        detail={
            "subject": subject,
            "tid": sub["tid"],
            "mid": sub["mid"],
            "rrn": rrn,
            "owner": owner.strip(),
        },
    )
    return get_ticket(tx, ticket_id), change


def _move(
    tx: Tx, ticket_id: int, action: str, *, by: str, why: str, now: datetime | None, **cols: Any
) -> Change:
    by = check_actor(by)
    tk = get_ticket(tx, ticket_id)
    target = TICKET.target(action, tk.status, f"#{ticket_id}")
    at = now_iso(now)
    tx.update_row("tickets", "id", ticket_id, {"status": target, "updated_at": at, **cols})
    return record(
        tx,
        at=at,
        by=by,
        entity="ticket",
        entity_id=str(ticket_id),
        action=action,
        from_state=tk.status,
        to_state=target,
        why=why,
        detail={k: v for k, v in cols.items() if k != "updated_at"},
    )


def _owner(tx: Tx, owner: str) -> str:
    """``owner`` when it names an enabled console user; else refused, saying who can."""
    from ..ops.users import get_user, list_users

    name = owner.strip()
    user = get_user(tx, name)
    if user is not None and not user.disabled:
        return name
    able = [u.username for u in list_users(tx) if not u.disabled]
    why = "is disabled" if user is not None else "is not a user"
    hint = f"one of: {', '.join(able[:20])}" if able else "add one with clearpos admin user add"
    raise Refused(f"ticket owner {name!r} {why}: a ticket is owned by a console user ({hint})")


def assign(tx: Tx, ticket_id: int, owner: str, *, by: str, now: datetime | None = None) -> Change:
    """Give the ticket an owner; an open ticket becomes in_progress."""
    if not owner.strip():
        raise Refused("say who owns it: --owner NAME")
    owner = _owner(tx, owner)
    return _move(tx, ticket_id, "assign", by=by, why=f"owner {owner}", now=now, owner=owner)


def comment(tx: Tx, ticket_id: int, body: str, *, by: str, now: datetime | None = None) -> Comment:
    """Add a comment (not to a closed ticket: reopen it first)."""
    by = check_actor(by)
    tk = get_ticket(tx, ticket_id)
    TICKET.target("comment", tk.status, f"#{ticket_id}")
    if not body.strip():
        raise Refused("a comment needs --text")
    at = now_iso(now)
    cid = tx.insert_row(
        "ticket_comments",
        {"ticket_id": ticket_id, "ts": at, "author": by, "body": mask_text(body.strip())},
    )
    tx.update_row("tickets", "id", ticket_id, {"updated_at": at})
    return Comment(cid, at, by, mask_text(body.strip()))


def resolve(
    tx: Tx, ticket_id: int, resolution: str, *, by: str, now: datetime | None = None
) -> Change:
    """Say what fixed it; the ticket becomes resolved."""
    text = mask_text(resolution.strip())
    if not text:
        raise Refused("say what fixed it: --resolution TEXT")
    return _move(tx, ticket_id, "resolve", by=by, why=text, now=now, resolution=text)


def close(tx: Tx, ticket_id: int, *, by: str, why: str = "", now: datetime | None = None) -> Change:
    """Close a resolved ticket."""
    return _move(tx, ticket_id, "close", by=by, why=mask_text(why.strip()) or "done", now=now)


def reopen(tx: Tx, ticket_id: int, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Reopen a resolved or closed ticket, saying why."""
    if not why.strip():
        raise Refused("say why it is reopened: --why TEXT")
    return _move(tx, ticket_id, "reopen", by=by, why=mask_text(why.strip()), now=now)
