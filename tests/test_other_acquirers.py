"""What the virtual terminal must take from an acquirer that is not clearpos (spec §5):
field 62 in every length public terminal code names, a double-length MAC key in
either camp of public code, GBK text in field 63 — and what it refuses."""

from __future__ import annotations

import pytest

from clearpos.keys import KeyCheckError, TerminalKeys
from clearpos.keys.crypto import check_value, tdes_encrypt, unpack_field62
from clearpos.wire import FinancialResponse, Kind, parse
from clearpos.wire.codec import encode

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718")
MAK16 = bytes.fromhex("1A2B3C4D5E6F7081F1E2D3C4B5A69788")
TDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK24 = PIK + bytes.fromhex("1122334455667788")
MAK24 = MAK16 + bytes.fromhex("8877665544332211")


def enc(key: bytes) -> bytes:
    return tdes_encrypt(TMK, key)


def kcv(key: bytes) -> bytes:
    return check_value(key)


def test_double_length_mac_key_left_half_camp() -> None:
    """PAX, Newland and Easy8583 MAC with the left half and check it with single DES."""
    f62 = enc(PIK) + kcv(PIK) + enc(MAK16) + kcv(MAK16[:8])
    keys = unpack_field62(TMK, f62)
    assert keys.mak == MAK16[:8]


def test_double_length_mac_key_3des_camp() -> None:
    """An mPOS SDK and an acquirer utility run 3DES with the whole key."""
    f62 = enc(PIK) + kcv(PIK) + enc(MAK16) + kcv(MAK16)
    keys = unpack_field62(TMK, f62)
    assert keys.mak == MAK16
    t = TerminalKeys(TMK)
    t.accept_field62(f62)
    assert t.mac(b"\x02\x00" + bytes(30)) != TerminalKeys(TMK, keys.__class__(PIK, MAK16[:8])).mac(
        b"\x02\x00" + bytes(30)
    )


@pytest.mark.parametrize(
    ("name", "field62", "tdk"),
    [
        ("60 with TDK", enc(PIK) + kcv(PIK) + enc(MAK16[:8]) + bytes(8) + kcv(MAK16[:8]) + enc(TDK) + kcv(TDK), TDK),
        ("56 triple-length", enc(PIK24) + kcv(PIK24) + enc(MAK24) + kcv(MAK24), None),
        ("84 triple-length + TDK", enc(PIK24) + kcv(PIK24) + enc(MAK24) + kcv(MAK24) + enc(PIK24) + kcv(PIK24), PIK24),
    ],
)  # fmt: skip
def test_longer_layouts(name: str, field62: bytes, tdk: bytes | None) -> None:
    keys = unpack_field62(TMK, field62)
    assert keys.tdk == tdk, name


def test_a_layout_no_code_names_is_refused() -> None:
    with pytest.raises(KeyCheckError, match="one of \\[24, 40, 56, 60, 84\\] bytes, got 104"):
        unpack_field62(TMK, bytes(104))
    bad = enc(PIK) + kcv(PIK) + enc(MAK16) + b"\x00\x00\x00\x00"
    with pytest.raises(KeyCheckError, match="MAC key check value mismatch"):
        unpack_field62(TMK, bad)


def test_gbk_remarks_in_63_of_an_answer_decode() -> None:
    """KoolPos and other hosts put up to three 20-byte GB2312 texts after the card
    organisation in 63; the terminal reads them instead of refusing the answer."""
    remarks = "CUP" + "交易成功 请妥善保管".ljust(10)
    body = encode(
        "0210",
        {
            3: "000000", 4: "000000000100", 11: "000052", 25: "00", 37: "000000000001",
            39: "00", 41: "10000001", 42: "898310048161234", 60: "22000001000", 63: remarks,
        },
    )  # fmt: skip
    assert "交易成功".encode("gbk") in body
    msg, _, _ = parse(body)
    assert isinstance(msg, FinancialResponse) and msg.kind is Kind.PURCHASE
    assert msg.organisation == "CUP" and msg.reason.startswith("交易成功")
