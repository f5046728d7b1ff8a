"""Nothing a user runs destroys data it did not create (issue 17, items 1 and 2).

Real processes on real SQLite files: the demo's directory, the host's store lock,
the port bound before the store is touched, ``--reset`` asked or ``--yes``, and
read commands that refuse a store that does not exist.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from host_fixture import EXAMPLE_WORLD, HostProc, env, start_host
from hostclient import Client

from clearpos.demo import MARKER, DirRefused, prepare_dir


def clearpos(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *args],
        capture_output=True, text=True, env=env(), timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def sales(h: HostProc) -> int:
    return int(h.one("SELECT COUNT(*) FROM journal WHERE kind = 'purchase' AND code = '00'")[0])


def one_sale(h: HostProc) -> None:
    c = Client(h.host, h.port).connect()
    try:
        c.sign_on()
        assert c.purchase(300).code == "00"  # the ¥3.00 sale of the issue
    finally:
        c.close()


# --------------------------------------------------------------------------- demo --dir


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("a working tree", "utf-8")
    r = clearpos("demo", "--dir", str(work), "--lang", "en")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not made by clearpos demo" in r.stderr and "--force" in r.stderr
    assert (work / "precious.txt").read_text("utf-8") == "a working tree"
    assert not (work / MARKER).exists()
    j = clearpos("demo", "--dir", str(work), "--json")
    assert j.returncode == 1 and j.stdout.count("\n") == 1 and '"ok": false' in j.stdout


def test_demo_dir_marker_and_force(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "demo"
    prepare_dir(fresh, force=False)
    assert (fresh / MARKER).is_file()
    (fresh / "pos").mkdir()
    (fresh / "pos" / "state.json").write_text("{}", "utf-8")
    (fresh / "clearpos.db").write_text("old", "utf-8")
    prepare_dir(fresh, force=False)  # its own directory: wiped and taken again
    assert sorted(p.name for p in fresh.iterdir()) == [MARKER]

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("mine", "utf-8")
    with pytest.raises(DirRefused, match="not made by clearpos demo"):
        prepare_dir(other, force=False)
    assert (other / "notes.md").exists()
    prepare_dir(other, force=True)
    assert sorted(p.name for p in other.iterdir()) == [MARKER]

    from clearpos.store.lock import lock_store

    held = lock_store(fresh / "clearpos.db")  # a demo (or host) running on it
    try:
        with pytest.raises(
            DirRefused, match=f"in use by a running demo or host \\(PID {os.getpid()}\\)"
        ):
            prepare_dir(fresh, force=True)
    finally:
        held.release()
    assert (fresh / MARKER).is_file()

    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_dir(empty, force=False)  # an empty directory destroys nothing
    a_file = tmp_path / "file"
    a_file.write_text("x", "utf-8")
    with pytest.raises(DirRefused, match="is a file"):
        prepare_dir(a_file, force=True)


# --------------------------------------------------------------------------- host lock, port


def test_second_host_on_a_served_store_is_refused_with_the_pid(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    try:
        one_sale(h)
        r = clearpos(
            "host", "--world", str(h.world), "--db", h.url, "--listen", "127.0.0.1:0",
            "--reset", "--yes",
        )  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert f"in use by the process with PID {h.proc.pid}" in r.stderr
        assert str(h.db) in r.stderr
        assert sales(h) == 1  # the sale survived; the running host still serves it
        one_sale(h)
        assert sales(h) == 2
    finally:
        h.stop()
    # a stopped (or crashed) host leaves no lock behind
    r2 = start_host(tmp_path, reset=False)
    try:
        assert sales(r2) == 2
    finally:
        r2.kill()
    r3 = start_host(tmp_path, reset=False)  # after SIGKILL the kernel dropped the flock
    r3.stop()


def test_taken_port_leaves_the_store_untouched(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    one_sale(h)
    h.stop()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        r = clearpos(
            "host", "--world", str(h.world), "--db", h.url, "--listen", f"127.0.0.1:{port}",
            "--reset", "--yes",
        )  # fmt: skip
    finally:
        blocker.close()
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "not touched" in r.stderr
    assert sales(h) == 1


def test_reset_off_a_terminal_needs_yes(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    one_sale(h)
    h.stop()
    r = clearpos(
        "host", "--world", str(h.world), "--db", h.url, "--listen", "127.0.0.1:0", "--reset"
    )
    assert r.returncode == 2, r.stderr
    assert "add --yes" in r.stderr and "nothing was changed" in r.stderr
    assert sales(h) == 1


def _host_on_a_pty(h: HostProc, answer: bytes) -> tuple[int, str]:
    """Run ``host --reset`` with a terminal as its standard input, typing ``answer``."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(h.world), "--db", h.url,
         "--listen", "127.0.0.1:0", "--reset"],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), text=True,
    )  # fmt: skip
    os.close(follower)
    try:
        assert proc.stderr is not None
        prompt = ""
        while "Type yes" not in prompt:
            ch = proc.stderr.read(1)
            assert ch, prompt
            prompt += ch
        os.write(leader, answer)
        if answer.strip() == b"yes":
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on" in line, line
            proc.terminate()
        rc = proc.wait(60)
        return rc, prompt + proc.stderr.read()
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reset_on_a_terminal_asks(tmp_path: Path) -> None:
    h = start_host(tmp_path)
    one_sale(h)
    h.stop()
    rc, err = _host_on_a_pty(h, b"no\n")
    assert rc == 1 and "left as it was" in err and h.url in err
    assert sales(h) == 1
    rc, err = _host_on_a_pty(h, b"yes\n")
    assert rc == 0, err
    assert sales(h) == 0


def test_reset_of_an_empty_store_needs_no_confirmation(tmp_path: Path) -> None:
    h = start_host(tmp_path, reset=True)  # fresh store: nothing to lose, the fixture's --yes aside
    h.stop()
    db = tmp_path / "fresh.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(EXAMPLE_WORLD),
         "--db", f"sqlite:///{db}", "--listen", "127.0.0.1:0", "--reset"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)


# --------------------------------------------------------------------------- stores are opened


READ_COMMANDS = [
    ["diagnose", "--tid", "10000001"],
    ["audit"],
    ["admin", "merchant", "show", "--mid", "898310048161234"],
    ["admin", "export", "--since", "1d", "--to", "-"],
    ["admin", "terminal", "suspend", "--tid", "10000001", "--by", "li", "--why", "x"],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_read_commands_refuse_a_store_that_does_not_exist(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "typo" / "clearpos.db"
    url = f"sqlite:///{missing}"
    r = clearpos(argv[0], "--db", url, *argv[1:])
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"no store at {missing}" in r.stdout + r.stderr
    assert not missing.exists() and not missing.parent.exists()


def test_console_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    r = clearpos("console", "--db", f"sqlite:///{missing}", "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and f"no store at {missing}" in r.stderr
    assert not missing.exists()


def test_admin_init_creates_an_empty_store_once(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    r = clearpos("admin", "init", "--db", url)
    assert r.returncode == 0, r.stderr
    assert db.is_file() and "created" in r.stdout
    again = clearpos("admin", "init", "--db", url)
    assert again.returncode == 1 and "already exists" in again.stderr
    shown = clearpos("admin", "--db", url, "merchant", "list")
    assert shown.returncode == 0, shown.stderr
