"""Start a real host process on loopback with a real SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TEST_KEK = "5e" * 32
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_WORLD = ROOT / "examples" / "world.toml"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["CLEARPOS_KEK"] = TEST_KEK
    e.setdefault("PYTHONUNBUFFERED", "1")
    return e


@dataclass
class HostProc:
    proc: subprocess.Popen[str]
    host: str
    port: int
    db: Path
    world: Path
    log: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_host(
    tmp: Path,
    *,
    world_text: str | None = None,
    reset: bool = True,
    port: int = 0,
    db: Path | None = None,
    extra: tuple[str, ...] = (),
    name: str = "host",
) -> HostProc:
    world = tmp / f"{name}-world.toml"
    if not world.exists() or world_text is not None:
        world.write_text(
            world_text if world_text is not None else EXAMPLE_WORLD.read_text("utf-8"), "utf-8"
        )
    db = db or tmp / f"{name}.db"
    log = tmp / f"{name}.log"
    args = [
        sys.executable, "-m", "clearpos.cli", "host",
        "--world", str(world), "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}",
        *(["--reset"] if reset else []), *extra,
    ]  # fmt: skip
    logf = log.open("a", encoding="utf-8")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=logf, text=True, env=env(), cwd=ROOT
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
        if m:
            return HostProc(proc, m.group(1), int(m.group(2)), db, world, log)
    proc.kill()
    raise RuntimeError(f"host did not start: {line!r}\n{log.read_text()}")


def world_with(extra_toml: str) -> str:
    """The example world plus more TOML (e.g. a maintenance window)."""
    return EXAMPLE_WORLD.read_text("utf-8") + "\n" + extra_toml
