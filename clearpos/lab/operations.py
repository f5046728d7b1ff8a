"""The campaign's operations: what a terminal does next, as a call and as CLI arguments."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from clearpos.money import fen_yuan
from clearpos.terminal import CardInput, Terminal
from clearpos.terminal.screens import Outcome
from clearpos.terminal.store import JournalRow

from .world import SUPERVISOR, LabCard

__all__ = ["Op", "OperationMix", "offline_stored", "open_preauths", "purchase", "rng"]


def rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(["clearpos-lab", str(seed), *map(str, parts)]))


class Op:
    """One operation: the terminal method to call, and the same as CLI arguments."""

    def __init__(
        self, name: str, call: Callable[[Terminal], Outcome], argv: list[str], financial: bool
    ) -> None:
        self.name = name
        self.call = call
        self.argv = argv
        self.financial = financial


def _card_argv(card: LabCard, *, pin: bool, keyed: bool = False) -> list[str]:
    out = ["--card", card.pan, "--expiry", card.expiry]
    if pin:
        out += ["--pin", card.pin]
    if keyed:
        out.append("--keyed")
    return out


def _void_in_batch(
    t: Terminal,
    rnd: random.Random,
    kind: str,
    name: str,
    verb: str,
    method: Callable[[Terminal], Callable[[str, str], Outcome]],
) -> Op | None:
    """Void (supervisor) one of the latest 20 approved ``kind`` rows of the open batch."""
    rows = [
        r
        for r in t.store.journal()
        if r.kind == kind
        and r.status == "approved"
        and not r.voided
        and not r.settled
        and r.batch == t.batch
    ]
    if not rows:
        return None
    row = rnd.choice(rows[-20:])
    return Op(
        name,
        lambda term: method(term)(row.stan, SUPERVISOR),
        ["--supervisor-password", SUPERVISOR, verb, row.stan],
        True,
    )


def open_preauths(rows: list[JournalRow]) -> list[JournalRow]:
    """Approved pre-authorisations not voided, not settled and not yet completed."""
    completed = {
        (r.original_stan, r.original_batch)
        for r in rows
        if r.kind == "completion" and r.status == "approved"
    }
    return [
        r
        for r in rows
        if r.kind == "preauth"
        and r.status == "approved"
        and not r.voided
        and not r.settled
        and (r.stan, r.batch) not in completed
    ]


def offline_stored(t: Terminal) -> list[JournalRow]:
    """Offline purchases the terminal still has to upload."""
    return [r for r in t.store.journal() if r.status == "offline_stored"]


class OperationMix:
    """What a terminal does next, drawn from ``rnd`` and its own journal.

    The shares of :meth:`choose` (of one draw ``r``): 3 % purchases on declining
    cards, 42 % purchases (15 % without PIN, 10 % keyed), 8 % voids, 7 % refunds,
    10 % pre-authorisations, 12 % completions and pre-auth voids, 4 % completion
    voids, 10 % balance inquiries, the rest small purchases; a draw with nothing
    to act on (no sale to void...) falls through to the next. Chip sales
    (:meth:`chip_sale`) are drawn by the campaign, on chip terminals only.
    """

    def __init__(
        self,
        good: list[LabCard],
        bad: list[LabCard],
        chip: list[LabCard],
        by_masked: dict[str, LabCard],
        card_files: dict[str, Path],
    ) -> None:
        self.good_cards = good
        self.bad_cards = bad
        self.chip_cards = chip
        self.by_masked = by_masked
        self.card_files = card_files

    def choose(self, t: Terminal, rnd: random.Random) -> Op:
        r = rnd.random()
        good = self.good_cards
        if r < 0.03 and self.bad_cards:
            card = rnd.choice(self.bad_cards)
            amount = rnd.randint(100, 30000)
            return purchase(card, amount, pin=True, keyed=False)
        if r < 0.45:
            card = rnd.choice(good)
            amount = rnd.randint(100, 30000)
            pin = rnd.random() < 0.85
            keyed = rnd.random() < 0.1
            return purchase(card, amount, pin=pin, keyed=keyed)
        if r < 0.53:
            op = _void_in_batch(t, rnd, "purchase", "void", "void", lambda term: term.void)
            if op is not None:
                return op
        if 0.53 <= r < 0.60:
            op = self._refund(t, rnd)
            if op is not None:
                return op
        if 0.60 <= r < 0.70:
            card = rnd.choice(good)
            amount = rnd.randint(1000, 50000)
            return Op(
                "preauth",
                lambda term: term.preauth(amount, CardInput(card.pan, card.expiry, card.pin)),
                ["preauth", fen_yuan(amount), *_card_argv(card, pin=True)],
                True,
            )
        if 0.70 <= r < 0.82:
            op = _after_preauth(t, rnd, complete=r < 0.78)
            if op is not None:
                return op
        if 0.82 <= r < 0.86:
            op = _void_in_batch(
                t, rnd, "completion", "completion_void", "complete-void",
                lambda term: term.completion_void,
            )  # fmt: skip
            if op is not None:
                return op
        if 0.86 <= r < 0.96:
            card = rnd.choice(good)
            return Op(
                "balance",
                lambda term: term.balance(CardInput(card.pan, card.expiry, card.pin)),
                ["balance", *_card_argv(card, pin=True)],
                True,
            )
        card = rnd.choice(good)
        amount = rnd.randint(100, 8000)  # small: some go offline while the host is down
        return purchase(card, amount, pin=rnd.random() < 0.5, keyed=False)

    def _refund(self, t: Terminal, rnd: random.Random) -> Op | None:
        """Refund (supervisor) all or part of one of the latest 40 approved sales, by RRN;
        the card given now and then (never a chip card: refunded by RRN alone)."""
        rows = [
            r
            for r in t.store.journal()
            if r.kind in ("purchase", "completion", "offline")
            and r.status in ("approved", "offline_uploaded")
            and not r.voided
            and r.rrn != ""
        ][-40:]
        if not rows:
            return None
        row = rnd.choice(rows)
        known = self.by_masked.get(row.pan)
        amount = max(1, (row.amount_fen or 1) // rnd.choice((1, 1, 2, 3)))
        give_card = (
            known is not None and known.chip is None and (row.sealed is None or rnd.random() < 0.3)
        )
        card_in = CardInput(known.pan, known.expiry) if give_card and known else None
        argv = ["--supervisor-password", SUPERVISOR, "refund", fen_yuan(amount)]
        argv += ["--rrn", row.rrn]
        if card_in is not None and known is not None:
            argv += _card_argv(known, pin=False)
        return Op(
            "refund",
            lambda term: term.refund(amount, row.rrn, card_in, supervisor_password=SUPERVISOR),
            argv,
            True,
        )

    def chip_sale(self, rnd: random.Random) -> Op:
        """A chip sale: inserted with its PIN, or tapped (QuickPass): up to the no-PIN
        limit without a PIN, above it mostly with one (without: declined 55)."""
        card = rnd.choice(self.chip_cards)
        path = self.card_files[card.pan]
        if rnd.random() < 0.45:
            amount = rnd.randint(100, 150_000)
            pin = amount > 100_000 and rnd.random() < 0.7
            name, how = "tap", ["--tap", str(path)]
        else:
            amount = rnd.randint(100, 30_000)
            pin = rnd.random() < 0.9
            name, how = "chip", ["--chip", str(path)]
        card_in = CardInput.of_chip(path, pin=card.pin if pin else None, tap=name == "tap")
        return Op(
            name,
            lambda term: term.purchase(amount, card_in),
            ["purchase", fen_yuan(amount), *how, *(["--pin", card.pin] if pin else [])],
            True,
        )


def purchase(card: LabCard, amount: int, *, pin: bool, keyed: bool) -> Op:
    """A swiped (or keyed) purchase, with or without the card's PIN."""
    card_in = CardInput(card.pan, card.expiry, card.pin if pin else None, keyed)
    return Op(
        "purchase",
        lambda term: term.purchase(amount, card_in),
        ["purchase", fen_yuan(amount), *_card_argv(card, pin=pin, keyed=keyed)],
        True,
    )


def _after_preauth(t: Terminal, rnd: random.Random, *, complete: bool) -> Op | None:
    """Complete (for its amount or a little less) or void one of the latest 20 open
    pre-authorisations."""
    rows = open_preauths(t.store.journal())
    if not rows:
        return None
    row = rnd.choice(rows[-20:])
    if complete:
        amount = max(1, (row.amount_fen or 1) - rnd.choice((0, 0, 1, 100, 999)))
        return Op(
            "complete",
            lambda term: term.complete(amount, row.stan),
            ["complete", fen_yuan(amount), "--preauth", row.stan],
            True,
        )
    return Op(
        "preauth_void",
        lambda term: term.preauth_void(row.stan, SUPERVISOR),
        ["--supervisor-password", SUPERVISOR, "preauth-void", row.stan],
        True,
    )
