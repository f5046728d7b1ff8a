"""Keys at start-up (issue 16): no KEK is an error that says how to make one; a wrong
KEK is found by the store's canary before the host serves anything. Real host
processes, real SQLite files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from host_fixture import EXAMPLE_WORLD, ROOT, TEST_KEK, start_host
from hostclient import Client


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOS_KEK")}
    e["HOME"] = str(tmp / "home")  # where ~/.clearpos/kek would be made
    e.update(extra)
    return e


def _clearpos(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *argv],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def _host_once(
    env: dict[str, str], db: Path, world: Path = EXAMPLE_WORLD
) -> subprocess.CompletedProcess[str]:
    """A host that should refuse to start (a timeout would mean it served)."""
    return _clearpos(
        env, "host", "--world", str(world), "--db", f"sqlite:///{db}",
        "--listen", "127.0.0.1:0",
    )  # fmt: skip


def _refusals(stderr: str) -> list[str]:
    """The host's own message lines (log lines carry a timestamp and a logger name)."""
    return [line for line in stderr.splitlines() if line.startswith("clearpos host:")]


def test_no_kek_is_an_error_that_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    out = _host_once(_env(tmp_path), tmp_path / "s.db")
    assert out.returncode == 1
    lines = _refusals(out.stderr)
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "no KEK" in lines[0] and "clearpos admin kek new --out" in lines[0]
    assert not (tmp_path / "home" / ".clearpos").exists(), "no KEK is made on the fly"


def test_admin_kek_new_then_the_host_starts(tmp_path: Path) -> None:
    kek = tmp_path / "keys" / "kek"
    e = _env(tmp_path)
    made = _clearpos(e, "admin", "kek", "new", "--out", str(kek))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    assert stat.S_IMODE(kek.parent.stat().st_mode) == 0o700
    assert "written to" in made.stdout and f"CLEARPOS_KEK_FILE={kek}" in made.stdout
    first = kek.read_text()
    again = _clearpos(e, "admin", "kek", "new", "--out", str(kek))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert kek.read_text() == first
    os.environ["CLEARPOS_KEK_FILE"] = str(kek)
    saved = os.environ.pop("CLEARPOS_KEK", None)
    try:
        # start_host sets CLEARPOS_KEK; here the file must be the source
        e2 = _env(tmp_path, CLEARPOS_KEK_FILE=str(kek))
        proc = subprocess.Popen(
            [sys.executable, "-m", "clearpos.cli", "host", "--world", str(EXAMPLE_WORLD),
             "--db", f"sqlite:///{tmp_path / 's.db'}", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e2, cwd=ROOT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on" in line, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.terminate()
            proc.wait(20)
    finally:
        del os.environ["CLEARPOS_KEK_FILE"]
        if saved is not None:
            os.environ["CLEARPOS_KEK"] = saved


def test_wrong_kek_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    c = Client(h.host, h.port).connect()
    assert c.sign_on().code == "00"
    c.close()
    h.stop()
    with sqlite3.connect(h.db) as con:
        (fp,) = con.execute("SELECT value FROM meta WHERE key = 'kek.fingerprint'").fetchone()
        assert con.execute("SELECT value FROM meta WHERE key = 'kek.canary'").fetchone()[0]
    wrong = "a7" * 32
    out = _host_once(_env(tmp_path, CLEARPOS_KEK=wrong), h.db, h.world)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    (line,) = _refusals(out.stderr)
    assert f"sealed under KEK {fp}" in line and "does not open this store's keys" in line
    # the right KEK still starts it
    h2 = start_host(tmp_path, db=h.db, reset=False)
    c = Client(h2.host, h2.port).connect()
    assert c.sign_on().code == "00"
    h2.stop()


def test_a_store_made_before_the_canary_is_checked_by_its_keys(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    h.stop()
    with sqlite3.connect(h.db) as con:
        con.execute("DELETE FROM meta WHERE key IN ('kek.canary', 'kek.fingerprint')")
    out = _host_once(_env(tmp_path, CLEARPOS_KEK="a7" * 32), h.db)
    assert out.returncode == 1 and "does not open this store's keys" in out.stderr
    assert len(_refusals(out.stderr)) == 1, out.stderr
    h2 = start_host(tmp_path, db=h.db, reset=False)
    h2.stop()
    with sqlite3.connect(h.db) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'kek.canary'").fetchone()
    assert TEST_KEK not in h2.log_text()


def test_console_with_a_wrong_kek_refuses_to_start(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    h.stop()
    out = _clearpos(
        _env(tmp_path, CLEARPOS_KEK="a7" * 32), "console", "--db", h.url, "--listen", "127.0.0.1:0"
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("clearpos console: KEK ") and "does not open" in out.stderr
