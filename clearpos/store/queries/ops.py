"""The operations' reads (``clearpos.ops``): audit trail, journal, users, tickets,
the arrears ledger, resumption requests, maintenance windows.

Rows of the operations' own tables come back as :data:`~.Row` (the ops modules
turn them into their records); journal and audit rows as typed records.
Writes go through :meth:`Tx.insert_row` and :meth:`Tx.update_row`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import AuditRec, JournalRec, MaintenanceRec, Tx
from . import DECLINES_ONLY, Row, marks

__all__ = [
    "audit_rows",
    "journal_between",
    "journal_rows",
    "last_journal",
    "ledger_entry",
    "ledger_rows",
    "maintenance_every",
    "maintenance_window",
    "payment_by_voucher",
    "resumption_request",
    "resumption_rows",
    "role_of",
    "sealing_probe",
    "ticket_comment_rows",
    "ticket_row",
    "ticket_rows",
    "user_row",
    "user_rows",
]


def _where(conds: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND ...`` of the conditions whose value is given, and its parameters."""
    where = [cond for cond, value in conds if value]
    params = [value for _, value in conds if value]
    return (" WHERE " + " AND ".join(where) if where else ""), params


# --------------------------------------------------------------------------- audit trail


def audit_rows(
    tx: Tx,
    entity: str,
    entity_ids: Sequence[str],
    *,
    since: str | None = None,
    limit: int | None = None,
) -> list[AuditRec]:
    """Audit rows of these entities, oldest first (the newest ``limit`` when given)."""
    if not entity_ids:
        return []
    sql = f"SELECT * FROM audit WHERE entity = ? AND entity_id IN ({marks(entity_ids)})"
    params: list[Any] = [entity, *entity_ids]
    if since:
        sql += " AND ts >= ?"
        params.append(since)
    sql += " ORDER BY ts DESC, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = [AuditRec.of(r) for r in tx.conn.execute(sql, params).fetchall()]
    rows.reverse()
    return rows


# --------------------------------------------------------------------------- journal


def journal_rows(
    tx: Tx,
    *,
    tids: Sequence[str] | None = None,
    mid: str | None = None,
    code: str | None = None,
    reason: str | None = None,
    kinds: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    business_date: str | None = None,
    limit: int | None = None,
) -> list[JournalRec]:
    """Journal rows matching every given filter, oldest first (the newest ``limit`` when given)."""
    where: list[str] = []
    params: list[Any] = []
    if tids is not None:
        if not tids:
            return []
        where.append(f"tid IN ({marks(tids)})")
        params += list(tids)
    if kinds is not None:
        where.append(f"kind IN ({marks(kinds)})")
        params += list(kinds)
    for col, value in (
        ("mid", mid),
        ("code", code),
        ("reason", reason),
        ("business_date", business_date),
    ):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
            if col == "reason" and value != "approved":
                where.append(DECLINES_ONLY)  # true already; lets journal_reason_ts serve it
    if since:
        where.append("ts >= ?")
        params.append(since)
    if until:
        where.append("ts < ?")
        params.append(until)
    sql = "SELECT * FROM journal" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY ts DESC, id DESC"  # newest first: the (x, ts) indexes serve it
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = [JournalRec.of(r) for r in tx.conn.execute(sql, params).fetchall()]
    rows.reverse()
    return rows


def journal_between(
    tx: Tx,
    since: str,
    until: str | None = None,
    *,
    business_date: str | None = None,
    mid: str | None = None,
) -> list[JournalRec]:
    """Journal rows with ``since <= ts < until`` (and of this business date and
    merchant when given), by id.

    The business date is the China date of ``ts``, so a day's ``ts`` range selects
    the same rows and lets the ``journal_ts`` index find them.
    """
    clause, params = _where(
        (
            ("ts >= ?", since),
            ("ts < ?", until),
            ("business_date = ?", business_date),
            ("mid = ?", mid),
        )
    )
    rows = tx.conn.execute("SELECT * FROM journal" + clause + " ORDER BY id", params).fetchall()
    return [JournalRec.of(r) for r in rows]


def last_journal(
    tx: Tx, tid: str, kinds: Sequence[str], *, before_id: int, approved: bool = True
) -> JournalRec | None:
    """The latest row of ``kinds`` for ``tid`` before journal id ``before_id``."""
    sql = f"SELECT * FROM journal WHERE tid = ? AND kind IN ({marks(kinds)}) AND id < ?"
    if approved:
        sql += " AND code = '00'"
    row = tx.conn.execute(sql + " ORDER BY id DESC LIMIT 1", (tid, *kinds, before_id)).fetchone()
    return JournalRec.of(row) if row else None


# --------------------------------------------------------------------------- users


