"""No statement the host or the help desk's read paths run reads a whole big table.

The host's cost per transaction must not grow with the journal. This drives a
terminal through every kind of message the host handles (the everyday day of
SCENARIOS.md E plus a lost answer and its reversal, a duplicate, an offline
upload and an unbalanced settlement with its batch upload) against an embedded
host on a real SQLite file, records every statement the host's writer runs
(SQLite's trace hook, on the writer's own connection), and asks SQLite for the
plan of each: none may be a full scan of the journal, cards, terminals,
merchants, settlements or batch uploads.

The console dashboard, journal search and "newest rows of" lists, the daily
report and the diagnosis of a terminal, merchant or RRN are held to the same
rule on the journal, read after that day.

Found this way: the refund path listed a sale's earlier refunds with a full
scan of the journal (``original_id`` had no index), and at 1M journal rows the
dashboard took 700 ms, a merchant's newest rows 990 ms and the daily report
160 ms, each walking the whole journal or one of its indexes.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.hostproc import TEST_KEK

from clearpos.clock import CST, utc_iso
from clearpos.console import queries as console
from clearpos.diagnosis.explain import explain_rrn
from clearpos.diagnosis.subjects import diagnose_merchant, diagnose_terminal
from clearpos.host.embedded import EmbeddedHost
from clearpos.keys import KeyEncryptionKey
from clearpos.lab.faultproxy import Action, Fault, FaultProxy
from clearpos.ops.reports import daily_report
from clearpos.store.sqlite import SqliteDatabase
from clearpos.terminal import CardInput, HostLink, Terminal

ROOT = Path(__file__).resolve().parents[1]
KEK = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
RICH = CardInput("6222021234567890123", "2812", "123456")
SPARE = CardInput("6225880000001116", "2812", "123456")
OTHER = CardInput("6225880000001124", "2812", "123456")
LONG = CardInput("6214830000000001138", "3006", "8888")
BIG_TABLES = ("journal", "cards", "terminals", "merchants", "settlements", "batch_uploads")


def _writer_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement run on a connection opened by the group-commit writer thread."""
    seen: list[str] = []
    connect = SqliteDatabase.connect

    def traced(self: SqliteDatabase) -> sqlite3.Connection:
        conn = connect(self)
        if threading.current_thread().name == "clearpos-writer":
            conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(SqliteDatabase, "connect", traced)
    return seen


def _day(proxy: FaultProxy, state: Path) -> None:
    with Terminal(
        state,
        link=HostLink("127.0.0.1", proxy.port, timeout=0.6),
        tid="10000001",
        mid="898310048161234",
        tmk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
        kek=KEK,
        lang="en",
        floor_limit_fen=10000,
    ) as t:
        assert t.login("01", "0000").approved
        sales = [t.purchase(100 + i, c) for i, c in enumerate((RICH, SPARE, LONG) * 2)]
        assert all(s.approved for s in sales), [s.reason for s in sales]
        assert t.balance(RICH).approved
        assert t.void(sales[0].stan or "", "123456").approved
        assert t.refund(50, sales[1].rrn or "", supervisor_password="123456").approved
        pre = t.preauth(5000, OTHER)
        done = t.complete(4500, pre.stan or "")
        assert done.approved and t.completion_void(done.stan or "", "123456").approved
        pre2 = t.preauth(3000, OTHER)
        assert t.preauth_void(pre2.stan or "", "123456").approved
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0200"))
        assert t.purchase(700, SPARE).reason == "network.timeout"  # reversed at once
        proxy.inject(Fault(Action.DUPLICATE, mti="0200"))
        assert t.purchase(800, LONG).approved  # the copy is refused as a duplicate
        proxy.down()
        assert t.purchase(300, OTHER).reason == "offline.stored"
        proxy.up()
        assert t.purchase(400, RICH).approved  # uploads the offline sale first
        # the terminal "forgets" a sale: settlement is unbalanced, the batch is uploaded
        t.store._db.execute(
            "UPDATE journal SET status = 'declined' WHERE stan = ?", (sales[-1].stan,)
        )
        assert t.settle().reason == "settlement.unbalanced"
        assert t.echo().approved
        assert t.signoff().approved


def test_no_host_or_help_desk_statement_scans_a_big_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _writer_statements(monkeypatch)
    db = SqliteDatabase(tmp_path / "host.db")
    with EmbeddedHost(db, KEK, world=ROOT / "examples" / "world.toml", reset=True) as host:
        proxy = FaultProxy((host.host, host.port)).start()
        try:
            _day(proxy, tmp_path / "pos")
        finally:
            proxy.close()
    statements = {
        s for s in seen if s.split(None, 1)[0] in ("SELECT", "UPDATE", "INSERT", "DELETE")
    }
    touched = {m for s in statements for m in re.findall(r"(?:FROM|INTO|UPDATE) (\w+)", s)}
    assert touched >= set(BIG_TABLES), touched  # the day really reached every table
    assert not _scans(db, statements, BIG_TABLES), "\n".join(_scans(db, statements, BIG_TABLES))

    # the help desk's read paths, on the journal that day left
    now = datetime.now(UTC)
    read: list[str] = []
    with db.reader() as tx:
        rrn = tx.conn.execute("SELECT MAX(id) FROM journal WHERE code = '00'").fetchone()[0]
        card = tx.conn.execute("SELECT MAX(card_id) FROM journal").fetchone()[0]
        tx.conn.set_trace_callback(read.append)  # type: ignore[attr-defined]
        console.dashboard(tx, now)
        for q in (
            console.JournalQuery(tid="10000001"),
            console.JournalQuery(mid="898310048161234"),
            console.JournalQuery(reason="card.frozen"),
            console.JournalQuery(outcome="declined", since=utc_iso(now - timedelta(hours=1))),
        ):
            console.search_journal(tx, q)
        console.recent_for(tx, tid="10000001")
        console.recent_for(tx, mid="898310048161234")
        console.recent_for(tx, card_id=card)
        console.journal_detail(tx, f"{rrn:012d}")
        daily_report(tx, now.astimezone(CST).date())
        diagnose_terminal(tx, "10000001", since=now - timedelta(hours=24), lang="en")
        diagnose_merchant(tx, "898310048161234", since=now - timedelta(hours=24), lang="en")
        explain_rrn(tx, f"{rrn:012d}", "en")
    selects = {s for s in read if s.startswith(("SELECT", "WITH"))}
    assert any("business_date" in s for s in selects) and len(selects) > 15, selects
    assert not _scans(db, selects, ("journal",)), "\n".join(_scans(db, selects, ("journal",)))


def _scans(db: SqliteDatabase, statements: set[str], tables: tuple[str, ...]) -> list[str]:
    """Statements whose plan walks a whole table of ``tables`` (or a whole index of one)."""
    found: list[str] = []
    with sqlite3.connect(db.path) as conn:
        for sql in sorted(statements):
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql):
                detail: str = row[3]
                if any(detail == f"SCAN {t}" or detail.startswith(f"SCAN {t} ") for t in tables):
                    found.append(f"{detail}: {sql}")
    return found
