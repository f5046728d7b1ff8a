"""Embedded SQLite backend: WAL, synchronous=FULL, and group commit.

``SqliteDatabase.transaction()`` is the synchronous unit of work used by the
CLI and tools. ``GroupCommitWriter`` is what the host uses: units of work
(plain functions taking a :class:`~clearpos.store.tx.Tx`) are queued to one
writer thread, which runs a batch of them inside one transaction and commits
once (a unit that raises has its writes undone, the others' kept); only then
are their results handed back. So
every answer the host sends is durable, and durability costs one fsync per
batch, not per transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..private import private_file
from .schema import MIGRATIONS
from .tx import Tx

T = TypeVar("T")


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says what to do."""


class SqliteDatabase:
    backend = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # sqlite3 says why it cannot open it
                private_file(self.path)  # 0600: its -wal and -shm get the same mode
        with self.connection() as conn:
            migrate(conn)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One synchronous unit of work (BEGIN IMMEDIATE ... COMMIT)."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[Tx]:
        """A read-only snapshot."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield Tx(conn)
            finally:
                conn.execute("ROLLBACK")

    def writer(
        self, *, batch_max: int = 512, on_commit: OnCommit | None = None
    ) -> GroupCommitWriter:
        return GroupCommitWriter(self, batch_max=batch_max, on_commit=on_commit)

    def backup(self, target: str | Path) -> None:
        """A consistent online copy (SQLite backup API)."""
        with self.connection() as src:
            dst = sqlite3.connect(str(private_file(Path(target))))
            try:
                src.backup(dst)
            finally:
                dst.close()


def migrate(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
    )
    # Every migration not applied yet, by number: migrations are numbered per engineer
    # and may land out of order (a store at 6 still gets 5 when 5 is merged later).
    applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_version").fetchall()}
    current = max(applied, default=0)
    for version, _title, statements in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, datetime('now'))",
                (version,),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = max(current, version)
    return current


_Job = tuple[Callable[[Tx], Any], "asyncio.Future[Any]"]
_STOP = object()
#: told after each commit, on the writer thread, before its answers are released:
#: units in the batch, seconds from BEGIN to COMMIT done (``--metrics``)
OnCommit = Callable[[int, float], None]


class GroupCommitWriter:
    """One writer thread; units of work in batches, one COMMIT per batch."""

    def __init__(
        self, db: SqliteDatabase, *, batch_max: int = 512, on_commit: OnCommit | None = None
    ) -> None:
        self.db = db
        self.batch_max = batch_max
        self.on_commit = on_commit
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0
        self.units = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="clearpos-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._q.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None

    def run(self, unit: Callable[[Tx], T]) -> asyncio.Future[T]:
        """Queue a unit of work; the future resolves after its batch commits."""
        assert self._loop is not None, "writer not started"
        fut: asyncio.Future[T] = self._loop.create_future()
        self._q.put((unit, fut))
        return fut

    def _run(self) -> None:
        conn = self.db.connect()
        tx = Tx(conn)
        q = self._q
        loop = self._loop
        assert loop is not None
        try:
            while True:
                first = q.get()
                if first is _STOP:
                    return
                jobs: list[_Job] = [first]
                stop = False
                while len(jobs) < self.batch_max:
                    try:
                        nxt = q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    jobs.append(nxt)
                started, commits = time.perf_counter(), self.commits
                results = self._batch(conn, tx, jobs)
                if self.on_commit is not None and self.commits != commits:
                    self.on_commit(len(jobs), time.perf_counter() - started)
                loop.call_soon_threadsafe(_resolve, results)
                if stop:
                    return
        finally:
            conn.close()

    def _batch(
        self, conn: sqlite3.Connection, tx: Tx, jobs: list[_Job]
    ) -> list[tuple[Any, Any, bool]]:
        """Run ``jobs`` in one transaction and commit once.

        Units run back to back, without a savepoint each (two statements fewer per
        unit). When one raises, its writes are mixed with the others', so the whole
        transaction is rolled back and the batch runs again with every unit in its
        own savepoint: the failed unit's writes are undone, the others' kept. Nothing
        of the first run was kept or sent (answers go out after COMMIT), and a host
        unit reads everything it decides on from the store and the clock, so its
        second run simply decides afresh."""
        out: list[tuple[Any, Any, bool]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            tx.forget()
            for unit, fut in jobs:
                try:
                    value = unit(tx)
                except Exception:
                    conn.execute("ROLLBACK")
                    return self._isolated(conn, tx, jobs)
                out.append((fut, value, True))
            conn.execute("COMMIT")
        except Exception as exc:  # commit failed: nothing of this batch is durable
            return self._failed(conn, jobs, exc)
        self.commits += 1
        self.units += len(jobs)
        return out

    def _isolated(
        self, conn: sqlite3.Connection, tx: Tx, jobs: list[_Job]
    ) -> list[tuple[Any, Any, bool]]:
        """The batch again, each unit in its own savepoint."""
        out: list[tuple[Any, Any, bool]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            tx.forget()
            for unit, fut in jobs:
                conn.execute("SAVEPOINT unit")
                try:
                    value = unit(tx)
                except Exception as exc:  # the unit's writes are undone, the batch goes on
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    tx.forget()
                    out.append((fut, exc, False))
                    continue
                conn.execute("RELEASE unit")
                out.append((fut, value, True))
            conn.execute("COMMIT")
        except Exception as exc:
            return self._failed(conn, jobs, exc)
        self.commits += 1
        self.units += len(jobs)
        return out

    @staticmethod
    def _failed(
        conn: sqlite3.Connection, jobs: list[_Job], exc: Exception
    ) -> list[tuple[Any, Any, bool]]:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        err = StoreError(f"commit failed, nothing of this batch was stored: {exc}")
        return [(fut, err, False) for _, fut in jobs]


def _resolve(results: list[tuple[Any, Any, bool]]) -> None:
    for fut, value, ok in results:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