def role_of(tx: Tx, username: str) -> str | None:
    """The console role of a registered, enabled user, or None."""
    row = tx.conn.execute(
        "SELECT role FROM users WHERE username = ? AND disabled = 0", (username,)
    ).fetchone()
    return str(row["role"]) if row else None


def user_row(tx: Tx, username: str, *, enabled: bool = False) -> Row | None:
    """The user of this name (only an enabled one when ``enabled``), or None."""
    sql = "SELECT * FROM users WHERE username = ?" + (" AND disabled = 0" if enabled else "")
    row: Row | None = tx.conn.execute(sql, (username,)).fetchone()
    return row


def user_rows(tx: Tx) -> list[Row]:
    """Every user, by name."""
    return list(tx.conn.execute("SELECT * FROM users ORDER BY username").fetchall())


# --------------------------------------------------------------------------- terminals


def sealing_probe(tx: Tx, tid: str | None = None) -> Row | None:
    """``tid``, ``tmk_sealed`` and ``tmk_kcv`` of one terminal (this one when it
    exists, else the first), to test which KEK sealed the store's keys."""
    row: Row | None = tx.conn.execute(
        "SELECT tid, tmk_sealed, tmk_kcv FROM terminals "
        "ORDER BY CASE WHEN tid = ? THEN 0 ELSE 1 END, tid LIMIT 1",
        (tid or "",),
    ).fetchone()
    return row


# --------------------------------------------------------------------------- tickets


def ticket_row(tx: Tx, ticket_id: int) -> Row | None:
    row: Row | None = tx.conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
    return row


def ticket_comment_rows(tx: Tx, ticket_id: int) -> list[Row]:
    """The comments of a ticket, oldest first."""
    return list(
        tx.conn.execute(
            "SELECT * FROM ticket_comments WHERE ticket_id = ? ORDER BY ts, id", (ticket_id,)
        ).fetchall()
    )


def ticket_rows(
    tx: Tx,
    *,
    status: str | None = None,
    owner: str | None = None,
    tid: str | None = None,
    mid: str | None = None,
) -> list[Row]:
    """Tickets matching every given filter, newest first."""
    clause, params = _where(
        (("status = ?", status), ("owner = ?", owner), ("tid = ?", tid), ("mid = ?", mid))
    )
    return list(
        tx.conn.execute("SELECT * FROM tickets" + clause + " ORDER BY id DESC", params).fetchall()
    )


# --------------------------------------------------------------------------- arrears, resumption


def ledger_rows(tx: Tx, mid: str) -> list[Row]:
    """The merchant's arrears ledger, oldest first."""
    return list(
        tx.conn.execute(
            "SELECT * FROM arrears_ledger WHERE mid = ? ORDER BY ts, id", (mid,)
        ).fetchall()
    )


def ledger_entry(tx: Tx, entry_id: int) -> Row | None:
    row: Row | None = tx.conn.execute(
        "SELECT * FROM arrears_ledger WHERE id = ?", (entry_id,)
    ).fetchone()
    return row


def payment_by_voucher(tx: Tx, mid: str, voucher: str) -> Row | None:
    """``id`` and ``ts`` of the merchant's payment recorded with this voucher, if any."""
    row: Row | None = tx.conn.execute(
        "SELECT id, ts FROM arrears_ledger WHERE mid = ? AND kind = 'payment' AND voucher = ?",
        (mid, voucher),
    ).fetchone()
    return row


def resumption_rows(tx: Tx, mid: str | None = None, status: str | None = None) -> list[Row]:
    """Resumption requests (of this merchant, in this status), oldest first."""
    clause, params = _where((("mid = ?", mid), ("status = ?", status)))
    return list(
        tx.conn.execute(
            "SELECT * FROM resumption_requests" + clause + " ORDER BY requested_at, id", params
        ).fetchall()
    )


def resumption_request(tx: Tx, request_id: int) -> Row | None:
    row: Row | None = tx.conn.execute(
        "SELECT * FROM resumption_requests WHERE id = ?", (request_id,)
    ).fetchone()
    return row


# --------------------------------------------------------------------------- maintenance


def maintenance_window(tx: Tx, window_id: int) -> MaintenanceRec | None:
    """The window with this id, cancelled or not."""
    row = tx.conn.execute("SELECT * FROM maintenance WHERE id = ?", (window_id,)).fetchone()
    return MaintenanceRec.of(row) if row else None


def maintenance_every(tx: Tx) -> list[MaintenanceRec]:
    """Every window, cancelled and past ones included, by start time."""
    rows = tx.conn.execute("SELECT * FROM maintenance ORDER BY start_at, id").fetchall()
    return [MaintenanceRec.of(r) for r in rows]
