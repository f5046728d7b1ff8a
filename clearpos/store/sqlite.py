"""Embedded SQLite backend: WAL, synchronous=FULL, and group commit.

``SqliteDatabase.transaction()`` is the synchronous unit of work used by the
CLI and tools. ``GroupCommitWriter`` is what the host uses: the writer of
``writer.py`` with one thread, which runs a batch of units inside one
``BEGIN IMMEDIATE`` transaction and commits once (a unit that raises has its
writes undone, the others' kept); only then are their results handed back. So
every answer the host sends is durable, and durability costs one fsync per
batch, not per transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..private import private_file
from . import migrate as migrations
from .rowcache import RowCache
from .tx import Tx
from .writer import BatchWriter, OnCommit, StoreError

__all__ = ["GroupCommitWriter", "SqliteBackend", "SqliteDatabase", "StoreError", "migrate"]


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
    """Apply what ``schema_version`` lacks (``migrate.py``); other processes wait on the
    write lock of ``BEGIN IMMEDIATE``, each migration is a savepoint inside it."""

    @contextmanager
    def locked() -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:  # the migrations before a failing one stay applied
            conn.execute("COMMIT")

    @contextmanager
    def step() -> Iterator[None]:
        conn.execute("SAVEPOINT migration")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO migration")
            conn.execute("RELEASE migration")
            raise
        conn.execute("RELEASE migration")

    return migrations.migrate(
        migrations.Dialect(
            execute=lambda sql, params: iter(conn.execute(sql, params)),
            locked=locked,
            transaction=step,
            now="datetime('now')",
        )
    )


#: the writer connection's page cache, KiB
WRITER_CACHE_KIB = 65536


class SqliteBackend:
    """The writer's hooks for SQLite: one connection, ``BEGIN IMMEDIATE`` per batch."""

    name = "sqlite"
    thread_name = "clearpos-writer"

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def open(self) -> tuple[sqlite3.Connection, Tx]:
        conn = self.db.connect()
        # SQLite's default page cache (2 MiB) is smaller than the pages a purchase
        # stream keeps touching (each card's and terminal's last index leaf, the
        # card rows): past a few MB of journal, a purchase read ~1.2 index pages
        # back from the file (bench/host.py, strace). The one writer keeps more.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        return conn, GroupCommitWriter.tx_for(conn)

    def close(self, conn: sqlite3.Connection) -> None:
        conn.close()

    def begin(self, conn: sqlite3.Connection, tx: Tx, *, again: bool) -> None:
        conn.execute("BEGIN IMMEDIATE")
        # inside the batch no other connection can write: the configuration
        # generation is read once per transaction, not once per unit
        tx.forget()

    def prepare(self, tx: Tx, *, first: bool) -> None:
        """Nothing: the batch holds SQLite's one write lock, no unit ever waits for a row."""

    def finish(self, tx: Tx, *, last: bool) -> None:
        """Nothing: every statement was run when the unit made it."""

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def transient(self, exc: BaseException) -> bool:
        return False  # one writer: nothing to race with

    def broken(self, conn: sqlite3.Connection) -> bool:
        return False


class GroupCommitWriter(BatchWriter[sqlite3.Connection]):
    """One writer thread; units of work in batches, one COMMIT per batch (``writer.py``)."""

    def __init__(
        self, db: SqliteDatabase, *, batch_max: int = 512, on_commit: OnCommit | None = None
    ) -> None:
        super().__init__(SqliteBackend(db), batch_max=batch_max, threads=1, on_commit=on_commit)
        self.db = db

    @staticmethod
    def tx_for(conn: sqlite3.Connection) -> Tx:
        """The writer's ``Tx``: it keeps terminal, merchant and card rows between
        transactions (``store/rowcache.py``; this is the store's only writer)."""
        return Tx(conn, cache=RowCache())
