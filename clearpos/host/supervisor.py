"""``clearpos host --workers N``: N host processes on one port, one supervisor.

The supervisor loads the world (once), reserves the port, starts N workers —
each a plain ``clearpos host`` process listening with SO_REUSEPORT on the same
address, so the kernel spreads new connections over them — and then:

* prints ``clearpos host listening on HOST:PORT ...`` once, when every worker
  listens;
* restarts a worker that dies (after a pause if it died young);
* forwards SIGTERM/SIGINT to the workers and waits for them to finish the
  units of work they have in flight;
* dies with its workers: each worker asks the kernel for SIGTERM when its
  supervisor goes away (Linux ``PR_SET_PDEATHSIG``), so a SIGKILLed
  supervisor leaves no orphan serving the port.

The workers share nothing but the database: row locks and unique constraints
in PostgreSQL keep them correct (see ``clearpos/store/pg.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("clearpos.host.supervisor")

#: a worker that dies sooner than this after its start waits before its restart
YOUNG_S = 5.0
RESTART_PAUSE_S = 1.0
STOP_GRACE_S = 15.0
START_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker: get SIGTERM when the supervisor ``parent`` goes away (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        raise SystemExit(f"clearpos host: supervisor {parent} is gone; worker exits")


@dataclass
class Worker:
    index: int
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    ready: threading.Event = field(default_factory=threading.Event)
    restarts: int = 0

    def start(self) -> None:
        self.ready.clear()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True)
        threading.Thread(
            target=self._read, args=(self.proc,), name=f"worker-{self.index}-stdout", daemon=True
        ).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "listening on" in line:
                self.ready.set()
            else:
                sys.stderr.write(f"[worker {self.index}] {line}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: fixes port 0 to a real port and
    keeps it ours while workers come and go (only listening sockets get connections)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


def worker_argv(args: argparse.Namespace, host: str, port: int, index: int) -> list[str]:
    argv = [
        sys.executable, "-m", "clearpos.cli", "host",
        "--db", args.db,
        "--listen", f"{host}:{port}",
        "--reuse-port",
        "--supervised-by", str(os.getpid()),
        "--max-connections", str(args.max_connections),
        "--max-per-source", str(args.max_per_source),
        "--idle-timeout", str(args.idle_timeout),
        "--first-frame-timeout", str(args.first_frame_timeout),
        "--frame-timeout", str(args.frame_timeout),
        "--max-frame", str(args.max_frame),
        "--log-level", args.log_level,
    ]  # fmt: skip
    if args.quiet_transactions:
        argv.append("--quiet-transactions")
    if args.metrics:
        mhost, mport = args.metrics
        argv += ["--metrics", f"{mhost}:{mport + index if mport else 0}"]
        argv += ["--worker-index", str(index)]
    if getattr(args, "console", None) and index == 0:
        argv += ["--console", f"{args.console[0]}:{args.console[1]}"]
        if getattr(args, "secure_cookies", False):
            argv.append("--secure-cookies")
        if getattr(args, "hsts", 0):
            argv += ["--hsts", str(args.hsts)]
        for proxy in getattr(args, "trusted_proxy", []):
            argv += ["--trusted-proxy", proxy]
    return argv


def supervise(args: argparse.Namespace, store_url: str) -> int:
    """Run ``args.workers`` workers until SIGTERM/SIGINT; 0 on a clean stop."""
    host, port = args.listen
    try:
        reserved = reserve_port(host, port)
    except OSError as exc:
        print(f"clearpos host: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    port = int(reserved.getsockname()[1])
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    workers = [Worker(i, worker_argv(args, host, port, i)) for i in range(args.workers)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for w in workers:
            while not w.ready.wait(0.1):
                if stop.is_set():
                    return 0
                if not w.alive() or time.monotonic() > deadline:
                    print(
                        f"clearpos host: worker {w.index} did not start (see its log above)",
                        file=sys.stderr,
                    )
                    return 1
        print(
            f"clearpos host listening on {host}:{port} store {store_url} workers {len(workers)}",
            flush=True,
        )
        while not stop.wait(0.2):
            for w in workers:
                if w.alive() or stop.is_set():
                    continue
                assert w.proc is not None
                code = w.proc.returncode
                young = time.monotonic() - w.started < YOUNG_S
                log.warning(
                    "worker %d (pid %d) exited with status %s; restarting it",
                    w.index,
                    w.proc.pid,
                    code,
                )
                if young and stop.wait(RESTART_PAUSE_S):
                    break
                w.restarts += 1
                w.start()
        return 0
    finally:
        for w in workers:
            w.signal(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_S
        for w in workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in %.0f s; killing it", w.index, STOP_GRACE_S)
                w.proc.kill()
                w.proc.wait(5)
        reserved.close()
        for s, h in previous.items():
            signal.signal(s, h)
        log.info("host stopped (%d workers)", len(workers))
