"""Chip cards end to end against a real host (issue 19, spec §8), on SQLite and PostgreSQL.

The simulated cards of :mod:`clearpos.issuer.card` (personalised from the example
world's ``[issuer]`` keys) make real ARQCs; the host's issuer checks them and
answers 91 (and scripts), which the card verifies at its second GENERATE AC.
For each CVN: approve with an ARPC that verifies, a flipped ARQC bit (05 with 91),
an ATC replay, 9F02 ≠ field 4 (30 with 91), the card's AAC after an approval
(reversal, money restored). Fallback 45 vs 80x, QuickPass under and over the
no-PIN limit, a lost card's block script, and a fresh chip terminal's CA-key and
chip-parameter downloads down to processing requirement 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime

import pytest
from host_fixture import EXAMPLE_WORLD, HostProc, Store, start_host
from hostclient import Client

from clearpos.audit import run_audit
from clearpos.issuer.card import ChipCard, FirstAc, TerminalData, personalised, reversal_field55
from clearpos.issuer.emv import EmvIssuer, IssuerKeys
from clearpos.keys import KeyEncryptionKey
from clearpos.keys.tokens import PanTokenizer
from clearpos.wire import (
    Card,
    FinancialResponse,
    Kind,
    NetworkRequest,
    NetworkResponse,
    ParameterDownload,
    ParameterDownloadResponse,
    Reversal,
    emvparams,
)
from clearpos.wire import tlv as _tlv

TID, MID = "10000011", "898310048161234"
TMK = bytes.fromhex("7B6A59483726150413243546576879A8")
KEYS = IssuerKeys(
    bytes.fromhex("0123456789ABCDEF0123456789ABCDEF"),
    bytes.fromhex("FEDCBA9876543210FEDCBA9876543210"),
    bytes.fromhex("89ABCDEF0123456789ABCDEF01234567"),
)
CARDS = {  # PAN: (PSN, CVN)
    "6214830000000002144": ("01", "18"),
    "6225880000001140": ("00", "10"),
}
LOST = "6225880000001157"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    # the example world without its velocity rule (5 purchases a minute): these tests
    # use the same few chip cards many times a minute
    world = EXAMPLE_WORLD.read_text("utf-8").replace(
        "card_velocity = { count = 5, window_s = 60, lock_s = 1800 }", ""
    )
    h = start_host(tmp_path_factory.mktemp("chip"), store=store, world_text=world)
    _BACKEND[0] = store.backend
    yield h
    h.stop()
    assert run_audit(h.url) == []
    for pan in (*CARDS, LOST):
        assert pan not in h.log_text()


_CARDS: dict[tuple[str, str], ChipCard] = {}


def chip_card(pan: str, psn: str | None = None, cvn: str | None = None) -> ChipCard:
    """One simulated card per PAN and backend module: its ATC goes on across tests,
    as a real card's does (the issuer remembers the last one it saw)."""
    psn = psn or CARDS.get(pan, ("01", "18"))[0]
    cvn = cvn or CARDS.get(pan, ("01", "18"))[1]
    key = (pan, _BACKEND[0])
    if key not in _CARDS:
        _CARDS[key] = personalised(pan, psn, "2812", "220", cvn, EmvIssuer(KEYS).icc_keys(pan, psn))
    return _CARDS[key]


_BACKEND = ["sqlite"]


def terminal(h: HostProc) -> Client:
    c = Client(h.host, h.port, tid=TID, mid=MID, tmk=TMK).connect()
    assert c.sign_on().code == "00"
    return c


def today() -> str:
    return datetime.now().strftime("%y%m%d")


def request(
    c: Client,
    card: ChipCard,
    amount: int,
    first: FirstAc,
    *,
    entry: str = "051",
    pin: str | None = "123456",
    chip55: bytes | None = None,
    kind: Kind = Kind.PURCHASE,
) -> object:
    block = c.keys.pin_block(pin, card.pan) if pin else None
    wire = Card(
        card.pan,
        card.expiry,
        card.track2(),
        entry_mode=entry[:2] + ("1" if pin else "2"),
        pin_block=block,
        sequence=f"0{card.psn}",
        chip=chip55 if chip55 is not None else first.field55,
        send_pan=True,
    )
    return c.request(kind, amount, wire)


