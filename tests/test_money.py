"""Money in one module (clearpos.money): yuan typed by people, fen inside, yuan shown.

Issue 16: only ASCII digits in amounts and limits. A full-width ``０.５`` from a
Chinese input method looks like 0.5 and must be refused, precisely, wherever an
amount is read: the admin CLI, the console's forms (same function) and world files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ops_support import MAIN_MID, run, seeded

from clearpos.money import MAX_FEN, fen_label, fen_yuan, parse_yuan
from clearpos.ops import merchants
from clearpos.world import parse_money


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0", 0), ("0.5", 50), ("58", 5800), ("58.00", 5800), ("9999999999.99", MAX_FEN)],
)
def test_yuan_read_and_written_back(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen
    assert parse_yuan(fen_yuan(fen)) == fen


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("０.５", "not ASCII (FULLWIDTH DIGIT ZERO)"),
        ("5８", "not ASCII (FULLWIDTH DIGIT EIGHT)"),
        ("٥", "not ASCII (ARABIC-INDIC DIGIT FIVE)"),
        ("1.234", "more than two decimals"),
        ("-1", "negative"),
        ("1e3", "exponent"),
        ("1,000", "not an amount"),
        ("10000000000", "more than 9999999999.99"),
        (" 1", "not plain yuan"),
    ],
)
def test_yuan_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_yuan(text)
    assert message in str(caught.value)
    assert caught.value.args[0].startswith(f'"{text}"')  # says which input it refused


def test_zero_refused_only_when_positive() -> None:
    assert parse_yuan("0.00") == 0
    with pytest.raises(ValueError, match=r"must be more than 0\.00"):
        parse_yuan("0.00", positive=True)


def test_world_file_refuses_fullwidth_digits() -> None:
    assert parse_money("0.5") == 50
    with pytest.raises(ValueError, match="not ASCII"):
        parse_money("０.５")


def test_admin_limit_refuses_fullwidth_digits(tmp_path: Path) -> None:
    db = seeded(tmp_path)
    rc, _, err = run(
        "admin", "--db", db.url, "merchant", "limit", "--mid", MAIN_MID,
        "--amount", "０.５", "--by", "ops", "--why", "typed with a Chinese IME",
    )  # fmt: skip
    assert rc == 2 and "not ASCII" in err and "０.５" in err
    with db.reader() as tx:
        before = merchants.get_merchant(tx, MAIN_MID).single_limit_fen
    rc, _, err = run(
        "admin", "--db", db.url, "merchant", "limit", "--mid", MAIN_MID,
        "--amount", "0.5", "--by", "ops", "--why", "the same in ASCII",
    )  # fmt: skip
    assert rc == 0, err
    with db.reader() as tx:
        assert merchants.get_merchant(tx, MAIN_MID).single_limit_fen == 50 != before


def test_labels() -> None:
    assert fen_yuan(-120) == "-1.20"
    assert fen_label(123456) == "¥1,234.56"
    assert fen_label(None) == "-"
