"""The host end to end: real TCP on loopback, a real store, a real process.

Every test that starts a host runs twice (the ``store`` fixture of conftest.py):
on a SQLite file, and on a fresh PostgreSQL database with two host processes.

Every host-side row of SCENARIOS.md (A1-A10, C1, C3, C5, D1-D4, E) and every
message of spec/pos8583.md §4. After each module the audit must find nothing.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from host_fixture import TEST_KEK, HostProc, Store, start_host, world_with
from hostclient import MID, PAN, Client

from clearpos.audit import run_audit
from clearpos.wire import (
    TPDU,
    BatchRecord,
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    Card,
    FinancialResponse,
    Header,
    Kind,
    NetworkRequest,
    OriginalRef,
    Param,
    ParameterDownload,
    ParameterDownloadResponse,
    Reversal,
    Settlement,
    Settlement48,
    SettlementResponse,
    Totals,
    decode,
    encode,
    encode_frame,
)

LOW = "6225880000001017"  # A1 balance 5.00
FROZEN = "6225880000001025"
LOST = "6225880000001033"
STOLEN = "6225880000001041"
EXPIRED_STATUS = "6225880000001058"
EXPIRED_DATE = "6225880000001066"  # expiry 2401
CLOSED = "6225880000001074"
DAILY = "6225880000001082"  # daily limit 100.00
VISA = "4000000000002016"
VELOCITY = "6225880000001090"
WRONG_PIN = "6225880000001108"
SPARE = "6225880000001116"
SPARE2 = "6225880000001124"

TMKS = {
    "10000002": bytes.fromhex("1F2E3D4C5B6A79880897A6B5C4D3E2F1"),
    "10000003": bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90"),
    "10000004": bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
    "10000005": bytes.fromhex("FEDCBA98765432100123456789ABCDEF"),
    "10000006": bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
    "10000007": bytes.fromhex("5A5A5A5AA5A5A5A53C3C3C3CC3C3C3C3"),
}
MIDS = {
    "10000002": "898310048162001",
    "10000003": "898310048163002",
    "10000004": "898310048164003",
    "10000005": "898310048161234",
    "10000006": "898310048161234",
    "10000007": "898310048161234",
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    h = start_host(tmp_path_factory.mktemp("host"), store=store)
    yield h
    h.stop()
    assert run_audit(h.url) == []
    assert PAN not in h.log_text()


def client(h: HostProc, tid: str = "10000001", **kw: object) -> Client:
    if tid != "10000001":
        kw.setdefault("tmk", TMKS[tid])
        kw.setdefault("mid", MIDS[tid])
    return Client(h.host, h.port, tid=tid, **kw).connect()  # type: ignore[arg-type]


def signed_on(h: HostProc, tid: str = "10000001", **kw: object) -> Client:
    c = client(h, tid, **kw)
    r = c.sign_on()
    assert r.code == "00", r.reason
    return c


def balance(h: HostProc, pan: str) -> int:
    from clearpos.keys import KeyEncryptionKey
    from clearpos.keys.tokens import PanTokenizer

    tok = PanTokenizer(KeyEncryptionKey(bytes.fromhex("5e" * 32))).token(pan)
    row = h.one("SELECT balance_fen - holds_fen FROM cards WHERE pan_token = ?", (tok,))
    return int(row[0])


def journal(h: HostProc, rrn: str) -> dict[str, object]:
    d = h.rows("SELECT * FROM journal WHERE id = ?", (int(rrn),))[0]
    d["facts"] = json.loads(str(d["facts"]))
    return d


# --------------------------------------------------------------------------- sign-on, E


def test_sign_on_delivers_keys_and_batch(host: HostProc) -> None:
    c = client(host)
    r = c.sign_on()
    assert (r.code, r.reason) == ("00", "approved")
    assert c.keys.signed_on  # check values verified by TerminalKeys.accept_field62
    assert r.msg.batch == "000001"  # type: ignore[union-attr]
    assert r.frame.tpdu == TPDU(0x0000, 0x0003)  # swapped
    assert r.processing == 1  # the world has maintenance notices the terminal has not downloaded


def test_parameter_download_clears_the_notice_flag(host: HostProc) -> None:
    c = signed_on(host, "10000007")
    r = c.send(ParameterDownload(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch))
    assert isinstance(r.msg, ParameterDownloadResponse) and r.code == "00"
    notices = [rec.value for rec in r.msg.records if rec.tag == Param.NOTICE_ZH]
    assert notices and "维护" in notices[0]
    assert r.msg.param(Param.NOTICE_START) is not None
    echo = c.send(
        NetworkRequest(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="301")
    )
    assert echo.code == "00" and echo.processing == 0


def test_purchase_approved_with_mac_and_money_moves(host: HostProc) -> None:
    c = signed_on(host)
    before = balance(host, PAN)
    r = c.purchase(1234)
    assert (r.code, r.reason) == ("00", "approved")
    assert r.mac_ok is True
    assert isinstance(r.msg, FinancialResponse)
    assert (
        r.msg.organisation == "CUP"
        and len(r.msg.auth_code or "") == 6
        and len(r.msg.rrn or "") == 12
    )
    assert balance(host, PAN) == before - 1234
    j = journal(host, r.msg.rrn or "")
    assert j["pan_masked"] == "622202*********0123" and j["latency_us"]


def test_keyed_entry_and_no_pin(host: HostProc) -> None:
    c = signed_on(host)
    r = c.purchase(100, card=c.card(SPARE2, keyed=True, pin=None))
    assert r.code == "00"


def test_balance_inquiry_returns_field_54(host: HostProc) -> None:
    c = signed_on(host)
    r = c.send(c.request(Kind.BALANCE, None, c.card(SPARE2)))
    assert r.code == "00" and isinstance(r.msg, FinancialResponse) and r.msg.balance is not None
    assert r.msg.balance.amount_fen == balance(host, SPARE2)


# --------------------------------------------------------------------------- A: user status


@pytest.mark.parametrize(
    ("pan", "expiry", "code", "reason"),
    [
        (LOW, "2812", "51", "card.insufficient_funds"),  # A1
        (FROZEN, "2812", "62", "card.frozen"),  # A2
        (EXPIRED_STATUS, "2812", "54", "card.expired"),  # A3
        (EXPIRED_DATE, "2401", "54", "card.expired"),  # A3 by date
        (LOST, "2812", "41", "card.lost"),  # A4
        (STOLEN, "2812", "43", "card.stolen"),  # A4
        (CLOSED, "2812", "62", "card.closed"),
        ("6222020000000000009", "2812", "14", "card.unknown"),
    ],
)
def test_card_states(host: HostProc, pan: str, expiry: str, code: str, reason: str) -> None:
    c = signed_on(host)
    r = c.purchase(1000, card=c.card(pan, expiry))
    assert (r.code, r.reason) == (code, reason)
    assert r.mac_ok is None  # declines carry no MAC


def test_a5_daily_limit(host: HostProc) -> None:
    c = signed_on(host)
    assert c.purchase(6000, card=c.card(DAILY)).code == "00"
    r = c.purchase(5000, card=c.card(DAILY))
    assert (r.code, r.reason) == ("61", "card.daily_limit")


def test_a5_merchant_single_limit(host: HostProc) -> None:
    c = signed_on(host, "10000002")
    r = c.purchase(50001, card=c.card(SPARE))
    assert (r.code, r.reason) == ("61", "merchant.single_limit")


def test_a6_velocity_locks_the_card(host: HostProc) -> None:
    c = signed_on(host)
    for _ in range(5):
        assert c.purchase(1, card=c.card(VELOCITY)).code == "00"
    r = c.purchase(1, card=c.card(VELOCITY))
    assert (r.code, r.reason) == ("65", "risk.card_velocity")
    assert "until" in journal(host, r.msg.rrn or "")["facts"]  # type: ignore[operator]
    assert c.purchase(1, card=c.card(VELOCITY)).reason == "risk.card_velocity"


def test_a7_wrong_pin_three_times_locks(host: HostProc) -> None:
    c = signed_on(host)
    r1 = c.purchase(100, card=c.card(WRONG_PIN, pin="000000"))
    assert (r1.code, r1.reason) == ("55", "card.wrong_pin")
    assert journal(host, r1.msg.rrn or "")["facts"] == {"tries_left": 2}
    assert c.purchase(100, card=c.card(WRONG_PIN, pin="000000")).reason == "card.wrong_pin"
    r3 = c.purchase(100, card=c.card(WRONG_PIN, pin="000000"))
    assert (r3.code, r3.reason) == ("75", "card.pin_tries_exceeded")
    assert c.purchase(100, card=c.card(WRONG_PIN)).code == "75"  # even the right PIN


def test_pin_block_that_cannot_be_processed(host: HostProc) -> None:
    c = signed_on(host)
    card = Card.swiped(SPARE2, "2812", pin_block=b"\x00" * 8)
    r = c.purchase(100, card=card)
    assert (r.code, r.reason) == ("99", "pin.format_error")


# --------------------------------------------------------------------------- A8: reversal


def test_a8_reversal_restores_money_exactly_once(host: HostProc) -> None:
    c = signed_on(host)
    before = balance(host, SPARE)
    req = c.request(Kind.PURCHASE, 2500, c.card(SPARE))
    assert c.send(req).code == "00"
    assert balance(host, SPARE) == before - 2500
    rev = Reversal.of(Client.strip_pin(req) if hasattr(Client, "strip_pin") else req, "98")
    r = c.send(rev)
    assert (r.code, r.reason) == ("00", "approved") and r.mac_ok is True
    assert balance(host, SPARE) == before
    again = c.send(rev)
    assert (again.code, again.reason) == ("12", "transaction.already_voided")
    assert balance(host, SPARE) == before


def test_a8_reversal_before_the_original_makes_the_original_a_duplicate(host: HostProc) -> None:
    c = signed_on(host)
    before = balance(host, SPARE)
    req = c.request(Kind.PURCHASE, 700, c.card(SPARE))
    r = c.send(Reversal.of(req, "98"))
    assert (r.code, r.reason) == ("25", "transaction.original_not_found")
    late = c.send(req)  # the delayed original finally arrives
    assert (late.code, late.reason) == ("94", "transaction.duplicate")
    assert balance(host, SPARE) == before


# --------------------------------------------------------------------------- A9: maintenance


def _window(who: str, start: timedelta, end: timedelta) -> str:
    now = datetime.now(UTC)
    return (
        f'[[maintenance]]\nwho = "{who}"\nstart = {(now + start).strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
        f"end = {(now + end).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        'notice_zh = "系统维护，暂停交易"\nnotice_en = "Maintenance, no transactions"\n'
    )


@pytest.mark.parametrize(
    ("who", "code", "reason"),
    [("host", "96", "host.maintenance"), ("issuer", "91", "issuer.unavailable")],
)
def test_a9_maintenance_window(
    tmp_path: Path, store: Store, who: str, code: str, reason: str
) -> None:
    h = start_host(
        tmp_path,
        world_text=world_with(_window(who, timedelta(hours=-1), timedelta(hours=1))),
        store=store,
    )
    try:
        c = client(h)
        so = c.sign_on()
        if who == "host":
            assert (so.code, so.reason) == ("96", "host.maintenance")
            return
        assert so.code == "00"
        r = c.purchase(100)
        assert (r.code, r.reason) == (code, reason)
        assert journal(h, r.msg.rrn or "")["facts"]["until"]  # type: ignore[index]
    finally:
        h.stop()


# --------------------------------------------------------------------------- A10: malformed


def test_a10_format_error_answered_and_host_keeps_serving(host: HostProc) -> None:
    good = signed_on(host)
    bad = client(host)
    # a 0200 whose field 4 holds a non-digit
    body = encode(
        "0200",
        {3: "000000", 4: "000000001234", 11: "000999", 41: "10000001", 42: "898310048161234"},
    )
    body = body.replace(bytes.fromhex("001234000999"), bytes.fromhex("0012A4000999"))
    bad.send_raw(encode_frame(TPDU(), Header(), body))
    answer = decode(bad.recv_frame().body)
    assert answer.mti == "0210"
    assert answer.fields[39] == "30" and answer.fields[63] == "   message.format_error"
    assert answer.fields[41] == "10000001" and answer.fields[11] == "000999"
    j = journal(host, str(answer.fields[37]))
    assert j["facts"]["field"] == 4  # type: ignore[index]
    # pure garbage with a sane length: the host closes that connection only
    junk = client(host)
    junk.send_raw(b"\x00\x20" + b"\x60" + b"\xff" * 31)
    with pytest.raises((ConnectionError, OSError)):
        junk.recv()
    # an absurd length prefix: closed too
    huge = client(host)
    huge.send_raw(b"\xff\xff" + b"\x00" * 16)
    with pytest.raises((ConnectionError, OSError)):
        huge.recv()
    assert good.purchase(1).code == "00"


def test_unknown_terminal_is_97(host: HostProc) -> None:
    c = Client(host.host, host.port, tid="99999999").connect()
    r = c.sign_on()
    assert (r.code, r.reason) == ("97", "terminal.unknown")


# --------------------------------------------------------------------------- C: sign on again


def test_c1_bad_mac_asks_for_sign_on(host: HostProc) -> None:
    c = signed_on(host)
    r = c.send(c.request(Kind.PURCHASE, 100), corrupt_mac=True)
    assert (r.code, r.reason, r.processing) == ("A0", "mac.invalid", 3)
    assert r.msg.organisation == "   "  # type: ignore[union-attr]


def test_c3_not_signed_on_after_sign_off(host: HostProc) -> None:
    c = signed_on(host, "10000007")
    off = c.send(
        NetworkRequest(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="002")
    )
    assert off.code == "00"
    r = c.purchase(100)
    assert (r.code, r.reason, r.processing) == ("A0", "terminal.not_signed_on", 3)
    assert c.sign_on().code == "00" and c.purchase(100).code == "00"


def test_c3_batch_mismatch_is_77(host: HostProc) -> None:
    c = signed_on(host)
    r = c.purchase(100, batch="000042")
    assert (r.code, r.reason) == ("77", "terminal.batch_mismatch")


def test_c5_duplicate_changes_nothing(host: HostProc) -> None:
    c = signed_on(host)
    req = c.request(Kind.PURCHASE, 300, c.card(SPARE2))
    assert c.send(req).code == "00"
    before = balance(host, SPARE2)
    r = c.send(req)
    assert (r.code, r.reason) == ("94", "transaction.duplicate")
    assert balance(host, SPARE2) == before


# --------------------------------------------------------------------------- D: stopped


def test_d1_merchant_suspended_for_arrears(host: HostProc) -> None:
    c = signed_on(host, "10000003")
    r = c.purchase(100, card=c.card(SPARE2))
    assert (r.code, r.reason) == ("03", "merchant.suspended.arrears")
    facts = journal(host, r.msg.rrn or "")["facts"]
    assert facts["owed"] == "58.00"  # type: ignore[index]


def test_merchant_closed(host: HostProc) -> None:
    c = signed_on(host, "10000004")
    assert c.purchase(100, card=c.card(SPARE2)).reason == "merchant.closed"


def test_d2_restricted_type(host: HostProc) -> None:
    c = signed_on(host, "10000002")
    r = c.send(c.request(Kind.PREAUTH, 100, c.card(SPARE2)))
    assert (r.code, r.reason) == ("58", "merchant.restricted")
    assert c.purchase(100, card=c.card(SPARE2)).code == "00"


def test_d3_terminal_suspended(host: HostProc) -> None:
    c = client(host, "10000005")
    r = c.sign_on()
    assert (r.code, r.reason) == ("58", "terminal.suspended")


def test_d4_update_required(host: HostProc) -> None:
    old = client(host, "10000006")
    r = old.sign_on()
    assert (r.code, r.reason, r.processing) == ("58", "terminal.update_required", 6)
    new = client(host, "10000006", software="0.2.0")
    assert new.sign_on().code == "00"


# --------------------------------------------------------------------------- E: the day


def test_void_same_batch(host: HostProc) -> None:
    c = signed_on(host)
    before = balance(host, SPARE)
    sale = c.request(Kind.PURCHASE, 1500, c.card(SPARE))
    r = c.send(sale)
    assert r.code == "00"
    void = c.request(
        Kind.VOID,
        1500,
        c.card(SPARE),
        rrn=r.msg.rrn,
        auth_code=r.msg.auth_code,
        original=OriginalRef(sale.batch, sale.stan, "1123"),  # type: ignore[union-attr]
    )
    v = c.send(void)
    assert (v.code, v.reason) == ("00", "approved")
    assert balance(host, SPARE) == before
    again = c.request(
        Kind.VOID,
        1500,
        c.card(SPARE),
        rrn=r.msg.rrn,
        original=OriginalRef(sale.batch, sale.stan, "1123"),
    )  # type: ignore[union-attr]
    assert c.send(again).reason == "transaction.already_voided"
    wrong = c.request(
        Kind.VOID, 1, c.card(SPARE), original=OriginalRef(sale.batch, "999998", "1123")
    )
    assert c.send(wrong).reason == "transaction.original_not_found"


def test_preauth_completion_and_voids(host: HostProc) -> None:
    c = signed_on(host)
    before = balance(host, SPARE)
    pa = c.request(Kind.PREAUTH, 10000, c.card(SPARE))
    r = c.send(pa)
    assert r.code == "00" and balance(host, SPARE) == before - 10000  # held
    too_much = c.request(
        Kind.COMPLETION,
        10001,
        c.card(SPARE),
        rrn=r.msg.rrn,
        auth_code=r.msg.auth_code,
        original=OriginalRef(pa.batch, pa.stan, "1123"),
    )  # type: ignore[union-attr]
    assert c.send(too_much).reason == "transaction.original_amount_mismatch"
    comp = c.request(
        Kind.COMPLETION,
        8000,
        c.card(SPARE),
        rrn=r.msg.rrn,
        auth_code=r.msg.auth_code,
        original=OriginalRef(pa.batch, pa.stan, "1123"),
    )  # type: ignore[union-attr]
    rc = c.send(comp)
    assert rc.code == "00" and balance(host, SPARE) == before - 8000  # hold released, 80.00 taken
    cv = c.request(
        Kind.COMPLETION_VOID,
        8000,
        c.card(SPARE),
        rrn=rc.msg.rrn,
        original=OriginalRef(comp.batch, comp.stan, "1123"),
    )  # type: ignore[union-attr]
    assert c.send(cv).code == "00" and balance(host, SPARE) == before
    pa2 = c.request(Kind.PREAUTH, 3000, c.card(SPARE))
    r2 = c.send(pa2)
    pv = c.request(
        Kind.PREAUTH_VOID,
        3000,
        c.card(SPARE),
        rrn=r2.msg.rrn,
        original=OriginalRef(pa2.batch, pa2.stan, "1123"),
    )  # type: ignore[union-attr]
    assert c.send(pv).code == "00" and balance(host, SPARE) == before


def test_offline_upload_approved_and_declined(host: HostProc) -> None:
    c = signed_on(host)
    ok = c.send(c.request(Kind.OFFLINE, 200, c.card(SPARE2, pin=None), auth_code="OFF001"))
    assert ok.code == "00"
    no = c.send(c.request(Kind.OFFLINE, 200, c.card(FROZEN, pin=None)))
    assert (no.code, no.reason) == ("62", "card.frozen")


def test_settlement_balanced_closes_batch_then_refund(tmp_path: Path, store: Store) -> None:
    h = start_host(tmp_path, store=store)
    try:
        c = signed_on(h)
        sale = c.request(Kind.PURCHASE, 1234, c.card())
        r = c.send(sale)
        totals = Settlement48(Totals(1234, 1))
        s = c.send(
            Settlement(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, totals=totals)
        )
        assert isinstance(s.msg, SettlementResponse)
        assert (
            s.msg.reason == "settlement.balanced"
            and s.msg.totals.domestic.check == 1
            and s.msg.code is None
        )
        # the batch is closed: the old batch number is now a mismatch; sign on gives the next one
        assert c.purchase(1).reason == "terminal.batch_mismatch"
        # ...but a request the host already has stays a duplicate (spec §7): 94, not 77,
        # so a terminal never takes "batch closed" for "not applied" and re-issues it
        held = balance(h, PAN)
        again = c.send(sale)
        assert (again.code, again.reason) == ("94", "transaction.duplicate")
        assert balance(h, PAN) == held
        assert c.sign_on().code == "00" and c.batch == "000002"
        before = balance(h, PAN)
        refund = c.request(
            Kind.REFUND,
            1000,
            c.card(),
            rrn=r.msg.rrn,
            original=OriginalRef(sale.batch, sale.stan, "1123"),
        )  # type: ignore[union-attr]
        assert c.send(refund).code == "00" and balance(h, PAN) == before + 1000
        over = c.request(
            Kind.REFUND,
            300,
            c.card(),
            rrn=r.msg.rrn,
            original=OriginalRef(sale.batch, sale.stan, "1123"),
        )  # type: ignore[union-attr]
        assert c.send(over).reason == "transaction.original_amount_mismatch"
        # a void of the settled sale is refused: use refund
        void = c.request(
            Kind.VOID,
            1234,
            c.card(),
            rrn=r.msg.rrn,
            original=OriginalRef(sale.batch, sale.stan, "1123"),
        )  # type: ignore[union-attr]
        assert c.send(void).reason in (
            "transaction.original_not_found",
            "transaction.already_voided",
        )
    finally:
        h.stop()
    assert run_audit(h.url) == []


def test_settlement_unbalanced_then_batch_upload(tmp_path: Path, store: Store) -> None:
    h = start_host(tmp_path, store=store)
    try:
        c = signed_on(h)
        a = c.request(Kind.PURCHASE, 1000, c.card())
        assert c.send(a).code == "00"
        # the terminal believes it has two sales
        s = c.send(
            Settlement(
                tid=c.tid,
                mid=c.mid,
                stan=c.next_stan(),
                batch=c.batch,
                totals=Settlement48(Totals(2000, 2)),
            )
        )
        assert s.reason == "settlement.unbalanced" and s.msg.totals.domestic.check == 2  # type: ignore[union-attr]
        up = c.send(
            BatchUpload(
                tid=c.tid,
                mid=c.mid,
                stan=c.next_stan(),
                batch=c.batch,
                records=(BatchRecord(a.stan, PAN, 1000), BatchRecord("000077", PAN, 1000)),
            )
        )
        assert up.code == "00" and up.frame.body[:2] == b"\x03\x30"
        item = c.send(BatchUploadItem.of(c.request(Kind.OFFLINE, 50, c.card(pin=None))))
        assert item.code == "00"
        end = c.send(
            BatchUploadEnd(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, count=3)
        )
        assert end.code == "00"
        st = h.one("SELECT status, uploaded FROM settlements")
        unmatched = h.one("SELECT COUNT(*) AS n FROM batch_uploads WHERE journal_id IS NULL")[0]
        batch = h.one("SELECT batch FROM terminals WHERE tid = '10000001'")[0]
        assert st == ("closed", 3) and unmatched == 2 and batch == "000002"
    finally:
        h.stop()
    assert run_audit(h.url) == []


def test_one_connection_many_requests_and_many_connections(host: HostProc) -> None:
    clients = [signed_on(host, "10000007") for _ in range(5)]
    # the last sign-on wins: only its keys are valid now
    last = clients[-1]
    for _ in range(20):  # balance inquiries: purchases would trip the velocity rule
        assert last.send(last.request(Kind.BALANCE, None, last.card(SPARE2))).code == "00"
    assert (
        clients[0].send(clients[0].request(Kind.BALANCE, None, clients[0].card(SPARE2))).reason
        == "mac.invalid"
    )


def test_idle_slow_sender_is_cut(tmp_path: Path, store: Store) -> None:
    h = start_host(tmp_path, extra=("--frame-timeout", "0.5", "--idle-timeout", "2"), store=store)
    try:
        s = socket.create_connection((h.host, h.port), timeout=5)
        s.sendall(b"\x00\x30\x60")  # a frame that never completes
        s.settimeout(5)
        assert s.recv(10) == b""  # closed by the host
        good = signed_on(h)
        assert good.purchase(1).code == "00"
    finally:
        h.stop()


def test_world_refused_on_non_empty_store_without_reset(tmp_path: Path, store: Store) -> None:
    import subprocess
    import sys

    from host_fixture import env

    h = start_host(tmp_path, store=store)
    h.stop()
    other = tmp_path / "other.toml"
    other.write_text(h.world.read_text("utf-8"), "utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(other), "--db", h.url, "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, env=env(), timeout=30, check=False,
    )  # fmt: skip
    assert r.returncode == 1 and "--reset" in r.stderr


def test_bad_world_names_the_entry(tmp_path: Path) -> None:
    import subprocess
    import sys

    from host_fixture import env

    bad = tmp_path / "bad.toml"
    bad.write_text('[[terminals]]\ntid = "123"\nmid = "898310048161234"\ntmk = "00"\n', "utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(bad), "--db", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True, text=True, env=env(), timeout=30, check=False,
    )  # fmt: skip
    assert (
        r.returncode == 1
        and "tid" in r.stderr
        and "[[terminals]]" in r.stderr
        and "Traceback" not in r.stderr
    )


def test_reset_empties_the_world_and_its_operations_but_keeps_staff(
    tmp_path: Path, store: Store
) -> None:
    from clearpos.diagnosis import tickets
    from clearpos.host.cli import build_engine
    from clearpos.host.seed import seed
    from clearpos.keys import KeyEncryptionKey
    from clearpos.ops import arrears, users
    from clearpos.store import open_database
    from clearpos.world import load_world

    db = open_database(store.new_url(tmp_path, "reset"))
    _, hsm, tokens = build_engine(KeyEncryptionKey(bytes.fromhex(TEST_KEK)))
    world = load_world(Path(__file__).resolve().parent.parent / "examples" / "world.toml")
    seed(db, world, hsm, tokens, reset=False)
    with db.transaction() as tx:
        tickets.open_ticket(tx, "screen says 请重新签到", by="desk", mid=MID)
        arrears.charge(tx, MID, "fee", 100, by="desk", why="annual fee")
        users.add_user(tx, "wang", "operator", "correct horse 12", by="admin")
    counts = seed(db, world, hsm, tokens, reset=True)
    assert counts
    with db.reader() as tx:
        left = {
            t: tx.conn.execute(f"SELECT COUNT(*) AS n FROM {t}").fetchone()["n"]
            for t in ("tickets", "ticket_comments", "arrears_ledger", "journal")
        }
        assert left == dict.fromkeys(left, 0), left
        assert users.get_user(tx, "wang") is not None
        m = tx.merchant(MID)  # a reader takes no locks, on either backend
        assert m is not None and m.arrears_fen == 0


def test_metrics_count_committed_answers_by_reason(tmp_path: Path) -> None:
    """/metrics (Prometheus text): answers by reason key, counted once each after the
    commit; connections, frames and store commits."""
    import time

    from support.hostproc import free_port
    from support.metrics import scrape

    port = free_port()
    h = start_host(tmp_path, extra=("--metrics", f"127.0.0.1:{port}"))
    try:
        c = signed_on(h)
        assert c.purchase(100).code == "00"
        assert c.purchase(100, card=c.card(FROZEN)).reason == "card.frozen"
        c.send_raw(b"\x00\x03\x60\x00\x00")  # an unreadable frame: the host closes the link
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            page = scrape(port)
            assert page.content_type.startswith("text/plain")
            if page.value("clearpos_connections") == 0:  # the host closed the bad link
                break
            time.sleep(0.05)
        counts = {
            s.labels["reason"]: int(s.value) for s in page.matching("clearpos_transactions_total")
        }
        # the sign-on and the purchase approved, the frozen card declined
        assert counts == {"approved": 2, "card.frozen": 1}, page
        # three frames reached the engine; the unreadable one closed the link before it
        assert page.value("clearpos_frames_total") == 3
        assert page.value("clearpos_connections") == 0
        commits = page.value("clearpos_store_commits_total")
        units = page.value("clearpos_store_units_total")
        assert 1 <= commits <= units and units >= 3
    finally:
        h.stop()
