"""``clearpos diagnose`` explains a chip decline from the facts the host journaled (issue 19).

Each decline is produced for real: simulated chip cards (:mod:`clearpos.issuer.card`)
make ARQCs against a real host on loopback, as in test_chip_host.py. Then
``diagnose --rrn`` must cite this case's facts: the CVN and the ATC seen against
the last ATC accepted, the 9F02 against field 4, the field 22 entry mode and the
service code, the QuickPass no-PIN limit of the risk configuration, and for an
approval the card refused, the reversal (06) and the TVR after the card's decision.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from host_fixture import EXAMPLE_WORLD, HostProc, Store, start_host
from hostclient import Client
from test_chip_host import KEYS, MID, TID, TMK, request, today
from test_ops_support import run_json

from clearpos.issuer.card import ChipCard, TerminalData, personalised, reversal_field55
from clearpos.issuer.emv import EmvIssuer
from clearpos.reasons import Lang, catalog
from clearpos.store import rrn_of as store_rrn
from clearpos.wire import Card, FinancialResponse, Kind, Reversal
from clearpos.wire import tlv as _tlv

PAN18, PAN10 = "6214830000000002144", "6225880000001140"
PSN_CVN = {PAN18: ("01", "18"), PAN10: ("00", "10")}
#: the reason keys these tests produce over a real host and diagnose
PRODUCED = frozenset(
    {
        "card.cryptogram_invalid",
        "card.cryptogram_replayed",
        "card.chip_required",
        "card.pin_required",
        "card.refused_after_approval",
        "message.format_error",
    }
)
LIMIT = "300.00"  # this world's QuickPass no-PIN limit (the example world has 1000.00)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    world = EXAMPLE_WORLD.read_text("utf-8")
    world = world.replace("card_velocity = { count = 5, window_s = 60, lock_s = 1800 }", "")
    assert 'quickpass_no_pin_limit = "1000.00"' in world
    world = world.replace(
        'quickpass_no_pin_limit = "1000.00"', f'quickpass_no_pin_limit = "{LIMIT}"'
    )
    h = start_host(tmp_path_factory.mktemp("diagchip"), store=store, world_text=world)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def cards(host: HostProc) -> dict[str, ChipCard]:
    """One card per PAN for this host: its ATC goes on across the tests."""
    out = {}
    for pan, (psn, cvn) in PSN_CVN.items():
        out[pan] = personalised(pan, psn, "2812", "220", cvn, EmvIssuer(KEYS).icc_keys(pan, psn))
    return out


def terminal(h: HostProc) -> Client:
    c = Client(h.host, h.port, tid=TID, mid=MID, tmk=TMK).connect()
    assert c.sign_on().code == "00"
    return c


def diagnose(h: HostProc, rrn: str, lang: Lang = "en") -> dict[str, Any]:
    rc, docs = run_json("diagnose", "--db", h.url, "--rrn", rrn, "--lang", lang)
    assert rc == 0, docs
    blob = json.dumps(docs, ensure_ascii=False)
    for pan in PSN_CVN:
        assert pan not in blob
    (d,) = docs
    return d


def rrn_of(r: Any) -> str:
    assert isinstance(r.msg, FinancialResponse) and r.msg.rrn
    return str(r.msg.rrn)


def journal_facts(h: HostProc, rrn: str) -> dict[str, Any]:
    (row,) = h.rows("SELECT facts FROM journal WHERE id = ?", (int(rrn),))
    facts: dict[str, Any] = json.loads(row["facts"])
    return facts


def masked(pan: str) -> str:
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


@pytest.mark.parametrize("pan", sorted(PSN_CVN))
def test_arqc_failed_names_the_cvn_and_the_atc(
    host: HostProc, cards: dict[str, ChipCard], pan: str
) -> None:
    c, card = terminal(host), cards[pan]
    first = card.first_generate_ac(TerminalData(300, today()))
    tags = dict(first.tags)
    tags["9F26"] = bytes([tags["9F26"][0] ^ 0x01]) + tags["9F26"][1:]
    r = c.send(request(c, card, 300, first, chip55=_tlv.encode(tags)))  # type: ignore[arg-type]
    assert r.reason == "card.cryptogram_invalid"
    rrn, atc = rrn_of(r), int.from_bytes(tags["9F36"], "big")
    chip = journal_facts(host, rrn)["chip"]
    d = diagnose(host, rrn)
    assert (d["reason"], d["code"]) == ("card.cryptogram_invalid", "05")
    head = d["facts"][0]
    cvn = PSN_CVN[pan][1]
    assert f"card {masked(pan)}" in head and f"CVN {cvn}" in head
    assert f"at ATC {atc} (last accepted {chip['last_atc']})" in head
    assert f"({tags['9F26'].hex().upper()})" in head  # the 9F26 the chip sent
    tvr = tags["95"].hex().upper()
    assert any(f"(95) were {tvr}" in s for s in d["facts"][1:])
    assert d["cause"].endswith(catalog()["card.cryptogram_invalid"].cause_text("en"))
    zh = diagnose(host, rrn, "zh")
    assert f"CVN {cvn}" in zh["facts"][0] and f"ATC {atc}" in zh["facts"][0]


@pytest.mark.parametrize("pan", sorted(PSN_CVN))
def test_replayed_atc_names_the_atc_and_its_first_use(
    host: HostProc, cards: dict[str, ChipCard], pan: str
) -> None:
    c, card = terminal(host), cards[pan]
    first = card.first_generate_ac(TerminalData(100, today()))
    ok = c.send(request(c, card, 100, first))  # type: ignore[arg-type]
    assert ok.code == "00"
    again = c.send(request(c, card, 100, first))  # type: ignore[arg-type]  # same ATC
    assert again.reason == "card.cryptogram_replayed"
    atc = int.from_bytes(first.tags["9F36"], "big")
    d = diagnose(host, rrn_of(again))
    assert (d["reason"], d["code"]) == ("card.cryptogram_replayed", "05")
    assert d["facts"][0] == (
        f"card {masked(pan)} sent ATC {atc}, but the issuer had already accepted ATC {atc} "
        "from it: a counter that does not go up is old chip data played again"
    )
    assert d["facts"][1].startswith(f"ATC {atc} was already used by RRN {rrn_of(ok)} at ")
    assert f"(ATC {atc})" in d["cause"] and f"({atc})" in d["cause"]  # the catalog's params
    zh = diagnose(host, rrn_of(again), "zh")
    assert f"ATC 为 {atc}" in zh["facts"][0] and rrn_of(ok) in zh["facts"][1]


def test_9f02_not_field_4_cites_both_amounts(host: HostProc, cards: dict[str, ChipCard]) -> None:
    c, card = terminal(host), cards[PAN18]
    first = card.first_generate_ac(TerminalData(500, today()))
    r = c.send(request(c, card, 600, first))  # type: ignore[arg-type]
    assert r.reason == "message.format_error"
    d = diagnose(host, rrn_of(r))
    assert d["facts"] == [
        "the chip's amount authorised (9F02) is ¥5.00, but field 4 of the request is ¥6.00: "
        "the cryptogram was computed for another amount"
    ]
    zh = diagnose(host, rrn_of(r), "zh")
    assert "¥5.00" in zh["facts"][0] and "¥6.00" in zh["facts"][0]


def test_chip_required_cites_service_code_and_entry_mode(
    host: HostProc, cards: dict[str, ChipCard]
) -> None:
    c, card = terminal(host), cards[PAN18]
    swipe = Card.swiped(
        card.pan, card.expiry, "220", pin_block=c.keys.pin_block("123456", card.pan)
    )
    r = c.send(c.request(Kind.PURCHASE, 200, swipe))
    assert r.reason == "card.chip_required"
    (row,) = host.rows("SELECT entry_mode FROM journal WHERE id = ?", (int(rrn_of(r)),))
    d = diagnose(host, rrn_of(r))
    assert (d["reason"], d["code"]) == ("card.chip_required", "45")
    assert d["facts"] == [
        f"card {masked(PAN18)} has service code 220 (2xx or 6xx: a chip card) and terminal "
        f"{TID} reads chips, but field 22 was {row['entry_mode']}, a swipe of the stripe; a "
        "swipe is accepted only as a fallback (22 = 80x) after the chip could not be read"
    ]
    assert row["entry_mode"].startswith("02")
    zh = diagnose(host, rrn_of(r), "zh")
    assert "服务代码为 220" in zh["facts"][0] and row["entry_mode"] in zh["facts"][0]


def test_pin_required_cites_the_limit_of_the_risk_config(
    host: HostProc, cards: dict[str, ChipCard]
) -> None:
    c, card = terminal(host), cards[PAN18]
    over = card.first_generate_ac(TerminalData(30001, today(), contactless=True))
    r = c.send(request(c, card, 30001, over, entry="072", pin=None))  # type: ignore[arg-type]
    assert (r.code, r.reason) == ("55", "card.pin_required")
    d = diagnose(host, rrn_of(r))
    assert (d["reason"], d["code"]) == ("card.pin_required", "55")
    assert d["facts"] == [
        f"this tap (field 22 = 072) was for ¥300.01, above the QuickPass no-PIN limit ¥{LIMIT} "
        "of the risk configuration, and carried no PIN block (field 52)"
    ]
    assert f"(¥{LIMIT})" in d["cause"]
    zh = diagnose(host, rrn_of(r), "zh")
    assert "¥300.01" in zh["facts"][0] and f"¥{LIMIT}" in zh["facts"][0]


@pytest.mark.parametrize("pan", sorted(PSN_CVN))
def test_refused_after_approval_cites_the_reversal_and_the_tvr(
    host: HostProc, cards: dict[str, ChipCard], pan: str
) -> None:
    c, card = terminal(host), cards[pan]
    first = card.first_generate_ac(TerminalData(700, today()))
    req = request(c, card, 700, first)
    r = c.send(req)  # type: ignore[arg-type]
    assert r.code == "00" and isinstance(r.msg, FinancialResponse) and r.msg.chip
    bad91 = bytearray(r.msg.chip)
    bad91[3] ^= 0xFF  # the card cannot authenticate the issuer: it answers AAC
    second = card.second_generate_ac(first, bytes(bad91), host_approved=True)
    assert second.cryptogram == "AAC"
    orig = req.card  # type: ignore[attr-defined]
    undone = dataclasses.replace(
        req, card=dataclasses.replace(orig, chip=reversal_field55(first, second))
    )  # type: ignore[type-var]
    rev = c.send(Reversal.of(undone, "06"))  # type: ignore[arg-type]
    assert rev.code == "00"
    (rev_row,) = host.rows(
        "SELECT id FROM journal WHERE kind = 'reversal' AND original_id = ?", (int(rrn_of(r)),)
    )
    rev_rrn = store_rrn(int(rev_row["id"]))
    atc = int.from_bytes(first.tags["9F36"], "big")
    tvr = second.tags["95"].hex().upper()

    d = diagnose(host, rrn_of(r))
    reason = catalog()["card.refused_after_approval"]
    assert (d["reason"], d["code"], d["status"]) == (reason.key, "06", "reversed")
    assert d["actor"] == reason.actor.en and d["screen"] == reason.screen.en
    assert d["facts"][0].startswith("the host approved it (auth code ")
    assert f"(RRN {rev_rrn}, reason 06)" in d["facts"][0]
    assert (
        d["facts"][1]
        == f"chip ATC {atc}, cryptogram version CVN {PSN_CVN[pan][1]}, AID "
        + (journal_facts(host, rrn_of(r))["chip"]["aid"])
    )
    assert d["facts"][2] == (
        f"after the card's second GENERATE AC the terminal verification results (95) were "
        f"{tvr}: issuer authentication failed"
    )
    # the reversal itself, explained from its own row
    dr = diagnose(host, rev_rrn)
    assert (dr["reason"], dr["code"]) == (reason.key, "06")
    assert "reason 06: the card refused after the host approved" in dr["facts"][0]
    assert any("issuer authentication failed" in s for s in dr["facts"])
    assert dr["facts"][-1].startswith(f"the host undid the original {rrn_of(r)}")
    zh = diagnose(host, rrn_of(r), "zh")
    assert rev_rrn in zh["facts"][0] and "发卡行认证失败" in zh["facts"][2]
