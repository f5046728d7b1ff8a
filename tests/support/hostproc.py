"""A real ``clearpos host`` process on loopback, for end-to-end tests.

``start_host(tmp_path)`` runs ``clearpos host --world examples/world.toml --db
sqlite:///TMP/host.db --listen 127.0.0.1:PORT --reset`` with a fixed test KEK,
waits until the port accepts connections and returns a :class:`HostProcess`;
``host`` is the pytest fixture around it (import it into a test module).
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "examples" / "world.toml"
TEST_KEK = "5e" * 32
"""The fixed 64-hex KEK the tests give both the host and the terminals."""


def host_available() -> bool:
    """True when this checkout has the ``clearpos host`` command."""
    try:
        cli = importlib.import_module("clearpos.cli")
        module = cli.COMMANDS.get("host")
        if module is None:
            return False
        importlib.import_module(module[0])
    except Exception:
        return False
    return True


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until 127.0.0.1:port accepts a connection (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"host exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def child_env(**more: str) -> dict[str, str]:
    """The environment for host and terminal subprocesses: the test KEK, no user KEK file."""
    env = dict(os.environ)
    env["CLEARPOS_KEK"] = TEST_KEK
    env.pop("CLEARPOS_KEK_FILE", None)
    env.update(more)
    return env


@dataclass
class HostProcess:
    """A running host: its port, database file and log."""

    port: int
    db: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"

    def stop(self) -> None:
        """Terminate the host (kill it if it does not stop within 5 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        """What the host printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_host(directory: Path, world: Path = WORLD, *extra: str) -> HostProcess:
    """Start a fresh host with ``world`` on a free port; returns once it listens."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db = directory / "host.db"
    log = directory / "host.log"
    cmd = [
        sys.executable,
        "-m",
        "clearpos.cli",
        "host",
        "--world",
        str(world),
        "--db",
        f"sqlite:///{db}",
        "--listen",
        f"127.0.0.1:{port}",
        "--reset",
        "--yes",
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT
        )
    host = HostProcess(port, db, log, proc)
    try:
        wait_port(port, proc=proc)
    except BaseException:
        host.stop()
        raise RuntimeError(f"host did not start:\n{host.log_text()}") from None
    return host


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostProcess]:
    """A fresh host for one test (skipped when this checkout has no host yet)."""
    if not host_available():
        pytest.skip("clearpos host is not available in this checkout")
    h = start_host(tmp_path / "host")
    try:
        yield h
    finally:
        h.stop()
