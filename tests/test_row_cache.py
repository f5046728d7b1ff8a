"""The SQLite writer's row cache (store/rowcache.py): never a stale row.

Real SQLite files, the writer's own batch code, and a second connection that
plays the admin CLI (another process committing while the host runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearpos.host.cli import build_engine
from clearpos.host.seed import seed
from clearpos.keys import KeyEncryptionKey
from clearpos.store import JournalEntry, Tx
from clearpos.store.sqlite import GroupCommitWriter, SqliteDatabase
from clearpos.world import load_world

WORLD = Path(__file__).resolve().parent.parent / "examples" / "world.toml"
TID = "10000001"


@pytest.fixture
def db(tmp_path: Path) -> SqliteDatabase:
    db = SqliteDatabase(tmp_path / "cache.db")
    _engine, hsm, tokens = build_engine(KeyEncryptionKey(bytes.fromhex("5e" * 32)))
    seed(db, load_world(WORLD), hsm, tokens, reset=False)
    return db


def _run(writer: GroupCommitWriter, conn: Any, tx: Tx, *units: Any) -> list[Any]:
    jobs: list[Any] = [(u, None) for u in units]
    """The values of the units (an exception for one that failed), as one batch."""
    return [value for _, value, _ok in writer._batch(conn, tx, jobs)]


def _card_id(db: SqliteDatabase) -> int:
    with db.reader() as tx:
        return tx.cards()[0].id


def test_rows_are_served_from_memory_after_a_commit(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    cid = _card_id(db)
    _run(writer, conn, tx, lambda t: (t.terminal(TID), t.card(cid)))
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    (got,) = _run(writer, conn, tx, lambda t: (t.terminal(TID), t.card(cid)))
    conn.set_trace_callback(None)
    assert got[0].tid == TID and got[1].id == cid
    assert not [s for s in seen if "FROM terminals" in s or "FROM cards" in s], seen
    conn.close()


def test_another_connections_commit_is_seen(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    cid = _card_id(db)
    (before,) = _run(writer, conn, tx, lambda t: (t.terminal(TID), t.card(cid)))
    assert before[0].status == "active"
    with db.transaction() as other:  # the admin CLI, in another process
        other.update_terminal(TID, status="suspended")
        other.update_card(cid, wrong_pin=before[1].wrong_pin + 2)
    (after,) = _run(writer, conn, tx, lambda t: (t.terminal(TID), t.card(cid)))
    assert after[0].status == "suspended"
    assert after[1].wrong_pin == before[1].wrong_pin + 2
    conn.close()


def test_a_failed_unit_leaves_no_row_behind_and_keeps_the_others(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    cid = _card_id(db)
    (start,) = _run(writer, conn, tx, lambda t: t.card(cid).wrong_pin)
    start += 1000  # counts written below go down from here (not money: the audit checks that)
    _run(writer, conn, tx, lambda t: t.update_card(cid, wrong_pin=start))

    def debit(n: int) -> Any:
        def unit(t: Tx) -> int:
            t.update_card(cid, wrong_pin=t.card(cid).wrong_pin - n)
            return int(t.card(cid).wrong_pin)

        return unit

    def fails(t: Tx) -> None:
        t.update_card(cid, wrong_pin=0, pin_locked=1)
        raise ValueError("after writing")

    out = _run(writer, conn, tx, debit(100), fails, debit(10), lambda t: t.card(cid))
    assert out[0] == start - 100 and isinstance(out[1], ValueError) and out[2] == start - 110
    assert out[3].wrong_pin == start - 110 and out[3].pin_locked is False
    # the next batch, from memory, agrees with a fresh connection
    (cached,) = _run(writer, conn, tx, lambda t: t.card(cid))
    with db.reader() as fresh:
        assert cached == fresh.card(cid)
    assert cached.wrong_pin == start - 110
    conn.close()


def test_a_failed_commit_keeps_nothing_of_its_batch(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    cid = _card_id(db)
    (start,) = _run(writer, conn, tx, lambda t: t.card(cid).wrong_pin)

    def debit_then_break_commit(t: Tx) -> int:
        t.update_card(cid, wrong_pin=start + 500)
        # a deferred foreign-key violation makes COMMIT itself fail
        t.conn.execute("PRAGMA defer_foreign_keys = ON")
        t.conn.execute("UPDATE terminals SET mid = 'NO-SUCH-MERCHANT' WHERE tid = ?", (TID,))
        return start + 500  # never returned: COMMIT fails

    out = writer._batch(conn, tx, [(debit_then_break_commit, None)])
    assert [ok for _, _, ok in out] == [False]
    (now,) = _run(writer, conn, tx, lambda t: (t.card(cid).wrong_pin, t.terminal(TID).mid))
    assert now[0] == start and now[1] != "NO-SUCH-MERCHANT"
    conn.close()


def test_written_bools_read_back_as_the_store_gives_them(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    _run(writer, conn, tx, lambda t: t.terminal(TID))
    _run(writer, conn, tx, lambda t: t.update_terminal(TID, keys_proven=1, chip=0))
    (cached,) = _run(writer, conn, tx, lambda t: t.terminal(TID))
    with db.reader() as fresh:
        assert cached == fresh.terminal(TID)
    assert cached.keys_proven is True and cached.chip is False
    conn.close()


def _request(stan: str, batch: str = "000001", mid: str = "898310048161234") -> JournalEntry:
    return JournalEntry(
        ts="2026-12-03T08:00:00.000000Z",
        business_date="20261203",
        tid=TID,
        mid=mid,
        batch=batch,
        stan=stan,
        mti="0200",
        kind="purchase",
        reason="approved",
        status="approved",
        amount_fen=100,
        req_key=f"{TID}:{batch}:{stan}",
    )


def test_the_duplicate_check_knows_absent_requests_without_a_query(db: SqliteDatabase) -> None:
    """After one read of a batch's STANs, a request that is not there costs no query;
    the writer's own inserts are followed, a rolled-back one is not believed, and
    another connection's commit is seen."""
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    _run(writer, conn, tx, lambda t: t.insert_journal(_request("000001")))
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    (first,) = _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000002"))
    assert first is None and sum("FROM journal" in s for s in seen) == 1  # the STANs, once
    seen.clear()
    got = _run(
        writer,
        conn,
        tx,
        lambda t: t.journal_by_key(f"{TID}:000001:000003"),  # absent: no query
        lambda t: t.journal_by_key(f"{TID}:000001:000001"),  # there: read
        lambda t: t.insert_journal(_request("000004")),
        lambda t: t.journal_by_key(f"{TID}:000001:000004"),  # this transaction's
    )
    assert got[0] is None and got[1] is not None and got[1].stan == "000001"
    assert got[3] is not None and got[3].stan == "000004"
    assert sum("FROM journal" in s for s in seen) == 2, seen
    # inserted, then rolled back with its unit: looked for again, and not found
    (failed,) = _run(writer, conn, tx, lambda t: (t.insert_journal(_request("000005")), 1 / 0))
    assert isinstance(failed, ZeroDivisionError)
    (again,) = _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000005"))
    assert again is None
    # committed after the batch was read: the next one is a duplicate
    (_, later) = _run(
        writer,
        conn,
        tx,
        lambda t: t.insert_journal(_request("000006")),
        lambda t: t.journal_by_key(f"{TID}:000001:000006"),
    )
    assert later is not None
    assert _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000006"))[0]
    # another process (an import, the admin CLI) commits a request in that batch
    with db.transaction() as other:
        other.insert_journal(_request("000007"))
    (theirs,) = _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000007"))
    assert theirs is not None and theirs.stan == "000007"
    # the original of a void or reversal is looked up the same way
    (orig, none) = _run(
        writer,
        conn,
        tx,
        lambda t: t.journal_original(TID, "000001", "000007", ["purchase"]),
        lambda t: t.journal_original(TID, "000001", "000099", ["purchase"]),
    )
    assert orig is not None and none is None
    conn.close()


def test_a_new_batch_is_read_afresh(db: SqliteDatabase) -> None:
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = writer.tx_for(conn)
    _run(writer, conn, tx, lambda t: t.insert_journal(_request("000001", batch="000001")))
    _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000002"))
    with db.transaction() as other:  # the writer's knowledge of batch 2 comes after
        other.insert_journal(_request("000001", batch="000002"))
    (found,) = _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000002:000001"))
    assert found is not None and found.batch == "000002"
    (back,) = _run(writer, conn, tx, lambda t: t.journal_by_key(f"{TID}:000001:000001"))
    assert back is not None and back.batch == "000001"
    conn.close()
