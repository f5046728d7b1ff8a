"""Settlement (0500, driving :class:`~.protocol.Settle`), batch upload, totals, the new batch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clearpos.wire import (
    BatchRecord,
    FinancialRequest,
    SettlementResponse,
    Totals,
)

from . import store as st
from .client import LinkError, NoAnswer
from .core import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    FOREIGN_ORGS,
    TerminalCore,
    _Abort,
    _next_batch,
)
from .protocol import (
    Answer,
    Settle,
    SettleDone,
)
from .receipts import SettlementSlip, save_text
from .screens import Outcome, note, remedy_of, screen_of

__all__ = ["SettleMixin"]


class SettleMixin(TerminalCore):
    """Settlement (0500, driving :class:`~.protocol.Settle`), batch upload, totals, the new batch."""

    def settle(self) -> Outcome:
        """Settlement (0500), batch upload when unbalanced, then a new batch."""
        return self._run("settle", self._settle)

    def totals(self, batch: str | None = None) -> tuple[Totals, Totals]:
        """Local (domestic, foreign) totals of a batch, by the rules of spec §4."""
        batch = batch or self.batch
        sums = {False: [0, 0, 0, 0], True: [0, 0, 0, 0]}
        for row in self.store.journal(
            "batch = ? AND status IN ('approved', 'offline_uploaded')", (batch,)
        ):
            foreign = row.org in FOREIGN_ORGS
            acc = sums[foreign]
            if row.kind in DEBIT_KINDS:
                acc[0] += row.amount_fen or 0
                acc[1] += 1
            elif row.kind in CREDIT_KINDS:
                acc[2] += row.amount_fen or 0
                acc[3] += 1
        return Totals(*sums[False]), Totals(*sums[True])

    def _settle(self) -> Outcome:
        command = "settle"
        operator = self._require_operator(command, financial=False)
        if not self.signed_on:
            raise _Abort(self._local(command, "terminal.not_signed_on"))
        try:
            self._prelude(command)
            if self.store.journal("status = ?", (st.OFFLINE_STORED,)):
                raise NoAnswer("offline sales could not be uploaded")
            batch = self.batch
            domestic, foreign = self.totals(batch)
            done, stan = self._drive_settle(batch, operator, domestic, foreign)
        except LinkError as exc:
            out = self._unreachable(command, exc, financial=False)
            out.lines.append(note("batch_open", self.lang))
            return out
        if done.error is not None:
            self.store.journal_add(
                kind="settle",
                stan=stan,
                batch=batch,
                status=st.TIMEOUT,
                reason="network.timeout",
                detail=f"batch upload: {done.error}",
            )
            out = self._settle_failed(command, "network.timeout", batch, domestic, foreign)
            out.extra["error"] = done.error
            return out
        if not done.closed:
            return self._settle_failed(command, done.key, batch, domestic, foreign)
        lines: list[str] = []
        if done.uploaded is not None:
            lines.append(note("uploading", self.lang, count=done.uploaded))
        return self._settled(command, done, stan, batch, domestic, foreign, lines)

    def _drive_settle(
        self, batch: str, operator: str, domestic: Totals, foreign: Totals
    ) -> tuple[SettleDone, str]:
        """Run the :class:`~.protocol.Settle` on the link (raises the settlement's
        own LinkError; a batch upload's comes back in the result)."""
        proto = Settle(
            tid=self.tid,
            mid=self.mid,
            batch=batch,
            operator=operator,
            domestic=domestic,
            foreign=foreign,
            debits=lambda: self._batch_rows(batch)[0],
            items=lambda: self._batch_rows(batch)[1],
            stans=self.store.next_stan,
        )
        while not isinstance(action := proto.next_action(), SettleDone):
            try:
                reply = self._exchange(action.message)
            except LinkError as exc:
                if action.purpose == "settlement":
                    raise
                proto.on_link_error(str(exc))
                continue
            m = reply.msg
            if isinstance(m, SettlementResponse):
                checks = (m.totals.domestic.check, m.totals.foreign.check)
                proto.on_answer(Answer(m.code, reply.header.processing, checks=checks))
            else:
                proto.on_answer(Answer(getattr(m, "code", None), reply.header.processing))
        assert proto.stan is not None
        return action, proto.stan

    def _settled(
        self,
        command: str,
        done: SettleDone,
        stan: str,
        batch: str,
        domestic: Totals,
        foreign: Totals,
        lines: list[str],
    ) -> Outcome:
        """Close the settled batch: journal, new batch, the settlement slip."""
        key = done.key
        new_batch = _next_batch(batch)
        self.store.journal_add(
            kind="settle",
            stan=stan,
            batch=batch,
            status=st.APPROVED,
            reason=key,
            amount_fen=domestic.debit_fen + foreign.debit_fen,
            detail=f"domestic {domestic.encode()} foreign {foreign.encode()}",
        )
        self.store.close_batch(batch, new_batch)
        lines.append(note("new_batch", self.lang, batch=new_batch))
        screen = screen_of(key, None, self.lang)
        slip = SettlementSlip(
            tid=self.tid,
            mid=self.mid,
            batch=batch,
            when=datetime.now(self.tz).strftime("%Y-%m-%d %H:%M:%S"),
            domestic=(
                domestic.debit_fen,
                domestic.debit_count,
                domestic.credit_fen,
                domestic.credit_count,
            ),
            foreign=(
                foreign.debit_fen,
                foreign.debit_count,
                foreign.credit_fen,
                foreign.credit_count,
            ),
            screen=screen,
            lines=tuple(lines),
        )
        path = self.store.directory / "receipts" / f"settle-{batch}.txt"
        save_text(path, slip.text(self.lang))
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=True,
            screen=screen,
            stan=stan,
            amount_fen=domestic.debit_fen + foreign.debit_fen,
            lines=lines,
            extra={
                "batch": batch,
                "new_batch": new_batch,
                "receipt": str(path),
                "totals": self._totals_json(domestic, foreign),
                "uploaded_records": done.uploaded,
                "check_codes": list(done.checks),
            },
        )

    @staticmethod
    def _totals_json(domestic: Totals, foreign: Totals) -> dict[str, Any]:
        def one(t: Totals) -> dict[str, int]:
            return {
                "debit_fen": t.debit_fen,
                "debit_count": t.debit_count,
                "credit_fen": t.credit_fen,
                "credit_count": t.credit_count,
            }

        return {"domestic": one(domestic), "foreign": one(foreign)}

    def _settle_failed(
        self, command: str, key: str, batch: str, domestic: Totals, foreign: Totals
    ) -> Outcome:
        self.store.journal_add(kind="settle", stan="", batch=batch, status=st.DECLINED, reason=key)
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=False,
            screen=screen_of(key, None, self.lang),
            remedy=remedy_of(key, self.lang),
            lines=[note("batch_open", self.lang)],
            extra={"batch": batch, "totals": self._totals_json(domestic, foreign)},
        )

    def _batch_rows(self, batch: str) -> tuple[list[BatchRecord], list[FinancialRequest]]:
        """What a batch upload sends: the debit records (8 to a 0320) and the refunds
        and offline sales, whole."""
        rows = self.store.journal(
            "batch = ? AND status IN ('approved', 'offline_uploaded')", (batch,)
        )
        debits: list[BatchRecord] = []
        items: list[FinancialRequest] = []
        for row in rows:
            if row.sealed is None:
                continue
            if row.kind in ("purchase", "completion"):
                req = self.sealer.open(row.sealed)
                assert req.card is not None
                debits.append(BatchRecord(row.stan, req.card.pan, row.amount_fen or 0))
            elif row.kind in ("refund", "offline"):
                items.append(self.sealer.open(row.sealed))
        return debits, items
