"""Money: integer fen inside, yuan text outside. The one place that turns one into the other.

Amounts are typed and written in yuan with at most two decimals (``58``,
``58.5``, ``58.00``); inside the system they are always an ``int`` of fen.
:func:`parse_yuan` reads what people type or write in a world file, and
refuses anything else with a message that says what was wrong and how to
write it: a sign, a thousands separator, an exponent, a third decimal, or a
digit that is not ASCII ``0``-``9`` (a full-width ``０.５`` from a Chinese input
method looks right and is refused). :func:`fen_yuan` and :func:`fen_label`
write fen back as yuan.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = ["MAX_FEN", "fen_label", "fen_yuan", "parse_yuan"]

#: The largest amount field 4 (n12) can carry, in fen: ¥9,999,999,999.99.
#: Balances and limits are held to it too, so a balance inquiry can always show them.
MAX_FEN: Final = 999_999_999_999

_YUAN = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?")


def parse_yuan(text: str, *, positive: bool = False) -> int:
    """Yuan text to fen; ``ValueError`` saying precisely why not.

    ``positive``: 0 is refused too (an amount to charge or pay, not a limit).
    The text is taken as it is: strip what was typed around it first.

    >>> parse_yuan("58"), parse_yuan("0.5"), parse_yuan("12.34"), parse_yuan("0")
    (5800, 50, 1234, 0)
    >>> parse_yuan("58.001")
    Traceback (most recent call last):
    ValueError: "58.001" has more than two decimals; amounts are yuan to the fen (0.01)
    >>> parse_yuan("０.５")
    Traceback (most recent call last):
    ValueError: "０.５" has digits that are not ASCII (FULLWIDTH DIGIT ZERO); type the amount with 0-9
    >>> parse_yuan("0.00", positive=True)
    Traceback (most recent call last):
    ValueError: "0.00" must be more than 0.00
    """
    match = _YUAN.fullmatch(text)
    if match is None:
        raise ValueError(_refusal(text))
    fen = int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))
    if fen > MAX_FEN:
        raise ValueError(f"{_show(text)} is more than 9999999999.99, the largest amount")
    if positive and fen == 0:
        raise ValueError(f"{_show(text)} must be more than 0.00")
    return fen


def _refusal(text: str) -> str:
    """Why ``text`` is not yuan, and how to write it instead."""
    shown = _show(text)
    foreign = [c for c in text if c.isdigit() and c not in "0123456789"]
    if foreign:
        name = unicodedata.name(foreign[0], f"U+{ord(foreign[0]):04X}")
        return f"{shown} has digits that are not ASCII ({name}); type the amount with 0-9"
    stripped = text.strip()
    try:
        number = Decimal(stripped)
    except InvalidOperation:
        return f'{shown} is not an amount; write yuan with at most two decimals, such as "12.34"'
    if not number.is_finite():
        return f"{shown} is not a number"
    if number.is_signed():
        return f"{shown} is negative; amounts must be 0 or more"
    if "e" in stripped.lower():
        return f'{shown} has an exponent; write plain digits such as "1200.00"'
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"{shown} has more than two decimals; amounts are yuan to the fen (0.01)"
    if number > Decimal(MAX_FEN) / 100:
        return f"{shown} is more than 9999999999.99, the largest amount"
    return f'{shown} is not plain yuan; use digits with at most two decimals, such as "12.34"'


def _show(text: str, limit: int = 32) -> str:
    """A short, quoted, escaped rendering of what was typed."""
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)


def fen_yuan(fen: int) -> str:
    """Fen to yuan text: 5800 -> ``"58.00"``.

    >>> fen_yuan(5800), fen_yuan(5), fen_yuan(-120)
    ('58.00', '0.05', '-1.20')
    """
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def fen_label(fen: int | None) -> str:
    """Fen as yuan for a page, with ¥ and thousands separators; None -> ``-``.

    >>> fen_label(123456), fen_label(-5), fen_label(None)
    ('¥1,234.56', '-¥0.05', '-')
    """
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"
