"""The host's writer, common to SQLite and PostgreSQL: group commit with per-unit isolation.

Units of work (plain functions taking a :class:`~clearpos.store.tx.Tx`) are queued
to writer threads (SQLite: one; PostgreSQL: ``writers`` per process, each with its
own connection). A thread takes everything waiting, up to ``batch_max`` units,
runs them back to back in one transaction and commits once; only then are their
results handed back, so every answer the host sends is durable and durability
costs one commit (one fsync) per batch, not per unit.

When a unit raises in the middle of a batch its writes are mixed with the
others', so the transaction is rolled back and the batch is *cut* before it: the
units ahead of it run again and commit, and it then runs first in a transaction
of its own making. A unit that fails as the first of a transaction failed alone:
it is run again when the backend says the error is transient (a deadlock, a
serialization failure, a unique violation on PostgreSQL), else its exception is
its result. Nothing of a rolled-back run was kept or sent (answers go out after
COMMIT), and a host unit reads everything it decides on from the store and the
clock, so its second run simply decides afresh. Order is kept: a unit never
commits before one queued ahead of it on the same thread.

A backend supplies a small :class:`Backend`: how to open a connection and a
:class:`Tx` on it, begin, commit and roll back, how to prepare the Tx for the
next unit (PostgreSQL: a unit that is not the first of its transaction must not
wait for a row lock, see ``pg.py``) and finish a unit (PostgreSQL: send the
writes it deferred, or leave them to ride with the next unit's first read, which
it stops doing for the next attempt once one failed), which errors are
transient, and whether a connection is broken (then the outcome of its
transaction is unknown and no unit of it is run again).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from .tx import Tx

log = logging.getLogger("clearpos.store")

T = TypeVar("T")
C = TypeVar("C")

#: how many more times a unit that failed alone runs after a transient error
RETRIES = 3

#: a queued unit of work and the future its result goes to
Job = tuple[Callable[[Tx], Any], "asyncio.Future[Any]"]
#: (future, value or exception, ok)
Result = tuple["asyncio.Future[Any]", Any, bool]
#: called after each commit, in the writer thread, with (units in it, seconds spent in
#: the store for them, from the first try of the batch to its COMMIT, cuts included)
OnCommit = Callable[[int, float], None]

_STOP = object()


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says what to do."""


class Backend(Protocol[C]):
    """What a store gives the writer; ``C`` is its connection type."""

    name: str
    #: the writer threads' names (``{i}``: the thread's number)
    thread_name: str

    def open(self) -> tuple[C, Tx]: ...
    def close(self, conn: C) -> None: ...
    #: ``again``: the last attempt at these units failed (PostgreSQL then runs each
    #: unit's writes as that unit's own statements, so that a failure is told apart)
    def begin(self, conn: C, tx: Tx, *, again: bool) -> None: ...
    def prepare(self, tx: Tx, *, first: bool) -> None: ...
    #: ``last``: the transaction's last unit (its writes may not wait for a later one)
    def finish(self, tx: Tx, *, last: bool) -> None: ...
    def commit(self, conn: C) -> None: ...
    def rollback(self, conn: C) -> None: ...
    def transient(self, exc: BaseException) -> bool: ...
    def broken(self, conn: C) -> bool: ...


