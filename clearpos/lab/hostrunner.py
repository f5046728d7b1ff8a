"""The lab's ``clearpos host`` subprocess: started, SIGKILLed, restarted."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["HostRunner", "free_port"]


class HostRunner:
    """A ``clearpos host`` subprocess on a fixed port; logs under ``out/logs``."""

    def __init__(
        self,
        out: Path,
        port: int,
        env: dict[str, str],
        *,
        db: str | None = None,
        workers: int = 1,
    ) -> None:
        self.out = out
        self.port = port
        self.env = env
        self.db = out / "host.db"
        self.url = db or f"sqlite:///{self.db}"
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        with self._lock:
            return self.proc is not None and self.proc.poll() is None

    def start(self, world: Path | None = None) -> None:
        """Start the host (loading ``world`` into a wiped store when given); returns once it
        listens. A few tries: the port may still be held for a moment after a kill."""
        self.starts += 1
        log = self.out / "logs" / f"host-{self.starts:04d}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "clearpos.cli",
            "host",
            "--db",
            self.url,
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        if self.workers > 1:
            # a supervisor and its workers (kill() below takes the whole process group)
            cmd += ["--workers", str(self.workers)]
        if world is not None:
            cmd += ["--world", str(world), "--reset", "--yes"]
        for attempt in range(6):
            with open(log, "ab") as fh:
                # its own process group: a kill takes the supervisor and every worker down
                # at once (workers would otherwise get a graceful SIGTERM from the supervisor)
                proc = subprocess.Popen(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            if self._wait_listening(proc, log):
                with self._lock:
                    self.proc = proc
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            time.sleep(0.2 * (attempt + 1))  # e.g. the port is still held by the killed process
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the lab host did not start on port {self.port}:\n{tail}")

    @staticmethod
    def _wait_listening(proc: subprocess.Popen[bytes], log: Path) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                if b"listening on" in log.read_bytes()[-4096:]:
                    return True
            time.sleep(0.02)
        return False

    def kill(self) -> bool:
        """SIGKILL the host (every process of it); True when it was running."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        with self._lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
