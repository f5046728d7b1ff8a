"""The acquirer's chip rules: fallback 45 vs 80x, and the QuickPass no-PIN limit."""

from __future__ import annotations

import pytest

from clearpos.host.chiprules import (
    entry_kind,
    fallback_check,
    is_chip_service_code,
    quickpass_pin_check,
    service_code_of,
)

CHIP_TRACK = "6214830000000002144=28122200000000000"
STRIPE_TRACK = "6225880000001017=28121010000000000"


@pytest.mark.parametrize(
    ("mode", "track", "chip_terminal", "reason"),
    [
        ("021", CHIP_TRACK, True, "card.chip_required"),  # swiped chip card at a chip terminal
        ("022", CHIP_TRACK, True, "card.chip_required"),
        ("801", CHIP_TRACK, True, None),  # fallback after a failed chip read: allowed
        ("051", CHIP_TRACK, True, None),  # inserted
        ("072", CHIP_TRACK, True, None),  # tapped
        ("021", CHIP_TRACK, False, None),  # the terminal cannot read chips
        ("021", STRIPE_TRACK, True, None),  # a stripe-only card (service code 1xx)
        ("021", "6214830000000002144=2812", True, None),  # no service code at all
        ("012", None, True, None),  # keyed
    ],
)
def test_fallback(mode: str, track: str | None, chip_terminal: bool, reason: str | None) -> None:
    rule = fallback_check(mode, track, chip_terminal)
    assert (rule.reason if rule else None) == reason
    if rule:
        assert rule.facts == {"entry_mode": mode, "service_code": "220"}


@pytest.mark.parametrize(
    ("mode", "amount", "pin", "reason"),
    [
        ("072", 100_000, False, None),  # at the limit: no PIN needed
        ("072", 100_001, False, "card.pin_required"),
        ("071", 100_001, True, None),  # with a PIN
        ("051", 500_000, False, None),  # contact chip: not QuickPass
        ("072", 1, False, None),
    ],
)
def test_quickpass_limit(mode: str, amount: int, pin: bool, reason: str | None) -> None:
    rule = quickpass_pin_check(mode, amount, pin, 100_000)
    assert (rule.reason if rule else None) == reason
    if rule:
        assert rule.facts == {"amount_fen": amount, "limit_fen": 100_000, "limit": "1000.00"}


def test_helpers() -> None:
    assert [entry_kind(m) for m in ("021", "012", "051", "072", "801", "912", "999")] == [
        "swipe", "keyed", "chip", "contactless", "fallback", "contactless_msd", "other",
    ]  # fmt: skip
    assert service_code_of(CHIP_TRACK) == "220" and service_code_of("622588") is None
    assert is_chip_service_code("620") and not is_chip_service_code("101")
    assert not is_chip_service_code(None) and not is_chip_service_code("")
