"""The acquirer's chip rules of spec §8, as pure functions a participant calls.

- **Fallback**: a swipe (22 = 02x) of a chip card (service code 2xx or 6xx in
  track 2) at a terminal that reads chips is declined ``card.chip_required``
  (45); 22 = 80x (the chip could not be read) is allowed and is a fallback.
- **QuickPass**: a tap (22 = 07x) above the no-PIN limit without a PIN block is
  declined ``card.pin_required`` (55).

Each returns ``None`` when the rule lets the transaction through, else a
:class:`ChipRule` with the reason key and the facts for the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ChipRule",
    "EntryKind",
    "entry_kind",
    "fallback_check",
    "is_chip_service_code",
    "quickpass_pin_check",
    "service_code_of",
]

EntryKind = Literal["swipe", "keyed", "chip", "contactless", "fallback", "contactless_msd", "other"]

#: 22.1 (the first two digits of field 22) by kind (spec §3).
_ENTRY: Final[dict[str, EntryKind]] = {
    "02": "swipe",
    "01": "keyed",
    "05": "chip",
    "07": "contactless",
    "80": "fallback",
    "91": "contactless_msd",
}


@dataclass(frozen=True, slots=True)
class ChipRule:
    reason: str
    facts: dict[str, object]


def entry_kind(entry_mode: str) -> EntryKind:
    """What field 22 says about how the card was read.

    >>> entry_kind("051"), entry_kind("072"), entry_kind("802"), entry_kind("021")
    ('chip', 'contactless', 'fallback', 'swipe')
    """
    return _ENTRY.get(entry_mode[:2], "other")


def service_code_of(track2: str) -> str | None:
    """The 3-digit service code of track 2 (``PAN=YYMMSSS...``), or None.

    >>> service_code_of("6222021234567890123=28122010000000000")
    '201'
    """
    _, sep, rest = track2.partition("=")
    code = rest[4:7]
    return code if sep and len(code) == 3 and code.isdigit() else None


def is_chip_service_code(service_code: str | None) -> bool:
    """2xx (international) or 6xx (national): the card has a chip."""
    return service_code is not None and service_code[:1] in ("2", "6")


def fallback_check(
    entry_mode: str, track2: str | None, terminal_reads_chips: bool
) -> ChipRule | None:
    """``card.chip_required`` for a plain swipe of a chip card at a chip terminal."""
    if entry_kind(entry_mode) != "swipe" or not terminal_reads_chips or track2 is None:
        return None
    code = service_code_of(track2)
    if not is_chip_service_code(code):
        return None
    return ChipRule("card.chip_required", {"entry_mode": entry_mode, "service_code": code})


def quickpass_pin_check(
    entry_mode: str, amount_fen: int, has_pin: bool, no_pin_limit_fen: int
) -> ChipRule | None:
    """``card.pin_required`` for a tap above the no-PIN limit without a PIN."""
    if entry_kind(entry_mode) != "contactless" or has_pin or amount_fen <= no_pin_limit_fen:
        return None
    limit = f"{no_pin_limit_fen // 100}.{no_pin_limit_fen % 100:02d}"
    return ChipRule(
        "card.pin_required",
        {"amount_fen": amount_fen, "limit_fen": no_pin_limit_fen, "limit": limit},
    )
