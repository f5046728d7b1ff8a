"""The virtual terminal without a host: inputs, state, sealing, screens and receipts."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.hostproc import TEST_KEK, child_env, free_port

from clearpos.keys import KeyEncryptionKey
from clearpos.reasons import catalog
from clearpos.terminal import CardInput, HostLink, StateLockedError, Store, Terminal
from clearpos.terminal.cli import parse_amount
from clearpos.terminal.client import NoAnswer, Unreachable, parse_address
from clearpos.terminal.machine import TerminalError, parse_operators
from clearpos.terminal.receipts import Receipt
from clearpos.terminal.screens import Outcome, fen_text, reason_of, screen_of
from clearpos.terminal.store import RequestSealer, without_pin
from clearpos.wire import Card, FinancialRequest, Kind

PAN = "6222021234567890123"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KEK = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12.34", 1234), ("12", 1200), ("0.5", 50), ("0.01", 1), ("1000.00", 100000)],
)
def test_amounts(text: str, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("12.345", "more than two decimals"),
        ("-1", "not a number of yuan"),
        ("1,000", "not a number of yuan"),
        ("1e3", "not a number of yuan"),
        ("0.00", "more than 0.00"),
        ("", "not a number of yuan"),
    ],
)
def test_bad_amounts_say_why(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        parse_amount(text)


def test_operators_are_hashed_and_validated() -> None:
    ops = parse_operators("01:0000,99:123456:supervisor")
    assert set(ops) == {"01", "99"} and ops["99"]["supervisor"] and not ops["01"]["supervisor"]
    assert "0000" not in json.dumps(ops) and "123456" not in json.dumps(ops)
    for bad in ("01", "01:", "x1:00", "01:00:boss", ""):
        with pytest.raises(ValueError) as info:
            parse_operators(bad)
        assert "123456" not in str(info.value)


def test_address() -> None:
    assert parse_address("127.0.0.1:5800") == ("127.0.0.1", 5800)
    for bad in ("localhost", ":1", "h:0", "h:x"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_stan_cycles_and_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path)
    assert s.next_stan() == "000001"
    s.put(stan=999998)
    assert [s.next_stan(), s.next_stan(), s.next_stan()] == ["999999", "000001", "000002"]
    with pytest.raises(StateLockedError):
        Store(tmp_path)  # one command at a time per state directory
    s.close()
    s = Store(tmp_path)
    assert s.next_stan() == "000003"
    s.close()


def test_reversal_written_before_send_and_cleared_atomically(tmp_path: Path) -> None:
    s = Store(tmp_path)
    jid = s.begin_send(
        {"kind": "purchase", "stan": "000007", "batch": "000001", "amount_fen": 100},
        {"stan": "000007", "batch": "000001", "kind": "purchase", "amount_fen": 100,
         "pan": "622202*********0123", "sealed": "v1:x"},
    )  # fmt: skip
    s.close()
    s = Store(tmp_path)  # as after a crash: both the attempt and its reversal are there
    pending = s.reversal()
    assert pending is not None and pending.reason_code == "98" and pending.journal_id == jid
    assert s.journal_row(jid).status == "sending"
    s.set_reversal_reason("96")
    assert s.reversal() is not None and s.reversal().reason_code == "96"  # type: ignore[union-attr]
    s.finish(jid, clear_reversal=True, status="approved")
    assert s.reversal() is None and s.journal_row(jid).status == "approved"
    s.close()


def test_sealed_requests_keep_no_pin_and_no_clear_pan(tmp_path: Path) -> None:
    sealer = RequestSealer(KEK, "10000001")
    card = Card.swiped(PAN, "2812", pin_block=bytes(8))
    req = FinancialRequest(kind=Kind.PURCHASE, tid="10000001", mid="898310048161234",
                           stan="000001", batch="000001", amount_fen=100, card=card)  # fmt: skip
    sealed = sealer.seal(req)
    assert PAN not in sealed
    back = sealer.open(sealed)
    assert back.card is not None and back.card.pin_block is None and back.card.pan == PAN
    assert back.card.entry_mode == "022" and without_pin(card).entry_mode == "022"
    other = RequestSealer(KEK, "10000002")  # bound to the terminal id
    with pytest.raises(ValueError):
        other.open(sealed)


def test_first_use_needs_ids_and_tmk(tmp_path: Path) -> None:
    link = HostLink("127.0.0.1", free_port(), timeout=0.2)
    with pytest.raises(TerminalError, match="--tmk"):
        Terminal(tmp_path / "a", link=link, tid="10000001", mid="898310048161234", kek=KEK)
    with pytest.raises(TerminalError, match="8 characters"):
        Terminal(tmp_path / "b", link=link, tid="1", mid="898310048161234", tmk=TMK, kek=KEK)
    t = Terminal(tmp_path / "c", link=link, tid="10000001", mid="898310048161234", tmk=TMK,
                 kek=KEK)  # fmt: skip
    t.close()
    with pytest.raises(TerminalError, match="belongs to terminal 10000001"):
        Terminal(tmp_path / "c", link=link, tid="10000002", kek=KEK)
    t = Terminal(tmp_path / "c", link=link, kek=KEK)  # everything else comes from the state
    assert t.tid == "10000001" and t.operators() == {"01": False, "99": True}
    t.close()
    raw = (tmp_path / "c" / "terminal.db").read_bytes()
    assert TMK not in raw and TMK.hex().upper().encode() not in raw


def test_unreachable_host_refuses_locally_and_doctor_says_what_to_do(tmp_path: Path) -> None:
    link = HostLink("127.0.0.1", free_port(), timeout=0.2)
    with Terminal(tmp_path, link=link, tid="10000001", mid="898310048161234", tmk=TMK, kek=KEK,
                  lang="en") as t:  # fmt: skip
        out = t.login("01", "0000")
        assert out.reason == "network.unreachable" and not out.approved
        assert t.operator == "01" and not t.signed_on
        out = t.purchase(100, CardInput(PAN, "2812"))
        assert out.reason == "terminal.not_signed_on" and out.charged is False
        report = t.doctor()
        assert not report.ok
        by = {c.name: c for c in report.checks}
        assert by["state directory"].ok and not by["host"].ok and not by["signed on"].ok
        assert by["pending reversal"].ok and by["offline queue"].ok
        assert all(c.remedy for c in report.checks if not c.ok)
        assert "FAIL" in report.render("en")


def test_link_errors_are_told_apart() -> None:
    with pytest.raises(Unreachable):
        HostLink("127.0.0.1", free_port(), timeout=0.2).connect()
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    link = HostLink("127.0.0.1", server.getsockname()[1], timeout=0.2)
    with pytest.raises(NoAnswer, match="no answer within"):
        link.exchange(b"\x00\x15" + bytes(21), lambda f: True)
    server.close()


def test_screens_come_from_the_catalog() -> None:
    assert screen_of("card.frozen", "62", "zh") == catalog()["card.frozen"].screen_text("zh")
    assert screen_of("no.such.key", "51", "en") == catalog().code_text("51", "en")
    assert reason_of("51", "") == "card.insufficient_funds"
    assert reason_of("00", "approved") == "approved"
    assert fen_text(1234) == "¥12.34" and fen_text(5) == "¥0.05"
    out = Outcome("purchase", "approved", "00", True, "交易成功", stan="000001",
                  rrn="000000000001", amount_fen=100, charged=True, financial=True)  # fmt: skip
    doc = out.to_json()
    assert {"reason", "code", "approved", "screen", "stan", "rrn", "amount_fen", "charged",
            "remedy"} <= set(doc)  # fmt: skip
    assert out.exit_status == 0


def test_receipt_masks_and_has_both_copies() -> None:
    r = Receipt(kind="purchase", tid="10000001", mid="898310048161234", operator="01",
                pan="622202*********0123", entry="021", amount_fen=1234, batch="000001",
                stan="000017", approved=False, screen="卡已冻结，请联系发卡行",
                reason="card.frozen", code="62", rrn="000000000002",
                lines=("顾客未被扣款",))  # fmt: skip
    text = r.text("zh")
    assert "商户存根" in text and "持卡人存根" in text and PAN not in text
    assert text.count("card.frozen (62)") == 2 and "¥12.34" in text
    assert "Reason: card.frozen (62)" in r.text("en")
    assert "AID" not in text and "ATC" not in text  # a swipe has no chip lines


def test_chip_receipt_shows_aid_label_cryptograms_and_atc_on_both_copies() -> None:
    r = Receipt(kind="purchase", tid="10000001", mid="898310048161234", operator="01",
                pan="621483*********2144", entry="051", amount_fen=1234, batch="000001",
                stan="000018", approved=True, screen="交易成功", reason="approved", code="00",
                aid="A000000333010101", app_label="UnionPay Debit", arqc="1A2B3C4D5E6F7081",
                tc="9F8E7D6C5B4A3928", atc=26)  # fmt: skip
    text = r.text("en")
    for line in ("AID:" + " " * 8 + "A000000333010101", "App label:  UnionPay Debit",
                 "ARQC:" + " " * 7 + "1A2B3C4D5E6F7081", "TC:" + " " * 9 + "9F8E7D6C5B4A3928",
                 "ATC:" + " " * 8 + "001A"):  # fmt: skip
        assert text.count(line) == 2, (line, text)
    assert r.text("zh").count("应用标签:") == 2


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clearpos.cli", "pos", *args],
                              capture_output=True, text=True, env=child_env(), cwd=tmp_path)  # fmt: skip

    r = run("--host", "127.0.0.1:1", "echo")
    assert r.returncode == 2 and "--tid" in r.stderr
    r = run("--host", "127.0.0.1:1", "--tid", "10000001", "--mid", "898310048161234", "echo")
    assert r.returncode == 2 and "--tmk" in r.stderr
    r = run("--tmk", "0123", "echo")
    assert r.returncode == 2 and "32 hex digits" in r.stderr
    r = run("--tid", "10000001", "purchase", "1.234", "--card", PAN, "--expiry", "2812")
    assert r.returncode == 2 and "more than two decimals" in r.stderr
    r = run("--tid", "10000001", "--host", "127.0.0.1:1", "--mid", "898310048161234",
            "--tmk", TMK.hex(), "--timeout", "0.2", "--json", "echo")  # fmt: skip
    assert r.returncode == 1
    assert json.loads(r.stdout)["reason"] == "network.unreachable"
    state = tmp_path / "pos-state" / "10000001"
    assert (state / "terminal.db").exists()
    db = sqlite3.connect(state / "terminal.db")
    assert db.execute("SELECT value FROM config WHERE key = 'tid'").fetchone()[0] == '"10000001"'
