"""The terminal's only I/O: a blocking TCP link to the host.

One connection serves every message of one command; after a fault (no answer,
connection cut, unreadable frame) the connection is dropped and the next
message opens a new one, so a late answer can never be taken for the answer to
a later request. The two failures are told apart because they mean different
things for the cardholder:

- :class:`Unreachable` -- the connection could not be opened: nothing was sent;
- :class:`NoAnswer` -- the request was (or may have been) sent and no complete,
  readable answer came back in time: the host may have acted on it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Protocol

from clearpos.wire import Frame, Framer, FramingError

__all__ = ["HostLink", "Link", "LinkError", "NoAnswer", "Unreachable", "parse_address"]


class LinkError(Exception):
    """A network failure talking to the host (never carries message content)."""


class Unreachable(LinkError):
    """The host could not be reached: the request was not sent."""


class NoAnswer(LinkError):
    """The request may have reached the host, but no usable answer came back in time."""


class Link(Protocol):
    """What the terminal needs from the network (a fake can stand in for tests)."""

    def connect(self) -> float:
        """Open the connection if needed; seconds it took (0.0 when already open)."""
        ...

    def exchange(self, frame: bytes, accept: Callable[[Frame], bool]) -> Frame:
        """Send ``frame`` and return the first answer frame ``accept`` takes."""
        ...

    def close(self) -> None:
        """Drop the connection."""
        ...


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5800"`` -> ``("127.0.0.1", 5800)``; ValueError with the reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdecimal() or not 0 < int(port) < 65536:
        raise ValueError(f"host address must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class HostLink:
    """A blocking TCP link; ``timeout`` bounds the wait for each answer."""

    def __init__(
        self, host: str, port: int, *, timeout: float = 10.0, connect_timeout: float | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self._sock: socket.socket | None = None
        self._framer = Framer()

    def connect(self) -> float:
        if self._sock is not None:
            return 0.0
        started = time.monotonic()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise Unreachable(_why(exc, f"{self.host}:{self.port}")) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._framer = Framer()
        return time.monotonic() - started

    def exchange(self, frame: bytes, accept: Callable[[Frame], bool]) -> Frame:
        self.connect()
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(self.timeout)
            sock.sendall(frame)
        except OSError as exc:
            self.close()
            raise NoAnswer(f"sending failed: {_why(exc)}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise NoAnswer(f"no answer within {self.timeout:g} s")
            try:
                sock.settimeout(left)
                data = sock.recv(4096)
            except TimeoutError:
                self.close()
                raise NoAnswer(f"no answer within {self.timeout:g} s") from None
            except OSError as exc:
                self.close()
                raise NoAnswer(f"connection failed while waiting: {_why(exc)}") from None
            if not data:
                cut = self._framer.buffered
                self.close()
                if cut:
                    raise NoAnswer(f"connection closed in the middle of an answer ({cut} bytes)")
                raise NoAnswer("connection closed by the other side before an answer")
            try:
                frames = self._framer.feed(data)
            except FramingError as exc:
                self.close()
                raise NoAnswer(f"unreadable answer: {exc}") from None
            for got in frames:
                if accept(got):
                    return got

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._framer = Framer()


def _why(exc: OSError, where: str = "") -> str:
    text = exc.strerror or type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = "timed out"
    return f"{where}: {text}" if where else text