def balance(h: HostProc, pan: str) -> int:
    tok = PanTokenizer(KeyEncryptionKey(bytes.fromhex("5e" * 32))).token(pan)
    row = h.one("SELECT balance_fen - holds_fen FROM cards WHERE pan_token = ?", (tok,))
    return int(row[0])


@pytest.mark.parametrize("pan", sorted(CARDS))
def test_approved_with_an_arpc_the_card_verifies(host: HostProc, pan: str) -> None:
    c, card = terminal(host), chip_card(pan)
    first = card.first_generate_ac(TerminalData(1200, today()))
    r = c.send(request(c, card, 1200, first))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("00", "approved")
    assert isinstance(r.msg, FinancialResponse) and r.msg.chip is not None
    assert "91" in _tlv.flatten(_tlv.decode(r.msg.chip))
    second = card.second_generate_ac(first, r.msg.chip, host_approved=True)
    assert (second.cryptogram, second.issuer_auth) == ("TC", "verified")
    (row,) = host.rows("SELECT facts, entry_mode FROM journal WHERE id = ?", (int(r.msg.rrn or 0),))
    assert '"arqc": "verified"' in row["facts"] and row["entry_mode"] == "051"
    assert pan not in row["facts"]


@pytest.mark.parametrize("pan", sorted(CARDS))
def test_flipped_arqc_bit_is_05_with_91(host: HostProc, pan: str) -> None:
    c, card = terminal(host), chip_card(pan)
    first = card.first_generate_ac(TerminalData(300, today()))
    tags = dict(first.tags)
    tags["9F26"] = bytes([tags["9F26"][0] ^ 0x01]) + tags["9F26"][1:]
    r = c.send(request(c, card, 300, first, chip55=_tlv.encode(tags)))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("05", "card.cryptogram_invalid")
    assert isinstance(r.msg, FinancialResponse) and r.msg.chip is not None
    assert "91" in _tlv.flatten(_tlv.decode(r.msg.chip))


@pytest.mark.parametrize("pan", sorted(CARDS))
def test_atc_replay_is_refused(host: HostProc, pan: str) -> None:
    c, card = terminal(host), chip_card(pan)
    first = card.first_generate_ac(TerminalData(100, today()))
    assert c.send(request(c, card, 100, first)).code == "00"  # type: ignore[arg-type]
    again = c.send(request(c, card, 100, first))  # type: ignore[arg-type]  # same ATC, new STAN
    assert (again.code, again.reason) == ("05", "card.cryptogram_replayed")


@pytest.mark.parametrize("pan", sorted(CARDS))
def test_9f02_not_field_4_is_30_with_91(host: HostProc, pan: str) -> None:
    c, card = terminal(host), chip_card(pan)
    first = card.first_generate_ac(TerminalData(500, today()))
    r = c.send(request(c, card, 600, first))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("30", "message.format_error")
    assert isinstance(r.msg, FinancialResponse) and r.msg.chip is not None


@pytest.mark.parametrize("pan", sorted(CARDS))
def test_aac_after_approval_is_reversed_and_money_restored(host: HostProc, pan: str) -> None:
    c, card = terminal(host), chip_card(pan)
    before = balance(host, pan)
    first = card.first_generate_ac(TerminalData(700, today()))
    req = request(c, card, 700, first)
    r = c.send(req)  # type: ignore[arg-type]
    assert r.code == "00" and isinstance(r.msg, FinancialResponse) and r.msg.chip
    assert balance(host, pan) == before - 700
    bad91 = bytearray(r.msg.chip)
    bad91[3] ^= 0xFF  # the ARPC damaged on the way: the card cannot authenticate the issuer
    second = card.second_generate_ac(first, bytes(bad91), host_approved=True)
    assert second.cryptogram == "AAC"
    orig = req.card  # type: ignore[attr-defined]
    rev_req = dataclasses.replace(
        req, card=dataclasses.replace(orig, chip=reversal_field55(first, second))
    )  # type: ignore[type-var]
    rev = c.send(Reversal.of(rev_req, "06"))  # type: ignore[arg-type]
    assert (rev.code, rev.reason) == ("00", "approved")
    assert balance(host, pan) == before


