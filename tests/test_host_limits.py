"""Limits: each one exceeded on purpose, and the host still serves everyone else."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import HostProc, env, start_host
from hostclient import MID, PAN, TID, TMK, Client
from support.metrics import scrape


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


def _open(s: socket.socket) -> bool:
    """The host has not closed ``s`` (nothing to read, no EOF)."""
    s.setblocking(False)
    try:
        return s.recv(64) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def test_at_the_cap_a_new_line_replaces_the_oldest_silent_one(limited: HostProc) -> None:
    """At --max-connections the newcomer is served and the line that never sent a
    frame and has waited longest is closed; a working terminal's line is kept."""
    good = Client(limited.host, limited.port).connect()
    assert good.sign_on().code == "00"
    hogs = [socket.create_connection((limited.host, limited.port)) for _ in range(4)]
    newcomer = Client(limited.host, limited.port).connect()
    assert _closed(hogs[0]), "the oldest silent line makes room"
    newcomer.keys, newcomer.working = good.keys, good.working  # same terminal, no new keys
    assert newcomer.purchase(1).code == "00", "the newcomer is served, not refused"
    assert good.purchase(1).code == "00", "the working line is kept"
    assert all(_open(s) for s in hogs[1:]), "only one line is closed per newcomer"
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


SLOW = "127.0.0.2"  # loopback has the whole 127/8: a second source address for the attacker


def _from(source: str, h: HostProc) -> socket.socket:
    return socket.create_connection((h.host, h.port), timeout=5, source_address=(source, 0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_frame_deadline_is_per_frame_not_per_read(tmp_path: Path) -> None:
    """A frame trickled in one byte at a time is cut at --frame-timeout from its first
    byte: each byte arriving does not buy more time."""
    h = start_host(tmp_path, extra=("--frame-timeout", "1", "--idle-timeout", "60"))
    try:
        s = socket.create_connection((h.host, h.port), timeout=5)
        t0 = time.monotonic()
        s.sendall(b"\x00\x40")  # a 64-byte frame is announced
        cut = None
        for _ in range(60):  # one byte every 0.1 s would take 6 s
            try:
                s.sendall(b"\x60")
            except OSError:
                cut = time.monotonic() - t0
                break
            if not _open(s):
                cut = time.monotonic() - t0
                break
            time.sleep(0.1)
        assert cut is not None, "a trickled frame must be cut"
        assert cut < 5.5, f"cut after {cut:.1f} s: the deadline restarted on a byte"
        assert "frame not complete within --frame-timeout" in h.log_text()
    finally:
        h.stop()


def test_first_frame_deadline_closes_silent_lines(tmp_path: Path) -> None:
    """A line that connects and says nothing is closed at --first-frame-timeout even
    though --idle-timeout (for lines that traded) is long."""
    h = start_host(tmp_path, extra=("--first-frame-timeout", "1", "--idle-timeout", "120"))
    try:
        s = socket.create_connection((h.host, h.port))
        t0 = time.monotonic()
        assert _closed(s, timeout=30)
        assert time.monotonic() - t0 < 30
        kept = Client(h.host, h.port).connect()
        assert kept.sign_on().code == "00"
        time.sleep(1.5)  # past the first-frame deadline: a line that traded is kept
        assert kept.purchase(1).code == "00"
    finally:
        h.stop()


def test_per_source_cap_closes_that_sources_own_oldest_line(tmp_path: Path) -> None:
    port = _free_port()
    h = start_host(tmp_path, extra=("--max-per-source", "3", "--metrics", f"127.0.0.1:{port}"))
    try:
        good = Client(h.host, h.port).connect()
        assert good.sign_on().code == "00"
        mine = [_from(SLOW, h) for _ in range(3)]
        fourth = _from(SLOW, h)
        assert _closed(mine[0]), "the source's own oldest line goes"
        assert all(_open(s) for s in [*mine[1:], fourth])
        assert good.purchase(1).code == "00", "another source is not touched"
        m = scrape(port)
        assert m.value("clearpos_connections_evicted_total", limit="per_source") == 1
        assert m.value("clearpos_connections_evicted_total", limit="capacity") == 0
        for s in [*mine, fourth]:
            s.close()
    finally:
        h.stop()


@pytest.mark.parametrize("source", [SLOW, "127.0.0.1"], ids=["other-address", "same-address"])
def test_twenty_slow_lines_cannot_stop_a_real_terminals_purchase(
    tmp_path: Path, source: str
) -> None:
    """Acceptance (issue 16): --max-connections 20, twenty lines that trickle frames or
    sit silent -- from another address, or from the terminal's own (one NAT) -- then a
    real virtual terminal signs on and buys."""
    port = _free_port()
    h = start_host(
        tmp_path,
        extra=("--max-connections", "20", "--frame-timeout", "30", "--idle-timeout", "60",
               "--first-frame-timeout", "60", "--metrics", f"127.0.0.1:{port}"),
    )  # fmt: skip
    stop = threading.Event()
    hogs = [_from(source, h) for _ in range(20)]

    def trickle() -> None:
        for s in hogs[:10]:
            with contextlib.suppress(OSError):
                s.sendall(b"\x00\x40")
        while not stop.wait(0.5):
            for s in hogs[:10]:
                with contextlib.suppress(OSError):
                    s.sendall(b"\x60")

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        state = tmp_path / "pos"
        cmd = [
            sys.executable, "-m", "clearpos.cli", "pos", "--host", f"{h.host}:{h.port}",
            "--tid", TID, "--mid", MID, "--tmk", TMK.hex().upper(), "--state", str(state),
            "--timeout", "5", "--json",
        ]  # fmt: skip
        for args in (
            ("login", "--operator", "01", "--password", "0000"),
            ("purchase", "1.00", "--card", PAN, "--expiry", "2812", "--pin", "123456"),
        ):
            out = subprocess.run(
                [*cmd, *args], capture_output=True, text=True, env=env(), timeout=60
            )
            assert out.returncode == 0, (args[0], out.stdout, out.stderr)
        rows = h.rows("SELECT code FROM journal WHERE kind = 'purchase'")
        assert [r["code"] for r in rows] == ["00"]
        m = scrape(port)
        assert m.value("clearpos_connections_evicted_total", limit="capacity") >= 1
    finally:
        stop.set()
        t.join(5)
        for s in hogs:
            s.close()
        h.stop()
