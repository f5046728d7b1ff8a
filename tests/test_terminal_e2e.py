"""The virtual terminal against a real host on loopback, through a real fault proxy.

Every terminal-side row of SCENARIOS.md: A8 (timeout and reversal), A9 (the
maintenance notice at sign-on), B1 (doctor), B3-B6, C1-C5 and the everyday E.
Faults are real TCP faults (:mod:`support.faultproxy`); the invariant checked
after each one is that the cardholder was charged once or not at all, and
that the outcome says which.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.hostproc import TEST_KEK, HostProcess, child_env, host  # noqa: F401

from clearpos.keys import KeyEncryptionKey
from clearpos.lab.faultproxy import Action, Fault, FaultProxy, Seen
from clearpos.terminal import CardInput, HostLink, Terminal
from clearpos.terminal.client import parse_address
from clearpos.wire import decode, decode_frame

TID = "10000001"
MID = "898310048161234"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KEK = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
RICH = CardInput("6222021234567890123", "2812", "123456")
SPARE = CardInput("6225880000001116", "2812", "123456")
OTHER = CardInput("6225880000001124", "2812", "123456")
FROZEN = CardInput("6225880000001025", "2812", "123456")
LONG = CardInput("6214830000000001138", "3006", "8888")
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def proxy(host: HostProcess) -> Iterator[FaultProxy]:  # noqa: F811 - the imported fixture
    p = FaultProxy(("127.0.0.1", host.port)).start()
    try:
        yield p
    finally:
        p.close()


def open_terminal(
    state: Path, address: str, *, timeout: float = 0.6, lang: str = "en", **kw: Any
) -> Terminal:
    h, port = parse_address(address)
    return Terminal(
        state,
        link=HostLink(h, port, timeout=timeout),
        tid=kw.pop("tid", TID),
        mid=kw.pop("mid", MID),
        tmk=kw.pop("tmk", TMK),
        kek=KEK,
        lang=lang,  # type: ignore[arg-type]
        **kw,
    )


def ready(state: Path, address: str, **kw: Any) -> Terminal:
    """A terminal with operator 01 signed in and the POS signed on."""
    t = open_terminal(state, address, **kw)
    out = t.login("01", "0000")
    assert out.approved, out.to_json()
    return t


def balance(t: Terminal, card: CardInput) -> int:
    out = t.balance(card)
    assert out.approved, out.to_json()
    fen = out.extra["balance_fen"]
    assert isinstance(fen, int)
    return fen


def fields_of(seen: Seen) -> dict[int, Any]:
    frame = decode_frame(seen.raw)
    return dict(decode(frame.body).fields)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def cli(
    state: Path, address: str, *args: str, timeout: float = 1.0
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "clearpos.cli", "pos", "--host", address, "--tid", TID,
        "--mid", MID, "--tmk", TMK.hex().upper(), "--state", str(state),
        "--timeout", str(timeout), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=60
    )


def assert_no_clear_card_data(directory: Path, *pans: str) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for pan in pans:
                assert pan.encode() not in data, f"clear PAN in {path}"


# ----------------------------------------------------------------------------- E: a day


def test_everyday_day_and_receipts(tmp_path: Path, host: HostProcess) -> None:  # noqa: F811
    state = tmp_path / "pos"
    with open_terminal(state, host.address) as t:
        login = t.login("01", "0000")
        assert login.approved and login.reason == "approved"
        assert t.signed_on and t.batch == login.extra["batch"]
        # A9: the maintenance notice is downloaded (processing requirement 1) and shown
        assert login.notice is not None and "02:00" in login.notice["text"]

        sale = t.purchase(1234, RICH)
        assert sale.approved and sale.charged and sale.code == "00" and sale.rrn
        assert sale.extra["pan"] == "622202*********0123"
        receipt = Path(sale.extra["receipt"]).read_text()
        assert receipt.count("622202*********0123") == 2  # merchant and customer copies
        assert "MERCHANT COPY" in receipt and "CUSTOMER COPY" in receipt
        assert sale.rrn in receipt and sale.extra["auth_code"] in receipt

        keyed = t.purchase(100, CardInput(OTHER.pan, OTHER.expiry, OTHER.pin, keyed=True))
        assert keyed.approved, keyed.to_json()
        nopin = t.purchase(200, CardInput(OTHER.pan, OTHER.expiry))
        assert nopin.approved, nopin.to_json()
        assert balance(t, RICH) == 100000 - 1234

        # B6: wrong amount -> void in the same batch (supervisor), refund later
        refused = t.void(sale.stan or "")
        assert refused.reason == "operator.wrong_password" and not refused.approved
        void = t.void(sale.stan or "", "123456")
        assert void.approved and void.extra["credited"] is True and not void.charged
        assert balance(t, RICH) == 100000
        again = t.void(sale.stan or "", "123456")
        assert again.reason == "transaction.already_voided"

        refund = t.refund(100, keyed.rrn or "", supervisor_password="123456")
        assert refund.approved and refund.extra["credited"] is True, refund.to_json()

        pre = t.preauth(5000, OTHER)
        assert pre.approved and pre.extra["held"] is True and not pre.charged
        done = t.complete(4500, pre.stan or "")
        assert done.approved and done.charged, done.to_json()
        cvoid = t.completion_void(done.stan or "", "123456")
        assert cvoid.approved, cvoid.to_json()
        pre2 = t.preauth(3000, OTHER)
        pvoid = t.preauth_void(pre2.stan or "", "123456")
        assert pvoid.approved, pvoid.to_json()

        declined = t.purchase(500, FROZEN)
        assert not declined.approved and declined.reason == "card.frozen" and declined.code == "62"
        assert declined.screen == "Card frozen - call issuing bank" and not declined.charged
        assert Path(declined.extra["receipt"]).exists()

        batch = t.batch
        settled = t.settle()
        assert settled.approved and settled.reason == "settlement.balanced", settled.to_json()
        assert t.batch == f"{int(batch) + 1:06d}"
        assert Path(settled.extra["receipt"]).exists()
        totals = settled.extra["totals"]["domestic"]
        # debits: 3 purchases (one of them voided) and the completion; credits: void,
        # refund and completion void (spec §4); the declined sale counts nowhere
        assert (totals["debit_count"], totals["debit_fen"]) == (4, 1234 + 100 + 200 + 4500)
        assert (totals["credit_count"], totals["credit_fen"]) == (3, 1234 + 100 + 4500)
        assert t.signoff().approved
        assert not t.signed_on
    # B5: the journal proves every attempt, with its reason
    with open_terminal(state, host.address) as t:
        kinds = [(r.kind, r.status, r.reason) for r in t.store.journal()]
        assert ("purchase", "declined", "card.frozen") in kinds
        assert ("void", "local", "operator.wrong_password") in kinds
    assert_no_clear_card_data(state, RICH.pan, OTHER.pan, FROZEN.pan)


# ----------------------------------------------------------------------------- CLI contract


def test_cli_json_contract_and_exit_status(tmp_path: Path, host: HostProcess) -> None:  # noqa: F811
    state = tmp_path / "pos"
    r = cli(state, host.address, "--json", "login", "--operator", "01", "--password", "0000")
    assert r.returncode == 0, r.stderr
    login = json.loads(r.stdout)
    assert login["notice"]["text_zh"] and login["approved"] is True

    r = cli(state, host.address, "purchase", "12.34", "--card", RICH.pan, "--expiry", "2812",
            "--pin", "123456", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for key in ("reason", "code", "approved", "screen", "stan", "rrn", "amount_fen", "charged",
                "remedy"):  # fmt: skip
        assert key in doc
    assert (doc["reason"], doc["code"], doc["approved"], doc["amount_fen"], doc["charged"]) == (
        "approved",
        "00",
        True,
        1234,
        True,
    )
    assert doc["screen"] == "交易成功"

    r = cli(state, host.address, "--lang", "en", "--json", "purchase", "5", "--card",
            FROZEN.pan, "--expiry", "2812", "--pin", "123456")  # fmt: skip
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert (doc["reason"], doc["code"], doc["approved"], doc["charged"]) == (
        "card.frozen",
        "62",
        False,
        False,
    )
    assert doc["screen"] == "Card frozen - call issuing bank" and doc["remedy"]

    r = cli(state, host.address, "purchase", "1.00", "--card", RICH.pan, "--expiry", "2812")
    assert r.returncode == 0 and "✔" in r.stdout and "622202*********0123" in r.stdout
    assert RICH.pan not in r.stdout + r.stderr

    for bad, message in (
        (["purchase", "12.345", "--card", RICH.pan, "--expiry", "2812"], "more than two decimals"),
        (["purchase", "abc", "--card", RICH.pan, "--expiry", "2812"], "not a number of yuan"),
        (["purchase", "0", "--card", RICH.pan, "--expiry", "2812"], "more than 0.00"),
        (["purchase", "1", "--card", "12345", "--expiry", "2812"], "13-19 digits"),
        (["purchase", "1", "--card", RICH.pan, "--expiry", "2813"], "month 01-12"),
        (["purchase", "1", "--card", RICH.pan, "--expiry", "2812", "--pin", "12"], "PIN"),
        (["void", "abc"], "STAN"),
        (["refund", "1", "--rrn", "12"], "RRN"),
    ):
        r = cli(state, host.address, *bad)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert message in r.stderr, (bad, r.stderr)
        assert RICH.pan not in r.stderr

    r = cli(state, host.address, "--json", "doctor")
    assert r.returncode == 0, r.stdout
    report = json.loads(r.stdout)
    assert report["ok"] is True and {c["name"] for c in report["checks"]} >= {
        "state directory", "host", "echo test", "signed on", "clock", "pending reversal",
        "offline queue", "batch", "software",
    }  # fmt: skip


# ----------------------------------------------------------------------------- A8 / B3: faults

FAULTS = {
    "drop request": Fault(Action.DROP_REQUEST, mti="0200"),
    "drop response": Fault(Action.DROP_RESPONSE, mti="0200"),
    "delay past timeout": Fault(Action.DELAY_RESPONSE, mti="0200", delay=1.5),
    "cut request mid-frame": Fault(Action.CUT_REQUEST, mti="0200", after_bytes=30),
    "cut response mid-frame": Fault(Action.CUT_RESPONSE, mti="0200", after_bytes=40),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_network_fault_customer_not_charged(tmp_path: Path, proxy: FaultProxy, fault: str) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        proxy.inject(FAULTS[fault])
        out = t.purchase(2500, SPARE)
        assert out.reason == "network.timeout" and not out.approved
        assert out.charged is False and out.extra["reversal_pending"] is False
        assert "Reversed: customer NOT charged" in out.lines
        assert out.screen == "Network timeout - not charged"
        assert "network" in out.screen.lower()  # A8: a network fault, not the card
        assert t.store.reversal() is None
        sent = proxy.requests("0200")[-1]
        reversal = proxy.requests("0400")[-1]
        assert fields_of(reversal)[11] == fields_of(sent)[11] == out.stan
        assert fields_of(reversal)[39] == "98"
        assert balance(t, SPARE) == 100000  # charged once or not at all: here not at all
        again = t.purchase(2500, SPARE)  # repeated by the operator: a new STAN
        assert again.approved and again.stan != out.stan
        assert balance(t, SPARE) == 100000 - 2500


def test_duplicate_request_is_charged_once(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        proxy.inject(Fault(Action.DUPLICATE, mti="0200"))
        out = t.purchase(700, SPARE)
        assert out.approved and out.charged
        wait_for(lambda: len([s for s in proxy.seen if s.mti == "0210"]) == 2)
        codes = sorted(fields_of(s)[39] for s in proxy.seen if s.mti == "0210")
        assert codes == ["00", "94"]  # C5: the host refuses the duplicate
        assert balance(t, SPARE) == 100000 - 700


def test_reversal_not_delivered_goes_first_next_time(tmp_path: Path, proxy: FaultProxy) -> None:
    state = tmp_path / "pos"
    with ready(state, proxy.address) as t:
        proxy.inject(
            Fault(Action.DROP_RESPONSE, mti="0200"), Fault(Action.DROP_REQUEST, mti="0400", times=3)
        )
        out = t.purchase(3000, SPARE)
        assert out.reason == "network.timeout" and out.charged is False
        assert out.extra["reversal_pending"] is True
        assert any("NOT be charged in the end" in line for line in out.lines)
        assert len(proxy.requests("0400")) == 3  # up to 3 tries
        pending = t.store.reversal()
        assert pending is not None and pending.stan == out.stan
        # doctor, host down: says so, with the exact remedy
        proxy.down()
        report = t.doctor()
        assert not report.ok
        lines = {c.name: c for c in report.checks}
        assert not lines["pending reversal"].ok and out.stan in lines["pending reversal"].detail
        assert not lines["host"].ok and lines["host"].remedy
        # nothing else goes while the reversal cannot: another sale is refused, not sent
        blocked = t.purchase(100, OTHER)
        assert blocked.reason == "network.unreachable" and blocked.charged is False
        proxy.up()
        before = len(proxy.requests())
        nxt = t.purchase(1000, SPARE)
        assert nxt.approved
        order = [s.mti for s in proxy.requests()[before:]]
        assert order == ["0400", "0200"], order
        assert t.store.reversal() is None
        assert balance(t, SPARE) == 100000 - 1000


def test_killed_while_waiting_sends_reversal_first(tmp_path: Path, proxy: FaultProxy) -> None:
    state = tmp_path / "pos"
    r = cli(state, proxy.address, "login", "--operator", "01", "--password", "0000")
    assert r.returncode == 0, r.stderr
    proxy.inject(Fault(Action.DELAY_RESPONSE, mti="0200", delay=3))
    cmd = [
        sys.executable, "-m", "clearpos.cli", "pos", "--state", str(state), "--timeout", "10",
        "--json", "purchase", "40.00", "--card", SPARE.pan, "--expiry", "2812", "--pin", "123456",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=child_env(), cwd=ROOT, stdout=subprocess.PIPE)
    wait_for(lambda: len(proxy.requests("0200")) == 1, timeout=10)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    stan = fields_of(proxy.requests("0200")[0])[11]
    before = len(proxy.requests())
    r = cli(state, proxy.address, "--json", "echo")
    assert r.returncode == 0, r.stdout + r.stderr
    after = proxy.requests()[before:]
    assert [s.mti for s in after] == ["0400", "0820"]
    assert fields_of(after[0])[11] == stan and fields_of(after[0])[39] == "98"
    assert json.loads(r.stdout)["reversal"]["done"] is True
    with open_terminal(state, proxy.address) as t:
        assert balance(t, SPARE) == 100000  # the host had approved it; the reversal undid it
        assert any(fields_of(s)[39] == "00" for s in proxy.seen if s.mti == "0210")


class _Crash(BaseException):
    """Stands for the process dying between the answer and its recording."""


def test_crash_after_approval_reverses_with_96(
    tmp_path: Path, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "pos"
    t = ready(state, proxy.address)
    real = type(t.store).finish

    def dying(self: Any, journal_id: int, **kw: Any) -> None:
        if kw.get("status") == "approved":
            raise _Crash
        real(self, journal_id, **kw)

    monkeypatch.setattr(type(t.store), "finish", dying)
    with pytest.raises(_Crash):
        t.purchase(1500, SPARE)
    t.close()
    monkeypatch.setattr(type(t.store), "finish", real)
    with open_terminal(state, proxy.address) as t:
        pending = t.store.reversal()
        assert pending is not None and pending.reason_code == "96"
        assert balance(t, SPARE) == 100000  # the balance inquiry sent the reversal first
        assert fields_of(proxy.requests("0400")[-1])[39] == "96"
        assert t.store.reversal() is None


def test_approved_answer_with_bad_mac_is_reversed_a0(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        proxy.inject(Fault(Action.CORRUPT_RESPONSE, mti="0200"))
        out = t.purchase(800, SPARE)
        assert out.reason == "mac.invalid" and not out.approved and out.charged is False
        assert out.extra["host_code"] == "00"
        assert "Reversed: customer NOT charged" in out.lines
        assert out.extra.get("resigned_on") is True
        assert "Signed on again - please repeat the transaction" in out.lines
        assert fields_of(proxy.requests("0400")[-1])[39] == "A0"
        assert balance(t, SPARE) == 100000


# ----------------------------------------------------------------------------- C: sign on again


def test_host_rotated_keys_resign_and_repeat(tmp_path: Path, proxy: FaultProxy) -> None:
    """C1/C3: another sign-on of the same TID rotates the keys: A0, re-sign-on, repeat."""
    with ready(tmp_path / "a", proxy.address) as a:
        with ready(tmp_path / "b", proxy.address):
            pass
        before = len(proxy.requests())
        out = a.purchase(900, SPARE)
        assert out.code == "A0" and out.reason in ("mac.invalid", "terminal.not_signed_on")
        assert not out.approved and out.charged is False
        assert out.extra.get("resigned_on") is True
        assert "Signed on again - please repeat the transaction" in out.lines
        mtis = [s.mti for s in proxy.requests()[before:]]
        assert mtis[:2] == ["0200", "0800"] and mtis.count("0200") == 1  # never re-sent
        again = a.purchase(900, SPARE)
        assert again.approved and again.stan != out.stan
        assert balance(a, SPARE) == 100000 - 900


def test_signed_off_elsewhere_host_asks_sign_on(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "a", proxy.address) as a:
        with ready(tmp_path / "b", proxy.address) as b:
            assert b.signoff().approved
        out = a.purchase(900, SPARE)
        assert out.code == "A0" and out.extra.get("resigned_on") is True
        assert a.purchase(900, SPARE).approved


def test_batch_mismatch_77_resign_takes_host_batch(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        host_batch = t.batch
        t.store.put(batch="000042")  # the terminal lost track of the batch
        out = t.purchase(600, SPARE)
        assert out.code == "77" and out.reason == "terminal.batch_mismatch"
        assert out.extra.get("resigned_on") is True and t.batch == host_batch
        assert "Signed on again - please repeat the transaction" in out.lines
        assert t.purchase(600, SPARE).approved


def test_operator_sign_in_rules(tmp_path: Path, proxy: FaultProxy) -> None:
    """C4: no operator, wrong password, no supervisor, not signed on -- nothing is sent."""
    with open_terminal(tmp_path / "pos", proxy.address) as t:
        out = t.purchase(100, SPARE)
        assert out.reason == "operator.not_signed_in" and out.charged is False
        assert out.screen == "Operator sign-in required" and out.remedy
        wrong = t.login("01", "9999")
        assert wrong.reason == "operator.wrong_password" and not wrong.approved
        assert proxy.requests() == []
        assert t.login("01", "0000").approved
        assert t.signoff().approved
        out = t.purchase(100, SPARE)
        assert out.reason == "terminal.not_signed_on" and not out.approved
        n = len(proxy.requests())
        assert t.signon().approved
        sale = t.purchase(100, SPARE)
        assert sale.approved
        assert t.void(sale.stan or "", "0000").reason == "operator.wrong_password"
        assert t.login("99", "123456").approved
        assert t.void(sale.stan or "").approved  # the signed-in supervisor may void
        assert [s.mti for s in proxy.requests()[n:]][:1] == ["0800"]


# ----------------------------------------------------------------------------- offline


def test_offline_sale_stored_and_uploaded_first(tmp_path: Path, proxy: FaultProxy) -> None:
    state = tmp_path / "pos"
    with ready(state, proxy.address, floor_limit_fen=10000) as t:
        proxy.down()
        off = t.purchase(5000, OTHER)
        assert off.approved and off.reason == "offline.stored" and off.charged is True
        assert off.extra["auth_code"] and Path(off.extra["receipt"]).exists()
        big = t.purchase(20000, OTHER)
        assert big.reason == "network.unreachable" and big.charged is False
        assert "Not sent: customer NOT charged" in big.lines
        report = t.doctor()
        assert not report.ok
        assert not next(c for c in report.checks if c.name == "offline queue").ok
        proxy.up()
        before = len(proxy.requests())
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0220"))  # first upload's answer is lost
        lost = t.purchase(100, SPARE)
        assert lost.reason == "network.timeout" and lost.charged is False
        assert [s.mti for s in proxy.requests()[before:]] == ["0220"]  # the sale was not sent
        sale = t.purchase(100, SPARE)
        assert sale.approved
        uploads = proxy.requests("0220")
        assert len(uploads) == 2 and fields_of(uploads[0])[11] == fields_of(uploads[1])[11]
        assert sale.extra["offline_uploads"][0]["code"] == "94"  # host had it: delivered
        assert proxy.request_mtis()[-2:] == ["0220", "0200"]
        assert balance(t, OTHER) == 100000 - 5000  # charged once
        settled = t.settle()
        assert settled.reason == "settlement.balanced", settled.to_json()
        assert settled.extra["totals"]["domestic"]["debit_fen"] == 5000 + 100
    assert_no_clear_card_data(state, OTHER.pan, SPARE.pan)


# ----------------------------------------------------------------------------- refunds, settlement


def test_refund_answer_lost_is_unknown_never_resent(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        sale = t.purchase(4000, SPARE)
        assert sale.approved
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0220"))
        out = t.refund(1000, sale.rrn or "", supervisor_password="123456")
        assert out.reason == "network.timeout" and not out.approved
        assert out.extra["credited"] is None
        assert any("do NOT refund again" in line for line in out.lines)
        assert "clearpos diagnose --rrn" in out.remedy[0]
        assert len(proxy.requests("0220")) == 1
        assert proxy.requests("0400") == []  # a refund is never reversed
        settled = t.settle()  # the host has the refund, the terminal does not know it
        assert settled.approved, settled.to_json()
        assert settled.reason == "settlement.unbalanced"
        assert proxy.requests("0320"), "batch upload expected"
        assert len(proxy.requests("0220")) == 1


def test_unbalanced_settlement_uploads_batch(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address, floor_limit_fen=10000) as t:
        cards = (RICH, SPARE, LONG) * 3  # at most 5 sales per card a minute (risk rule A6)
        sales = [t.purchase(100 + i, card) for i, card in enumerate(cards)]
        assert all(s.approved for s in sales), [s.reason for s in sales]
        refund = t.refund(50, sales[0].rrn or "", supervisor_password="123456")
        assert refund.approved
        proxy.down()
        assert t.purchase(300, OTHER).reason == "offline.stored"
        proxy.up()
        # the terminal "forgets" one approved sale: its totals no longer agree with the host's
        lost = sales[-1]
        t.store._db.execute("UPDATE journal SET status = 'declined' WHERE stan = ?", (lost.stan,))
        batch = t.batch
        out = t.settle()
        assert out.reason == "settlement.unbalanced" and out.approved, out.to_json()
        uploads = proxy.requests("0320")
        netcodes = [str(fields_of(u)[60])[8:11] for u in uploads]
        assert netcodes[-1] == "202" and netcodes[:-1] == ["201"] * (len(uploads) - 1)
        assert out.extra["uploaded_records"] == 8 + 1 + 1  # 8 sales, refund, offline sale
        assert str(fields_of(uploads[-1])[48]) == "0010"
        assert t.batch == f"{int(batch) + 1:06d}"
        assert t.settle().reason == "settlement.balanced"  # the new batch is empty


def test_void_lost_answer_original_stands(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        sale = t.purchase(1200, SPARE)
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0200"))
        out = t.void(sale.stan or "", "123456")
        assert out.reason == "network.timeout" and out.extra["credited"] is False
        assert "Void not done (reversed): the original sale stands" in out.lines
        assert balance(t, SPARE) == 100000 - 1200
        assert t.void(sale.stan or "", "123456").approved
        assert balance(t, SPARE) == 100000


# ----------------------------------------------------------------------------- B1 doctor, C5


def test_doctor_reports_each_problem_with_remedy(tmp_path: Path, proxy: FaultProxy) -> None:
    with open_terminal(tmp_path / "pos", proxy.address, lang="zh") as t:
        report = t.doctor()
        lines = {c.name: c for c in report.checks}
        assert not report.ok and not lines["signed on"].ok and lines["signed on"].remedy
        assert lines["host"].ok and lines["echo test"].ok
        assert t.login("01", "0000").approved
        report = t.doctor()
        assert report.ok, report.render("en")
        lines = {c.name: c for c in report.checks}
        assert "PIK" in lines["signed on"].detail and "MAK" in lines["signed on"].detail
        assert "秒" in lines["clock"].detail
        t.store.put(clock_skew={"seconds": 3600.0, "at": "test"})
        report = t.doctor()  # the echo measures the skew again: back to OK
        assert next(c for c in report.checks if c.name == "clock").ok
        proxy.down()
        report = t.doctor()
        lines = {c.name: c for c in report.checks}
        assert not report.ok and not lines["host"].ok and not lines["echo test"].ok
        assert all(c.remedy for c in report.checks if not c.ok)


def test_stan_is_new_for_every_request(tmp_path: Path, proxy: FaultProxy) -> None:
    with ready(tmp_path / "pos", proxy.address) as t:
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0200"))
        t.purchase(100, SPARE)
        t.purchase(100, SPARE)
        t.echo()
        stans = [fields_of(s)[11] for s in proxy.requests() if s.mti in ("0200", "0800", "0820")]
        assert len(stans) == len(set(stans))


def test_update_required_terminal_refused_and_doctor_says_so(
    tmp_path: Path, proxy: FaultProxy
) -> None:
    """D4/B7 from the terminal side: the host's minimum software, shown by doctor."""
    with open_terminal(
        tmp_path / "pos", proxy.address, tid="10000006", tmk=bytes.fromhex(
            "0F1E2D3C4B5A69788796A5B4C3D2E1F0")
    ) as t:  # fmt: skip
        out = t.login("01", "0000")
        assert not out.approved and out.reason == "terminal.update_required", out.to_json()
        software = next(c for c in t.doctor().checks if c.name == "software")
        assert not software.ok and software.remedy


def test_cli_timeout_screen_says_not_charged(tmp_path: Path, proxy: FaultProxy) -> None:
    state = tmp_path / "pos"
    assert (
        cli(state, proxy.address, "login", "--operator", "01", "--password", "0000").returncode == 0
    )
    # per-connection scheduling: the next connection's first frame is the sale itself
    proxy.inject(Fault(Action.DROP_RESPONSE, connection=proxy.connections + 1, frame=1))
    r = cli(state, proxy.address, "purchase", "9.99", "--card", SPARE.pan, "--expiry", "2812",
            "--pin", "123456", timeout=0.5)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "网络超时，顾客未被扣款" in r.stdout and "已冲正，顾客未被扣款" in r.stdout
    assert SPARE.pan not in r.stdout
    receipts = sorted((state / "receipts").glob("*.txt"))
    assert receipts and "已冲正，顾客未被扣款" in receipts[-1].read_text()
    r = cli(state, proxy.address, "--json", "balance", "--card", SPARE.pan, "--expiry", "2812",
            "--pin", "123456")  # fmt: skip
    assert json.loads(r.stdout)["balance_fen"] == 100000
