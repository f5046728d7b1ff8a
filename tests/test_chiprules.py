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


def test_chip_participants_let_through_what_they_say_they_do_not_decide() -> None:
    """The engine leaves a chip participant out of a financial request's steps when its
    ``decides_for`` says it decides nothing for such card data (22.1's kind, field 55
    or not): for every 22.1 and every such card, the participant itself lets the
    request through, touching nothing of the context (the trail still says ok)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace
    from typing import Any

    from clearpos.host.chip import CheckFallback, CheckQuickPassPin, VerifyCryptogram
    from clearpos.host.context import Ctx
    from clearpos.wire import Card, FinancialRequest, Kind

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the participant used {name}")

    participants = [CheckFallback(), CheckQuickPassPin(), VerifyCryptogram(Untouchable())]  # type: ignore[arg-type]
    left_out = 0
    for mode in (f"{n:02d}{d}" for n in range(100) for d in "0129"):
        for chip in (None, bytes.fromhex("9F2608")):
            for chip_terminal in (False, True):
                card = Card(
                    CHIP_TRACK.split("=")[0], "2812", CHIP_TRACK, entry_mode=mode, chip=chip
                )
                msg = FinancialRequest(
                    kind=Kind.PURCHASE, tid="10000001", mid="898310048161234",
                    stan="000001", batch="000001", amount_fen=99_999_999, card=card,
                )  # fmt: skip
                for p in participants:
                    if p.decides_for(entry_kind(mode), chip is not None):
                        continue
                    tx: Any = Untouchable()
                    ctx = Ctx(tx, None, msg, None, None, datetime.now(UTC), "", None, "")  # type: ignore[arg-type]
                    ctx.terminal = SimpleNamespace(chip=chip_terminal)  # type: ignore[assignment]
                    before = repr(ctx)
                    assert p(ctx) is True, (p.name, mode, chip)
                    assert repr(ctx) == before, (p.name, mode, chip)
                    left_out += 1
    assert left_out > 2000
