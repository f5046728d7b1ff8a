"""Field 62 layouts of the CA-key (372/370) and chip-parameter (382/380) downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clearpos.store import AidRec, CapkRec
from clearpos.wire import DecodeError, EncodeError, emvparams, tlv
from clearpos.world import load_world

WORLD = load_world(Path(__file__).resolve().parent.parent / "examples" / "world.toml")
KEYS = [
    CapkRec(k.rid, k.index, k.modulus, k.exponent, k.expiry, k.check_value) for k in WORLD.capks
]
AIDS = [
    AidRec(a.aid, a.app_version, a.floor_limit_fen, a.contactless_limit_fen,
           a.contactless_cvm_limit_fen, a.tac_default, a.tac_online, a.tac_denial)
    for a in WORLD.aids
]  # fmt: skip

# UnionPay test key 03 as a public terminal SDK loads it (see docs/emv.md); its DF05 is
# 4 bytes BCD there, the 8583 downloads send 8 ASCII digits (PAX reads both).
PUBLIC_KEY_03 = (
    "9F0605A0000003339F220103DF050420221231DF060101DF070101DF0281B0B0627DEE87864F9C18C13B9A1F025448"
    "BF13C58380C91F4CEBA9F9BCB214FF8414E9B59D6ABA10F941C7331768F47B2127907D857FA39AAF8CE02045DD0161"
    "9D689EE731C551159BE7EB2D51A372FF56B556E5CB2FDE36E23073A44CA215D6C26CA68847B388E39520E0026E6229"
    "4B557D6470440CA0AEFC9438C923AEC9B2098D6D3A1AF5E8B1DE36F4B53040109D89B77CAFAF70C26C601ABDF59EEC"
    "0FDC8A99089140CD2E817E335175B03B7AA33DDF040103DF031487F0CD7C0E86F38F89A66F8C47071A8B88586F26"
)


def test_capk_list_record_is_the_23_byte_layout() -> None:
    record = emvparams.capk_record(KEYS[0])
    assert len(record) == 23
    assert record.hex().upper() == "9F0605A0000003339F220102DF0508" + b"20301231".hex().upper()
    # a 370 request is the first 12 bytes of a list record
    assert emvparams.capk_request("A000000333", "02") == record[:12]
    assert emvparams.parse_capk_request(record[:12]) == ("A000000333", "02")
    assert emvparams.parse_capk_request(record) == ("A000000333", "02")


def test_capk_answer_matches_the_public_key_record() -> None:
    answer = emvparams.capk_answer(KEYS[1])
    assert answer[:1] == b"1"
    ours = tlv.flatten(tlv.decode(answer[1:]))
    public = tlv.flatten(tlv.decode(bytes.fromhex(PUBLIC_KEY_03)))
    assert list(ours) == ["9F06", "9F22", "DF05", "DF06", "DF07", "DF02", "DF04", "DF03"]
    assert list(ours) == list(public)
    for tag in ("9F06", "9F22", "DF06", "DF07", "DF02", "DF04", "DF03"):
        assert ours[tag] == public[tag], tag
    assert ours["DF05"] == b"20301231"
    assert emvparams.parse_item_answer(answer) == ours
    assert emvparams.capk_answer(None) == b"0"
    assert emvparams.parse_item_answer(b"0") is None


def test_list_answers_page_with_status_characters() -> None:
    whole = emvparams.capk_list_answer(KEYS, 0)
    assert whole[:1] == emvparams.LIST_ALL and len(whole) == 1 + 3 * 23
    parsed = emvparams.parse_list_answer(whole)
    assert [r["9F22"] for r in parsed.records] == [b"\x02", b"\x03", b"\x04"]
    assert not parsed.more
    # a field that holds 2 records: '2' then '3', the terminal asking with its count
    first = emvparams.capk_list_answer(KEYS, 0, limit=1 + 2 * 23)
    assert first[:1] == emvparams.LIST_MORE and len(first) == 1 + 2 * 23
    got = emvparams.parse_list_answer(first)
    assert got.more and len(got.records) == 2
    query = emvparams.list_query(len(got.records))
    assert query == b"102" and emvparams.parse_list_query(query) == 2
    last = emvparams.capk_list_answer(KEYS, emvparams.parse_list_query(query), limit=1 + 2 * 23)
    assert last[:1] == emvparams.LIST_LAST and len(emvparams.parse_list_answer(last).records) == 1
    assert emvparams.capk_list_answer(KEYS, 3) == emvparams.LIST_NONE
    assert emvparams.capk_list_answer([], 0) == emvparams.LIST_NONE
    assert emvparams.parse_list_answer(b"0").records == ()
    assert emvparams.parse_list_query(None) == 0 and emvparams.parse_list_query(b"") == 0
    with pytest.raises(EncodeError, match="does not fit field 62"):
        emvparams.capk_list_answer(KEYS, 0, limit=10)


def test_aid_record_has_the_380_tags() -> None:
    answer = emvparams.aid_answer(AIDS[0])
    tags = emvparams.parse_item_answer(answer)
    assert tags is not None
    assert list(tags) == [
        "9F06", "DF01", "9F08", "DF11", "DF12", "DF13", "9F1B", "DF15", "DF16", "DF17",
        "DF14", "DF18", "9F7B", "DF19", "DF20", "DF21",
    ]  # fmt: skip
    assert tags["9F06"].hex().upper() == "A000000333010101"
    assert tags["9F08"] == bytes.fromhex("0030")
    assert tags["DF11"].hex().upper() == "D84000A800"
    assert tags["9F1B"] == bytes(4)
    assert tags["DF14"].hex().upper() == "9F3704"
    assert tags["DF20"].hex() == "000000500000" and tags["DF21"].hex() == "000000100000"
    alt = emvparams.parse_item_answer(emvparams.aid_answer(AIDS[0], version_tag="9F09"))
    assert alt is not None and "9F09" in alt and "9F08" not in alt
    listed = emvparams.parse_list_answer(emvparams.aid_list_answer(AIDS, 0))
    assert listed.status == b"1" and listed.records == ({"9F06": tags["9F06"]},)
    assert emvparams.parse_aid_request(emvparams.aid_request("A000000333010101")) == (
        "A000000333010101"
    )
    assert emvparams.aid_answer(None) == b"0"


def test_same_layout_as_public_aid_sample() -> None:
    # the Newland-style C terminal's default UnionPay AID, read back through our parser
    sample = bytes.fromhex(
        "9F0608A000000333010101DF0101019F08020020DF1105FC78F4F8F0DF1205FC78F4F8F0DF130500100000009F1B"
        "0400002710DF150400000000DF160120DF170110DF14039F3704DF1801019F7B06000000100000DF190600000010"
        "0000DF2006000000100000DF2106000000010000"
    )
    theirs = emvparams.parse_item_answer(b"1" + sample)
    ours = emvparams.parse_item_answer(emvparams.aid_answer(AIDS[0]))
    assert theirs is not None and ours is not None
    assert set(theirs) == set(ours)
    assert {t: len(v) for t, v in theirs.items() if t != "9F06"} == {
        t: len(v) for t, v in ours.items() if t != "9F06"
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: emvparams.parse_list_query(b"2"), "field 62 byte 0: a list query is '1' and 2 digits"),
        (lambda: emvparams.parse_capk_request(bytes.fromhex("9F0605A000000333")), "tag 9F22 missing"),
        (lambda: emvparams.parse_capk_request(bytes.fromhex("9F0604A00000039F220102")),
         "tag 9F06 must be 5 bytes, got 4"),
        (lambda: emvparams.parse_capk_request(bytes.fromhex("9F0605A0000003")),
         "field 62 byte 2: tag 9F06 says 5 value bytes, only 4 follow"),
        (lambda: emvparams.parse_aid_request(b""), "tag 9F06 missing"),
        (lambda: emvparams.parse_list_answer(b"9"), "a list answer starts with status"),
        (lambda: emvparams.parse_list_answer(b"1" + bytes.fromhex("9F220102")),
         "tag 9F22 before the first 9F06"),
        (lambda: emvparams.parse_item_answer(b"X"), "an item answer starts with status '0' or '1'"),
        (lambda: emvparams.parse_item_answer(b"1" + bytes.fromhex("DF0203AA")),
         "field 62 byte 3: tag DF02 says 3 value bytes, only 1 follow"),
    ],
)  # fmt: skip
def test_bad_field_62_is_refused_precisely(call: object, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)) as info:
        call()  # type: ignore[operator]
    assert info.value.field == 62


def test_list_query_range() -> None:
    with pytest.raises(EncodeError):
        emvparams.list_query(100)