def test_fallback_45_vs_80x(host: HostProc) -> None:
    c, card = terminal(host), chip_card("6214830000000002144")
    swipe = Card.swiped(
        card.pan, card.expiry, "220", pin_block=c.keys.pin_block("123456", card.pan)
    )
    r = c.send(c.request(Kind.PURCHASE, 200, swipe))
    assert (r.code, r.reason) == ("45", "card.chip_required")
    fallback = dataclasses.replace(swipe, entry_mode="801")
    r = c.send(c.request(Kind.PURCHASE, 200, fallback))
    assert (r.code, r.reason) == ("00", "approved")
    (row,) = host.rows("SELECT facts FROM journal WHERE id = ?", (int(r.msg.rrn or 0),))  # type: ignore[union-attr]
    assert '"fallback": true' in row["facts"]


def test_quickpass_under_and_over_the_no_pin_limit(host: HostProc) -> None:
    c, card = terminal(host), chip_card("6214830000000002144")
    under = card.first_generate_ac(TerminalData(100000, today(), contactless=True))
    r = c.send(request(c, card, 100000, under, entry="072", pin=None))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("00", "approved")
    over = card.first_generate_ac(TerminalData(100001, today(), contactless=True))
    r = c.send(request(c, card, 100001, over, entry="072", pin=None))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("55", "card.pin_required")
    with_pin = card.first_generate_ac(TerminalData(100001, today(), contactless=True))
    r = c.send(request(c, card, 100001, with_pin, entry="071"))  # type: ignore[arg-type]
    assert r.code == "00", r.reason


def test_a_lost_card_tapped_gets_a_block_script(host: HostProc) -> None:
    c, card = terminal(host), chip_card(LOST, "01", "18")
    first = card.first_generate_ac(TerminalData(100, today(), contactless=True))
    r = c.send(request(c, card, 100, first, entry="072", pin=None))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("41", "card.lost")
    assert isinstance(r.msg, FinancialResponse) and r.msg.chip is not None
    assert any(i.tag == "72" for i in _tlv.decode(r.msg.chip))
    second = card.second_generate_ac(first, r.msg.chip, host_approved=False)
    assert second.cryptogram == "AAC" and second.blocked and card.blocked


def test_a_fresh_chip_terminal_downloads_to_processing_requirement_0(host: HostProc) -> None:
    c = Client(host.host, host.port, tid=TID, mid=MID, tmk=TMK).connect()
    host.rows("SELECT 1")  # the store is there
    # a fresh terminal: it holds none of the host's CA keys or chip parameters
    if host.url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(host.db)
        con.execute("UPDATE terminals SET capk_loaded = '', aid_loaded = '' WHERE tid = ?", (TID,))
        con.commit()
        con.close()
    else:
        import psycopg

        with psycopg.connect(host.url) as con:
            con.execute(
                "UPDATE terminals SET capk_loaded = '', aid_loaded = '' WHERE tid = %s", (TID,)
            )
    r = c.sign_on()
    assert (r.code, r.processing) == ("00", 4)
    keys: list[dict[str, bytes]] = []
    while True:
        q = c.send(
            NetworkRequest(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="372",
                           data=emvparams.list_query(len(keys)))
        )  # fmt: skip
        assert isinstance(q.msg, NetworkResponse) and q.code == "00" and q.msg.data
        page = emvparams.parse_list_answer(q.msg.data)
        keys += list(page.records)
        if not page.more:
            break
    assert len(keys) == 3
    for k in keys:
        a = c.send(
            ParameterDownload(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="370",
                              data=emvparams.capk_request(k["9F06"].hex(), k["9F22"].hex()))
        )  # fmt: skip
        assert isinstance(a.msg, ParameterDownloadResponse) and a.msg.raw
        item = emvparams.parse_item_answer(a.msg.raw)
        assert item is not None and "DF02" in item and "DF03" in item
    c.send(ParameterDownload(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="371"))
    r = c.sign_on()
    assert (r.code, r.processing) == ("00", 5)
    q = c.send(
        NetworkRequest(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="382",
                       data=emvparams.list_query(0))
    )  # fmt: skip
    assert isinstance(q.msg, NetworkResponse) and q.msg.data
    (aid,) = emvparams.parse_list_answer(q.msg.data).records
    a = c.send(
        ParameterDownload(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="380",
                          data=emvparams.aid_request(aid["9F06"].hex()))
    )  # fmt: skip
    assert isinstance(a.msg, ParameterDownloadResponse) and a.msg.raw
    c.send(ParameterDownload(tid=TID, mid=MID, stan=c.next_stan(), batch=c.batch, netcode="381"))
    r = c.sign_on()
    assert (r.code, r.processing) == ("00", 0)
