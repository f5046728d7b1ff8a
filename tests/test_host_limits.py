"""Limits: each one exceeded on purpose, and the host still serves everyone else."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import HostProc, start_host
from hostclient import Client


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[HostProc]:
    h = start_host(
        tmp_path,
        extra=(
            "--max-connections",
            "5",
            "--max-frame",
            "512",
            "--idle-timeout",
            "1.5",
            "--frame-timeout",
            "0.5",
        ),
    )
    yield h
    h.stop()


def _closed(s: socket.socket, timeout: float = 5) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(64) == b""
    except (ConnectionResetError, TimeoutError, OSError):
        return True


def test_connection_cap(limited: HostProc) -> None:
    good = Client(limited.host, limited.port).connect()
    assert good.sign_on().code == "00"
    hogs = [socket.create_connection((limited.host, limited.port)) for _ in range(4)]
    time.sleep(0.2)
    extra = socket.create_connection((limited.host, limited.port))
    assert _closed(extra), "a connection over the cap must be closed at once"
    assert good.purchase(1).code == "00", "connections under the cap keep being served"
    for s in hogs:
        s.close()


def test_frame_larger_than_max_is_cut(limited: HostProc) -> None:
    good = Client(limited.host, limited.port).connect()
    assert good.sign_on().code == "00"
    s = socket.create_connection((limited.host, limited.port))
    s.sendall((600).to_bytes(2, "big") + b"\x60" * 20)
    assert _closed(s)
    assert good.purchase(1).code == "00"


def test_idle_connection_is_closed(limited: HostProc) -> None:
    s = socket.create_connection((limited.host, limited.port))
    t0 = time.monotonic()
    assert _closed(s, timeout=10)
    assert 1.0 < time.monotonic() - t0 < 8


def test_slow_sender_is_closed_and_others_served(limited: HostProc) -> None:
    good = Client(limited.host, limited.port).connect()
    assert good.sign_on().code == "00"
    s = socket.create_connection((limited.host, limited.port))
    s.sendall(b"\x00\x40\x60\x00")  # a frame that starts and never finishes
    assert _closed(s, timeout=5)
    assert good.purchase(1).code == "00"


def test_flood_of_connections_does_not_stop_service(limited: HostProc) -> None:
    good = Client(limited.host, limited.port).connect()
    assert good.sign_on().code == "00"
    for _ in range(50):  # connect / drop churn
        with contextlib.suppress(OSError):
            socket.create_connection((limited.host, limited.port), timeout=2).close()
    assert good.purchase(1).code == "00"
