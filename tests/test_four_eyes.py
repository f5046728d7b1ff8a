"""Four-eyes in the admin CLI (issue 16): deciding a resumption (复机) needs the decider's
own credentials -- a password or a token from ``clearpos admin login`` -- and the
requester can never decide their own request. A real SQLite store, the CLI in-process
and as a real process (a password on a file descriptor)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import ROOT, TEST_KEK
from test_ops_support import ARREARS_MID, run, run_json, seeded

from clearpos.store import Database

PW = {"li": "li-horse-battery-4", "chen": "chen-river-lantern-2", "wang": "wang-teapot-cloud-8"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    db = seeded(tmp_path)
    for name, role in (("li", "supervisor"), ("chen", "admin"), ("wang", "supervisor")):
        rc, out, err = run(
            "admin", "--db", db.url, "user", "add", "--username", name, "--role", role,
            "--by", "root", "--password-stdin", stdin=PW[name] + "\n",
        )  # fmt: skip
        assert rc == 0, (out, err)
    rc, _, err = run(
        "admin", "--db", db.url, "arrears", "pay", "--mid", ARREARS_MID, "--amount", "58.00",
        "--voucher", "PAY-1", "--by", "cashier",
    )  # fmt: skip
    assert rc == 0, err
    rc, docs = run_json(
        "admin", "--db", db.url, "resume", "request", "--mid", ARREARS_MID, "--by", "wang"
    )
    assert rc == 0, docs
    yield db


def _status(db: Database) -> str:
    with db.reader() as tx:
        return str(tx.conn.execute("SELECT status FROM resumption_requests").fetchone()[0])


def _approve(db: Database, *extra: str, stdin: str | None = None) -> tuple[int, str, str]:
    return run("admin", "--db", db.url, "resume", "approve", "--id", "1", *extra, stdin=stdin)


def test_a_bare_by_is_not_enough(store: Database) -> None:
    rc, _, err = _approve(store, "--by", "li")
    assert rc == 2 and "password of li is needed" in err
    rc, _, err = _approve(store)
    assert rc == 2 and "say who decides" in err
    assert _status(store) == "pending"


def test_a_wrong_password_is_refused(store: Database) -> None:
    rc, _, err = _approve(store, "--by", "li", "--password", "-", stdin="li-wrong-guess\n")
    assert rc == 1 and "wrong password for 'li'" in err
    rc, _, err = _approve(store, "--by", "li", "--password", "-", stdin=PW["chen"] + "\n")
    assert rc == 1 and "wrong password" in err, "another user's password is not li's"
    assert _status(store) == "pending"


def test_the_requester_cannot_approve_their_own_request(store: Database) -> None:
    rc, _, err = _approve(store, "--by", "wang", "--password", "-", stdin=PW["wang"] + "\n")
    assert rc == 1 and "wang asked for resumption #1 and cannot also approve it" in err
    rc, _, err = run(
        "admin", "--db", store.url, "resume", "reject", "--id", "1", "--by", "wang",
        "--why", "no", "--password", "-", stdin=PW["wang"] + "\n",
    )  # fmt: skip
    assert rc == 1 and "cannot also reject it" in err
    assert _status(store) == "pending"


def test_the_approvers_own_password_approves(store: Database) -> None:
    rc, docs = run_json(
        "admin", "--db", store.url, "resume", "approve", "--id", "1", "--by", "li",
        "--password", "-", stdin=PW["li"] + "\n",
    )  # fmt: skip
    assert rc == 0 and docs[0]["by"] == "li", docs
    assert _status(store) == "approved"


def test_a_token_from_admin_login(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, _, err = run(
        "admin", "--db", store.url, "login", "--username", "li", "--password", "-",
        stdin="nope-nope-nope\n",
    )  # fmt: skip
    assert rc == 1 and "wrong password" in err
    rc, docs = run_json(
        "admin", "--db", store.url, "login", "--username", "li", "--password", "-",
        stdin=PW["li"] + "\n",
    )  # fmt: skip
    assert rc == 0
    token = docs[0]["token"]
    assert PW["li"] not in token
    with store.reader() as tx:
        logins = tx.conn.execute(
            "SELECT actor FROM audit WHERE action = 'admin.login' AND entity_id = 'li'"
        ).fetchall()
    assert [r[0] for r in logins] == ["li"], "the sign-in is in the audit trail"
    monkeypatch.setenv("CLEARPOS_ADMIN_TOKEN", token)
    rc, _, err = _approve(store, "--by", "chen")
    assert rc == 1 and "token is li's, not chen's" in err
    monkeypatch.setenv("CLEARPOS_ADMIN_TOKEN", token[:-3] + "AAA")
    rc, _, err = _approve(store)
    assert rc == 1 and "not valid" in err
    monkeypatch.setenv("CLEARPOS_ADMIN_TOKEN", token)
    rc, docs = run_json("admin", "--db", store.url, "resume", "approve", "--id", "1")
    assert rc == 0 and docs[0]["by"] == "li", docs
    assert _status(store) == "approved"


def test_a_disabled_user_s_token_dies(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, docs = run_json(
        "admin", "--db", store.url, "login", "--username", "li", "--password", "-",
        stdin=PW["li"] + "\n",
    )  # fmt: skip
    assert rc == 0
    rc, _, err = run(
        "admin", "--db", store.url, "user", "disable", "--username", "li", "--by", "chen",
        "--why", "left",
    )  # fmt: skip
    assert rc == 0, err
    monkeypatch.setenv("CLEARPOS_ADMIN_TOKEN", docs[0]["token"])
    rc, _, err = _approve(store)
    assert rc == 1 and "not valid" in err
    assert _status(store) == "pending"


def test_password_on_a_file_descriptor_in_a_real_process(store: Database) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, (PW["li"] + "\n").encode())
    os.close(write_end)
    env = {k: v for k, v in os.environ.items() if k != "CLEARPOS_ADMIN_TOKEN"}
    env["CLEARPOS_KEK"] = TEST_KEK
    try:
        out = subprocess.run(
            [sys.executable, "-m", "clearpos.cli", "admin", "--db", store.url, "resume",
             "approve", "--id", "1", "--by", "li", "--password-fd", str(read_end)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
            pass_fds=(read_end,), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.close(read_end)
    assert out.returncode == 0, out.stderr
    assert _status(store) == "approved"
