"""Migration 7: one unique index for (TID, batch, STAN) instead of two B-trees with the
same key, and the reason index for declines only. A store made before it keeps every
row and id, still refuses a second row of a request, and its reads use the new indexes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from host_fixture import Store
from psycopg.rows import dict_row

from clearpos.store import pg, schema, sqlite
from clearpos.store.tx import JOURNAL_BY_KEY

COLUMNS = (
    "ts, business_date, tid, mid, batch, stan, mti, kind, amount_fen, code, reason, "
    "status, req_key, trail"
)


def _row(n: int, *, financial: bool, reason: str = "approved") -> tuple[Any, ...]:
    tid, batch, stan = "10000001", "000001", f"{n:06d}"
    return (
        f"2026-12-03T01:00:{n % 60:02d}.000000Z",
        "20261203",
        tid,
        "898310048161234",
        batch,
        stan,
        "0200",
        "purchase" if financial else "signon",
        100 * n if financial else None,
        "00" if reason == "approved" else "51",
        reason,
        "approved" if reason == "approved" else "declined",
        f"{tid}:{batch}:{stan}" if financial else None,
        "Trail:ok",
    )


def _open(store: Store, tmp_path: Path) -> tuple[Any, Any]:
    if store.backend == "sqlite":
        return sqlite3.connect(tmp_path / "v6.db", isolation_level=None), sqlite.migrate
    conn = psycopg.connect(store.new_url(tmp_path, "v6"), row_factory=dict_row, autocommit=True)
    return conn, pg.migrate


def _sql(store: Store, text: str) -> str:
    return text if store.backend == "sqlite" else pg.translate(text)


def test_a_store_made_before_7_keeps_its_rows_and_refuses_a_second_row_of_a_request(
    store: Store, tmp_path: Path
) -> None:
    conn, run = _open(store, tmp_path)
    saved = schema.MIGRATIONS[:]
    try:
        schema.MIGRATIONS[:] = [m for m in saved if m[0] < 7]  # a store made before 7
        assert run(conn) == 6
        if store.backend == "postgresql":
            conn.autocommit = True  # pg.migrate leaves it off
        insert = _sql(store, f"INSERT INTO journal ({COLUMNS}) VALUES ({', '.join('?' * 14)})")
        rows = [_row(n, financial=n % 3 != 0) for n in range(1, 40)]
        rows += [_row(n, financial=True, reason="card.frozen") for n in range(40, 45)]
        rows += [_row(7, financial=False)]  # a sign-on with a financial row's STAN: allowed
        for r in rows:
            conn.execute(insert, r)
        before = conn.execute("SELECT * FROM journal ORDER BY id").fetchall()
        schema.MIGRATIONS[:] = saved
        assert run(conn) == schema.LATEST
        if store.backend == "postgresql":
            conn.autocommit = True
        after = conn.execute("SELECT * FROM journal ORDER BY id").fetchall()
        assert [tuple(r) if store.backend == "sqlite" else tuple(r.values()) for r in after] == [
            tuple(r) if store.backend == "sqlite" else tuple(r.values()) for r in before
        ]
        # the request key is unique among financial rows, by the new index alone
        twin = _row(8, financial=True)
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
            conn.execute(insert, twin)
        # rows without a request key (sign-ons, format errors) may share a STAN
        conn.execute(insert, _row(8, financial=False))
        # ids go on after the copied ones
        conn.execute(insert, _row(99, financial=True))
        ids = [int(r[0] if store.backend == "sqlite" else r["id"]) for r in after]
        last = conn.execute("SELECT MAX(id) FROM journal").fetchone()
        assert int(last[0] if store.backend == "sqlite" else last["max"]) > max(ids)
        # the duplicate check finds a financial row by its key, and only a financial one
        found = conn.execute(_sql(store, JOURNAL_BY_KEY), ["10000001", "000001", "000008"])
        assert len(found.fetchall()) == 1
        found = conn.execute(_sql(store, JOURNAL_BY_KEY), ["10000001", "000001", "000003"])
        assert found.fetchall() == []  # n = 3 was a sign-on
    finally:
        schema.MIGRATIONS[:] = saved
        conn.close()


def test_the_journal_s_reads_use_the_new_indexes(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "plans.db", isolation_level=None)
    sqlite.migrate(conn)
    names = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'journal'")
    }
    assert "journal_request" in names and "journal_tid_batch" not in names
    assert not any(n.startswith("sqlite_autoindex_journal") for n in names)  # req_key's UNIQUE

    def plan(sql: str, params: tuple[Any, ...]) -> str:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    assert "journal_request" in plan(JOURNAL_BY_KEY, ("1", "2", "3"))
    batch = "SELECT * FROM journal WHERE tid = ? AND batch = ? AND req_key IS NOT NULL"
    assert "journal_request" in plan(batch, ("1", "2"))
    declines = "SELECT * FROM journal WHERE reason = ? AND reason <> 'approved' ORDER BY ts DESC"
    assert "journal_reason_ts" in plan(declines, ("card.frozen",))
    conn.close()
