"""The asyncio TCP server around the engine: framing, limits, I/O only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

from ..store import GroupCommitWriter
from ..wire import Frame, Framer, FramingError, WireError, decode, render
from .engine import Engine, Outcome, log_record

log = logging.getLogger("clearpos.host")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one bad client from hurting the others."""

    max_connections: int = 2000
    max_frame: int = 2048
    idle_timeout_s: float = 300.0
    #: a frame once started must complete within this time (slow senders)
    frame_timeout_s: float = 10.0


class HostServer:
    def __init__(
        self, engine: Engine, writer: GroupCommitWriter, limits: Limits | None = None
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.limits = limits or Limits()
        self.connections = 0
        self.refused = 0
        self.frames = 0
        self.answered: Counter[str] = Counter()  # answers committed, by reason key
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

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
        for writer in list(self._open.values()):
            writer.close()
        if self._open:
            await asyncio.wait(list(self._open), timeout=10)
        if self._server is not None:
            await self._server.wait_closed()

    async def handle_frame(self, frame: Frame, received: float) -> Outcome:
        """Run the engine as a unit of work; on a fault, journal host.error instead."""
        self.frames += 1
        try:
            out = await self.writer.run(partial(self.engine.handle, frame=frame, received=received))
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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.limits.max_connections:
            self.refused += 1
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = writer
        peer = writer.get_extra_info("peername")
        framer = Framer(self.limits.max_frame)
        try:
            while True:
                timeout = (
                    self.limits.frame_timeout_s if framer.buffered else self.limits.idle_timeout_s
                )
                try:
                    async with asyncio.timeout(timeout):
                        data = await reader.read(65536)
                except TimeoutError:
                    what = "slow sender: frame incomplete" if framer.buffered else "idle"
                    log.info("closing %s: %s after %.0f s", peer, what, timeout)
                    break
                if not data:
                    break
                received = time.perf_counter()
                try:
                    items = framer.feed_tolerant(data)
                except FramingError as exc:
                    log.warning("closing %s: %s", peer, exc)
                    break
                close = False
                for item in items:
                    if isinstance(item, FramingError):
                        log.warning("closing %s: bad frame: %s", peer, exc_text(item))
                        close = True
                        break
                    outcome = await self.handle_frame(item, received)
                    log_record(outcome.record, (time.perf_counter() - received) * 1000)
                    if outcome.reply is not None:
                        writer.write(outcome.reply)
                    if outcome.close:
                        close = True
                        break
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections -= 1
            if task is not None:
                self._open.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def masked_dump(frame: Frame) -> str:
    """The frame as a masked field list, for the error log (never card data)."""
    try:
        d = decode(frame.body)
    except WireError as exc:
        return f"(undecodable {len(frame.body)}-byte body: {exc})"
    return render(d.mti, d.fields)


def exc_text(exc: Exception) -> str:
    return str(exc)
