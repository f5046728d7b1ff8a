"""The smaller things a newcomer hits (issue 17, item 11): doctor's labels in Chinese,
times with their zone, a hint for the first console user."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from host_fixture import env, start_host

from clearpos.clock import show
from clearpos.keys import KeyEncryptionKey
from clearpos.terminal import Terminal
from clearpos.terminal.client import HostLink
from clearpos.terminal.screens import DOCTOR_LABELS


def test_doctor_speaks_chinese_in_zh(tmp_path: Path) -> None:
    t = Terminal(
        tmp_path / "pos",
        link=HostLink("127.0.0.1", 9, timeout=0.5, connect_timeout=0.5),
        tid="10000001",
        mid="898310048161234",
        tmk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
        kek=KeyEncryptionKey(bytes(range(32))),
        lang="zh",
    )
    try:
        report = t.doctor()
    finally:
        t.close()
    names = {c.name for c in report.checks}
    assert names <= set(DOCTOR_LABELS), names - set(DOCTOR_LABELS)
    text = report.render("zh")
    for name in names:
        assert DOCTOR_LABELS[name][0] in text
        assert f" {name} " not in text  # no English label left
    assert "FAIL" not in text and "OK  " not in text and "异常" in text
    doc = report.to_json()["checks"]
    assert {c["name"] for c in doc} == names  # --json keeps the stable names


def test_times_read_alone_carry_their_zone() -> None:
    assert show("2026-11-23T02:00:00.000000Z", zone=True) == "2026-11-23 10:00 +08:00"
    assert show("2026-11-23T02:00:00.000000Z") == "2026-11-23 10:00"


def test_diagnose_and_admin_say_the_zone(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    h.stop()
    run = [sys.executable, "-m", "clearpos.cli"]
    d = subprocess.run(
        [*run, "diagnose", "--db", h.url, "--tid", "10000001", "--lang", "en"],
        capture_output=True, text=True, env=env(), timeout=60, check=False,
    )  # fmt: skip
    assert d.returncode == 0 and "+08:00" in d.stdout, d.stdout
    a = subprocess.run(
        [*run, "admin", "--db", h.url, "terminal", "suspend", "--tid", "10000001", "--by", "li",
         "--why", "screen cracked"],
        capture_output=True, text=True, env=env(), timeout=60, check=False,
    )  # fmt: skip
    assert a.returncode == 0 and "+08:00" in a.stdout, a.stdout + a.stderr


def test_console_hints_at_the_first_user(tmp_path: Path) -> None:
    h = start_host(tmp_path)  # a loaded world, no console user
    h.stop()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", "console", "--db", h.url, "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "user add" not in line:
            line = proc.stderr.readline()
            if not line:
                break
        assert "no console user yet" in line and f"--db {h.url} user add" in line, line
    finally:
        proc.terminate()
        proc.wait(30)
