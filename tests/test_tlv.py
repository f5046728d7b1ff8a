"""BER-TLV of field 55: real chip data from public frames, templates, errors, masking."""

from __future__ import annotations

import pytest

from clearpos.wire import DecodeError, EncodeError, tlv

# The three frames, whole, as shared/vectors/real-frames.md gives them (sources there:
# codetd.com article 5053461 and public terminal code).
REAL_FRAMES = {
    "F3_codetd_purchase_ic": (
        "01AA60000600006031003110030200702406C020C19A311662242429000001130000000000000000"
        "010004032806071000000012346224242900000113D2806201394903101331303030303031393835"
        "30313030303832343130303032000100313536D1EEF419D0AE2609260000000000000001399F2608"
        "95BBE372271DDA7C9F2701809F101307010103A00000010A010000000000ED538FE49F37047F9F34"
        "9E9F36020157950500000000009A031908309C01009F02060000000000015F2A02015682027C009F"
        "1A0201569F03060000000000009F3303E0E1C89F3501229F1E0831303030303031398408A0000003"
        "330101029F0902008C9F410400000403015331323230383938363036313730383030303235383339"
        "39333133313148465431373038303330313134313432303139303833303039333433353135303230"
        "3031373232424433302E3632313535352C3131342E33363139353441323630303130323032303231"
        "36303030303239303231303031353730383033303630303031313330343038303432343732393230"
        "35303848373036323830310014220000240006003846363531423236"
    ),
    "R1b_0210_qpboc": (
        "00A360000006016032003220120210703E02810AD082131662148320111413190000000000000000"
        "01000052222210032228060322000100080015580032323232313032303232383530303035313737"
        "30363738393834343031353331313335303722303330383030303020202034383032353830302020"
        "2031353600179F36020719910AA27DBF42742B1E1B30300014220005120006000003435550313936"
        "4139313545"
    ),
    "R6c_whty_0200_qpboc_body": (
        "0200703C06C020C09A11196217857600008050804000000000000000000100010516124302092308"
        "071000010012376217857600008050804D2308220100008230003932333336373837383437313030"
        "3035333939303030323135367D6A7408DFE2E9E5260000000000000001459F26089C0A057796D091"
        "E39F2701809F1013070F0103A00000010A010000005959BAF31C349F37042AE9F9B49F36020FCD95"
        "0500000000009A031802099C01009F02060000000000015F2A02015682027C009F1A0201569F0306"
        "0000000000009F330390C8C09F34030000009F3501229F1E0831323334353637388408A000000333"
        "0101019F090200209F41040000000200122200000100064433374345464536"
    ),
}

# Field 55 of three real frames, sliced out by hand: the LLLVAR length (BCD) is
# the 2 bytes before the value. Each row: frame name, BCD length, value hex.
F3_55 = (
    "9F260895BBE372271DDA7C9F2701809F101307010103A00000010A010000000000ED538FE4"
    "9F37047F9F349E9F36020157950500000000009A031908309C01009F0206000000000001"
    "5F2A02015682027C009F1A0201569F03060000000000009F3303E0E1C89F3501229F1E08"
    "31303030303031398408A0000003330101029F0902008C9F410400000403"
)
R1B_55 = "9F36020719910AA27DBF42742B1E1B3030"
R6C_55 = (
    "9F26089C0A057796D091E39F2701809F1013070F0103A00000010A010000005959BAF31C34"
    "9F37042AE9F9B49F36020FCD950500000000009A031802099C01009F0206000000000001"
    "5F2A02015682027C009F1A0201569F03060000000000009F330390C8C09F34030000009F35"
    "01229F1E0831323334353637388408A0000003330101019F090200209F410400000002"
)

