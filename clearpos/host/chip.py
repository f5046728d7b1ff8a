"""Chip participants (spec §8): the acquirer's chip rules and the issuer's cryptogram
check, one decision each, and the answer's field 55.

- :class:`CheckFallback` — a swipe of a chip card at a chip terminal is 45
  ``card.chip_required``; 22 = 80x (the chip could not be read) goes on, journaled
  as a fallback.
- :class:`CheckQuickPassPin` — a tap above the no-PIN limit without a PIN is 55
  ``card.pin_required``.
- :class:`VerifyCryptogram` — the issuer recomputes the ARQC of field 55 (CVN 10
  or 18), refuses a replayed ATC and a 9F02 that is not field 4; it keeps what it
  found on the context, so the answer carries 91 (and scripts) approved or not.
- :func:`answer_field55` — that answer's 55, built once the final field 39 is known.
"""

from __future__ import annotations

from ..issuer.chipkeys import stored_issuer_keys
from ..issuer.emv import EmvIssuer, IssuerKeys
from ..keys import SecurityModule
from ..store import Tx
from ..wire import FinancialRequest, Kind, NetworkRequest, ParameterDownload, WireError, emvparams
from ..wire import tlv as _tlv
from ..wire.emvtags import masked_tags
from .chiprules import EntryKind, entry_kind, fallback_check, quickpass_pin_check
from .context import Ctx

__all__ = [
    "CheckFallback",
    "CheckQuickPassPin",
    "ChipDownloaded",
    "ChipIssuer",
    "ChipItem",
    "ChipList",
    "VerifyCryptogram",
    "answer_field55",
]

#: kinds whose card data may carry a cryptogram the issuer checks
_AUTHORISED = frozenset({Kind.PURCHASE, Kind.PREAUTH, Kind.BALANCE, Kind.COMPLETION})
#: reasons after which the issuer blocks the card's application with a script
_BLOCK = frozenset({"card.lost", "card.stolen"})


class CheckFallback:
    """A chip card swiped (22 = 02x) where the chip can be read: insert or tap it."""

    name = "CheckFallback"

    @staticmethod
    def decides_for(entry: EntryKind, chip_data: bool) -> bool:
        """Whether card data read so (22.1's kind; field 55 sent or not) may be declined
        or marked here: only a swipe or a fallback. The engine calls a participant with
        ``decides_for`` only for card data it says True for; for the rest, which the
        participant would let through untouched, the trail says ``ok`` all the same."""
        return entry in ("swipe", "fallback")

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest) and ctx.terminal is not None
        card = m.card
        if card is None:
            return True
        # the rule refuses nothing at a terminal that reads no chips
        rule = fallback_check(card.entry_mode, card.track2, True) if ctx.terminal.chip else None
        if rule is not None:
            return ctx.decline(rule.reason, **rule.facts)
        if entry_kind(card.entry_mode) == "fallback":
            ctx.facts["fallback"] = True  # the chip could not be read: a swipe instead
        return True


class CheckQuickPassPin:
    """A QuickPass tap (22 = 07x) above the acquirer's no-PIN limit needs a PIN."""

    name = "CheckQuickPassPin"

    @staticmethod
    def decides_for(entry: EntryKind, chip_data: bool) -> bool:
        """Only a tap (see :meth:`CheckFallback.decides_for`)."""
        return entry == "contactless"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        card = m.card
        if card is None or entry_kind(card.entry_mode) != "contactless":
            return True
        limit = ctx.tx.quickpass_no_pin_limit_fen()
        rule = quickpass_pin_check(card.entry_mode, m.amount_fen or 0, card.has_pin, limit)
        if rule is not None:
            return ctx.decline(rule.reason, **rule.facts)
        return True


class ChipIssuer:
    """The simulated issuer's EMV engine over the store's sealed master keys, opened
    once per set of sealed keys (they change only when a world is loaded)."""

    def __init__(self, hsm: SecurityModule) -> None:
        self.hsm = hsm
        self._sealed: dict[str, str] | None = None
        self._engine: EmvIssuer | None = None

    def engine(self, tx: Tx) -> EmvIssuer | None:
        sealed = tx.issuer_keys_sealed()
        if sealed is None:
            return None
        if sealed != self._sealed or self._engine is None:
            keys: IssuerKeys | None = stored_issuer_keys(tx, self.hsm)
            self._engine = EmvIssuer(keys) if keys is not None else None
            self._sealed = sealed
        return self._engine


