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
    writer = GroupCommitWriter(db)
    conn = db.connect()
    tx = Tx(conn)
    jobs: list[Any] = [
        (_note("a"), "fa"), (_note("b", fail=True), "fb"), (_note("c"), "fc"), (_note("d"), "fd"),
    ]  # fmt: skip
    out = writer._batch(conn, tx, jobs)
    assert [(fut, ok) for fut, _, ok in out] == [
        ("fa", True),
        ("fb", False),
        ("fc", True),
        ("fd", True),
    ]
    assert [v for _, v, ok in out if ok] == ["a", "c", "d"]
    assert isinstance(out[1][1], ValueError)
    assert _meta(db) == {"note.a": "a", "note.c": "c", "note.d": "d"}  # b's write undone
    assert (writer.commits, writer.units) == (1, 4)
    # the next batch takes the fast path again, no savepoints
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    out = writer._batch(conn, tx, [(_note("e"), "fe"), (_note("f"), "ff")])
    assert [ok for _, _, ok in out] == [True, True]
    assert not [s for s in seen if "SAVEPOINT" in s] and seen.count("COMMIT") == 1
    assert _meta(db) == {"note.a": "a", "note.c": "c", "note.d": "d", "note.e": "e", "note.f": "f"}
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
