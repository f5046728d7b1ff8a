"""The console's transaction page shows the chip data (issue 19), masked, in zh and en.

A real host serves chip purchases from simulated cards (as test_chip_host.py);
their field 55 also carries the card data a terminal must never let out in clear
(5A, 57, 9F1F), the application label (50), the AID (4F) and a TSI (9B). The
console, over the same store, must show the TVR decoded byte by byte, the CVM
results, AID, label, ATC, CVN, cryptogram type and TSI, and never the PAN, the
track 2 equivalent or the track 1 discretionary data in clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from host_fixture import EXAMPLE_WORLD, start_host
from hostclient import Client
from starlette.applications import Starlette
from test_chip_host import KEYS, MID, TID, TMK, request, today
from test_console import SECRET, Browser

from clearpos.console.app import create_app
from clearpos.console.chip import tsi_words
from clearpos.issuer.card import TerminalData, personalised
from clearpos.issuer.emv import EmvIssuer
from clearpos.ops.users import add_user
from clearpos.wire import FinancialResponse
from clearpos.wire import tlv as _tlv
from clearpos.wire.emvtags import cvm_text, tvr_words

PAN = "6214830000000002144"
TRACK1_DD = bytes.fromhex("3132333435363738393031323334")  # 9F1F: track 1 discretionary
LABEL = "UnionPay Debit"
PASSWORD = "oli-secret-1"


@dataclass
class Chip:
    app: Starlette
    approved: str
    declined: str
    tags: dict[str, bytes]  # what the card sent for the approved one
    declined_tags: dict[str, bytes]


@pytest.fixture(scope="module")
def chip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chip]:
    world = EXAMPLE_WORLD.read_text("utf-8")
    host = start_host(tmp_path_factory.mktemp("consolechip"), world_text=world)
    card = personalised(PAN, "01", "2812", "220", "18", EmvIssuer(KEYS).icc_keys(PAN, "01"))
    try:
        c = Client(host.host, host.port, tid=TID, mid=MID, tmk=TMK).connect()
        assert c.sign_on().code == "00"
        first = card.first_generate_ac(TerminalData(1234, today()))
        tags = dict(first.tags)
        tags.update(
            {
                "5A": bytes.fromhex(PAN + "F"),
                "57": bytes.fromhex(card.track2().replace("=", "D") + "F"),
                "9F1F": TRACK1_DD,
                "50": LABEL.encode("ascii"),
                "4F": tags["84"],
                "9B": bytes.fromhex("E800"),
            }
        )
        r = c.send(request(c, card, 1234, first, chip55=_tlv.encode(tags)))  # type: ignore[arg-type]
        assert r.code == "00", r.reason
        assert isinstance(r.msg, FinancialResponse) and r.msg.rrn
        approved = r.msg.rrn
        bad = card.first_generate_ac(TerminalData(300, today()))
        bad_tags = dict(bad.tags)
        bad_tags["9F26"] = bytes([bad_tags["9F26"][0] ^ 0x01]) + bad_tags["9F26"][1:]
        d = c.send(request(c, card, 300, bad, chip55=_tlv.encode(bad_tags)))  # type: ignore[arg-type]
        assert d.reason == "card.cryptogram_invalid"
        assert isinstance(d.msg, FinancialResponse) and d.msg.rrn
        declined = d.msg.rrn
        c.close()
    finally:
        host.stop()
    from clearpos.store import open_database

    db = open_database(host.url)
    with db.transaction() as tx:
        add_user(tx, "oli", "operator", PASSWORD, by="test")
    yield Chip(create_app(db, secret=SECRET), approved, declined, tags, bad_tags)


def signed_in(app: Starlette) -> Browser:
    b = Browser(app)
    token = b.csrf("/login")
    r = b.post("/login", {"csrf": token, "username": "oli", "password": PASSWORD})
    assert r.status == 303, r.body[:300]
    return b


def section(body: str) -> str:
    m = re.search(r'<section class="card" id="chip">(.*?)</section>', body, re.S)
    assert m, "no chip section on the page"
    return m.group(1)


def dd(html: str, ident: str) -> str:
    m = re.search(rf'<dd[^>]* id="{ident}">(.*?)</dd>', html, re.S)
    assert m, ident
    return re.sub(r"<[^>]+>", "", m.group(1))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_chip_section_decodes_field_55(chip: Chip, lang: str) -> None:
    b = signed_in(chip.app)
    page = b.get(f"/transactions/{chip.approved}?lang={lang}")
    assert page.status == 200
    s = section(page.body)
    tags = chip.tags
    aid = tags["84"].hex().upper()
    assert aid in dd(s, "chip-aid") and "(4F)" in dd(s, "chip-aid")
    assert "UnionPay Debit" in dd(s, "chip-aid")  # the AID's name
    assert dd(s, "chip-label") == LABEL
    assert dd(s, "chip-atc") == str(int.from_bytes(tags["9F36"], "big"))
    assert dd(s, "chip-cvn") == "18"
    assert dd(s, "chip-cryptogram").startswith("ARQC")
    assert cvm_text(tags["9F34"], lang) in dd(s, "chip-cvm")  # type: ignore[arg-type]
    tsi = dd(s, "chip-tsi")
    assert tsi.startswith("E800")
    for word in tsi_words(tags["9B"], lang):  # type: ignore[arg-type]
        assert word in tsi
    # the TVR: five bytes, each with the words of its own set bits
    tvr = tags["95"]
    text = dd(s, "chip-tvr")
    assert text.startswith(tvr.hex().upper())
    for n in range(5):
        alone = bytes(n) + tvr[n : n + 1] + bytes(4 - n)
        for word in tvr_words(alone, lang):  # type: ignore[arg-type]
            assert word in text
    assert text.count("Byte " if lang == "en" else "字节") == 5
    # masked: PAN first 6 / last 4; 57 and 9F1F never in clear
    assert dd(s, "chip-pan") == "621483*********2144"
    assert PAN not in page.body
    assert tags["57"].hex().upper() not in page.body and tags["57"].hex() not in page.body
    assert TRACK1_DD.hex().upper() not in page.body and TRACK1_DD.hex() not in page.body
    hidden = "bytes hidden" if lang == "en" else "已隐藏"
    rows = dict(
        re.findall(
            r'<tr><td class="mono">([0-9A-F#]+)</td><td>[^<]*</td><td class="mono">([^<]*)</td>', s
        )
    )
    assert hidden in rows["57"] and str(len(tags["57"])) in rows["57"]
    assert hidden in rows["9F1F"] and str(len(TRACK1_DD)) in rows["9F1F"]
    assert rows["5A"] == "621483*********2144"
    assert rows["9F26"] == tags["9F26"].hex().upper()


def test_a_declined_chip_sale_shows_the_failed_check(chip: Chip) -> None:
    b = signed_in(chip.app)
    en = section(b.get(f"/transactions/{chip.declined}?lang=en").body)
    assert dd(en, "chip-arqc") == "does not verify"
    assert dd(en, "chip-last-atc").isdigit()
    zh = section(b.get(f"/transactions/{chip.declined}?lang=zh").body)
    assert dd(zh, "chip-arqc") == "不一致"
    assert "芯片数据" in b.get(f"/transactions/{chip.declined}?lang=zh").body


def test_a_transaction_without_chip_data_has_no_chip_section(chip: Chip) -> None:
    b = signed_in(chip.app)
    page = b.get("/transactions?lang=en")
    assert page.status == 200
    rrns = re.findall(r"/transactions/(\d{12})", page.body)
    signon = [r for r in rrns if r not in (chip.approved, chip.declined)]
    assert signon, "the sign-on is journaled too"
    assert 'id="chip"' not in b.get(f"/transactions/{signon[0]}?lang=en").body
