"""The card-account lifecycle at the simulated issuer: normal ↔ frozen, → lost | stolen | closed.

Plus the PIN unlock after too many wrong PINs (``card.pin_tries_exceeded``).
Cards are found by PAN through the same keyed token the host uses (the store
never holds a clear PAN) or by their id; output shows the masked PAN only.
"""

from __future__ import annotations

from datetime import datetime

from ..store import CardRec, Tx
from .common import Change, Refused, check_actor, mask_text, now_iso, record
from .lifecycle import Lifecycle, Rule

__all__ = ["CARD", "find_card", "move", "unlock_pin"]

_OPEN = frozenset({"normal", "frozen"})

CARD = Lifecycle(
    "card",
    ("normal", "frozen", "lost", "stolen", "expired", "closed"),
    (
        Rule("freeze", frozenset({"normal"}), "frozen", "refuse every transaction until unfrozen"),
        Rule("unfreeze", frozenset({"frozen"}), "normal", "accept transactions again"),
        Rule("report_lost", _OPEN, "lost", "reported lost (41, merchant keeps the card; final)"),
        Rule("report_stolen", _OPEN, "stolen", "reported stolen (43, merchant keeps the card; final)"),
        Rule("close", frozenset({"normal", "frozen", "lost", "stolen", "expired"}), "closed", "close the account (final)"),
        Rule("unlock_pin", _OPEN, None, "clear a PIN lock after too many wrong PINs"),
    ),
)  # fmt: skip

ACTIONS = ("freeze", "unfreeze", "report_lost", "report_stolen", "close")


def find_card(tx: Tx, *, card_id: int | None = None, token: str | None = None) -> CardRec:
    """The card by id or by PAN token; Refused when there is none."""
    card = None
    if card_id is not None:
        card = tx.card(card_id)
    elif token is not None:
        card = tx.card_by_token(token)
    if card is None:
        what = f"id {card_id}" if card_id is not None else "that card number"
        raise Refused(f"no card with {what} at the issuer", entity="card")
    return card


def _label(card: CardRec) -> str:
    return f"{card.id} ({card.pan_masked})"


def move(
    tx: Tx, card: CardRec, action: str, *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Apply a status transition of :data:`CARD` (freeze, unfreeze, report_lost, ...)."""
    by = check_actor(by)
    if action not in ACTIONS:
        raise ValueError(f"card action must be one of {ACTIONS}")
    if not why.strip():
        raise Refused(f"say why: --why TEXT is required to {action.replace('_', ' ')} a card")
    target = CARD.target(action, card.status, _label(card))
    at = now_iso(now)
    why = mask_text(why.strip())
    tx.update_card(card.id, status=target, status_since=at, status_by=by, status_why=why)
    return record(
        tx,
        at=at,
        by=by,
        entity="card",
        entity_id=str(card.id),
        action=action,
        from_state=card.status,
        to_state=target,
        why=why.strip(),
        detail={"pan": card.pan_masked},
    )


def unlock_pin(tx: Tx, card: CardRec, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Clear the PIN lock and the wrong-PIN counter (the cardholder proved who they are)."""
    by = check_actor(by)
    CARD.target("unlock_pin", card.status, _label(card))
    if not card.pin_locked:
        raise Refused(
            f"card {_label(card)} is not PIN-locked (wrong PINs so far: {card.wrong_pin})",
            entity="card",
            entity_id=str(card.id),
            state="pin unlocked",
            action="unlock_pin",
        )
    if not why.strip():
        raise Refused("say why: --why TEXT (e.g. 'cardholder verified at branch, ID checked')")
    at = now_iso(now)
    tx.update_card(card.id, pin_locked=0, wrong_pin=0)
    return record(
        tx,
        at=at,
        by=by,
        entity="card",
        entity_id=str(card.id),
        action="unlock_pin",
        from_state="pin_locked",
        to_state="pin_unlocked",
        why=why.strip(),
        detail={"pan": card.pan_masked, "wrong_pin": card.wrong_pin},
    )
