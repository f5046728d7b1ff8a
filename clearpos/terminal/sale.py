"""The financial commands: purchase, pre-authorisation, balance, voids, completion, refund."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from clearpos.issuer.card import (
    ChipCard,
    FirstAc,
    TerminalData,
    bound,
    load_card,
    reversal_field55,
)
from clearpos.wire import (
    Card,
    FinancialRequest,
    FinancialResponse,
    Kind,
    OriginalRef,
)

from . import store as st
from .client import LinkError, NoAnswer, Unreachable
from .core import (
    DEBIT_KINDS,
    VOID_OF,
    CardInput,
    TerminalCore,
    TerminalError,
    _answer_of,
)
from .protocol import (
    Decision,
    Verdict,
    decide,
)
from .screens import Outcome, fen_text, note, reason_of, remedy_of, screen_of
from .store import JournalRow, without_pin

__all__ = ["SaleMixin"]


class SaleMixin(TerminalCore):
    """The financial commands: purchase, pre-authorisation, balance, voids, completion, refund."""

    def purchase(self, amount_fen: int, card: CardInput) -> Outcome:
        """Purchase (0200, 60.1 22); offline when the host is unreachable and under the floor."""
        return self._run("purchase", lambda: self._sale(Kind.PURCHASE, amount_fen, card))

    def preauth(self, amount_fen: int, card: CardInput) -> Outcome:
        """Pre-authorisation (0100, 60.1 10)."""
        return self._run("preauth", lambda: self._sale(Kind.PREAUTH, amount_fen, card))

    def balance(self, card: CardInput) -> Outcome:
        """Balance inquiry (0200, 60.1 01)."""
        return self._run("balance", lambda: self._sale(Kind.BALANCE, None, card))

    def void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the sale, completion or pre-authorisation with this STAN."""
        return self._run("void", lambda: self._void(stan, supervisor_password, None))

    def preauth_void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the pre-authorisation with this STAN (0100, 60.1 11)."""
        return self._run(
            "preauth_void", lambda: self._void(stan, supervisor_password, Kind.PREAUTH)
        )

    def completion_void(self, stan: str, supervisor_password: str | None = None) -> Outcome:
        """Void the completion with this STAN (0200, 60.1 21)."""
        return self._run(
            "completion_void", lambda: self._void(stan, supervisor_password, Kind.COMPLETION)
        )

    def complete(
        self, amount_fen: int, preauth_stan: str, card: CardInput | None = None
    ) -> Outcome:
        """Pre-authorisation completion (0200, 60.1 20) of the pre-auth with this STAN."""
        return self._run("complete", lambda: self._complete(amount_fen, preauth_stan, card))

    def refund(
        self,
        amount_fen: int,
        rrn: str,
        card: CardInput | None = None,
        *,
        original_date: str | None = None,
        supervisor_password: str | None = None,
    ) -> Outcome:
        """Refund (0220, 60.1 25) of the sale with this RRN; never reversed, never re-sent."""
        return self._run(
            "refund",
            lambda: self._refund(amount_fen, rrn, card, original_date, supervisor_password),
        )

    def _sale(self, kind: Kind, amount_fen: int | None, card_in: CardInput) -> Outcome:
        command = {Kind.PURCHASE: "purchase", Kind.PREAUTH: "preauth", Kind.BALANCE: "balance"}[
            kind
        ]
        self._require_operator(command)
        self._require_signed_on(command)
        try:
            self._prelude(command)
        except Unreachable as exc:
            if (
                kind is Kind.PURCHASE
                and amount_fen is not None
                and 0 < amount_fen <= self.floor_limit_fen
            ):
                return self._offline_sale(amount_fen, card_in)
            return self._unreachable(command, exc, financial=True)
        stan = self.store.next_stan()
        card = self._read_chip(card_in, amount_fen or 0, kind) if card_in.chip else None
        req = FinancialRequest(
            kind=kind,
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            card=card or card_in.card(self.keys),
        )
        return self._transact(command, req)

    def _read_chip(self, card_in: CardInput, amount_fen: int, kind: Kind) -> Card:
        """The card data of a chip read (22 = 05x contact, 07x QuickPass): the card's
        first GENERATE AC makes the ARQC and the 55 this terminal sends; the card file
        keeps the ATC. An unreadable chip falls back to the swipe (80x)."""
        assert card_in.chip is not None
        chip = bound(load_card(card_in.chip), card_in.chip)
        block = self.keys.pin_block(card_in.pin, chip.pan) if card_in.pin else None
        pin_digit = "1" if block is not None else "2"
        if card_in.chip_fails:
            self._chip = None
            return Card(chip.pan, chip.expiry, chip.track2(), entry_mode="80" + pin_digit,
                        pin_block=block)  # fmt: skip
        txn_type = "31" if kind is Kind.BALANCE else ("03" if kind is Kind.PREAUTH else "00")
        data = TerminalData(
            amount_fen,
            datetime.now(self.tz).strftime("%y%m%d"),
            txn_type=txn_type,
            cvm_results="420300" if block is not None else "1F0302",
            contactless=card_in.tap,
        )
        first = chip.first_generate_ac(data)
        self._chip = (chip, first)
        self._card_refuses = card_in.card_refuses
        return Card(
            chip.pan,
            chip.expiry,
            chip.track2(),
            entry_mode=("07" if card_in.tap else "05") + pin_digit,
            pin_block=block,
            sequence=f"0{chip.psn}"[-3:],
            chip=first.field55,
            send_pan=True,
        )

    def _find(self, where: str, params: tuple[Any, ...]) -> JournalRow | None:
        rows = self.store.journal(where, params)
        return rows[-1] if rows else None

    def _void(self, stan: str, password: str | None, only: Kind | None) -> Outcome:
        command = {None: "void", Kind.PREAUTH: "preauth_void", Kind.COMPLETION: "completion_void"}[
            only
        ]
        stan = stan.zfill(6)
        self._require_operator(command)
        self._require_supervisor(command, password)
        self._require_signed_on(command)
        kinds = [only.label] if only else ["purchase", "completion", "preauth"]
        marks = ",".join("?" for _ in kinds)
        orig = self._find(
            f"stan = ? AND status = 'approved' AND kind IN ({marks}) AND settled = 0 "
            "AND (batch = ? OR kind = 'preauth')",
            (stan, *kinds, self.batch),
        )
        kind = VOID_OF[Kind.by_label(orig.kind)] if orig is not None else Kind.VOID
        return self._follow_up(command, kind, orig, stan, None, None)

    def _mmdd(self) -> str:
        return datetime.now(self.tz).strftime("%m%d")

    def _complete(self, amount_fen: int, preauth_stan: str, card_in: CardInput | None) -> Outcome:
        command = "complete"
        self._require_operator(command)
        self._require_signed_on(command)
        orig = self._find(
            "stan = ? AND kind = 'preauth' AND status = 'approved'", (preauth_stan.zfill(6),)
        )
        return self._follow_up(command, Kind.COMPLETION, orig, preauth_stan, amount_fen, card_in)

    def _follow_up(
        self,
        command: str,
        kind: Kind,
        orig: JournalRow | None,
        original_stan: str,
        amount_fen: int | None,
        card_in: CardInput | None,
    ) -> Outcome:
        """A void or completion of an original in the journal: refused on the terminal
        when it is not there or already voided; otherwise the prelude, then the request
        naming it (field 61, RRN, auth code), with its amount and card unless given. The
        card is read after the prelude: an automatic sign-on there changes the PIN key."""
        if orig is None or orig.sealed is None:
            return self._local(
                command,
                "transaction.original_not_found",
                financial=True,
                original_stan=original_stan,
            )
        if orig.voided:
            return self._local(
                command, "transaction.already_voided", financial=True, original_stan=original_stan
            )
        try:
            self._prelude(command)
        except Unreachable as exc:
            return self._unreachable(command, exc, financial=True)
        original = self.sealer.open(orig.sealed)
        req = FinancialRequest(
            kind=kind,
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            amount_fen=orig.amount_fen if amount_fen is None else amount_fen,
            card=card_in.card(self.keys) if card_in else original.card,
            rrn=orig.rrn or None,
            auth_code=orig.auth_code or None,
            original=self._original_ref(kind, orig),
        )
        return self._transact(command, req, original=orig)

    def _original_ref(self, kind: Kind, orig: JournalRow) -> OriginalRef:
        """Field 61 of a void or completion: a stock terminal names a same-batch original
        by batch + STAN (12 digits); this terminal adds the original's date."""
        same_batch = kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID)
        if self.dialect == "cup" and same_batch:
            return OriginalRef(orig.batch, orig.stan)
        return OriginalRef(orig.batch, orig.stan, orig.host_date or self._mmdd())

    def _refund(
        self,
        amount_fen: int,
        rrn: str,
        card_in: CardInput | None,
        original_date: str | None,
        password: str | None,
    ) -> Outcome:
        command = "refund"
        self._require_operator(command)
        self._require_supervisor(command, password)
        self._require_signed_on(command)
        orig = self._find(
            "rrn = ? AND status IN ('approved', 'offline_uploaded') "
            "AND kind IN ('purchase', 'completion', 'offline')",
            (rrn,),
        )
        card: Card | None = None
        if card_in is not None:
            card = without_pin(card_in.card(None))
        elif orig is not None and orig.sealed is not None:
            card = self.sealer.open(orig.sealed).card
        if card is None:
            where = (
                "its card data is no longer kept (batch settled)"
                if orig is not None
                else "it is not in this terminal's journal"
            )
            raise TerminalError(f"refund of RRN {rrn}: {where}; give the card with --card/--expiry")
        if orig is not None:
            ref = OriginalRef(
                orig.batch, orig.stan, original_date or orig.host_date or self._mmdd()
            )
        else:
            ref = OriginalRef("000000", "000000", original_date or self._mmdd())
        try:
            self._prelude(command)
        except Unreachable as exc:
            return self._unreachable(command, exc, financial=True)
        req = FinancialRequest(
            kind=Kind.REFUND,
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            amount_fen=amount_fen,
            card=card,
            rrn=rrn,
            original=ref,
        )
        return self._transact(command, req, original=orig)

    def _transact(
        self, command: str, req: FinancialRequest, *, original: JournalRow | None = None
    ) -> Outcome:
        """Send one financial request under the reversal rules and build its outcome."""
        kind = req.kind
        card = req.card
        pan = card.masked_pan if card else (original.pan if original else "")
        jid = self._begin_send(req, pan, original)
        base = {"batch": req.batch, "pan": pan, "kind": kind.label}
        try:
            reply = self._exchange(req)
        except Unreachable as exc:  # the connection could not be re-opened: nothing left
            self.store.finish(
                jid,
                clear_reversal=True,
                status=st.LOCAL,
                reason="network.unreachable",
                detail=str(exc),
            )
            return self._unreachable(command, exc, financial=True)
        except NoAnswer as exc:
            self.store.finish(
                jid,
                clear_reversal=False,
                status=st.TIMEOUT,
                reason="network.timeout",
                detail=str(exc),
            )
            return self._timeout(command, req, jid, exc, base)
        m = reply.msg
        if not isinstance(m, FinancialResponse):
            return self._timeout(command, req, jid, NoAnswer("unexpected answer"), base)
        answer: dict[str, Any] = {
            "rrn": m.rrn or "",
            "org": m.organisation.strip(),
            "host_date": m.host_date or "",
            "host_time": m.host_time or "",
        }
        decision = decide(kind, _answer_of(reply, FinancialResponse))
        if decision.verdict is Verdict.UNTRUSTED:
            return self._untrusted(command, req, jid, decision, answer, base)
        chip_read = self._chip if card is not None and card.chip is not None else None
        self._chip = None
        if chip_read is not None:
            refused = self._second_generate_ac(chip_read, m, req, jid, answer, command, base)
            if refused is not None:
                return refused
        return self._answered(command, req, jid, m, decision, answer, base, original)

    def _begin_send(self, req: FinancialRequest, pan: str, original: JournalRow | None) -> int:
        """Journal the request -- and store its reversal (98), when reversible -- in one
        write before it leaves; returns the journal row."""
        kind, card = req.kind, req.card
        fields: dict[str, Any] = {
            "kind": kind.label,
            "stan": req.stan,
            "batch": req.batch,
            "amount_fen": req.amount_fen,
            "pan": pan,
            "entry": card.entry_mode if card else "",
            "operator": self.operator or "",
            "original_stan": original.stan if original else "",
            "original_batch": original.batch if original else "",
            "sealed": self.sealer.seal(req) if kind is not Kind.BALANCE else None,
        }
        reversal = None
        if kind.reversible:
            reversal = {
                "stan": req.stan,
                "batch": req.batch,
                "kind": kind.label,
                "amount_fen": req.amount_fen,
                "pan": pan,
                "sealed": fields["sealed"],
            }
        return self.store.begin_send(fields, reversal)

    def _untrusted(
        self,
        command: str,
        req: FinancialRequest,
        jid: int,
        decision: Decision,
        answer: dict[str, Any],
        base: dict[str, Any],
    ) -> Outcome:
        """The answer says approved but cannot be trusted (its MAC failed). A reversible
        request is undone (A0); a refund is never reversed, so whether the host credited
        it is unknown here, exactly as when its answer is lost (never "not credited")."""
        unknown = decision.unknown
        if decision.reverse is not None:
            self.store.set_reversal_reason(decision.reverse)
        self.store.finish(
            jid,
            clear_reversal=decision.reverse is None,
            status=st.UNKNOWN if unknown else st.DECLINED,
            reason="mac.invalid",
            code="A0",
            detail="approved answer failed its MAC",
            **answer,
        )
        done = self._deliver_reversal() if decision.reverse is not None else None
        self._need_resign = decision.resign
        return self._fin_outcome(
            command,
            req,
            jid,
            "mac.invalid",
            "A0",
            approved=False,
            reversed_=done,
            base=base,
            host_code="00",
            unknown=unknown,
        )

    def _answered(
        self,
        command: str,
        req: FinancialRequest,
        jid: int,
        m: FinancialResponse,
        decision: Decision,
        answer: dict[str, Any],
        base: dict[str, Any],
        original: JournalRow | None,
    ) -> Outcome:
        """Record a trusted answer, approved or declined, and build the outcome."""
        kind = req.kind
        code = m.code or ""
        key = reason_of(code, m.reason)
        if decision.verdict is Verdict.APPROVED:
            if kind.reversible:
                self.store.set_reversal_reason("96")  # answer in hand, not yet recorded
            voids = kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID)
            self.store.finish(
                jid,
                clear_reversal=True,
                status=st.APPROVED,
                reason=key,
                code=code,
                auth_code=m.auth_code or "",
                void_of=original.id if original is not None and voids else None,
                **answer,
            )
            extra: dict[str, Any] = dict(base)
            if m.auth_code:
                extra["auth_code"] = m.auth_code
            if answer["org"]:
                extra["organisation"] = answer["org"]
            if m.balance is not None:
                extra["balance_fen"] = m.balance.amount_fen
            return self._fin_outcome(
                command, req, jid, key, code, approved=True, base=extra, rrn=m.rrn
            )
        self.store.finish(
            jid, clear_reversal=True, status=st.DECLINED, reason=key, code=code, **answer
        )
        if decision.resign:
            self._need_resign = True
        return self._fin_outcome(command, req, jid, key, code, approved=False, base=base, rrn=m.rrn)

    def _second_generate_ac(
        self,
        chip_read: tuple[ChipCard, FirstAc],
        m: FinancialResponse,
        req: FinancialRequest,
        jid: int,
        answer: dict[str, Any],
        command: str,
        base: dict[str, Any],
    ) -> Outcome | None:
        """The card's second GENERATE AC on the host's 91 and scripts. A card that
        refuses (AAC) an approved sale makes the terminal reverse it at once (reason
        06, 55 with 95, 9F10, 9F36, DF31) and say the customer was not charged;
        None when the card agrees (or the host declined anyway)."""
        chip, first = chip_read
        approved = m.code == "00"
        second = chip.second_generate_ac(
            first, m.chip, host_approved=approved, card_refuses=self._card_refuses
        )
        base["chip"] = {
            "aid": chip.aid,
            "label": chip.label,
            "atc": first.atc,
            "arqc": first.arqc.hex().upper(),
            "cryptogram": second.cryptogram,
            "issuer_auth": second.issuer_auth,
            "tc": second.tags.get("9F26", b"").hex().upper() if second.accepted else "",
        }
        if second.blocked:
            base["chip"]["blocked"] = True
        if not approved or second.accepted or not req.kind.reversible:
            return None
        assert req.card is not None
        undone = replace(req, card=replace(req.card, chip=reversal_field55(first, second)))
        self.store.set_reversal_reason("06", sealed=self.sealer.seal(undone))
        self.store.finish(
            jid,
            clear_reversal=False,
            status=st.DECLINED,
            reason="card.refused_after_approval",
            code="00",
            detail=(
                "the card's own risk management answered AAC"
                if second.refused_by_card
                else f"the card answered AAC (issuer authentication {second.issuer_auth})"
            ),
            **answer,
        )
        done = self._deliver_reversal()
        return self._fin_outcome(
            command,
            req,
            jid,
            "card.refused_after_approval",
            "06",
            approved=False,
            reversed_=done,
            base=base,
            host_code="00",
        )

    def _timeout(
        self, command: str, req: FinancialRequest, jid: int, exc: LinkError, base: dict[str, Any]
    ) -> Outcome:
        kind = req.kind
        decision = decide(kind, None)
        if decision.reverse is not None:  # stored as 98 before the request left
            done = self._deliver_reversal()
            return self._fin_outcome(
                command,
                req,
                jid,
                "network.timeout",
                None,
                approved=False,
                reversed_=done,
                base={**base, "error": str(exc)},
            )
        if decision.unknown:
            self.store.journal_update(jid, status=st.UNKNOWN)
        return self._fin_outcome(
            command,
            req,
            jid,
            "network.timeout",
            None,
            approved=False,
            base={**base, "error": str(exc)},
            unknown=decision.unknown,
        )

    def _fin_outcome(
        self,
        command: str,
        req: FinancialRequest,
        jid: int,
        key: str,
        code: str | None,
        *,
        approved: bool,
        base: dict[str, Any],
        rrn: str | None = None,
        reversed_: bool | None = None,
        unknown: bool = False,
        host_code: str | None = None,
    ) -> Outcome:
        kind = req.kind
        lang = self.lang
        debit = kind.label in DEBIT_KINDS
        charged = approved and debit
        lines: list[str] = []
        extra = dict(base)
        if host_code is not None:
            extra["host_code"] = host_code
        if kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.REFUND):
            extra["credited"] = None if unknown else approved
        if kind is Kind.PREAUTH:
            extra["held"] = approved
        if approved:
            if debit:
                lines.append(note("charged", lang))
            elif kind is Kind.PREAUTH:
                lines.append(note("held", lang))
            elif kind is Kind.PREAUTH_VOID:
                lines.append(note("hold_released", lang))
            elif kind is Kind.BALANCE:
                if "balance_fen" in extra:
                    lines.append(note("balance", lang, amount=fen_text(extra["balance_fen"])))
                lines.append(note("balance_only", lang))
            else:
                lines.append(note("credited", lang))
        elif reversed_ is not None:
            extra["reversal_pending"] = not reversed_
            if kind in (Kind.VOID, Kind.COMPLETION_VOID, Kind.PREAUTH_VOID):
                lines.append(note("void_reversed" if reversed_ else "void_pending", lang))
            elif kind is Kind.PREAUTH:
                lines.append(note("not_held" if reversed_ else "reversal_pending", lang))
            else:
                lines.append(
                    note("reversed_not_charged" if reversed_ else "reversal_pending", lang)
                )
        elif unknown:
            lines.append(note("refund_unknown", lang))
        elif debit or kind is Kind.BALANCE:
            lines.append(note("not_charged", lang))
        elif kind is Kind.PREAUTH:
            lines.append(note("not_held", lang))
        else:
            lines.append(note("not_credited", lang))
        facts = self._facts(key)
        remedy = remedy_of(key, lang, **facts)
        if unknown:
            remedy = [note("refund_unknown", lang), *remedy[1:]]
        out = Outcome(
            command=command,
            reason=key,
            code=code,
            approved=approved,
            screen=screen_of(key, code, lang, **facts),
            stan=req.stan,
            rrn=rrn or None,
            amount_fen=req.amount_fen,
            financial=True,
            charged=charged,
            remedy=remedy,
            lines=lines,
            extra=extra,
        )
        if kind is not Kind.BALANCE:
            self._receipt(self.store.journal_row(jid), out)
        return out
