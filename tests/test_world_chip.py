"""World files: [issuer], chip cards and terminals, QuickPass limit, [[emv.capk]], [[emv.aid]]."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearpos.world import (
    DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN,
    Chip,
    Problem,
    WorldError,
    capk_check_value,
    load_world,
    parse_world,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "world.toml"

MERCHANT = '[[merchants]]\nmid = "898310048161234"\n'
TERMINAL = (
    '[[terminals]]\ntid = "10000001"\nmid = "898310048161234"\n'
    'tmk = "0123456789ABCDEFFEDCBA9876543210"\n'
)
CARD = '[[cards]]\npan = "6225880000001017"\nexpiry = "2812"\npin = "123456"\nbalance = "1.00"\n'
ISSUER = (
    '[issuer]\nimk_ac = "0123456789ABCDEF0123456789ABCDEF"\n'
    'imk_smi = "FEDCBA9876543210FEDCBA9876543210"\nimk_smc = "89ABCDEF0123456789ABCDEF01234567"\n'
)
CHIP = 'chip = { psn = "01", cvn = "18", service_code = "220" }\n'
MODULUS = "C0" * 128
CAPK = (
    f'[[emv.capk]]\nrid = "A000000333"\nindex = "08"\nmodulus = "{MODULUS}"\n'
    'exponent = "03"\nexpiry = "20301231"\n'
)
AID = (
    '[[emv.aid]]\naid = "A000000333010101"\napp_version = "0030"\nfloor_limit = "0.00"\n'
    'contactless_limit = "5000.00"\ncontactless_cvm_limit = "1000.00"\n'
    'tac_default = "D84000A800"\ntac_online = "D84004F800"\ntac_denial = "0010000000"\n'
)
C_ENTRY = "#1 (pan 622588…1017)"
CAPK_ENTRY = '#1 (rid "A000000333" index "08")'
AID_ENTRY = '#1 (aid "A000000333010101")'


def problems(text: str) -> list[Problem]:
    with pytest.raises(WorldError) as caught:
        parse_world(text, "world.toml")
    return caught.value.problems


def test_example_world_has_the_chip_parts() -> None:
    world = load_world(EXAMPLE)
    assert world.issuer is not None and len(world.issuer.imk_ac) == 16
    assert "0123456789ABCDEF" not in repr(world.issuer)
    assert world.risk.quickpass_no_pin_limit_fen == 100_000
    chips = {c.pan: c.chip for c in world.cards if c.chip is not None}
    assert chips["6214830000000002144"] == Chip("01", "18", "220")  # 19 digits: Option B
    assert chips["6225880000001140"] == Chip("00", "10", "220")
    lost = [c for c in world.cards if c.chip is not None and c.status == "lost"]
    assert len(lost) == 1
    assert [t.tid for t in world.terminals if t.chip] == ["10000011"]
    assert [(k.rid, k.index) for k in world.capks] == [
        ("A000000333", i) for i in ("02", "03", "04")
    ]
    # the check values published with the UnionPay test keys, recomputed from the keys
    assert [k.check_value for k in world.capks] == [
        "03BB335A8549A03B87AB089D006F60852E4B8060",
        "87F0CD7C0E86F38F89A66F8C47071A8B88586F26",
        "F527081CF371DD7E1FD4FA414A665036E0F5E6E5",
    ]
    [aid] = world.aids
    assert (aid.aid, aid.contactless_cvm_limit_fen, aid.contactless_limit_fen) == (
        "A000000333010101",
        100_000,
        500_000,
    )
    assert (EXAMPLE.parent.parent / "clearpos" / "data" / "world.toml").read_text(
        "utf-8"
    ) == EXAMPLE.read_text("utf-8")


def test_defaults_and_minimal_chip_world() -> None:
    world = parse_world(MERCHANT + TERMINAL + CARD, "w.toml")
    assert world.issuer is None and world.capks == () and world.aids == ()
    assert world.risk.quickpass_no_pin_limit_fen == DEFAULT_QUICKPASS_NO_PIN_LIMIT_FEN
    assert world.terminals[0].chip is False and world.cards[0].chip is None
    text = (
        ISSUER
        + MERCHANT
        + TERMINAL
        + "chip = true\n"
        + CARD
        + 'chip = { psn = "00", cvn = "10" }\n'
    )
    text += CAPK + '[[emv.aid]]\naid = "A000000333010101"\n'
    world = parse_world(text, "w.toml")
    assert world.terminals[0].chip is True
    assert world.cards[0].chip == Chip("00", "10", "220")
    assert world.capks[0].check_value == capk_check_value("A000000333", "08", MODULUS, "03")
    aid = world.aids[0]
    assert (aid.app_version, aid.floor_limit_fen, aid.tac_default) == ("0030", 0, "0000000000")
    assert aid.tac_online == aid.tac_denial == "0000000000"


def test_capk_check_value_is_sha1_over_rid_index_modulus_exponent() -> None:
    import hashlib

    expected = hashlib.sha1(bytes.fromhex("A000000333" + "08" + MODULUS + "03")).hexdigest()
    assert capk_check_value("A000000333", "08", MODULUS, "03") == expected.upper()


BAD: list[tuple[str, str, str, str, str, str]] = [
    # id, text, table, entry, key, message (exact)
    (
        "issuer key short",
        ISSUER.replace('"0123456789ABCDEF0123456789ABCDEF"', '"0123"'),
        "[issuer]", "", "imk_ac", "must be exactly 32 hex digits, got 4",
    ),
    (
        "issuer key not hex",
        ISSUER.replace("FEDCBA9876543210FEDCBA9876543210", "FEDCBA9876543210FEDCBA987654321G"),
        "[issuer]", "", "imk_smi", "must be exactly 32 hex digits (0-9, A-F only)",
    ),
    (
        "issuer key missing",
        ISSUER.replace('imk_smc = "89ABCDEF0123456789ABCDEF01234567"\n', ""),
        "[issuer]", "", "imk_smc", "missing; this key is required",
    ),
    (
        "issuer unknown key",
        ISSUER + 'imk_dek = "00"\n',
        "[issuer]", "", "imk_dek", "unknown key; did you mean \"imk_ac\"?",
    ),
    (
        "chip card without issuer",
        MERCHANT + CARD + CHIP,
        "[issuer]", "", "",
        "missing; [[cards]] #1 has a chip, and chip cards need the issuer's master keys "
        "imk_ac, imk_smi, imk_smc",
    ),
    (
        "bad cvn",
        ISSUER + CARD + CHIP.replace('"18"', '"17"'),
        "[[cards]]", C_ENTRY, "chip.cvn", '"17" is not allowed; use one of 10 | 18',
    ),
    (
        "bad psn",
        ISSUER + CARD + CHIP.replace('psn = "01"', 'psn = "1"'),
        "[[cards]]", C_ENTRY, "chip.psn", "must be exactly 2 digits, got 1",
    ),
    (
        "magstripe service code on a chip",
        ISSUER + CARD + CHIP.replace('"220"', '"101"'),
        "[[cards]]", C_ENTRY, "chip.service_code",
        '"101" does not say chip; a chip card\'s service code starts with 2 (international) '
        'or 6 (national), such as "220"',
    ),
    (
        "chip not a table",
        ISSUER + CARD + 'chip = true\n',
        "[[cards]]", C_ENTRY, "chip",
        'must be a table such as { psn = "01", cvn = "18", service_code = "220" }, got a boolean',
    ),
    (
        "chip unknown key",
        ISSUER + CARD + 'chip = { psn = "01", cvn = "18", atc = 3 }\n',
        "[[cards]]", C_ENTRY, "chip.atc", "unknown key; known keys: psn, cvn, service_code",
    ),
    (
        "terminal chip not a boolean",
        MERCHANT + TERMINAL + 'chip = "yes"\n',
        "[[terminals]]", '#1 (tid "10000001")', "chip", "must be true or false, got a string",
    ),
    (
        "quickpass limit float",
        "[risk]\nquickpass_no_pin_limit = 1000.0\n",
        "[risk]", "", "quickpass_no_pin_limit",
        '1000.0 is a TOML float, which is not exact for money; quote it as a string: "1000.00"',
    ),
    (
        "capk rid short",
        CAPK.replace('"A000000333"', '"A0000003"'),
        "[[emv.capk]]", '#1 (rid "A0000003" index "08")', "rid",
        "must be exactly 10 hex digits, got 8",
    ),
    (
        "capk modulus too short",
        CAPK.replace(MODULUS, "C0" * 32),
        "[[emv.capk]]", CAPK_ENTRY, "modulus", "must be 128 to 496 hex digits, got 64",
    ),
    (
        "capk modulus odd",
        CAPK.replace(MODULUS, MODULUS + "C"),
        "[[emv.capk]]", CAPK_ENTRY, "modulus",
        "must be whole bytes (an even number of hex digits), got 257",
    ),
    (
        "capk exponent",
        CAPK.replace('exponent = "03"', 'exponent = "05"'),
        "[[emv.capk]]", CAPK_ENTRY, "exponent",
        'must be "03" or "010001" (EMV allows 3 and 65537), got "05"',
    ),
    (
        "capk expiry not a date",
        CAPK.replace('"20301231"', '"20301332"'),
        "[[emv.capk]]", CAPK_ENTRY, "expiry", 'must be a real date YYYYMMDD, got "20301332"',
    ),
    (
        "capk duplicate",
        CAPK + CAPK,
        "[[emv.capk]]", '#2 (rid "A000000333" index "08")', "index",
        "duplicate; [[emv.capk]] #1 has the same rid and index",
    ),
    (
        "capk missing key",
        CAPK.replace('exponent = "03"\n', ""),
        "[[emv.capk]]", CAPK_ENTRY, "exponent", "missing; this key is required",
    ),
    (
        "aid bad hex",
        AID.replace('aid = "A000000333010101"', 'aid = "A00000033X"'),
        "[[emv.aid]]", '#1 (aid "A00000033X")', "aid",
        'must be 10 to 32 hex digits (0-9, A-F only), got "A00000033X"',
    ),
    (
        "aid tac length",
        AID.replace('"D84000A800"', '"D84000A8"'),
        "[[emv.aid]]", AID_ENTRY, "tac_default", "must be exactly 10 hex digits, got 8",
    ),
    (
        "aid cvm limit above contactless limit",
        AID.replace('contactless_cvm_limit = "1000.00"', 'contactless_cvm_limit = "6000.00"'),
        "[[emv.aid]]", AID_ENTRY, "contactless_cvm_limit",
        "must not be above contactless_limit (taps above it are refused)",
    ),
    (
        "aid money three decimals",
        AID.replace('floor_limit = "0.00"', 'floor_limit = "0.001"'),
        "[[emv.aid]]", AID_ENTRY, "floor_limit",
        '"0.001" has more than two decimals; amounts are yuan to the fen (0.01)',
    ),
    (
        "aid duplicate",
        AID + AID,
        "[[emv.aid]]", '#2 (aid "A000000333010101")', "aid",
        "duplicate; [[emv.aid]] #1 has the same aid",
    ),
    (
        "emv unknown key",
        '[emv]\ncapks = []\n',
        "[emv]", "", "capks", 'unknown key; did you mean "capk"?',
    ),
    (
        "emv capk not an array",
        '[emv.capk]\nrid = "A000000333"\n',
        "[[emv.capk]]", "", "", "must be an array of tables: write [[emv.capk]] before each entry",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "table", "entry", "key", "message"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_chip_world(text: str, table: str, entry: str, key: str, message: str) -> None:
    [problem] = problems(text)
    assert (problem.file, problem.table, problem.entry, problem.key, problem.message) == (
        "world.toml",
        table,
        entry,
        key,
        message,
    )


def test_issuer_keys_never_appear_in_errors() -> None:
    secret = "0123456789ABCDEF0123456789ABCDEG"
    text = ISSUER.replace("0123456789ABCDEF0123456789ABCDEF", secret)
    text = text.replace("FEDCBA9876543210FEDCBA9876543210", "FEDCBA9876543210")
    rendered = str(problems(text))
    assert secret not in rendered and "FEDCBA9876543210" not in rendered
