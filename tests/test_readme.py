"""The README's "Try it by hand" block, run as written in a fresh shell environment.

No inherited variables (no ``CLEARPOS_KEK``): a new ``HOME``, a plain ``PATH``, a
directory holding only what a checkout holds (``.venv/bin/clearpos``,
``examples/world.toml``). The block runs twice, each time in a new ``bash``, as a
newcomer coming back the next day would: the KEK file made once opens the keys
the second time, and the host it started is stopped at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from host_fixture import ROOT

README = ROOT / "README.md"


def readme_block() -> str:
    text = README.read_text("utf-8")
    section = text[text.index("## Try it by hand") :]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "no sh block under 'Try it by hand'"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checkout(tmp: Path) -> Path:
    """A directory laid out like a checkout whose ``.venv/bin/clearpos`` is this code."""
    work = tmp / "checkout"
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / "examples").mkdir()
    (work / "examples" / "world.toml").write_bytes((ROOT / "examples" / "world.toml").read_bytes())
    launcher = work / ".venv" / "bin" / "clearpos"
    launcher.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m clearpos.cli "$@"\n', "utf-8"
    )
    launcher.chmod(0o755)
    return work


def fresh_shell(work: Path, home: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stopped(pid: int, log: Path) -> bool:
    """The host the block killed exits and logs so (it is not our child: poll)."""
    deadline = time.monotonic() + 60
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid) and "host stopped" in log.read_text("utf-8")


def test_readme_block_runs_in_a_fresh_shell_twice(tmp_path: Path) -> None:
    block = readme_block()
    assert "CLEARPOS_KEK=" not in block  # a random KEK in one shell is lost in the next
    assert "kill" in block and "host.log" in block
    port = free_port()
    script = block.replace("5800", str(port))
    work, home = checkout(tmp_path), tmp_path / "home"
    home.mkdir()

    first = fresh_shell(work, home, script)
    out = first.stdout
    assert first.returncode == 0, out + first.stderr
    kek = home / ".clearpos" / "kek"
    assert kek.is_file() and (kek.stat().st_mode & 0o077) == 0
    assert "KEK written to" in out
    assert "交易成功" in out or "approved" in out.lower()
    assert "卡已冻结" in out
    assert "Most likely fix" in out
    assert "listening on" not in out and " INFO " not in out  # the host's lines are in host.log
    pid = int((work / "host.pid").read_text("ascii"))
    assert stopped(pid, work / "host.log")
    log = (work / "host.log").read_text("utf-8")
    assert "listening on" in log
    stamp = log.split(" ", 1)[0]  # ISO 8601 China time with its offset
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00", stamp), stamp
    assert "6222021234567890123" not in out + log

    second = fresh_shell(work, home, script)  # the next day: a new shell, the same files
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already exists" in second.stderr  # kek new changes nothing the second time
    assert "卡已冻结" in second.stdout and "Most likely fix" in second.stdout
    assert "keeping it" in (work / "host.log").read_text("utf-8")
    assert stopped(int((work / "host.pid").read_text("ascii")), work / "host.log")


def test_readme_links_stay_inside_the_repository() -> None:
    text = README.read_text("utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if link.startswith(("http://", "https://", "#", "mailto:")):
            continue
        target = (ROOT / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(ROOT), f"{link} points outside the repository"
        assert target.exists(), f"{link} does not exist"
