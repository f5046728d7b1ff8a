"""World files: the demo world, every validation rule, money parsing, no card data in errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from clearpos.world import (
    CARD_STATUSES,
    MERCHANT_STATUSES,
    Acquirer,
    Card,
    Operator,
    Problem,
    World,
    WorldError,
    load_world,
    mask_pan,
    parse_money,
    parse_world,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "world.toml"

SPEC_PAN = "6222021234567890123"

MERCHANT = '[[merchants]]\nmid = "898310048161234"\n'
TERMINAL = (
    '[[terminals]]\ntid = "10000001"\nmid = "898310048161234"\n'
    'tmk = "0123456789ABCDEFFEDCBA9876543210"\n'
)
CARD = '[[cards]]\npan = "6225880000001017"\nexpiry = "2812"\npin = "123456"\nbalance = "1.00"\n'
MAINTENANCE = (
    '[[maintenance]]\nwho = "host"\n'
    "start = 2099-11-23T02:00:00+08:00\nend = 2099-11-23T04:00:00+08:00\n"
    'notice_zh = "系统维护"\nnotice_en = "Maintenance"\n'
)


def luhn_ok(pan: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(pan)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def problems(text: str) -> list[Problem]:
    with pytest.raises(WorldError) as caught:
        parse_world(text, "world.toml")
    return caught.value.problems


# ---------------------------------------------------------------- the example


@pytest.fixture(scope="module")
def world() -> World:
    return load_world(EXAMPLE)


def test_example_acquirer_and_risk(world: World) -> None:
    assert world.source == str(EXAMPLE)
    assert world.acquirer == Acquirer(
        "48020000",
        "Demo Acquiring",
        company="演示收单服务有限公司 Demo Acquiring Services",
        hotline="400-820-0000",
        hours="每天 8:00–22:00 / daily 8:00–22:00",
    )
    velocity = world.risk.card_velocity
    assert velocity is not None
    assert (velocity.count, velocity.window_s, velocity.lock_s) == (5, 60, 1800)


def test_example_merchants(world: World) -> None:
    wang = world.merchant("898310048161234")
    assert wang is not None
    assert wang.name == "老王面馆 Wang's Noodles"
    assert (wang.status, wang.single_limit_fen, wang.restricted_types) == ("active", 5_000_000, ())
    assert {m.status for m in world.merchants} == set(MERCHANT_STATUSES)
    restricted = next(m for m in world.merchants if m.status == "restricted")
    assert restricted.restricted_types == ("refund", "preauth")
    assert restricted.single_limit_fen == 50_000
    suspended = next(m for m in world.merchants if m.status == "suspended")
    assert (suspended.suspension_cause, suspended.arrears_fen) == ("arrears", 5800)
    assert all(m.suspension_cause == "" for m in world.merchants if m.status != "suspended")


def test_example_terminals(world: World) -> None:
    main = world.terminal("10000001")
    assert main is not None
    assert main.mid == "898310048161234"
    assert main.tmk == bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert (main.status, main.min_software, main.dialect) == ("active", "0.1.0", "clearpos")
    assert main.operators == (
        Operator("01", "0000", supervisor=False),
        Operator("99", "123456", supervisor=True),
    )
    mids = {m.mid for m in world.merchants}
    assert {t.mid for t in world.terminals} == mids  # one terminal per merchant at least
    assert any(t.status == "suspended" for t in world.terminals)  # D3
    assert any(t.min_software == "0.2.0" for t in world.terminals)  # D4
    assert any(t.dialect == "cup" for t in world.terminals)  # a stock terminal
    assert len({t.tmk for t in world.terminals}) == len(world.terminals)


def test_example_cards_cover_scenario_a(world: World) -> None:
    rich = world.card(SPEC_PAN)
    assert rich is not None
    assert (rich.expiry, rich.pin, rich.balance_fen, rich.daily_limit_fen) == (
        "2812",
        "123456",
        100_000,
        2_000_000,
    )
    assert rich.status == "normal" and rich.organisation == "CUP"
    assert {c.status for c in world.cards} == set(CARD_STATUSES)
    assert any(c.balance_fen == 500 for c in world.cards)  # A1
    assert any(c.daily_limit_fen == 10_000 for c in world.cards)  # A5
    assert any(c.expiry < "2501" and c.status == "normal" for c in world.cards)  # A3 by date
    assert {"VIS", "MCC"} <= {c.organisation for c in world.cards}
    spare = [c for c in world.cards if c.status == "normal" and c.balance_fen >= 100_000]
    assert len(spare) >= 5  # the rich card plus spares for A6, A7, A8


def test_example_pans(world: World) -> None:
    # The contract's example PAN fails Luhn; that is why Luhn is not enforced.
    assert not luhn_ok(SPEC_PAN)
    invented = [c.pan for c in world.cards if c.pan != SPEC_PAN]
    assert all(luhn_ok(pan) for pan in invented)
    for card in world.cards:
        assert 16 <= len(card.pan) <= 19
        prefix = {"CUP": "62", "VIS": "4", "MCC": "5"}[card.organisation]
        assert card.pan.startswith(prefix)
    masked = [mask_pan(c.pan) for c in world.cards]
    assert len(set(masked)) == len(masked)  # diagnosis output can tell them apart


def test_example_maintenance(world: World) -> None:
    assert [m.who for m in world.maintenance] == ["host", "issuer"]
    for window in world.maintenance:
        assert window.start.tzinfo is not None
        assert window.start > datetime.now(UTC) + timedelta(days=3650)
        assert window.end > window.start
        assert window.notice_zh and window.notice_en
    host = world.maintenance[0]
    assert host.start == datetime(2099, 11, 23, 2, tzinfo=timezone(timedelta(hours=8)))


def test_card_repr_masks_pan_and_hides_pin() -> None:
    card = Card(SPEC_PAN, "2812", "987654", 100, "normal", 0, "CUP")
    text = repr(card)
    assert "622202…0123" in text
    assert SPEC_PAN not in text and "987654" not in text


def test_operator_and_terminal_repr_hide_secrets(world: World) -> None:
    terminal = world.terminal("10000001")
    assert terminal is not None
    text = repr(terminal)
    assert "123456" not in text and "0000'" not in text
    assert "0123456789" not in text and "\\x01#" not in text


def test_minimal_world_defaults() -> None:
    world = parse_world(MERCHANT + TERMINAL + CARD, "w.toml")
    assert world.acquirer == Acquirer("48020000", "clearpos acquirer")
    assert world.risk.card_velocity is None
    merchant, terminal, card = world.merchants[0], world.terminals[0], world.cards[0]
    assert (merchant.name, merchant.status, merchant.suspension_cause) == ("", "active", "")
    assert (merchant.arrears_fen, merchant.single_limit_fen, merchant.restricted_types) == (
        0,
        0,
        (),
    )
    assert (terminal.status, terminal.min_software, terminal.operators) == ("active", "0", ())
    assert terminal.dialect == "cup" and world.acquirer.single_des is False
    assert (card.status, card.daily_limit_fen, card.organisation) == ("normal", 0, "CUP")
    assert world.maintenance == ()


def test_names_may_hold_any_printable_text() -> None:
    text = MERCHANT + 'name = "老王\u3000面馆 Wang\'s Noodles"\n'
    assert parse_world(text, "w.toml").merchants[0].name == "老王\u3000面馆 Wang's Noodles"
    [problem] = problems(MERCHANT + 'name = "a\u2028b"\n')
    assert problem.key == "name"


def test_empty_world() -> None:
    world = parse_world("", "empty.toml")
    assert (world.merchants, world.terminals, world.cards) == ((), (), ())


def test_maintenance_iso_strings() -> None:
    text = MAINTENANCE.replace(
        "start = 2099-11-23T02:00:00+08:00", 'start = "2099-11-22T18:00:00Z"'
    ).replace("end = 2099-11-23T04:00:00+08:00", 'end = "2099-11-23T04:00:00+08:00"')
    window = parse_world(text, "w.toml").maintenance[0]
    assert window.start == datetime(2099, 11, 22, 18, tzinfo=UTC)
    assert window.end - window.start == timedelta(hours=2)


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("1000.00", 100_000),
        ("0.5", 50),
        ("58", 5800),
        ("0", 0),
        ("0.01", 1),
        ("12.34", 1234),
        (58, 5800),
        (0, 0),
        ("9999999999.99", 999_999_999_999),
    ],
)
def test_money_parses(value: object, fen: int) -> None:
    assert parse_money(value) == fen


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.234", "more than two decimals"),
        ("-1", "negative"),
        ("-0.50", "negative"),
        (-1, "negative"),
        ("1e3", "exponent"),
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        ("", "not an amount"),
        ("12,34", "not an amount"),
        ("¥12", "not an amount"),
        (" 12.34", "not plain yuan"),
        ("1_000", "not plain yuan"),
        (".5", "not plain yuan"),
        ("12.", "not plain yuan"),
        ("10000000000.00", "more than 9999999999.99"),
        ("99999999999999999999", "more than 9999999999.99"),
        (12.5, 'quote it as a string: "12.50"'),
        (1000.0, 'quote it as a string: "1000.00"'),
        (1.234, "at most two decimals"),
        (float("nan"), "TOML float"),
        (True, "boolean"),
        ([1], "array"),
    ],
)
def test_money_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_money(value)
    assert message in str(caught.value)


def test_money_float_in_file_names_key() -> None:
    [problem] = problems(CARD.replace('balance = "1.00"', "balance = 1000.0"))
    assert problem.key == "balance"
    assert 'quote it as a string: "1000.00"' in problem.message


# ---------------------------------------------------------------- bad worlds

M_ENTRY = '#1 (mid "898310048161234")'
T_ENTRY = '#1 (tid "10000001")'
C_ENTRY = "#1 (pan 622588…1017)"
OPS = '\noperators = [ { no = "01", password = "0000" }, { no = "99", password = "123456" } ]\n'

BAD_WORLDS: list[tuple[str, str, str, str, str, str]] = [
    # id, text, table, entry, key, part of the message
    ("toml syntax", "[[merchants]\nmid = 1", "", "", "", "not valid TOML"),
    (
        "unknown table",
        '[merchant]\nmid = "x"\n',
        "[merchant]",
        "",
        "",
        "did you mean [[merchants]]?",
    ),
    (
        "unknown array table",
        '[[card]]\npan = "1"\n',
        "[[card]]",
        "",
        "",
        "did you mean [[cards]]?",
    ),
    ("unknown top-level key", "version = 1\n", "", "", "version", "unknown top-level key"),
    (
        "merchants not an array",
        '[merchants]\nmid = "898310048161234"\n',
        "[[merchants]]",
        "",
        "",
        "must be an array of tables",
    ),
    ("acquirer not a table", 'acquirer = "x"\n', "[acquirer]", "", "", "must be a table"),
    (
        "unknown key with suggestion",
        MERCHANT + 'single_limt = "1.00"\n',
        "[[merchants]]",
        M_ENTRY,
        "single_limt",
        'unknown key; did you mean "single_limit"?',
    ),
    (
        "unknown key without suggestion",
        MERCHANT + 'colour = "red"\n',
        "[[merchants]]",
        M_ENTRY,
        "colour",
        "unknown key; known keys: mid, name,",
    ),
    (
        "acquirer unknown key",
        '[acquirer]\ninstitutoin = "48020000"\n',
        "[acquirer]",
        "",
        "institutoin",
        'did you mean "institution"?',
    ),
    (
        "acquirer institution too long",
        '[acquirer]\ninstitution = "123456789012"\n',
        "[acquirer]",
        "",
        "institution",
        "must be 1 to 11 digits, got 12",
    ),
    (
        "acquirer institution not digits",
        '[acquirer]\ninstitution = "4802A"\n',
        "[acquirer]",
        "",
        "institution",
        "must be 1 to 11 digits (0-9 only)",
    ),
    (
        "acquirer institution integer",
        "[acquirer]\ninstitution = 48020000\n",
        "[acquirer]",
        "",
        "institution",
        "must be a string, got an integer (put it in quotes",
    ),
    (
        "acquirer empty name",
        '[acquirer]\nname = " "\n',
        "[acquirer]",
        "",
        "name",
        "must not be empty",
    ),
    (
        "merchant missing mid",
        '[[merchants]]\nname = "x"\n',
        "[[merchants]]",
        "#1",
        "mid",
        "missing; this key is required",
    ),
    (
        "mid length",
        '[[merchants]]\nmid = "89831004816123"\n',
        "[[merchants]]",
        '#1 (mid "89831004816123")',
        "mid",
        "must be exactly 15 characters, got 14",
    ),
    (
        "mid with a space",
        '[[merchants]]\nmid = "89831004816123 "\n',
        "[[merchants]]",
        '#1 (mid "89831004816123 ")',
        "mid",
        "printable ASCII without spaces",
    ),
    (
        "merchant name control character",
        MERCHANT + 'name = "a\\nb"\n',
        "[[merchants]]",
        M_ENTRY,
        "name",
        "control characters",
    ),
    (
        "merchant status",
        MERCHANT + 'status = "actve"\n',
        "[[merchants]]",
        M_ENTRY,
        "status",
        '"actve" is not allowed; use one of active | restricted | suspended | closed; '
        'did you mean "active"?',
    ),
    (
        "suspended without cause",
        MERCHANT + 'status = "suspended"\n',
        "[[merchants]]",
        M_ENTRY,
        "suspension_cause",
        'required when status is "suspended": arrears | risk | manual',
    ),
    (
        "cause while active",
        MERCHANT + 'suspension_cause = "risk"\n',
        "[[merchants]]",
        M_ENTRY,
        "suspension_cause",
        'must be empty unless status is "suspended"',
    ),
    (
        "unknown cause",
        MERCHANT + 'status = "suspended"\nsuspension_cause = "arrear"\n',
        "[[merchants]]",
        M_ENTRY,
        "suspension_cause",
        'did you mean "arrears"?',
    ),
    (
        "arrears cause without arrears",
        MERCHANT + 'status = "suspended"\nsuspension_cause = "arrears"\n',
        "[[merchants]]",
        M_ENTRY,
        "arrears",
        "must be more than 0 when suspended for arrears",
    ),
    (
        "arrears three decimals",
        MERCHANT + 'arrears = "58.001"\n',
        "[[merchants]]",
        M_ENTRY,
        "arrears",
        '"58.001" has more than two decimals',
    ),
    (
        "single limit negative",
        MERCHANT + 'single_limit = "-5"\n',
        "[[merchants]]",
        M_ENTRY,
        "single_limit",
        "negative",
    ),
    (
        "restricted type unknown",
        MERCHANT + 'status = "restricted"\nrestricted_types = ["refunds"]\n',
        "[[merchants]]",
        M_ENTRY,
        "restricted_types",
        '"refunds" is not a transaction type; use purchase | void | refund | preauth | '
        'completion | balance | offline; did you mean "refund"?',
    ),
    (
        "restricted type twice",
        MERCHANT + 'restricted_types = ["refund", "refund"]\n',
        "[[merchants]]",
        M_ENTRY,
        "restricted_types",
        '"refund" is listed twice',
    ),
    (
        "restricted types not an array",
        MERCHANT + 'restricted_types = "refund"\n',
        "[[merchants]]",
        M_ENTRY,
        "restricted_types",
        "must be an array of strings, got a string",
    ),
    (
        "duplicate mid",
        MERCHANT + MERCHANT,
        "[[merchants]]",
        '#2 (mid "898310048161234")',
        "mid",
        "duplicate; [[merchants]] #1 has the same mid",
    ),
    (
        "tid length",
        MERCHANT + TERMINAL + TERMINAL.replace('"10000001"', '"1000002"'),
        "[[terminals]]",
        '#2 (tid "1000002")',
        "tid",
        "must be exactly 8 characters, got 7",
    ),
    (
        "tid not printable",
        MERCHANT + TERMINAL.replace('"10000001"', '"1000000\\t"'),
        "[[terminals]]",
        '#1 (tid "1000000\\t")',
        "tid",
        "printable ASCII",
    ),
    (
        "tid integer",
        MERCHANT + TERMINAL.replace('"10000001"', "10000001"),
        "[[terminals]]",
        "#1",
        "tid",
        "must be a string, got an integer",
    ),
    (
        "terminal missing tmk",
        MERCHANT + '[[terminals]]\ntid = "10000001"\nmid = "898310048161234"\n',
        "[[terminals]]",
        T_ENTRY,
        "tmk",
        "missing; this key is required",
    ),
    (
        "tmk length",
        MERCHANT + TERMINAL.replace("3210", "321"),
        "[[terminals]]",
        T_ENTRY,
        "tmk",
        "must be exactly 32 hex digits, got 31",
    ),
    (
        "tmk not hex",
        MERCHANT + TERMINAL.replace("3210", "321G"),
        "[[terminals]]",
        T_ENTRY,
        "tmk",
        "must be 32 hex digits (0-9, A-F only)",
    ),
    (
        "terminal merchant missing",
        MERCHANT + TERMINAL.replace('mid = "898310048161234"', 'mid = "898310048169999"'),
        "[[terminals]]",
        T_ENTRY,
        "mid",
        'no [[merchants]] entry has mid "898310048169999"',
    ),
    (
        "terminal status",
        MERCHANT + TERMINAL + 'status = "closed"\n',
        "[[terminals]]",
        T_ENTRY,
        "status",
        '"closed" is not allowed; use one of active | suspended',
    ),
    (
        "min software",
        MERCHANT + TERMINAL + 'min_software = "0.1 beta"\n',
        "[[terminals]]",
        T_ENTRY,
        "min_software",
        "must be an application version of up to 8 characters such as "
        '"0.1.0" (compared with field 59 A2/05), got "0.1 beta"',
    ),
    (
        "dialect",
        MERCHANT + TERMINAL + 'dialect = "pax"\n',
        "[[terminals]]",
        T_ENTRY,
        "dialect",
        '"pax" is not allowed; use one of cup | clearpos',
    ),
    (
        "duplicate tid",
        MERCHANT + TERMINAL + TERMINAL,
        "[[terminals]]",
        '#2 (tid "10000001")',
        "tid",
        "duplicate; [[terminals]] #1 has the same tid",
    ),
    (
        "operators not an array",
        MERCHANT + TERMINAL + 'operators = "01"\n',
        "[[terminals]]",
        T_ENTRY,
        "operators",
        "must be an array",
    ),
    (
        "operator not a table",
        MERCHANT + TERMINAL + 'operators = ["01"]\n',
        "[[terminals]]",
        T_ENTRY,
        "operators #1",
        "must be a table",
    ),
    (
        "operator no one digit",
        MERCHANT + TERMINAL + OPS.replace('no = "99"', 'no = "9"'),
        "[[terminals]]",
        T_ENTRY,
        'operators #2 (no "9"): no',
        "must be 2 to 3 digits, got 1",
    ),
    (
        "operator no four digits",
        MERCHANT + TERMINAL + OPS.replace('no = "99"', 'no = "0099"'),
        "[[terminals]]",
        T_ENTRY,
        'operators #2 (no "0099"): no',
        "must be 2 to 3 digits, got 4",
    ),
    (
        "duplicate operator",
        MERCHANT + TERMINAL + OPS.replace('no = "99"', 'no = "01"'),
        "[[terminals]]",
        T_ENTRY,
        'operators #2 (no "01"): no',
        "duplicate; operators #1 has the same no",
    ),
    (
        "operator password short",
        MERCHANT + TERMINAL + OPS.replace('"123456"', '"123"'),
        "[[terminals]]",
        T_ENTRY,
        'operators #2 (no "99"): password',
        "must be 4 to 12 printable ASCII characters",
    ),
    (
        "operator password long",
        MERCHANT + TERMINAL + OPS.replace('"123456"', '"1234567890123"'),
        "[[terminals]]",
        T_ENTRY,
        'operators #2 (no "99"): password',
        "must be 4 to 12 printable ASCII characters",
    ),
    (
        "operator missing password",
        MERCHANT + TERMINAL + 'operators = [ { no = "01" } ]\n',
        "[[terminals]]",
        T_ENTRY,
        'operators #1 (no "01"): password',
        "missing; this key is required",
    ),
    (
        "operator unknown key",
        MERCHANT
        + TERMINAL
        + 'operators = [ { no = "01", pasword = "0000", password = "0000" } ]\n',
        "[[terminals]]",
        T_ENTRY,
        'operators #1 (no "01"): pasword',
        'did you mean "password"?',
    ),
    (
        "operator supervisor not bool",
        MERCHANT + TERMINAL + 'operators = [ { no = "01", password = "0000", supervisor = 1 } ]\n',
        "[[terminals]]",
        T_ENTRY,
        'operators #1 (no "01"): supervisor',
        "must be true or false, got an integer",
    ),
    (
        "card missing pan",
        '[[cards]]\nexpiry = "2812"\npin = "123456"\nbalance = "1.00"\n',
        "[[cards]]",
        "#1",
        "pan",
        "missing; this key is required",
    ),
    (
        "card missing balance",
        CARD.replace('balance = "1.00"\n', ""),
        "[[cards]]",
        C_ENTRY,
        "balance",
        "missing; this key is required",
    ),
    (
        "card missing expiry",
        CARD.replace('expiry = "2812"\n', ""),
        "[[cards]]",
        C_ENTRY,
        "expiry",
        "missing; this key is required",
    ),
    (
        "card missing pin",
        CARD.replace('pin = "123456"\n', ""),
        "[[cards]]",
        C_ENTRY,
        "pin",
        "missing; this key is required",
    ),
    (
        "pan too short",
        CARD.replace("6225880000001017", "622588000017"),
        "[[cards]]",
        "#1 (pan …0017)",
        "pan",
        "must be 13 to 19 digits, got 12",
    ),
    (
        "pan too long",
        CARD.replace("6225880000001017", "62258800000000001017"),
        "[[cards]]",
        "#1 (pan 622588…1017)",
        "pan",
        "must be 13 to 19 digits, got 20",
    ),
    (
        "pan not digits",
        CARD.replace("6225880000001017", "6225-8800-0000-1017"),
        "[[cards]]",
        "#1 (pan 6225-8…1017)",
        "pan",
        "must be 13 to 19 digits (0-9 only)",
    ),
    (
        "pan integer",
        CARD.replace('"6225880000001017"', "6225880000001017"),
        "[[cards]]",
        "#1",
        "pan",
        "must be a string, got an integer",
    ),
    (
        "duplicate pan",
        CARD + CARD,
        "[[cards]]",
        "#2 (pan 622588…1017)",
        "pan",
        "duplicate; [[cards]] #1 has the same pan",
    ),
    (
        "expiry month",
        CARD.replace('"2812"', '"2813"'),
        "[[cards]]",
        C_ENTRY,
        "expiry",
        "must be YYMM with a month from 01 to 12",
    ),
    (
        "expiry month zero",
        CARD.replace('"2812"', '"2800"'),
        "[[cards]]",
        C_ENTRY,
        "expiry",
        "month from 01 to 12",
    ),
    (
        "expiry length",
        CARD.replace('"2812"', '"281"'),
        "[[cards]]",
        C_ENTRY,
        "expiry",
        "must be exactly 4 digits, got 3",
    ),
    (
        "pin letters",
        CARD.replace('"123456"', '"12a456"'),
        "[[cards]]",
        C_ENTRY,
        "pin",
        "must be 4 to 12 digits (0-9 only)",
    ),
    (
        "pin short",
        CARD.replace('"123456"', '"123"'),
        "[[cards]]",
        C_ENTRY,
        "pin",
        "must be 4 to 12 digits, got 3",
    ),
    (
        "balance float",
        CARD.replace('"1.00"', "12.5"),
        "[[cards]]",
        C_ENTRY,
        "balance",
        'quote it as a string: "12.50"',
    ),
    (
        "daily limit decimals",
        CARD + 'daily_limit = "1.234"\n',
        "[[cards]]",
        C_ENTRY,
        "daily_limit",
        '"1.234" has more than two decimals',
    ),
    (
        "card status",
        CARD + 'status = "blocked"\n',
        "[[cards]]",
        C_ENTRY,
        "status",
        "use one of normal | frozen | lost | stolen | expired | closed",
    ),
    (
        "organisation",
        CARD + 'organisation = "VISA"\n',
        "[[cards]]",
        C_ENTRY,
        "organisation",
        'use one of CUP | VIS | MCC | JCB | AMX; did you mean "VIS"?',
    ),
    (
        "cards entry not a table",
        "cards = [1]\n",
        "[[cards]]",
        "#1",
        "",
        "must be a table, got an integer",
    ),
    (
        "velocity zero",
        "[risk]\ncard_velocity = { count = 0, window_s = 60, lock_s = 1800 }\n",
        "[risk]",
        "",
        "card_velocity.count",
        "must be a positive integer up to",
    ),
    (
        "velocity string",
        '[risk]\ncard_velocity = { count = 5, window_s = "60", lock_s = 1800 }\n',
        "[risk]",
        "",
        "card_velocity.window_s",
        "must be a positive integer, got a string",
    ),
    (
        "velocity missing lock",
        "[risk]\ncard_velocity = { count = 5, window_s = 60 }\n",
        "[risk]",
        "",
        "card_velocity.lock_s",
        "missing; this key is required",
    ),
    (
        "velocity unknown key",
        "[risk]\ncard_velocity = { count = 5, window = 60, window_s = 60, lock_s = 1 }\n",
        "[risk]",
        "",
        "card_velocity.window",
        'did you mean "window_s"?',
    ),
    (
        "velocity not a table",
        "[risk]\ncard_velocity = 5\n",
        "[risk]",
        "",
        "card_velocity",
        "must be a table such as",
    ),
    (
        "risk unknown key",
        "[risk]\ncard_velocty = 5\n",
        "[risk]",
        "",
        "card_velocty",
        'did you mean "card_velocity"?',
    ),
    (
        "maintenance who",
        MAINTENANCE.replace('"host"', '"bank"'),
        "[[maintenance]]",
        '#1 (who "bank")',
        "who",
        '"bank" is not allowed; use one of host | issuer',
    ),
    (
        "maintenance local time",
        MAINTENANCE.replace("2099-11-23T02:00:00+08:00", "2099-11-23T02:00:00"),
        "[[maintenance]]",
        '#1 (who "host")',
        "start",
        "needs a UTC offset",
    ),
    (
        "maintenance string without offset",
        MAINTENANCE.replace("2099-11-23T04:00:00+08:00", '"2099-11-23T04:00:00"'),
        "[[maintenance]]",
        '#1 (who "host")',
        "end",
        "needs a UTC offset",
    ),
    (
        "maintenance not a date",
        MAINTENANCE.replace("2099-11-23T04:00:00+08:00", '"tomorrow"'),
        "[[maintenance]]",
        '#1 (who "host")',
        "end",
        '"tomorrow" is not an ISO 8601 date-time',
    ),
    (
        "maintenance date only",
        MAINTENANCE.replace("2099-11-23T04:00:00+08:00", "2099-11-23"),
        "[[maintenance]]",
        '#1 (who "host")',
        "end",
        "got a date",
    ),
    (
        "maintenance end before start",
        MAINTENANCE.replace("T04:00", "T01:00"),
        "[[maintenance]]",
        '#1 (who "host")',
        "end",
        "must be after start",
    ),
    (
        "maintenance empty notice",
        MAINTENANCE.replace('"Maintenance"', '""'),
        "[[maintenance]]",
        '#1 (who "host")',
        "notice_en",
        "must not be empty",
    ),
    (
        "maintenance missing notice",
        MAINTENANCE.replace('notice_zh = "系统维护"\n', ""),
        "[[maintenance]]",
        '#1 (who "host")',
        "notice_zh",
        "missing; this key is required",
    ),
]


@pytest.mark.parametrize(
    ("text", "table", "entry", "key", "message"),
    [case[1:] for case in BAD_WORLDS],
    ids=[case[0] for case in BAD_WORLDS],
)
def test_bad_world(text: str, table: str, entry: str, key: str, message: str) -> None:
    [problem] = problems(text)
    assert (problem.file, problem.table, problem.entry, problem.key) == (
        "world.toml",
        table,
        entry,
        key,
    )
    assert message in problem.message
    where = " ".join(part for part in (table, entry) if part)
    prefix = ": ".join(part for part in ("world.toml", where, key) if part)
    assert str(problem) == f"{prefix}: {problem.message}"


def test_line_format_of_the_contract() -> None:
    text = MERCHANT + TERMINAL + TERMINAL.replace('"10000001"', '"1000002"')
    with pytest.raises(WorldError) as caught:
        parse_world(text, "world.toml")
    assert str(caught.value) == (
        'world.toml: [[terminals]] #2 (tid "1000002"): tid: must be exactly 8 characters, got 7'
    )


def test_all_problems_reported_together() -> None:
    text = (
        '[acquirer]\ninstitution = "x"\n'
        + MERCHANT
        + 'status = "open"\n'
        + TERMINAL.replace('"10000001"', '"1"').replace("3210", "")
        + CARD.replace('"2812"', '"2899"')
        + 'colour = "red"\n'
    )
    with pytest.raises(WorldError) as caught:
        parse_world(text, "world.toml")
    found = [(p.table, p.entry, p.key) for p in caught.value.problems]
    assert found == [
        ("[acquirer]", "", "institution"),
        ("[[merchants]]", M_ENTRY, "status"),
        ("[[terminals]]", '#1 (tid "1")', "tid"),
        ("[[terminals]]", '#1 (tid "1")', "tmk"),
        ("[[cards]]", C_ENTRY, "colour"),
        ("[[cards]]", C_ENTRY, "expiry"),
    ]
    lines = str(caught.value).splitlines()
    assert len(lines) == 6
    assert all(line.startswith("world.toml: ") for line in lines)
    assert isinstance(caught.value, ValueError)


def test_terminal_of_an_invalid_merchant_is_not_reported_missing() -> None:
    # The merchant's own problem is reported; its terminal still finds it by mid.
    [problem] = problems(MERCHANT + 'status = "open"\n' + TERMINAL)
    assert problem.key == "status"


def test_no_card_data_or_keys_in_errors() -> None:
    pan, pin, tmk, password = (
        "6225880000001017",
        "918273",
        "A1B2C3D4E5F60718293A4B5C6D7E8F9",
        "Pa55w0rd!",
    )
    text = (
        MERCHANT
        + f"{pan} = 1\n"  # a PAN typed where a key belongs
        + TERMINAL.replace("0123456789ABCDEFFEDCBA9876543210", tmk)  # 31 digits: refused
        + f'operators = [ {{ no = "1", password = "{password}" }} ]\n'
        + "[[terminals]]\n"
        + 'tid = "10000002"\nmid = "898310048161234"\n'
        + 'tmk = "00112233445566778899AABBCCDDEEGG"\n'  # not hex
        + f'[[cards]]\npan = "{pan}"\nexpiry = "9913"\npin = "{pin}x"\nbalance = "1.001"\n'
        + f'[[cards]]\npan = "{pan}"\nexpiry = "2812"\npin = "{pin}"\nbalance = 1.5\n'
        + f'pinn = "{pin}"\npann = "{pan}"\n'
        + f'[[cards]]\npan = "{pan}0000"\nexpiry = "2812"\npin = "12"\nbalance = "1"\n'
        + f'[[cards]]\npan = "{pan[:12]}"\nexpiry = 2812\npin = {pin}\nbalance = "1"\n'
    )
    with pytest.raises(WorldError) as caught:
        parse_world(text, "world.toml")
    rendered = str(caught.value) + repr(caught.value.problems)
    assert len(caught.value.problems) >= 12
    for secret in (pan, pan[:12], pin, tmk, "00112233445566778899AABBCCDDEEGG", password, "2812"):
        assert secret not in rendered
    assert "622588…1017" in rendered


def test_load_world_from_file(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MERCHANT, encoding="utf-8")
    assert load_world(good).source == str(good)
    bad = tmp_path / "bad.toml"
    bad.write_text(MERCHANT.replace("1234", "123"), encoding="utf-8")
    with pytest.raises(WorldError) as caught:
        load_world(str(bad))
    [problem] = caught.value.problems
    assert problem.file == str(bad)
    assert str(problem).startswith(f"{bad}: [[merchants]] #1")


def test_load_world_unreadable(tmp_path: Path) -> None:
    with pytest.raises(WorldError, match="cannot read"):
        load_world(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[[merchants]]\nmid = "\xe9"\n')
    with pytest.raises(WorldError, match="not UTF-8"):
        load_world(latin)


def test_mask_pan() -> None:
    assert mask_pan(SPEC_PAN) == "622202…0123"
    assert mask_pan("6225880000001017") == "622588…1017"
    assert mask_pan("123456789012") == "…9012"
    assert mask_pan("1234567") == "…"
