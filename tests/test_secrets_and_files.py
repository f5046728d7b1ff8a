"""Secrets off the command line and files only their owner reads (issue 16): the
virtual terminal's --pin/--tmk/--password from standard input or a file descriptor,
and the modes of what the project writes -- host store with its WAL and shm, the
terminal's state, receipts, backups, exports, reports -- with a permissive umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import ROOT, HostProc, env, start_host
from hostclient import MID, PAN, TID, TMK
from test_ops_support import run


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """0022, the common default: new files would be 0644 unless made private."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostProc]:
    h = start_host(tmp_path)
    yield h
    h.stop()


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def pos(
    h: HostProc, state: Path, *args: str, stdin: str | None = None, fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "clearpos.cli", "pos", "--host", f"{h.host}:{h.port}",
        "--tid", TID, "--mid", MID, "--state", str(state), "--timeout", "5", "--json", *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, input=stdin if stdin is not None else "", capture_output=True, text=True,
        env=env(), cwd=ROOT, timeout=60, pass_fds=fds,
    )  # fmt: skip


def _fd_with(text: str) -> int:
    r, w = os.pipe()
    os.write(w, text.encode())
    os.close(w)
    return r


def test_pos_secrets_from_stdin_and_a_file_descriptor(host: HostProc, tmp_path: Path) -> None:
    state = tmp_path / "pos"
    fd = _fd_with("0000\n")
    try:
        out = pos(
            host, state, "--tmk", "-", "login", "--operator", "01", "--password-fd", str(fd),
            stdin=TMK.hex().upper() + "\n", fds=(fd,),
        )  # fmt: skip
    finally:
        os.close(fd)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["approved"]
    sale = pos(
        host, state, "purchase", "1.00", "--card", PAN, "--expiry", "2812", "--pin", "-",
        stdin="123456\n",
    )  # fmt: skip
    assert sale.returncode == 0, sale.stderr
    assert json.loads(sale.stdout)["approved"]
    wrong = pos(
        host, state, "balance", "--card", PAN, "--expiry", "2812", "--pin", "-", stdin="000000\n"
    )
    assert json.loads(wrong.stdout)["reason"] == "card.wrong_pin", "the PIN read is the PIN sent"


def test_pos_secret_errors_are_precise(host: HostProc, tmp_path: Path) -> None:
    state = tmp_path / "pos"
    out = pos(host, state, "--tmk", TMK.hex(), "login", "--operator", "01")
    assert out.returncode == 2 and "operator password is needed" in out.stderr
    assert "--password -" in out.stderr and "--password-fd N" in out.stderr
    out = pos(
        host, state, "--tmk", "-", "login", "--operator", "01", "--password", "-",
        stdin=TMK.hex() + "\n0000\n",
    )  # fmt: skip
    assert out.returncode == 2 and "--tmk already reads standard input" in out.stderr
    assert pos(host, state, "--tmk", TMK.hex(), "login", "--operator", "01",
               "--password", "0000").returncode == 0  # fmt: skip
    out = pos(host, state, "balance", "--card", PAN, "--expiry", "2812")
    assert out.returncode == 2 and "cardholder PIN is needed" in out.stderr
    out = pos(host, state, "purchase", "1.00", "--card", PAN, "--expiry", "2812", "--pin", "-",
              stdin="12\n")  # fmt: skip
    assert out.returncode == 2 and "PIN must be 4-12 digits, got **" in out.stderr
    assert "12\n" not in out.stderr


def test_help_says_why(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "pos", "--help"],
        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60,
    )  # fmt: skip
    text = " ".join(out.stdout.split())
    assert "--tmk-fd N" in text and "shows in ps and the shell history" in text


def test_what_the_project_writes_is_0600(host: HostProc, tmp_path: Path) -> None:
    state = tmp_path / "pos"
    out = pos(host, state, "--tmk", TMK.hex(), "login", "--operator", "01", "--password", "0000")
    assert out.returncode == 0, out.stderr
    sale = pos(host, state, "purchase", "1.00", "--card", PAN, "--expiry", "2812",
               "--pin", "123456")  # fmt: skip
    receipt = Path(json.loads(sale.stdout)["receipt"])
    # the running host's store, its WAL and shm
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(host.db) + suffix)
        assert p.exists() and mode(p) == 0o600, (p, oct(mode(p)))
    # the terminal's state directory and everything in it
    assert mode(state) == 0o700 and mode(state / "receipts") == 0o700
    files = [p for p in state.rglob("*") if p.is_file()]
    assert receipt in files and state / "terminal.db" in files  # (KEK from $CLEARPOS_KEK)
    assert {p.name: oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    # backups, journal exports and reports
    backup = tmp_path / "backup.db"
    assert run("admin", "--db", host.url, "backup", "--to", str(backup))[0] == 0
    export = tmp_path / "journal.csv"
    rc, _, err = run("admin", "--db", host.url, "export", "--since", "7d", "--to", str(export))
    assert rc == 0, err
    report = tmp_path / "report.txt"
    today = __import__("datetime").date.today().isoformat()
    rc, _, err = run("admin", "--db", host.url, "report", "--date", today, "--to", str(report))
    assert rc == 0, err
    for p in (backup, export, report):
        assert mode(p) == 0o600, (p, oct(mode(p)))
    restored = tmp_path / "restored.db"
    rc, _, err = run("admin", "--db", f"sqlite:///{restored}", "restore", "--from", str(backup))
    assert rc == 0, err
    assert mode(restored) == 0o600


def test_a_store_left_readable_is_narrowed_on_open(tmp_path: Path) -> None:
    from clearpos.store import open_database

    db = tmp_path / "old.db"
    open_database(f"sqlite:///{db}")
    os.chmod(db, 0o644)
    open_database(f"sqlite:///{db}")
    assert mode(db) == 0o600


def test_operator_lists_hold_passwords_and_come_from_stdin_too(
    host: HostProc, tmp_path: Path
) -> None:
    state = tmp_path / "pos"
    out = pos(
        host, state, "--tmk", TMK.hex(), "--operators", "-", "login", "--operator", "07",
        "--password", "7777", stdin="07:7777,99:424242:supervisor\n",
    )  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["approved"], out.stderr
    out = pos(
        host, state, "--supervisor-password", "424242", "operators", "--set", "-",
        stdin="08:8888,99:424242:supervisor\n",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    listed = json.loads(pos(host, state, "operators").stdout)
    assert [o["no"] for o in listed["operators"]] == ["08", "99"]
    out = pos(host, state, "operators", "--set", "-", stdin="08:\n")
    assert out.returncode == 2 and "password must not be empty" in out.stderr
