"""A small TCP fault proxy for POS 8583 frames: real network faults, not mocks.

It sits between a terminal and the host, understands only the 2-byte length
prefix, and applies scheduled faults to request frames (client -> host) and
to the answers they get:

=================  ==========================================================
``PASS``           forward the request and its answer
``DROP_REQUEST``   swallow the request (the host never sees it)
``DROP_RESPONSE``  forward the request, swallow its answer
``DELAY_RESPONSE`` hold the answer ``delay`` seconds before forwarding it
``CUT_REQUEST``    forward the first ``after_bytes`` of the request, then close
``CUT_RESPONSE``   forward the first ``after_bytes`` of the answer, then close
``DUPLICATE``      forward the request twice (the terminal sees both answers)
``CORRUPT_RESPONSE`` flip the bits of the answer's last byte (its MAC, when it has one)
=================  ==========================================================

A :class:`Fault` matches request frames by MTI (``"0200"``), by connection
number and by frame number within the connection (both 1-based), and applies
``times`` times (0 = for ever). Scheduling is deterministic: the first fault
that matches and still has uses applies. Everything that passes is recorded in
:attr:`FaultProxy.seen`, so a test can check the order of messages.

``down()`` closes the listening socket (connections are then refused);
``up()`` listens again on the same port.

**Chaos mode** (:meth:`FaultProxy.chaos`): every request frame gets a global
number (1, 2, ... across all connections, in the order the proxy reads them);
when no scheduled :class:`Fault` matches a frame, its action is drawn from a
random generator seeded with ``(seed, frame number)`` alone
(:func:`chaos_decision`), so the same seed gives the same fault for the same
frame number, whatever happened before. An optional observer is told about
every request frame after the proxy has acted on it (the fault lab kills the
host or a terminal process from there). ``record=False`` keeps the proxy from
storing every frame in :attr:`FaultProxy.seen` (long runs); :attr:`FaultProxy.counts`
counts frames by direction and MTI either way.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "CHAOS_ACTIONS",
    "Action",
    "ChaosEvent",
    "Fault",
    "FaultProxy",
    "Seen",
    "chaos_decision",
]


class Action(Enum):
    PASS = "pass"
    DROP_REQUEST = "drop_request"
    DROP_RESPONSE = "drop_response"
    DELAY_RESPONSE = "delay_response"
    CUT_REQUEST = "cut_request"
    CUT_RESPONSE = "cut_response"
    DUPLICATE = "duplicate"
    CORRUPT_RESPONSE = "corrupt_response"


@dataclass
class Fault:
    """One scheduled fault; ``None`` criteria match anything."""

    action: Action
    mti: str | None = None
    connection: int | None = None
    frame: int | None = None
    times: int = 1
    delay: float = 0.0
    after_bytes: int = 0
    used: int = 0

    def matches(self, mti: str, connection: int, frame: int) -> bool:
        if self.times and self.used >= self.times:
            return False
        return (
            (self.mti is None or self.mti == mti)
            and (self.connection is None or self.connection == connection)
            and (self.frame is None or self.frame == frame)
        )


@dataclass(frozen=True)
class Seen:
    """A frame that reached the proxy: which connection, which way, MTI, action, bytes."""

    connection: int
    direction: str  # "request" or "response"
    mti: str
    action: Action
    raw: bytes = field(repr=False)
    at: float = 0.0


CHAOS_ACTIONS: tuple[Action, ...] = (
    Action.DROP_REQUEST,
    Action.DROP_RESPONSE,
    Action.DELAY_RESPONSE,
    Action.CUT_REQUEST,
    Action.CUT_RESPONSE,
    Action.DUPLICATE,
    Action.CORRUPT_RESPONSE,
)
"""The actions chaos mode can draw, in the fixed order the draw walks them."""

#: a cut answer keeps at most this many bytes: every POS 8583 answer is longer
_MAX_RESPONSE_CUT = 40
#: after the terminal's side ends, how long the host may take to answer what it was sent
_DRAIN_S = 5.0


def chaos_decision(
    seed: int, frame: int, rates: Mapping[Action, float], frame_len: int
) -> Fault | None:
    """The fault chaos mode applies to global request frame ``frame`` (None: pass it).

    A pure function of its arguments: one uniform draw from a generator seeded
    with ``(seed, frame)`` is compared with the cumulative ``rates`` in the
    order of :data:`CHAOS_ACTIONS`; the same generator then picks where a cut
    happens (``after_bytes``: inside the request, or within the first 40 bytes
    of the answer).

    >>> chaos_decision(7, 1, {Action.DROP_REQUEST: 1.0}, 60).action
    <Action.DROP_REQUEST: 'drop_request'>
    >>> chaos_decision(7, 1, {}, 60) is None
    True
    """
    rnd = random.Random(f"clearpos-chaos:{seed}:{frame}")
    draw = rnd.random()
    edge = 0.0
    for action in CHAOS_ACTIONS:
        edge += max(0.0, rates.get(action, 0.0))
        if draw < edge:
            after = 0
            if action is Action.CUT_REQUEST:
                after = rnd.randrange(max(1, frame_len))
            elif action is Action.CUT_RESPONSE:
                after = rnd.randrange(_MAX_RESPONSE_CUT)
            return Fault(action, after_bytes=after)
    return None


@dataclass(frozen=True)
class ChaosEvent:
    """One request frame as chaos mode saw it: its global number, MTI and the action taken."""

    frame: int
    connection: int
    mti: str
    action: Action
    scheduled: bool  # True: a scheduled Fault matched; False: drawn by chaos_decision


@dataclass
class _Chaos:
    seed: int
    rates: dict[Action, float]
    delay: float
    observer: Callable[[ChaosEvent], None] | None


def _mti(frame: bytes) -> str:
    body = frame[2 + 11 :]
    return body[:2].hex() if len(body) >= 2 else "????"


def _read_frame(sock: socket.socket) -> bytes | None:
    """One whole frame (length prefix included), or None at end of stream."""
    head = _read_exact(sock, 2)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    body = _read_exact(sock, n)
    if body is None:
        return None
    return head + body


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class _Conn:
    def __init__(self, proxy: FaultProxy, number: int, client: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.upstream: socket.socket | None = None
        self.plans: queue.Queue[Fault | None] = queue.Queue()
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        for s in (self.client, self.upstream):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def run(self) -> None:
        try:
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=5)
            self.upstream.settimeout(None)
        except OSError:
            self.close()
            return
        threading.Thread(target=self._answers, daemon=True).start()
        frames = 0
        while not self.closed.is_set():
            frame = _read_frame(self.client)
            if frame is None:
                break
            frames += 1
            mti = _mti(frame)
            fault, event = self.proxy._decide(mti, self.number, frames, len(frame))
            action = fault.action if fault else Action.PASS
            self.proxy._record(Seen(self.number, "request", mti, action, frame, time.monotonic()))
            try:
                if action is Action.DROP_REQUEST:
                    continue
                if action is Action.CUT_REQUEST:
                    assert fault is not None
                    self.upstream.sendall(frame[: fault.after_bytes])
                    time.sleep(0.05)
                    with contextlib.suppress(OSError):  # the terminal sees the cut at once
                        self.client.shutdown(socket.SHUT_RDWR)
                    break
                self.plans.put(fault)
                self.upstream.sendall(frame)
                if action is Action.DUPLICATE:
                    self.plans.put(None)
                    self.upstream.sendall(frame)
            except OSError:
                break
            finally:
                if event is not None:
                    self.proxy._observe(event)
        self._no_more_requests()

    def _no_more_requests(self) -> None:
        """The terminal is gone (or a fault ended its side): half-close towards the host,
        as a TCP proxy passes on a FIN, so the host still answers what it was sent and
        those answers are recorded; close once the host closes (at most 5 s)."""
        if self.upstream is not None:
            with contextlib.suppress(OSError):
                self.upstream.shutdown(socket.SHUT_WR)
        self.closed.wait(_DRAIN_S)
        self.close()

    def _answers(self) -> None:
        assert self.upstream is not None
        client_open = True
        while not self.closed.is_set():
            frame = _read_frame(self.upstream)
            if frame is None:
                break
            try:
                fault = self.plans.get(timeout=1)
            except queue.Empty:
                fault = None
            action = fault.action if fault else Action.PASS
            mti = _mti(frame)
            self.proxy._record(Seen(self.number, "response", mti, action, frame, time.monotonic()))
            if not client_open or action is Action.DROP_RESPONSE:
                continue
            try:
                if action is Action.DELAY_RESPONSE:
                    assert fault is not None
                    if self.closed.wait(fault.delay):
                        break
                if action is Action.CORRUPT_RESPONSE:
                    frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
                if action is Action.CUT_RESPONSE:
                    assert fault is not None
                    self.client.sendall(frame[: fault.after_bytes])
                    time.sleep(0.05)
                    break
                self.client.sendall(frame)
            except OSError:
                client_open = False  # the terminal is gone: keep recording the host's answers
        self.close()


class FaultProxy:
    """A threaded TCP proxy in front of ``upstream`` that injects :class:`Fault` s."""

    def __init__(
        self, upstream: tuple[str, int], listen_host: str = "127.0.0.1", *, record: bool = True
    ) -> None:
        self.upstream = upstream
        self.listen_host = listen_host
        self.port = 0
        self.record = record
        self.seen: list[Seen] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        """Frames by (direction, MTI), kept even with ``record=False``."""
        self.faults: list[Fault] = []
        self.frames = 0
        """Request frames read so far, on all connections (the chaos frame number)."""
        self.chaos_counts: Counter[Action] = Counter()
        """Faults chaos mode drew, by action (scheduled faults are not counted here)."""
        self._chaos: _Chaos | None = None
        self._lock = threading.Lock()
        self._conns: list[_Conn] = []
        self._count = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()

    # -- lifecycle

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.listen_host, self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._count += 1
                conn = _Conn(self, self._count, client)
                self._conns.append(conn)
            threading.Thread(target=conn.run, daemon=True).start()

    def down(self) -> None:
        """Stop listening: new connections are refused (open ones are cut too)."""
        if self._listener is not None:
            # shutdown() stops a listening socket at once, even with accept() blocked on it
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        self.cut_all()

    def up(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self._listen()

    def cut_all(self) -> None:
        """Close every open connection."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close()

    def close(self) -> None:
        self._stop.set()
        self.down()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults and observations

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return self._count

    def inject(self, *faults: Fault) -> None:
        """Schedule faults (applied in the order given)."""
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        """Forget faults not yet used up."""
        with self._lock:
            self.faults.clear()

    def chaos(
        self,
        seed: int,
        rates: Mapping[Action, float],
        *,
        delay: float = 1.0,
        observer: Callable[[ChaosEvent], None] | None = None,
    ) -> None:
        """Draw a fault for every request frame no scheduled fault matches.

        ``rates`` are per-frame probabilities by action (their sum at most 1);
        ``delay`` is how long ``DELAY_RESPONSE`` holds an answer; ``observer``
        is called (on the proxy's thread) with a :class:`ChaosEvent` for every
        request frame once the proxy has acted on it. The frame number counts
        from where the proxy is now (:attr:`frames`).
        """
        total = sum(max(0.0, r) for r in rates.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"chaos rates add up to {total:.3f}, more than 1")
        unknown = set(rates) - set(CHAOS_ACTIONS)
        if unknown:
            raise ValueError(f"chaos cannot draw {sorted(a.value for a in unknown)}")
        with self._lock:
            self._chaos = _Chaos(seed, dict(rates), delay, observer)

    def calm(self) -> None:
        """Leave chaos mode: only scheduled faults apply again."""
        with self._lock:
            self._chaos = None

    def _decide(
        self, mti: str, connection: int, frame: int, frame_len: int
    ) -> tuple[Fault | None, ChaosEvent | None]:
        """The fault for one request frame: a scheduled one first, then chaos."""
        with self._lock:
            self.frames += 1
            number = self.frames
            for f in self.faults:
                if f.matches(mti, connection, frame):
                    f.used += 1
                    picked: Fault | None = f
                    scheduled = True
                    break
            else:
                picked, scheduled = None, False
            chaos = self._chaos
            if chaos is None:
                return picked, None
            if picked is None:
                picked = chaos_decision(chaos.seed, number, chaos.rates, frame_len)
                if picked is not None:
                    picked.delay = chaos.delay
                    self.chaos_counts[picked.action] += 1
            action = picked.action if picked else Action.PASS
            if chaos.observer is None:
                return picked, None
            return picked, ChaosEvent(number, connection, mti, action, scheduled)

    def _observe(self, event: ChaosEvent) -> None:
        chaos = self._chaos
        if chaos is not None and chaos.observer is not None:
            chaos.observer(event)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.counts[(seen.direction, seen.mti)] += 1
            if self.record:
                self.seen.append(seen)

    def requests(self, mti: str | None = None) -> list[Seen]:
        """Request frames seen (optionally only one MTI), in order."""
        with self._lock:
            return [s for s in self.seen if s.direction == "request" and mti in (None, s.mti)]

    def request_mtis(self) -> list[str]:
        """The MTIs of all request frames seen, in order."""
        return [s.mti for s in self.requests()]