class BatchWriter(Generic[C]):
    """Writer threads running queued units in batches, one COMMIT per batch."""

    def __init__(
        self,
        backend: Backend[C],
        *,
        batch_max: int = 512,
        threads: int = 1,
        on_commit: OnCommit | None = None,
    ) -> None:
        self.backend = backend
        self.batch_max = max(1, batch_max)
        self.threads = threads
        self.on_commit = on_commit
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._count = threading.Lock()
        #: transactions committed (each holds one or more units)
        self.commits = 0
        #: units run to the end (committed, or resolved with their exception)
        self.units = 0
        #: runs of a unit alone again after a transient error
        self.retries = 0
        #: batches cut before a unit that failed in the middle (its prefix re-run)
        self.cuts = 0

    async def start(self) -> None:
        """Start the threads; each opens its connection itself, and this returns once
        all have (or raises the first one's error: a store that cannot be reached)."""
        self._loop = loop = asyncio.get_running_loop()
        opened: list[asyncio.Future[None]] = []
        for i in range(self.threads):
            ready: asyncio.Future[None] = loop.create_future()
            t = threading.Thread(
                target=self._run,
                args=(ready,),
                name=self.backend.thread_name.format(i=i),
                daemon=True,
            )
            t.start()
            self._workers.append(t)
            opened.append(ready)
        try:
            await asyncio.gather(*opened)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish every unit queued so far, then stop the threads."""
        workers, self._workers = self._workers, []
        for _ in workers:
            self._q.put(_STOP)
        loop = asyncio.get_running_loop()
        for t in workers:
            await loop.run_in_executor(None, t.join)

    def run(self, unit: Callable[[Tx], T]) -> asyncio.Future[T]:
        """Queue a unit of work; the future resolves after the transaction holding it commits."""
        assert self._loop is not None, "writer not started"
        fut: asyncio.Future[T] = self._loop.create_future()
        self._q.put((unit, fut))
        return fut

    # ------------------------------------------------------------------ the thread

    def _run(self, ready: asyncio.Future[None]) -> None:
        q = self._q
        loop = self._loop
        assert loop is not None
        try:
            conn, tx = self.backend.open()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, ready, exc)
            return
        loop.call_soon_threadsafe(_settle, ready, None)
        try:
            while True:
                first = q.get()
                if first is _STOP:
                    return
                jobs: list[Job] = [first]
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
                conn, tx = self.process(
                    conn, tx, jobs, lambda r: loop.call_soon_threadsafe(_resolve, r)
                )
                if stop:
                    return
        finally:
            self.backend.close(conn)

    def process(
        self, conn: C, tx: Tx, jobs: list[Job], emit: Callable[[list[Result]], object]
    ) -> tuple[C, Tx]:
        """Run ``jobs`` to the end, in order; ``emit`` gets each committed (or failed)
        run of them. Returns the connection to go on with (a new one after a loss)."""
        start = 0
        attempts = [0] * len(jobs)
        again = False  # the last attempt failed
        while start < len(jobs):
            t0 = time.perf_counter()
            end = len(jobs)
            while True:
                failed, value = self._attempt(conn, tx, jobs[start:end], again=again)
                again = failed is not None
                if failed is None:  # committed
                    if self.on_commit is not None:  # told before any answer is released
                        self.on_commit(end - start, time.perf_counter() - t0)
                    emit(
                        self._done(
                            [
                                (fut, v, True)
                                for (_, fut), v in zip(jobs[start:end], value, strict=True)
                            ],
                            commit=True,
                        )
                    )
                    start = end
                    break
                if failed == _COMMIT or self.backend.broken(conn):
                    err = (
                        _lost(value)
                        if self.backend.broken(conn)
                        else StoreError(f"commit failed, nothing of this batch was stored: {value}")
                    )
                    emit(
                        self._done([(fut, err, False) for _, fut in jobs[start:end]], commit=False)
                    )
                    start = end
                    if self.backend.broken(conn):
                        conn, tx = self._reconnect(conn, tx)
                    break
                if failed > 0:  # cut before the failing unit; its prefix runs again
                    with self._count:
                        self.cuts += 1
                    end = start + failed
                    continue
                # the first unit failed alone
                i = start
                if self.backend.transient(value) and attempts[i] < RETRIES:
                    attempts[i] += 1
                    with self._count:
                        self.retries += 1
                    end = len(jobs)
                    continue
                exc = (
                    StoreError(f"gave up after {attempts[i] + 1} tries: {value}")
                    if self.backend.transient(value)
                    else value
                )
                emit(self._done([(jobs[i][1], exc, False)], commit=False))
                start = i + 1
                break
        return conn, tx

    def _batch(self, conn: C, tx: Tx, jobs: list[Job]) -> list[Result]:
        """``process`` without a thread: every result of ``jobs``, in order (benches, tests)."""
        out: list[Result] = []
        self.process(conn, tx, jobs, out.extend)
        return out

    def _attempt(
        self, conn: C, tx: Tx, jobs: list[Job], *, again: bool = False
    ) -> tuple[int | None, Any]:
        """(None, values) when every unit ran and the transaction committed; else
        (index of the unit that raised, its exception) or (_COMMIT, exception), rolled back."""
        b = self.backend
        values: list[Any] = []
        try:
            b.begin(conn, tx, again=again)
        except Exception as exc:
            self._rollback(conn)
            return 0, exc
        last = len(jobs) - 1
        for i, (unit, _) in enumerate(jobs):
            b.prepare(tx, first=i == 0)
            try:
                values.append(unit(tx))
                b.finish(tx, last=i == last)
            except Exception as exc:
                self._rollback(conn)
                return i, exc
        try:
            b.commit(conn)
        except Exception as exc:
            self._rollback(conn)
            return _COMMIT, exc
        tx.committed()  # the rows it read and wrote may be kept (SQLite's row cache)
        return None, values

    def _rollback(self, conn: C) -> None:
        try:
            self.backend.rollback(conn)
        except Exception:  # a broken connection: its transaction is gone with it
            log.debug("rollback failed", exc_info=True)

    def _reconnect(self, conn: C, tx: Tx) -> tuple[C, Tx]:
        try:
            self.backend.close(conn)
        except Exception:
            log.debug("close of a broken connection failed", exc_info=True)
        try:
            return self.backend.open()
        except StoreError:
            log.exception("store unreachable; this writer thread retries on its next batch")
            return conn, tx  # broken: the next batch fails fast and reconnects again

    def _done(self, results: list[Result], *, commit: bool) -> list[Result]:
        with self._count:
            self.units += len(results)
            if commit:
                self.commits += 1
        return results


#: ``_attempt``'s index for a failed COMMIT
_COMMIT = -1


def _lost(exc: BaseException) -> StoreError:
    # the outcome of a transaction whose connection was lost is unknown: never run it again
    return StoreError(f"connection to the store lost, unit not confirmed: {exc}")


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.cancelled():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


def _resolve(results: list[Result]) -> None:
    for fut, value, ok in results:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