REAL = [
    (
        "F3_codetd_purchase_ic",
        139,
        F3_55,
        {
            "9F26": "95BBE372271DDA7C",
            "9F27": "80",
            "9F10": "07010103A00000010A010000000000ED538FE4",
            "9F37": "7F9F349E",
            "9F36": "0157",
            "95": "0000000000",
            "9A": "190830",
            "9C": "00",
            "9F02": "000000000001",
            "5F2A": "0156",
            "82": "7C00",
            "9F1A": "0156",
            "9F03": "000000000000",
            "9F33": "E0E1C8",
            "9F35": "22",
            "9F1E": "3130303030303139",
            "84": "A000000333010102",
            "9F09": "008C",
            "9F41": "00000403",
        },
    ),
    ("R1b_0210_qpboc", 17, R1B_55, {"9F36": "0719", "91": "A27DBF42742B1E1B3030"}),
    (
        "R6c_whty_0200_qpboc_body",
        145,
        R6C_55,
        {
            "9F26": "9C0A057796D091E3",
            "9F27": "80",
            "9F10": "070F0103A00000010A010000005959BAF31C34",
            "9F37": "2AE9F9B4",
            "9F36": "0FCD",
            "95": "0000000000",
            "9A": "180209",
            "9C": "00",
            "9F02": "000000000001",
            "5F2A": "0156",
            "82": "7C00",
            "9F1A": "0156",
            "9F03": "000000000000",
            "9F33": "90C8C0",
            "9F34": "000000",
            "9F35": "22",
            "9F1E": "3132333435363738",
            "84": "A000000333010101",
            "9F09": "0020",
            "9F41": "00000002",
        },
    ),
]


def _frame(name: str) -> str:
    return REAL_FRAMES[name]


@pytest.mark.parametrize(("name", "length", "value", "expected"), REAL, ids=[r[0] for r in REAL])
def test_real_field_55(name: str, length: int, value: str, expected: dict[str, str]) -> None:
    # the hand-sliced bytes really are field 55 of that frame, length prefix included
    assert f"{length:04d}{value}" in _frame(name)
    raw = bytes.fromhex(value)
    assert len(raw) == length
    items = tlv.decode(raw)
    assert [i.tag for i in items] == list(expected)
    assert {tag: v.hex().upper() for tag, v in tlv.flatten(items).items()} == expected
    # re-encoding gives the same bytes: every real length was the short form
    assert tlv.encode(items) == raw
    assert tlv.encode((t, bytes.fromhex(v)) for t, v in expected.items()) == raw


def test_constructed_templates_keep_children_and_raw_value() -> None:
    script1 = "9F180400000001" + "860D" + "841E000008" + "1122334455667788"
    script2 = "860D" + "8418000008" + "8877665544332211"
    data = bytes.fromhex(
        f"910AA27DBF42742B1E1B30307116{script1}720F{script2}770D9F2701409F360200115F340101"
    )
    items = tlv.decode(data)
    assert [i.tag for i in items] == ["91", "71", "72", "77"]
    first = items[1]
    assert first.value == bytes.fromhex(script1)
    assert [c.tag for c in first.children] == ["9F18", "86"]
    assert first.children[1].value.hex().upper() == "841E0000081122334455667788"
    # two script templates stay two; flatten looks into 77 but not into 71/72
    assert [s.tag for s in tlv.scripts(items)] == ["71", "72"]
    flat = tlv.flatten(items)
    assert set(flat) == {"91", "9F27", "9F36", "5F34"}
    assert flat["9F36"] == b"\x00\x11"
    assert tlv.encode(items) == data
    built = tlv.Tlv("72", b"", (tlv.Tlv("86", bytes.fromhex("8418000008")),))
    assert tlv.encode([built]).hex().upper() == "720786058418000008"


def test_multi_byte_tags_and_long_lengths() -> None:
    modulus = bytes(range(256))[:248]  # a 1984-bit CA key
    data = tlv.encode([("DF02", modulus), ("BF0C", tlv.encode_one("9F4D", b"\x0b\x0a"))])
    assert data[:4].hex().upper() == "DF0281F8"
    items = tlv.decode(data)
    assert items[0].tag == "DF02" and items[0].value == modulus
    assert items[1].tag == "BF0C" and items[1].children[0].tag == "9F4D"
    # three-byte tag and a two-byte length
    big = tlv.encode_one("DF8101", bytes(300))
    assert big[:6].hex().upper() == "DF810182012C"
    assert tlv.decode(big)[0].value == bytes(300)
    # padding zeros between objects are skipped
    assert [i.tag for i in tlv.decode(bytes.fromhex("009F36020001000095050000000000"))] == [
        "9F36",
        "95",
    ]