class VerifyCryptogram:
    """The issuer checks the chip's ARQC (field 55) and its ATC; the ATC is taken."""

    name = "VerifyCryptogram"

    def __init__(self, issuer: ChipIssuer) -> None:
        self.issuer = issuer

    @staticmethod
    def decides_for(entry: EntryKind, chip_data: bool) -> bool:
        """Only card data with field 55 (see :meth:`CheckFallback.decides_for`)."""
        return chip_data

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, FinancialRequest)
        card = m.card
        if card is None or card.chip is None or m.kind not in _AUTHORISED:
            return True
        try:
            items = _tlv.decode(card.chip)
        except WireError as exc:
            return ctx.decline(
                "message.format_error", field=55, offset=exc.offset, expected=exc.expected
            )
        tags = _tlv.flatten(items)
        ctx.facts["chip_data"] = masked_tags(items)
        if ctx.card is None:
            return True
        chip = ctx.tx.card_chip(ctx.card.id)
        engine = self.issuer.engine(ctx.tx)
        if chip is None or engine is None:
            return ctx.decline(
                "card.cryptogram_invalid",
                note="the issuer knows no chip for this card",
            )
        amount = m.amount_fen if m.amount_fen is not None else 0
        check = engine.verify(card.pan, chip, tags, amount)
        ctx.chip_check = check
        ctx.facts["chip"] = {k: v for k, v in check.facts.items() if k != "field"}
        if check.reason is not None:
            facts = dict(check.facts)
            return ctx.decline(check.reason, **facts)
        assert check.atc is not None
        if not ctx.tx.accept_atc(ctx.card.id, check.atc, ctx.now_iso):
            return ctx.decline("card.cryptogram_replayed", atc=check.atc, note="taken meanwhile")
        return True


def answer_field55(issuer: ChipIssuer, ctx: Ctx, code: str) -> bytes | None:
    """Field 55 of the answer to a chip request whose cryptogram the issuer read:
    91 for the final field 39 ``code`` (approved or declined), and an
    application-block script when the card is lost or stolen."""
    check = ctx.chip_check
    if check is None:
        return None
    engine = issuer.engine(ctx.tx)
    if engine is None:
        return None
    block = ctx.reason in _BLOCK
    decision = engine.respond(check, code or "05", block=block)
    if decision.scripts:
        ctx.facts["scripts"] = list(decision.scripts)
    return decision.field55 or None


# --------------------------------------------------------------------------- downloads


class ChipList:
    """0820 372 / 382: the CA keys or AIDs this host holds, paged as the terminal's
    62 (``'1'`` + how many it has) asks (spec §8, docs/emv.md)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"List{kind.capitalize()}"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, NetworkRequest)
        try:
            received = emvparams.parse_list_query(m.data)
        except WireError as exc:
            return ctx.decline("message.format_error", field=62, expected=exc.expected)
        if self.kind == "capk":
            ctx.data62 = emvparams.capk_list_answer(ctx.tx.capks(), received)
        else:
            ctx.data62 = emvparams.aid_list_answer(ctx.tx.aids(), received)
        ctx.facts.update(kind=self.kind, received=received)
        return True


class ChipItem:
    """0800 370 / 380: one CA public key (RID + index) or one AID's chip parameters."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"Send{kind.capitalize()}"

    def __call__(self, ctx: Ctx) -> bool:
        m = ctx.msg
        assert isinstance(m, ParameterDownload)
        try:
            if self.kind == "capk":
                rid, index = emvparams.parse_capk_request(m.data or b"")
                ctx.data62 = emvparams.capk_answer(ctx.tx.capk(rid, index))
                ctx.facts.update(rid=rid, index=index)
            else:
                aid = emvparams.parse_aid_request(m.data or b"")
                ctx.data62 = emvparams.aid_answer(ctx.tx.aid(aid))
                ctx.facts["aid"] = aid
        except WireError as exc:
            return ctx.decline("message.format_error", field=62, expected=exc.expected)
        return True


class ChipDownloaded:
    """0800 371 / 381: the terminal holds the host's CA keys / chip parameters now;
    its sign-on answers stop asking for them (processing requirement 4 / 5)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"{kind.capitalize()}Downloaded"

    def __call__(self, ctx: Ctx) -> bool:
        t = ctx.terminal
        assert t is not None
        generation = ctx.tx.emv_generation(self.kind)
        ctx.tx.mark_emv_loaded(t.tid, self.kind, generation)
        ctx.facts.update(kind=self.kind, generation=generation)
        return True
