"""``clearpos admin`` against a running host: what the provider changes, terminals feel.

A real host process on loopback with a real SQLite file; the admin commands
run in-process on the same store, as an operator would run them beside it.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from host_fixture import EXAMPLE_WORLD, HostProc, Store, start_host
from hostclient import PAN, Client
from test_ops_support import ARREARS_MID, MAIN_MID, add_user, run, run_json

from clearpos.audit import run_audit
from clearpos.clock import CST, show
from clearpos.keys import KeyCheckError
from clearpos.wire import NetworkRequest, Param, ParameterDownload, ParameterDownloadResponse

SPARE = "6225880000001124"
TMKS = {
    "10000003": bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90"),
    "10000005": bytes.fromhex("FEDCBA98765432100123456789ABCDEF"),
    "10000007": bytes.fromhex("5A5A5A5AA5A5A5A53C3C3C3CC3C3C3C3"),
}
MIDS = {"10000003": ARREARS_MID, "10000005": MAIN_MID, "10000007": MAIN_MID}
NEW_TMK = "00112233445566778899AABBCCDDEE11"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    # many purchases on one card here: lift the velocity rule (A6 is tested with diagnose)
    world = EXAMPLE_WORLD.read_text("utf-8").replace("count = 5,", "count = 1000,")
    assert "count = 1000," in world
    h = start_host(tmp_path_factory.mktemp("opshost"), world_text=world, store=store)
    yield h
    h.stop()
    assert run_audit(h.url) == []
    assert PAN not in h.log_text()


def client(h: HostProc, tid: str = "10000001", **kw: object) -> Client:
    if tid in TMKS:
        kw.setdefault("tmk", TMKS[tid])
        kw.setdefault("mid", MIDS[tid])
    return Client(h.host, h.port, tid=tid, **kw).connect()  # type: ignore[arg-type]


def echo(c: Client) -> int:
    r = c.send(
        NetworkRequest(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="301")
    )
    assert r.code == "00"
    return r.processing


def params(c: Client) -> ParameterDownloadResponse:
    r = c.send(ParameterDownload(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch))
    assert isinstance(r.msg, ParameterDownloadResponse) and r.code == "00"
    return r.msg


def admin(h: HostProc, *argv: str) -> tuple[int, str, str]:
    return run("admin", "--db", h.url, *argv)


def iso(dt: datetime) -> str:
    return dt.astimezone(CST).isoformat(timespec="minutes")


# --------------------------------------------------------------------------- A9: notices before the window


def test_terminals_learn_admin_scheduled_windows_before_they_start(host: HostProc) -> None:
    c = client(host, "10000007")
    assert c.sign_on().code == "00"
    params(c)  # the world's notices: now up to date
    assert echo(c) == 0
    start = datetime.now(UTC) + timedelta(hours=1)
    rc, docs = run_json(
        "admin", "--db", host.url, "maintenance", "add", "--who", "host",
        "--start", iso(start), "--end", iso(start + timedelta(hours=2)),
        "--notice-zh", "主机升级，暂停交易", "--notice-en", "Host upgrade, no transactions", "--by", "ops",
    )  # fmt: skip
    assert rc == 0, docs
    wid = docs[0]["id"]
    # the very next exchange says: download parameters (processing requirement 1)
    assert echo(c) == 1
    p = params(c)
    notices = [r.value for r in p.records if r.tag == Param.NOTICE_EN]
    assert "Host upgrade, no transactions" in notices
    assert p.param(Param.NOTICE_START) is not None
    assert start.astimezone(CST).strftime("%Y%m%d%H%M") in [
        r.value[:12] for r in p.records if r.tag == Param.NOTICE_START
    ]
    assert echo(c) == 0  # downloaded: nothing pending
    assert c.purchase(1, card=c.card(SPARE)).code == "00"  # the window has not begun
    # moved to now: announced again, then the host declines 96 with the end time
    now = datetime.now(UTC)
    rc, docs = run_json(
        "admin", "--db", host.url, "maintenance", "move", "--id", str(wid),
        "--start", iso(now - timedelta(minutes=1)), "--end", iso(now + timedelta(hours=1)),
        "--by", "ops", "--why", "vendor moved the upgrade",
    )  # fmt: skip
    assert rc == 0, docs
    moved = docs[0]["id"]
    r = c.purchase(1, card=c.card(SPARE))
    assert (r.code, r.reason, r.processing) == ("96", "host.maintenance", 1)
    rc, out, _ = admin(
        host, "maintenance", "cancel", "--id", str(moved), "--by", "ops", "--why", "done early"
    )
    assert rc == 0, out
    assert c.purchase(1, card=c.card(SPARE)).code == "00"
    rc, _, err = admin(
        host, "maintenance", "cancel", "--id", str(moved), "--by", "ops", "--why", "x"
    )
    assert rc == 1 and "already cancelled" in err


# --------------------------------------------------------------------------- D1, D5, D6: 停机 and 复机


def test_arrears_payment_request_approval_resumes_trading(host: HostProc) -> None:
    c = client(host, "10000003")
    assert c.sign_on().code == "00"
    assert c.purchase(100, card=c.card(SPARE)).reason == "merchant.suspended.arrears"
    add_user(host.url, "li", "supervisor")
    rc, _out, err = admin(host, "resume", "request", "--mid", ARREARS_MID, "--by", "wang")
    assert rc == 1 and "still owes ¥58.00" in err
    rc, docs = run_json(
        "admin", "--db", host.url, "arrears", "pay", "--mid", ARREARS_MID, "--amount", "58.00",
        "--voucher", "PAY-20261123-01", "--by", "wang",
    )  # fmt: skip
    assert rc == 0 and docs[0]["owed_after"] == "0.00"
    rc, docs = run_json(
        "admin", "--db", host.url, "resume", "request", "--mid", ARREARS_MID, "--by", "wang"
    )
    assert rc == 0 and docs[0]["status"] == "pending"
    rid = str(docs[0]["id"])
    assert c.purchase(100, card=c.card(SPARE)).reason == "merchant.suspended.arrears"  # not yet
    rc, _, err = run("admin", "--db", host.url, "resume", "approve", "--id", rid, "--by", "li")
    assert rc == 2 and "password of li is needed" in err, "four eyes: never a bare --by"
    assert c.purchase(100, card=c.card(SPARE)).reason == "merchant.suspended.arrears"  # not yet
    rc, docs = run_json(
        "admin", "--db", host.url, "resume", "approve", "--id", rid, "--by", "li",
        "--password", "-", stdin="correct horse battery\n",
    )  # fmt: skip
    assert rc == 0 and (docs[0]["from"], docs[0]["to"]) == ("suspended(arrears)", "active")
    r = c.purchase(100, card=c.card(SPARE))
    assert (r.code, r.reason) == ("00", "approved")
    # D6: everything is on the merchant's page
    rc, docs = run_json("diagnose", "--db", host.url, "--mid", ARREARS_MID, "--lang", "en")
    assert rc == 0
    d = docs[-1]  # transactions one per line, the merchant summary last
    assert d["merchant"]["status"] == "active"
    assert [e["voucher"] for e in d["arrears"]] == ["PAY-20261123-01"]
    assert d["requests"][0]["status"] == "approved" and d["requests"][0]["decided_by"] == "li"
    assert [h["action"] for h in d["history"]][-4:] == [
        "arrears.payment",
        "resumption.request",
        "resumption.approve",
        "resume",
    ]
    # issue 17: the headline says what is true now; the arrears are the second line
    for argv in (("--mid", ARREARS_MID), ("--tid", "10000003")):
        for lang in ("en", "zh"):
            rc, docs = run_json("diagnose", "--db", host.url, *argv, "--lang", lang)
            d = docs[-1]
            assert rc == 0 and d["blocking"] == [], d
            fix = d["fix"]
            assert fix is None or fix["reason"] != "merchant.suspended.arrears", fix
            assert d["resolved"]["reason"] == "merchant.suspended.arrears"
            assert "li" in d["resolved"]["by"] and d["resolved"]["at"] > d["failures"][0]["last"]
            rc, text, _ = run("diagnose", "--db", host.url, *argv, "--lang", lang)
            head = next(x for x in text.splitlines() if x.startswith(("Most likely", "最可能")))
            assert "arrears" not in head and "欠费" not in head and "pay" not in head, head
            second = text.splitlines()[text.splitlines().index(head) + 1]
            assert second.startswith(("It was", "此前")) and "merchant.suspended.arrears" in second
    rc, docs = run_json(
        "admin", "--db", host.url, "ticket", "open", "--tid", "10000003", "--title", "was it fixed?",
        "--by", "wang",
    )  # fmt: skip
    assert rc == 0, docs
    rc, docs = run_json("admin", "--db", host.url, "ticket", "show", "--id", str(docs[0]["id"]))
    evidence = docs[0]["evidence"]["diagnosis"]
    for lang in ("zh", "en"):
        fix = evidence[lang]["fix"]
        assert fix is None or fix["reason"] != "merchant.suspended.arrears"
        assert evidence[lang]["resolved"]["reason"] == "merchant.suspended.arrears"


def test_terminal_suspend_and_resume_reach_the_host(host: HostProc) -> None:
    c = client(host)
    assert c.sign_on().code == "00"
    rc, out, _ = admin(
        host, "terminal", "suspend", "--tid", "10000001", "--by", "li", "--why", "screen cracked"
    )
    assert rc == 0, out
    r = c.purchase(100, card=c.card(SPARE))
    assert (r.code, r.reason) == ("58", "terminal.suspended")
    rc, _, err = admin(
        host, "terminal", "suspend", "--tid", "10000001", "--by", "li", "--why", "again"
    )
    assert rc == 1 and "allowed from suspended: resume, replace, rotate_tmk, set_software" in err
    rc, out, _ = admin(
        host, "terminal", "resume", "--tid", "10000001", "--by", "li", "--why", "repaired"
    )
    assert rc == 0
    assert c.purchase(100, card=c.card(SPARE)).code == "00"


def test_tmk_rotation_forces_a_re_sign_on_under_the_new_key(host: HostProc) -> None:
    c = client(host, "10000005")
    rc, out, _ = admin(
        host, "terminal", "resume", "--tid", "10000005", "--by", "li", "--why", "back in service"
    )
    assert rc == 0, out
    assert c.sign_on().code == "00"
    rc, docs = run_json(
        "admin", "--db", host.url, "terminal", "rotate-tmk", "--tid", "10000005", "--tmk", NEW_TMK,
        "--by", "li", "--why", "yearly rotation",
    )  # fmt: skip
    assert rc == 0 and NEW_TMK not in json.dumps(docs)
    r = c.purchase(100, card=c.card(SPARE))
    assert (r.code, r.reason, r.processing) == ("A0", "terminal.not_signed_on", 3)
    with pytest.raises(KeyCheckError):  # the old TMK cannot read the new working keys
        c.sign_on()
    fresh = client(host, "10000005", tmk=bytes.fromhex(NEW_TMK))
    assert fresh.sign_on().code == "00"
    assert fresh.purchase(100, card=fresh.card(SPARE)).code == "00"
    rc, docs = run_json("diagnose", "--db", host.url, "--rrn", r.msg.rrn or "", "--lang", "en")  # type: ignore[union-attr]
    assert (
        "TMK of terminal 10000005 was rotated" in docs[0]["cause"]
        and "by supervisor li" in docs[0]["cause"]
    )


def test_replacement_terminal_keeps_the_merchant_history(host: HostProc) -> None:
    old = client(host, "10000007")
    assert old.sign_on().code == "00"
    assert old.purchase(100, card=old.card(SPARE)).code == "00"
    rc, docs = run_json(
        "admin", "--db", host.url, "terminal", "replace", "--tid", "10000007", "--new-tid", "10000077",
        "--tmk", NEW_TMK, "--by", "li", "--why", "C6 spare device",
    )  # fmt: skip
    assert rc == 0 and docs[0]["added"]["id"] == "10000077"
    assert old.purchase(100, card=old.card(SPARE)).reason == "terminal.suspended"
    new = client(host, "10000077", tmk=bytes.fromhex(NEW_TMK), mid=MAIN_MID)
    assert new.sign_on().code == "00"
    assert new.purchase(100, card=new.card(SPARE)).code == "00"
    rc, docs = run_json("diagnose", "--db", host.url, "--tid", "10000077", "--lang", "en")
    d = docs[-1]
    assert d["terminal"]["replaces"] == "10000007"
    assert {h["entity_id"] for h in d["history"]} == {"10000007", "10000077"}
    rc, docs = run_json("diagnose", "--db", host.url, "--tid", "10000007", "--lang", "en")
    assert "replaced by 10000077" in docs[-1]["fix"]["headline"]
    tids = {
        r["tid"]
        for r in host.rows("SELECT tid FROM journal WHERE mid = ? AND code = '00'", (MAIN_MID,))
    }
    assert {"10000007", "10000077"} <= tids


# --------------------------------------------------------------------------- records


def test_daily_report_csv_and_json(host: HostProc) -> None:
    c = client(host)
    assert c.sign_on().code == "00"
    assert c.purchase(2000, card=c.card(SPARE)).code == "00"
    assert c.purchase(100, card=c.card("6225880000001025")).reason == "card.frozen"
    today = datetime.now(CST).date().isoformat()
    rc, docs = run_json("admin", "--db", host.url, "report", "--date", today, "--mid", MAIN_MID)
    assert rc == 0 and len(docs) == 1
    day = docs[0]
    assert day["mid"] == MAIN_MID and day["date"] == today
    assert day["approved"]["purchase"]["count"] >= 1
    assert day["declined"]["card.frozen"]["count"] >= 1
    (net,) = host.one(
        "SELECT COALESCE(SUM(CASE WHEN kind IN ('purchase','completion','offline') THEN amount_fen "
        "ELSE -amount_fen END), 0) AS net FROM journal WHERE mid = ? AND code = '00' AND req_key IS NOT NULL "
        "AND status <> 'reversed' AND kind IN ('purchase','completion','offline','void','completion_void','refund')",
        (MAIN_MID,),
    )
    assert day["net_fen"] == net
    rc, out, _ = admin(host, "report", "--date", today, "--format", "csv")
    rows = list(csv.DictReader(out.splitlines()))
    assert rc == 0 and {"approved", "declined", "net"} <= {r["section"] for r in rows}
    assert any(r["mid"] == ARREARS_MID for r in rows)
    rc, _, err = admin(host, "report", "--date", "2026-13-01")
    assert rc == 2 and "YYYY-MM-DD" in err


@pytest.mark.broken_stores("bad.db", "tampered.db")  # damaged to prove restore refuses them
def test_backup_of_the_running_store_restore_and_export(host: HostProc, tmp_path: Path) -> None:
    if not host.url.startswith("sqlite:"):
        rc, _, err = run("admin", "backup", "--db", host.url, "--to", str(tmp_path / "pg"))
        assert rc == 1 and "pg_dump" in err  # PostgreSQL: its own tools, the command says how
        return
    c = client(host)
    assert c.sign_on().code == "00"
    assert c.purchase(300, card=c.card(SPARE)).code == "00"
    copy = tmp_path / "backup.db"
    rc, docs = run_json("admin", "backup", "--db", host.url, "--to", str(copy))
    assert (
        rc == 0
        and docs[0]["ok"]
        and docs[0]["integrity"] == "ok"
        and docs[0]["counts"]["journal"] > 0
    )
    rc, _, err = run("admin", "backup", "--db", host.url, "--to", str(copy))
    assert rc == 1 and "--force" in err
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    rc, docs = run_json("admin", "restore", "--from", str(copy), "--db", target)
    assert rc == 0 and docs[0]["restored_to"] == target
    assert run_audit(target) == []
    rc, _, err = run("admin", "restore", "--from", str(copy), "--db", target)
    assert rc == 1 and "--force" in err
    rc, _, _ = run("admin", "restore", "--from", str(copy), "--db", target, "--force")
    assert rc == 0
    # a damaged backup is refused before anything is touched
    bad = tmp_path / "bad.db"
    data = bytearray(copy.read_bytes())
    data[4096 : 4096 * 3] = b"\xff" * (4096 * 2)
    bad.write_bytes(bytes(data))
    rc, out, err = run(
        "admin", "restore", "--from", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert rc == 1 and "nothing restored" in (out + err)
    # a backup whose money does not add up is refused too
    tampered = tmp_path / "tampered.db"
    tampered.write_bytes(copy.read_bytes())
    with sqlite3.connect(tampered) as conn:
        conn.execute("UPDATE cards SET balance_fen = balance_fen + 1 WHERE id = 1")
    rc, out, err = run(
        "admin", "restore", "--from", str(tampered), "--db", f"sqlite:///{tmp_path / 'y.db'}"
    )
    assert rc == 1 and "audit balance" in err
    # PostgreSQL: guidance, not a half-made copy
    rc, _, err = run("admin", "backup", "--db", "postgresql://u@h/db", "--to", str(tmp_path / "pg"))
    assert rc == 1 and "pg_dump" in err


def test_journal_export_is_masked(host: HostProc, tmp_path: Path) -> None:
    c = client(host)
    assert c.sign_on().code == "00"
    assert c.purchase(300, card=c.card(SPARE)).code == "00"
    out_csv = tmp_path / "journal.csv"
    rc, docs = run_json("admin", "export", "--db", host.url, "--since", "1d", "--to", str(out_csv))
    assert rc == 0 and docs[0]["rows"] > 0
    text = out_csv.read_text("utf-8")
    assert SPARE not in text and PAN not in text and "622588******1124" in text
    rows = list(csv.DictReader(text.splitlines()))
    assert rows[0]["rrn"].isdigit() and len(rows[0]["rrn"]) == 12


# --------------------------------------------------------------------------- the CLI contract


def test_cli_exit_status_and_refusals(host: HostProc) -> None:
    rc, _, err = admin(
        host,
        "arrears",
        "charge",
        "--mid",
        MAIN_MID,
        "--kind",
        "fee",
        "--amount",
        "1.234",
        "--by",
        "x",
        "--why",
        "y",
    )
    assert rc == 2 and "more than two decimals" in err
    rc, _, err = admin(
        host, "merchant", "suspend", "--mid", MAIN_MID, "--cause", "risk", "--why", "no by"
    )
    assert rc == 2 and "--by" in err
    rc, _, err = admin(
        host, "merchant", "lift", "--mid", MAIN_MID, "--by", "li", "--why", "not restricted"
    )
    assert (
        rc == 1 and "cannot lift; allowed from active: restrict, suspend, close, set_limit" in err
    )
    rc, docs = run_json(
        "admin", "--db", host.url, "merchant", "lift", "--mid", MAIN_MID, "--by", "li", "--why", "x"
    )
    assert (
        rc == 1
        and docs[0]["ok"] is False
        and docs[0]["allowed"] == ["restrict", "suspend", "close", "set_limit"]
    )
    rc, docs = run_json("admin", "--db", host.url, "merchant", "show", "--mid", "898310048164003")
    assert rc == 0 and docs[0]["status"] == "closed" and docs[0]["allowed"] == []
    rc, _, err = admin(host, "merchant", "show", "--mid", "000000000000000")
    assert rc == 1 and "no merchant" in err
    rc, docs = run_json("admin", "--db", host.url, "card", "show", "--pan", "6225880000001025")
    assert (
        rc == 0
        and docs[0]["pan"] == "622588******1025"
        and "6225880000001025" not in json.dumps(docs)
    )
    rc, out, _ = run("admin", "--db", host.url, "lifecycles")
    assert rc == 0 and "merchant: active | restricted | suspended | closed" in out
    rc, docs = run_json("admin", "--db", host.url, "user", "list")
    assert rc == 0 and all("password" not in json.dumps(d) for d in docs)


def test_ticket_workflow_from_the_cli(host: HostProc) -> None:
    add_user(host.url, "zhao", "operator")  # ticket owners are users
    c = client(host, "10000003")
    assert c.sign_on().code == "00"
    rc, docs = run_json(
        "admin",
        "--db",
        host.url,
        "ticket",
        "open",
        "--tid",
        "10000003",
        "--title",
        "POS says 停机",
        "--by",
        "desk",
    )
    assert rc == 0 and docs[0]["status"] == "open"
    tk = str(docs[0]["id"])
    ev = docs[0]["evidence"]
    assert ev["terminal"]["tid"] == "10000003" and ev["transactions"]
    assert PAN not in json.dumps(docs) and SPARE not in json.dumps(docs)
    for argv in (
        ("assign", "--id", tk, "--owner", "zhao", "--by", "desk"),
        ("comment", "--id", tk, "--text", "called the shop", "--by", "zhao"),
        ("resolve", "--id", tk, "--resolution", "merchant paid; resumed", "--by", "zhao"),
        ("close", "--id", tk, "--by", "desk"),
    ):
        rc, out, err = admin(host, "ticket", *argv)
        assert rc == 0, (argv, out, err)
    rc, _, err = admin(
        host, "ticket", "resolve", "--id", tk, "--resolution", "again", "--by", "zhao"
    )
    assert rc == 1 and "allowed from closed: reopen" in err
    rc, docs = run_json("admin", "--db", host.url, "ticket", "show", "--id", tk, "--brief")
    d = docs[0]
    assert d["status"] == "closed" and "evidence" not in d
    assert [h["action"] for h in d["history"]] == ["open", "assign", "resolve", "close"]
    assert d["comments"][0]["body"] == "called the shop" and d["allowed"] == ["reopen"]
    rc, out, _ = admin(host, "ticket", "show", "--id", tk, "--lang", "en")
    assert rc == 0 and "history:" in out and show(datetime.now(UTC))[:10] in out
    rc, docs = run_json("admin", "--db", host.url, "ticket", "list", "--status", "closed")
    assert rc == 0 and tk in [str(x["id"]) for x in docs]
