"""Crash test: SIGKILL the host while 20 connections send purchases.

After a restart, every purchase a client saw approved is in the journal and
debited exactly once; nothing a client did not see approved is debited (the
terminal would reverse it, and we send those reversals as a terminal would).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

from host_fixture import start_host
from hostclient import Client

from clearpos.audit import run_audit
from clearpos.keys import TerminalKeys
from clearpos.wire import Kind, Reversal

CARDS = [
    "6225880000001116",
    "6225880000001124",
    "6222021234567890123",
    "4000000000002016",
    "5100000000003010",
]


def test_sigkill_under_load_loses_nothing(tmp_path: Path) -> None:
    # no velocity rule here: this test hammers few cards on purpose
    world = (Path(__file__).resolve().parent.parent / "examples" / "world.toml").read_text("utf-8")
    world = world.replace("card_velocity = { count = 5, window_s = 60, lock_s = 1800 }", "")
    h = start_host(tmp_path, world_text=world)
    seen_approved: list[tuple[str, str, str]] = []  # (batch, stan, rrn)
    unanswered = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(i: int) -> None:
        c = Client(h.host, h.port, tid="10000001", timeout=3).connect()
        c.keys = TerminalKeys(c.tmk, first.working)  # one terminal's keys, own cipher objects
        rnd = random.Random(i)
        while not stop.is_set():
            req = c.request(Kind.PURCHASE, rnd.randint(1, 500), c.card(rnd.choice(CARDS), pin=None))
            try:
                r = c.send(req)
            except OSError:
                with lock:
                    unanswered.append(req)
                return
            if r.code == "00":
                with lock:
                    seen_approved.append((req.batch, req.stan, r.msg.rrn or ""))  # type: ignore[union-attr]

    first = Client(h.host, h.port, tid="10000001").connect()
    assert first.sign_on().code == "00"
    threads = [threading.Thread(target=worker, args=(i + 1,)) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    h.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert seen_approved, "no purchase was approved before the kill"
    # restart on the same store, as the operator would
    h2 = start_host(tmp_path, reset=False, db=h.db)
    try:
        # terminals reverse what they never heard about (98) — the host undoes it if it had it
        c = Client(h2.host, h2.port, tid="10000001").connect()
        c.keys = TerminalKeys(c.tmk, first.working)
        for req in unanswered:
            r = c.send(Reversal.of(req, "98"))
            assert r.code in ("00", "12", "25"), r.reason
    finally:
        h2.stop()
    with sqlite3.connect(h.db) as conn:
        for batch, stan, _rrn in seen_approved:
            rows = conn.execute(
                "SELECT code, status, delta_fen FROM journal WHERE tid = '10000001' AND batch = ? AND stan = ? "
                "AND kind = 'purchase'",
                (batch, stan),
            ).fetchall()
            assert (
                len(rows) == 1
                and rows[0][0] == "00"
                and rows[0][1] == "approved"
                and rows[0][2] < 0
            ), (stan, rows)
        approved_in_journal = conn.execute(
            "SELECT COUNT(*) FROM journal WHERE kind = 'purchase' AND code = '00' AND status = 'approved'"
        ).fetchone()[0]
    # everything still approved at the host was seen approved by a client
    assert approved_in_journal == len(seen_approved)
    assert run_audit(h.url) == []
