"""The SQLite group-commit writer: one commit per batch, a failing unit undone alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from clearpos.store import Tx
from clearpos.store.sqlite import GroupCommitWriter, SqliteDatabase


def _note(text: str, fail: bool = False) -> Any:
    def unit(tx: Tx) -> str:
        tx.set_meta(f"note.{text}", text)
        if fail:
            raise ValueError(f"unit {text} failed after writing")
        return text

    return unit


def _meta(db: SqliteDatabase) -> dict[str, str]:
    with sqlite3.connect(db.path) as conn:
        return dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'note.%'").fetchall())


def test_batch_commits_once_and_undoes_only_the_failing_unit(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "w.db")
    commits: list[tuple[int, float]] = []
    writer = GroupCommitWriter(db, on_commit=lambda n, s: commits.append((n, s)))
    conn = db.connect()
    tx = Tx(conn)
    jobs: list[Any] = [
        (_note("a"), "fa"), (_note("b", fail=True), "fb"), (_note("c"), "fc"), (_note("d"), "fd"),
    ]  # fmt: skip
    out: list[Any] = []
    writer.process(conn, tx, jobs, out.extend)
    assert [(fut, ok) for fut, _, ok in out] == [
        ("fa", True),
        ("fb", False),
        ("fc", True),
        ("fd", True),
    ]
    assert [v for _, v, ok in out if ok] == ["a", "c", "d"]
    assert isinstance(out[1][1], ValueError)
    assert _meta(db) == {"note.a": "a", "note.c": "c", "note.d": "d"}  # b's write undone
    # cut before b: a commits alone, b fails alone, c and d commit together
    assert (writer.commits, writer.units, writer.cuts) == (2, 4, 1)
    assert [n for n, _ in commits] == [1, 2] and all(s >= 0 for _, s in commits)
    # the next batch: one transaction, no savepoints
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    out.clear()
    writer.process(conn, tx, [(_note("e"), "fe"), (_note("f"), "ff")], out.extend)
    assert [ok for _, _, ok in out] == [True, True]
    assert not [s for s in seen if "SAVEPOINT" in s] and seen.count("COMMIT") == 1
    assert seen.count("BEGIN IMMEDIATE") == 1
    assert _meta(db) == {"note.a": "a", "note.c": "c", "note.d": "d", "note.e": "e", "note.f": "f"}
    conn.close()


def test_a_unit_failing_first_fails_alone_and_order_is_kept(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "w.db")
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = Tx(conn)
    order: list[str] = []

    def note(text: str, fail: bool = False) -> Any:
        inner = _note(text, fail)

        def unit(t: Tx) -> str:
            order.append(text)
            return str(inner(t))

        return unit

    jobs: list[Any] = [
        (note("a", fail=True), "fa"),
        (note("b"), "fb"),
        (note("c", fail=True), "fc"),
    ]
    out: list[Any] = []
    writer.process(conn, tx, jobs, out.extend)
    assert [(fut, ok) for fut, _, ok in out] == [("fa", False), ("fb", True), ("fc", False)]
    # a alone (fails); b, c (c fails: cut); b again, commits; c alone (fails)
    assert order == ["a", "b", "c", "b", "c"]
    assert _meta(db) == {"note.b": "b"}
    assert (writer.commits, writer.units) == (1, 3)
    conn.close()


def test_writer_thread_hands_back_results_and_errors(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "w.db")

    async def main() -> list[Any]:
        writer = GroupCommitWriter(db)
        await writer.start()
        futs = [writer.run(_note(str(i), fail=i == 3)) for i in range(8)]
        got = await asyncio.gather(*futs, return_exceptions=True)
        await writer.close()
        return got

    got = asyncio.run(main())
    assert [g if isinstance(g, str) else type(g).__name__ for g in got] == [
        "0", "1", "2", "ValueError", "4", "5", "6", "7",
    ]  # fmt: skip
    assert set(_meta(db)) == {f"note.{i}" for i in range(8) if i != 3}
