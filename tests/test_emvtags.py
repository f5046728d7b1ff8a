"""Chip data in words, masked: TVR, CVM, cryptogram type, AID; real field 55 of frame F3."""

from __future__ import annotations

from test_tlv import F3_55

from clearpos.wire import emvtags, tlv

PAN = "6214830000000002144"


def test_describe_real_field_55() -> None:
    facts = emvtags.describe(bytes.fromhex(F3_55))
    assert facts["aid"] == "A000000333010102" and facts["application"] == "UnionPay Credit"
    assert facts["cryptogram"] == "ARQC" and facts["atc"] == 0x0157
    assert facts["tvr"] == []
    tags = facts["tags"]
    assert isinstance(tags, dict) and tags["9F26"] == "95BBE372271DDA7C" and len(tags) == 19


def test_tvr_every_named_bit_and_rfu() -> None:
    assert emvtags.tvr_words(bytes.fromhex("0000000040"), "zh") == ["发卡行认证失败"]
    words = emvtags.tvr_words(bytes.fromhex("FFFFFFFFFF"))
    assert len(words) == 40
    assert words[0] == "offline data authentication was not performed"
    assert "TVR byte 1 bit 1 (RFU)" in words and "TVR byte 5 bit 1 (RFU)" in words
    assert sum("(RFU)" not in w for w in words) == 7 + 5 + 6 + 5 + 4


def test_cvm_and_cryptogram() -> None:
    assert emvtags.cvm_text(bytes.fromhex("420300")) == "online PIN, result unknown"
    assert emvtags.cvm_text(bytes.fromhex("3F0000"), "zh") == "未进行持卡人验证，结果未知"
    assert emvtags.cvm_text(bytes.fromhex("2A0302")) == "CVM 2A, successful"
    assert emvtags.cvm_text(b"\x1f") == "?"
    assert emvtags.cryptogram_type(b"\xc0") == "AAR" and emvtags.cryptogram_type(b"") == "?"


def test_masked_tags_hide_card_data_and_summarise_scripts() -> None:
    data = tlv.encode(
        [
            ("5A", bytes.fromhex(PAN + "F")),
            ("57", bytes.fromhex(PAN + "D2812220F")),
            ("5F20", b"ZHANG/SAN"),
            ("9F36", b"\x00\x07"),
            tlv.Tlv("72", b"", (tlv.Tlv("9F18", b"\x00\x00\x00\x01"), tlv.Tlv("86", b"\x84\x1e"))),
        ]
    )
    tags = emvtags.masked_tags(data)
    assert tags == {
        "5A": "621483*********2144",
        "57": "[14 bytes hidden]",
        "5F20": "[9 bytes hidden]",
        "9F36": "0007",
        "72#1": "script 00000001, 1 command(s)",
    }
    assert emvtags.masked_tags(b"\x9f\x26\x09") == {
        "error": "field 55 byte 2: tag 9F26 says 9 value bytes, only 0 follow"
    }
    assert emvtags.describe(b"\x95\x05") == {
        "error": "field 55 byte 1: tag 95 says 5 value bytes, only 0 follow"
    }
    facts = emvtags.describe({"5A": bytes.fromhex(PAN + "F"), "95": bytes.fromhex("0000000040")})
    assert facts["tags"] == {"5A": "621483*********2144", "95": "0000000040"}
    assert facts["tvr"] == ["issuer authentication failed"]