@pytest.mark.parametrize(
    ("hex_", "base", "message"),
    [
        ("9F2608AABB", 0, "field 55 byte 2: tag 9F26 says 8 value bytes, only 2 follow"),
        ("9F36020157" + "9F", 10, "field 55 byte 15: tag starting 9F is cut off"),
        ("9F36", 0, "field 55 byte 2: tag 9F36 has no length byte"),
        (
            "DF0284000000",
            0,
            "field 55 byte 2: tag DF02: length byte 84 is not a definite length of 1-3 bytes",
        ),
        (
            "DF0280",
            0,
            "field 55 byte 2: tag DF02: length byte 80 is not a definite length of 1-3 bytes",
        ),
        ("DF0282", 0, "field 55 byte 2: tag DF02: length is cut off"),
        ("DF8181818101", 0, "field 55 byte 0: a tag longer than 4 bytes"),
        # the fault inside a template is placed at its own byte
        ("7206" + "8605841E00", 0, "field 55 byte 1: tag 72 says 6 value bytes, only 5 follow"),
        ("7205" + "8606841E00", 0, "field 55 byte 3: tag 86 says 6 value bytes, only 3 follow"),
    ],
)
def test_decode_errors_name_tag_and_byte(hex_: str, base: int, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        tlv.decode(bytes.fromhex(hex_), base=base)
    assert str(info.value) == message
    assert info.value.field == 55


def test_error_in_field_62_names_field_62() -> None:
    with pytest.raises(DecodeError, match=r"^field 62 byte 2: tag 9F06"):
        tlv.decode(b"\x9f\x06\x05\xa0", field=62)


def test_decode_error_never_carries_values() -> None:
    pan = "6222021234567890123"
    data = bytes.fromhex("5A0A" + pan + "F") + bytes.fromhex("5713" + pan + "D2812")
    with pytest.raises(DecodeError) as info:
        tlv.decode(data)
    assert "6222" not in str(info.value) and "2812" not in str(info.value)


def test_encode_refuses_bad_tags_and_oversize_values() -> None:
    with pytest.raises(EncodeError, match="not hex"):
        tlv.encode_one("9G", b"")
    with pytest.raises(EncodeError, match="1 to 4 bytes"):
        tlv.encode_one("", b"")
    with pytest.raises(EncodeError, match="too long"):
        tlv.encode_one("DF02", bytes(70000))


def test_render_masks_card_data() -> None:
    pan = "6222021234567890123"
    track = pan + "D28122010000000000F"
    data = tlv.encode(
        [
            ("5A", bytes.fromhex(pan + "F")),
            ("57", bytes.fromhex(track)),
            ("9F1F", b"12345678901234"),
            ("9F20", b"\x12\x34"),
            ("56", b"B6222021234567890123^ZHANG/SAN^2812"),
            ("5F20", b"ZHANG/SAN"),
            ("9F6B", bytes.fromhex(track)),
            ("9F36", b"\x00\x2a"),
            ("70", tlv.encode_one("5A", bytes.fromhex(pan + "F"))),
        ]
    )
    text = tlv.render(data)
    assert "622202*********0123" in text
    assert "9F36 002A" in text
    for secret in (pan, "1234567890", "D2812", "ZHANG", b"12345678901234".hex().upper()):
        assert secret not in text
    assert text.count("[card data,") == 6
    assert (
        tlv.render(b"\x9f\x26\x08") == "[chip data, 3 bytes, not TLV: field 55 byte 2: tag 9F26 "
        "says 8 value bytes, only 0 follow]"
    )
