"""The asyncio TCP server around the engine: framing, limits, I/O only."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..store import GroupCommitWriter
from ..wire import Frame, Framer, FramingError, WireError, decode, render
from .engine import Engine, Outcome, log_record

log = logging.getLogger("clearpos.host")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one bad client from hurting the others.

    POS traffic comes in two shapes, and the defaults serve both: a terminal that
    connects per transaction sends its request at once (``first_frame_s``), and one
    that keeps its line open sends an echo test (0820) every minute or so, well inside
    ``idle_timeout_s``. docs/security.md says why these numbers.
    """

    max_connections: int = 2000
    max_frame: int = 2048
    #: no frame in progress for this long after the last answer: the line is closed
    idle_timeout_s: float = 90.0
    #: a frame once started must be complete within this time of its first byte,
    #: however the bytes trickle in (one deadline per frame, not per read)
    frame_timeout_s: float = 10.0
    #: connections one source address may hold (0: no cap). Behind a TLS gateway or
    #: an APN NAT every terminal shares the gateway's address: raise it, or 0.
    max_per_source: int = 256
    #: a new connection must deliver its first whole frame within this time (capped
    #: by ``idle_timeout_s``): a terminal that connects per transaction sends at once
    first_frame_s: float = 15.0


@dataclass(slots=True, eq=False)
class Connection:
    """One open line, as the fair-share eviction sees it."""

    source: str
    writer: asyncio.StreamWriter
    opened: float
    #: when the last answer went out (or the line opened): the idle clock
    last: float
    #: order of arrival: breaks ties between lines opened in the same instant
    seq: int = 0
    frames: int = 0
    #: a frame is in the engine or its answer is being written: never evicted
    busy: bool = False
    evicted: bool = False
    #: the read deadline (loop clock) and what it will be called when it passes
    when: float = 0.0
    why: str = ""
    #: a read is waiting: only then may the deadline close the line
    reading: bool = False
    #: set by the deadline's timer when it closed the line
    expired: str = ""
    #: one timer per line, moved only when a deadline comes *earlier* (a partial frame):
    #: a later deadline lets it fire and sleep again, so an answered frame costs no timer
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None


def eviction_order(conn: Connection) -> tuple[bool, float, int]:
    """Lines that never delivered a frame go first, then the longest idle."""
    return (conn.frames > 0, conn.last, conn.seq)


