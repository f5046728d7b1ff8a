"""The simulated issuer: card accounts, their states, PIN tries and money.

Behind :class:`Issuer` so a real issuer link could replace it. Every method
works inside the caller's store transaction and returns a reason key.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys import PinBlockError, SecurityModule
from ..store import CardRec, Tx

MAX_PIN_TRIES = 3

STATUS_REASON = {
    "frozen": "card.frozen",
    "closed": "card.closed",
    "lost": "card.lost",
    "stolen": "card.stolen",
    "expired": "card.expired",
}


@dataclass(frozen=True, slots=True)
class CardCheck:
    reason: str
    facts: dict[str, object]


def expired(expiry: str, today_yymm: str) -> bool:
    """A card is valid through the end of its expiry month (YYMM)."""
    return expiry < today_yymm


class Issuer:
    """Card-account decisions. All money in fen."""

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm

    def check_status(self, card: CardRec, expiry: str | None, today_yymm: str) -> CardCheck | None:
        if card.status in STATUS_REASON:
            return CardCheck(STATUS_REASON[card.status], {"status": card.status})
        for exp in (card.expiry, expiry):
            if exp and expired(exp, today_yymm):
                return CardCheck("card.expired", {"expiry": exp})
        if card.pin_locked:
            return CardCheck("card.pin_tries_exceeded", {})
        return None

    def verify_pin(
        self,
        tx: Tx,
        card: CardRec,
        tid: str,
        sealed_pik: str,
        pin_block: bytes,
        pan: str,
        *,
        pin_format: str = "2",
        algorithm: str = "6",
    ) -> CardCheck | None:
        """None when the PIN is right; the wrong-PIN counter is kept on the card.

        ``pin_format`` / ``algorithm`` are 53.1 / 53.2 as the terminal sent them."""
        try:
            ok = self.hsm.verify_pin(
                tid,
                sealed_pik,
                pin_block,
                pan,
                card.pvv,
                pin_format=pin_format,
                algorithm=algorithm,
            )
        except PinBlockError:
            return CardCheck("pin.format_error", {})
        if ok:
            if card.wrong_pin:
                tx.update_card(card.id, wrong_pin=0)
            return None
        tries = card.wrong_pin + 1
        if tries >= MAX_PIN_TRIES:
            tx.update_card(card.id, wrong_pin=tries, pin_locked=1)
            return CardCheck("card.pin_tries_exceeded", {"tries": tries})
        tx.update_card(card.id, wrong_pin=tries)
        return CardCheck("card.wrong_pin", {"tries_left": MAX_PIN_TRIES - tries})

    @staticmethod
    def daily_used(card: CardRec, business_date: str) -> int:
        return card.daily_used_fen if card.daily_date == business_date else 0

    def check_debit(
        self, card: CardRec, amount: int, business_date: str, *, hold: bool = False
    ) -> CardCheck | None:
        used = self.daily_used(card, business_date)
        if card.daily_limit_fen and used + amount > card.daily_limit_fen:
            return CardCheck(
                "card.daily_limit",
                {"limit_fen": card.daily_limit_fen, "used_fen": used, "amount_fen": amount},
            )
        if card.available_fen < amount:
            return CardCheck(
                "card.insufficient_funds",
                {"available_fen": card.available_fen, "amount_fen": amount},
            )
        return None

    @staticmethod
    def check_credit(card: CardRec) -> CardCheck | None:
        """May money go back to this card (a refund)? Not to an account that is
        closed, or reported lost or stolen; a frozen or expired account still takes
        its customer's money back."""
        if card.status in ("closed", "lost", "stolen"):
            return CardCheck(STATUS_REASON[card.status], {"status": card.status})
        return None

    @staticmethod
    def check_completion(card: CardRec, amount: int, held: int) -> CardCheck | None:
        """May a completion take ``amount`` from the card, once the pre-authorisation's
        own hold (``held``) is released? The day's limit counted the hold already."""
        available = card.balance_fen - (card.holds_fen - held)
        if available < amount:
            return CardCheck(
                "card.insufficient_funds", {"available_fen": available, "amount_fen": amount}
            )
        return None

    def apply(
        self,
        tx: Tx,
        card: CardRec,
        *,
        delta: int = 0,
        hold: int = 0,
        daily: int = 0,
        business_date: str,
    ) -> None:
        """Move money: ``delta`` on the balance (negative = debit), ``hold`` on holds,
        ``daily`` on today's used amount (positive = more used)."""
        used = self.daily_used(card, business_date)
        tx.update_card(
            card.id,
            balance_fen=card.balance_fen + delta,
            holds_fen=card.holds_fen + hold,
            daily_used_fen=max(0, used + daily),
            daily_date=business_date,
        )
