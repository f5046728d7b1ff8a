"""Progress of long work shows on a terminal only (issue 17, item 10).

Real commands on a real store, run once with a pseudo-terminal as standard error
(what a person sees) and once with pipes (what a script sees): the progress line
appears on the terminal, never in a pipe and never with ``--json``. The bench
scripts answer ``--help``; the open loop says whether it kept up.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import ROOT, HostProc, env, start_host
from hostclient import Client

sys.path.insert(0, str(ROOT / "bench"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProc]:
    h = start_host(tmp_path_factory.mktemp("progress"))
    c = Client(h.host, h.port).connect()
    c.sign_on()
    for _ in range(3):
        c.purchase(100)
    c.close()
    h.stop()
    yield h


def on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``clearpos ARGV`` with a pseudo-terminal as stdout and stderr; all it drew."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", *argv],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=cwd,
        env={**env(), "TERM": "xterm-256color", "COLUMNS": "120"},
    )  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(60), out.decode("utf-8", "replace")


def in_pipes(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *argv],
        capture_output=True, text=True, env=env(), cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


CASES = [
    (lambda h, d: ["admin", "export", "--db", h.url, "--since", "1d", "--to", str(d / "j.csv"),
                   "--force"], "exporting: journal rows"),
    (lambda h, d: ["admin", "backup", "--db", h.url, "--to", str(d / "b.db"), "--force"],
     "backing up"),
    (lambda h, d: ["admin", "restore", "--db", h.url, "--from", str(h.db), "--check-only"],
     "checking /"),
    (lambda h, d: ["audit", "--db", h.url], "auditing"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "words"), CASES, ids=["export", "backup", "restore", "audit"])
def test_progress_on_a_terminal_only(
    store: HostProc, tmp_path: Path, argv: object, words: str
) -> None:
    args = argv(store, tmp_path)  # type: ignore[operator]
    rc, drawn = on_a_terminal(args, tmp_path)
    assert rc == 0, drawn
    assert words in drawn, drawn[-2000:]
    piped = in_pipes(args, tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert words not in piped.stdout + piped.stderr
    assert "\x1b[" not in piped.stdout + piped.stderr  # no terminal control codes in a pipe
    rc, quiet = on_a_terminal([*args, "--json"], tmp_path)
    assert rc == 0 and words not in quiet, quiet[-2000:]


def test_lab_run_shows_its_progress_on_a_terminal(tmp_path: Path) -> None:
    args = ["lab", "run", "--terminals", "2", "--transactions", "20", "--no-faults",
            "--host-kill-rate", "0", "--host-kill-between", "0", "--cli-rate", "0",
            "--no-leak-scan", "--out", str(tmp_path / "lab")]  # fmt: skip
    rc, drawn = on_a_terminal(args, tmp_path)
    assert rc == 0 and "lab run: transactions" in drawn, drawn[-2000:]
    assert "RESULT: OK" in drawn
    piped = in_pipes(args, tmp_path)
    assert piped.returncode == 0 and "lab run: transactions" not in piped.stderr


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
)
def test_every_bench_script_takes_help(script: str) -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        capture_output=True, text=True, env=env(), timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    assert "usage:" in r.stdout


def test_open_loop_says_whether_it_kept_up() -> None:
    import host as bench_host

    fine = bench_host.Tally(ok=1990, declined=10, elapsed=1.01, offered=2000)
    assert bench_host.kept_up(fine, 2000) and round(fine.achieved()) == 1980
    slow = bench_host.Tally(ok=2000, elapsed=2.5, offered=2000)  # the schedule stretched
    assert not bench_host.kept_up(slow, 2000) and slow.achieved() == 800
    lost = bench_host.Tally(ok=1900, failed=100, elapsed=1.0, offered=2000)
    assert not bench_host.kept_up(lost, 2000)