class HostServer:
    def __init__(
        self,
        engine: Engine,
        writer: GroupCommitWriter,
        limits: Limits | None = None,
        *,
        on_answer: Callable[[str, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.limits = limits or Limits()
        #: told each answer's message kind and seconds since its bytes were read, just
        #: before it is written (``--metrics``: :meth:`HostMetrics.answered`)
        self.on_answer = on_answer
        self.refused = 0
        self.frames = 0
        self.answered: Counter[str] = Counter()  # answers committed, by reason key
        #: lines closed to make room for a new one, by which limit was reached
        self.evicted: Counter[str] = Counter()
        #: lines the host closed on a deadline: idle, first_frame, slow_frame
        self.timed_out: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.Task[None], Connection] = {}
        self._by_source: dict[str, set[Connection]] = {}
        self._seq = itertools.count()

    @property
    def connections(self) -> int:
        return len(self._open)

    def per_source(self, source: str) -> int:
        return len(self._by_source.get(source, ()))

    async def start(
        self, host: str, port: int, *, reuse_port: bool = False, sock: socket.socket | None = None
    ) -> tuple[str, int]:
        """Listen on ``host:port``, or on ``sock`` when the caller bound it already."""
        if sock is not None:
            self._server = await asyncio.start_server(
                self._serve, sock=sock, limit=self.limits.max_frame * 4
            )
        else:
            self._server = await asyncio.start_server(
                self._serve,
                host,
                port,
                reuse_port=reuse_port or None,
                limit=self.limits.max_frame * 4,
            )
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening, close every connection and let its handler finish (answers
        already committed are written first: a handler only stops between frames)."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._open.values()):
            conn.writer.close()
        if self._open:
            await asyncio.wait(list(self._open), timeout=10)
        if self._server is not None:
            await self._server.wait_closed()

    async def handle_frame(self, frame: Frame, received: float) -> Outcome:
        """Run the engine as a unit of work; on a fault, journal host.error instead."""
        self.frames += 1
        # parsed here, on the event loop, while the writer thread runs other units:
        # every message waits for that one thread in turn, and this part needs no store
        read = self.engine.read(frame)
        try:
            out = await self.writer.run(
                partial(self.engine.handle, frame=frame, received=received, read=read)
            )
        except Exception as exc:
            log.exception(
                "participant failed; answering host.error (nothing was committed). Message:\n%s",
                masked_dump(frame),
            )
            out = await self.writer.run(
                partial(self.engine.host_error, frame=frame, exc=exc, received=received)
            )
        # counted here, on the event loop, once the answer is committed: a unit the
        # store ran again (PostgreSQL retries) or rolled back is not counted twice
        self.answered[out.record.get("reason") or "none"] += 1
        return out

    def _make_room(self, source: str) -> bool:
        """Room for one more line from ``source``: at a limit, close the line that
        least deserves its place (see :func:`eviction_order`) instead of refusing the
        newcomer, so a flood of silent or slow lines cannot keep a terminal with a real
        transaction out. False only when every candidate is busy with a frame."""
        cap = self.limits.max_per_source
        if cap and self.per_source(source) >= cap:
            pool, why = self._by_source.get(source, set()), "per_source"
        elif self.connections >= self.limits.max_connections:
            pool, why = set(self._open.values()), "capacity"
        else:
            return True
        candidates = [c for c in pool if not c.busy and not c.evicted]
        if not candidates:
            return False
        victim = min(candidates, key=eviction_order)
        victim.evicted = True
        self._forget(victim)
        self.evicted[why] += 1
        log.info(
            "closing %s (%s, %d frame(s), idle %.0f s) to make room: %s limit reached",
            victim.source,
            "never sent a frame" if victim.frames == 0 else "idle",
            victim.frames,
            time.monotonic() - victim.last,
            why.replace("_", "-"),
        )
        victim.writer.close()
        return True

    def _forget(self, conn: Connection) -> None:
        for task, c in list(self._open.items()):
            if c is conn:
                del self._open[task]
        peers = self._by_source.get(conn.source)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self._by_source[conn.source]

    def _deadline(self, conn: Connection, frame_started: float | None) -> tuple[float, str]:
        """When the line is closed if no more bytes arrive, and what it will be called."""
        lim = self.limits
        if frame_started is not None:
            at, why = frame_started + lim.frame_timeout_s, "slow_frame"
        else:
            at, why = conn.last + lim.idle_timeout_s, "idle"
        if conn.frames == 0:
            first = conn.opened + min(lim.first_frame_s, lim.idle_timeout_s)
            if first < at:
                at, why = first, "first_frame"
        return at, why

    @staticmethod
    def _expire(conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """The line's timer: close the line if its read deadline has passed; else (the
        deadline moved on with the frames answered since) sleep until the new one."""
        conn.timer = None
        if not conn.reading or conn.task is None:
            return  # a frame is being answered: the next read sets the timer again
        if loop.time() < conn.when:
            conn.timer = loop.call_at(conn.when, HostServer._expire, conn, loop)
            return
        conn.expired = conn.why
        conn.task.cancel()  # the read raises CancelledError, told apart by conn.expired

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        task = asyncio.current_task()
        if task is None or not self._make_room(source):
            self.refused += 1
            writer.close()
            return
        now = time.monotonic()
        conn = Connection(source, writer, now, now, next(self._seq))
        self._open[task] = conn
        self._by_source.setdefault(source, set()).add(conn)
        framer = Framer(self.limits.max_frame)
        frame_started: float | None = None
        loop = asyncio.get_running_loop()
        skew = loop.time() - time.monotonic()  # the loop's clock against ours (0 by default)
        conn.task = task
        try:
            while not conn.evicted:
                at, why = self._deadline(conn, frame_started)
                conn.when, conn.why = at + skew, why
                if conn.timer is None or conn.timer.when() > conn.when:
                    if conn.timer is not None:
                        conn.timer.cancel()
                    conn.timer = loop.call_at(conn.when, self._expire, conn, loop)
                conn.reading = True
                try:
                    data = await reader.read(65536)
                except asyncio.CancelledError:
                    if not conn.expired or task.uncancel() > 0:
                        raise  # cancelled from outside (shutdown), not by the deadline
                    self.timed_out[conn.expired] += 1
                    log.info("closing %s: %s", peer, _TIMEOUT_TEXT[conn.expired])
                    break
                finally:
                    conn.reading = False
                if not data:
                    break
                received = time.perf_counter()
                if frame_started is None:
                    frame_started = time.monotonic()
                try:
                    items = framer.feed_tolerant(data)
                except FramingError as exc:
                    log.warning("closing %s: %s", peer, exc)
                    break
                close = False
                conn.busy = bool(items)
                for item in items:
                    if isinstance(item, FramingError):
                        log.warning("closing %s: bad frame: %s", peer, exc_text(item))
                        close = True
                        break
                    outcome = await self.handle_frame(item, received)
                    conn.frames += 1
                    took = time.perf_counter() - received
                    if self.on_answer is not None:  # before the write: counted once it is out
                        self.on_answer(outcome.record.get("kind") or "none", took)
                    if outcome.reply is not None:
                        writer.write(outcome.reply)
                    log_record(outcome.record, took * 1000)
                    if outcome.close:
                        close = True
                        break
                await writer.drain()
                if items:
                    conn.last = time.monotonic()
                    # the rest of the chunk, if any, starts the next frame now
                    frame_started = conn.last if framer.buffered else None
                conn.busy = False
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if conn.timer is not None:
                conn.timer.cancel()
                conn.timer = None
            self._forget(conn)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_TIMEOUT_TEXT = {
    "idle": "idle (no frame within --idle-timeout)",
    "first_frame": "no whole frame within --first-frame-timeout of connecting",
    "slow_frame": "slow sender: frame not complete within --frame-timeout of its first byte",
}


def masked_dump(frame: Frame) -> str:
    """The frame as a masked field list, for the error log (never card data)."""
    try:
        d = decode(frame.body)
    except WireError as exc:
        return f"(undecodable {len(frame.body)}-byte body: {exc})"
    return render(d.mti, d.fields)


def exc_text(exc: Exception) -> str:
    return str(exc)
