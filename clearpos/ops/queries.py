"""Read and insert helpers for the operations and the diagnosis, in portable SQL.

Everything here works on a :class:`~clearpos.store.Tx` connection with ``?``
placeholders (SQLite and PostgreSQL alike); nothing here changes host tables
except through the column updates the operations ask for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..store import Database, JournalRec, Tx

__all__ = [
    "AuditRec",
    "audit_rows",
    "insert",
    "journal_rows",
    "last_journal",
    "read",
    "role_of",
    "update",
]


@dataclass(frozen=True, slots=True)
class AuditRec:
    """One row of the audit trail."""

    id: int
    ts: str
    actor: str
    entity: str
    entity_id: str
    action: str
    from_state: str
    to_state: str
    reason: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> AuditRec:
        return cls(
            int(r["id"]),
            r["ts"],
            r["actor"],
            r["entity"],
            r["entity_id"],
            r["action"],
            r["from_state"],
            r["to_state"],
            r["reason"],
            json.loads(r["detail"] or "{}"),
        )


@contextmanager
def read(db: Database) -> Iterator[Tx]:
    """``db.reader()`` whose reads take no row locks.

    A read-only PostgreSQL transaction refuses ``SELECT ... FOR UPDATE``, which
    :class:`Tx` adds to the reads of rows it means to update (``Tx.lock``).
    """
    with db.reader() as tx:
        tx.lock = ""
        yield tx


def insert(tx: Tx, table: str, cols: Mapping[str, Any]) -> int:
    """INSERT one row and return its id (``RETURNING id``: SQLite ≥ 3.35 and PostgreSQL)."""
    names = ", ".join(cols)
    marks = ", ".join("?" for _ in cols)
    row = tx.conn.execute(
        f"INSERT INTO {table} ({names}) VALUES ({marks}) RETURNING id", list(cols.values())
    ).fetchone()
    return int(row["id"])


def update(tx: Tx, table: str, key: str, value: Any, cols: Mapping[str, Any]) -> None:
    """UPDATE columns of the row whose ``key`` is ``value``."""
    sets = ", ".join(f"{c} = ?" for c in cols)
    tx.conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", [*cols.values(), value])


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
    marks = ", ".join("?" for _ in entity_ids)
    sql = f"SELECT * FROM audit WHERE entity = ? AND entity_id IN ({marks})"
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
        where.append(f"tid IN ({', '.join('?' for _ in tids)})")
        params += list(tids)
    if kinds is not None:
        where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
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


def last_journal(
    tx: Tx, tid: str, kinds: Sequence[str], *, before_id: int, approved: bool = True
) -> JournalRec | None:
    """The latest row of ``kinds`` for ``tid`` before journal id ``before_id``."""
    marks = ", ".join("?" for _ in kinds)
    sql = f"SELECT * FROM journal WHERE tid = ? AND kind IN ({marks}) AND id < ?"
    if approved:
        sql += " AND code = '00'"
    row = tx.conn.execute(sql + " ORDER BY id DESC LIMIT 1", (tid, *kinds, before_id)).fetchone()
    return JournalRec.of(row) if row else None


def role_of(tx: Tx, username: str) -> str | None:
    """The console role of a registered, enabled user, or None."""
    row = tx.conn.execute(
        "SELECT role FROM users WHERE username = ? AND disabled = 0", (username,)
    ).fetchone()
    return str(row["role"]) if row else None
