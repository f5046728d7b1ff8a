"""A fault inside a participant: 96 host.error, nothing of it committed, a masked log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from host_fixture import start_host
from hostclient import PAN, Client

from clearpos.audit import run_audit


def test_participant_exception_is_host_error_with_nothing_committed(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    try:
        c = Client(h.host, h.port).connect()
        assert c.sign_on().code == "00"
        # a corrupt PIN verification value makes the security module raise mid-pipeline
        with sqlite3.connect(h.db) as conn:
            conn.execute(
                "UPDATE cards SET pvv = 'garbage' WHERE pan_masked = '622202*********0123'"
            )
            before = conn.execute(
                "SELECT balance_fen, wrong_pin FROM cards WHERE pan_masked = '622202*********0123'"
            ).fetchone()
        r = c.purchase(1000)
        assert (r.code, r.reason) == ("96", "host.error")
        assert r.mac_ok is None
        with sqlite3.connect(h.db) as conn:
            after = conn.execute(
                "SELECT balance_fen, wrong_pin FROM cards WHERE pan_masked = '622202*********0123'"
            ).fetchone()
            row = conn.execute(
                "SELECT reason, req_key, delta_fen FROM journal WHERE id = ?",
                (int(r.msg.rrn or 0),),
            ).fetchone()
        assert after == before  # nothing of the failed unit was committed
        assert row == ("host.error", None, 0)  # journaled, without taking the request key
        # the host keeps serving the next request normally
        assert c.purchase(1000, card=c.card("6225880000001116")).code == "00"
        log = h.log_text()
        assert "participant failed" in log and "622202*********0123" in log
        assert PAN not in log and "garbage" not in log
    finally:
        h.stop()
    assert run_audit(h.url) == []
