"""The pending reversal and the prelude of every online command (driving :class:`~.protocol.Prelude`)."""

from __future__ import annotations

from clearpos.wire import (
    FinancialRequest,
    FinancialResponse,
    ReversalResponse,
)

from . import store as st
from .client import LinkError
from .core import (
    TerminalCore,
    _Abort,
    _answer_of,
    _Reply,
)
from .protocol import (
    Prelude,
    PreludeDone,
    ReversalAnswered,
    ReversalNoAnswer,
    Send,
    SignOnAgain,
)
from .screens import Outcome, note, reason_of, remedy_of, screen_of
from .store import JournalRow, PendingReversal

__all__ = ["ReversalMixin"]


class ReversalMixin(TerminalCore):
    """The pending reversal and the prelude of every online command (driving :class:`~.protocol.Prelude`)."""

    def _deliver_reversal(self) -> bool:
        """Send the pending reversal (up to 3 tries); True when none is pending any more."""
        if self.store.reversal() is None:
            return True
        self._drive_prelude(offline=False)
        return self.store.reversal() is None

    def _drive_prelude(self, *, offline: bool, reversal: bool = True) -> PreludeDone:
        """Run the :class:`~.protocol.Prelude` (reversal, then offline sales) on the link;
        ``self._link_error`` keeps the link error that stopped it, if one did."""
        pending = self.store.reversal() if reversal else None
        queue: list[tuple[int, FinancialRequest]] = []
        rows: dict[int, JournalRow] = {}
        if offline:
            for row in self.store.journal("status = ?", (st.OFFLINE_STORED,)):
                if row.sealed is not None:
                    rows[row.id] = row
                    queue.append((row.id, self.sealer.open(row.sealed)))
        proto = Prelude(
            batch=self.batch,
            signed_on=self.keys.signed_on,
            reversal_of=self.sealer.open(pending.sealed) if pending is not None else None,
            reason_code=pending.reason_code if pending is not None else "98",
            offline=queue,
            stans=self.store.next_stan,
        )
        last: _Reply | None = None
        while not isinstance(action := proto.next_action(), PreludeDone):
            if isinstance(action, Send):
                try:
                    last = self._exchange(action.message)
                except LinkError as exc:
                    self._link_error = exc
                    proto.on_link_error(str(exc))
                    continue
                want = ReversalResponse if action.purpose == "reversal" else FinancialResponse
                proto.on_answer(_answer_of(last, want))
            elif isinstance(action, SignOnAgain):
                self._resigned = True
                operator = self.operator or self.store.get("last_operator") or "01"
                proto.on_signed_on(self._sign_on(str(operator))[0])
            elif isinstance(action, ReversalAnswered | ReversalNoAnswer):
                self._record_reversal(action, last)
            else:
                self._record_offline(action, rows, last)
        if action.need_resign:
            self._need_resign = True
        left = self.store.reversal()
        if action.reversal is False and left is not None:
            self._extra["reversal"] = {
                "stan": left.stan,
                "kind": left.kind,
                "reason_code": left.reason_code,
                "done": False,
                "tries": left.tries,
            }
        return action

    def _record_reversal(
        self, action: ReversalAnswered | ReversalNoAnswer, reply: _Reply | None
    ) -> None:
        """Journal one try of the pending reversal (and clear it when done)."""
        current = self.store.reversal()
        assert current is not None
        if isinstance(action, ReversalNoAnswer):
            self.store.reversal_attempt(action.error)
            self._journal_reversal(
                current, st.TIMEOUT, "network.timeout", action.reason_code, action.error
            )
            return
        answer = action.code or None
        key = reason_of(answer, getattr(reply.msg if reply else None, "reason", ""))
        if not action.done:
            self.store.reversal_attempt(f"answered {answer}")
            self._journal_reversal(current, st.DECLINED, key, action.code)
            return
        self.store.reversal_done(
            st.REVERSED, detail=f"reversal (reason {current.reason_code}) answered {answer}"
        )
        self._journal_reversal(
            current,
            st.APPROVED,
            key,
            action.code,
            f"reversal reason {current.reason_code} for {current.kind}",
        )
        self._extra["reversal"] = {
            "stan": current.stan,
            "kind": current.kind,
            "reason_code": current.reason_code,
            "answer": answer,
            "done": True,
        }

    def _journal_reversal(
        self, pending: PendingReversal, status: str, reason: str, code: str, detail: str = ""
    ) -> None:
        """One journal row per reversal attempt, with the original's identity."""
        self.store.journal_add(
            kind="reversal",
            stan=pending.stan,
            batch=pending.batch,
            amount_fen=pending.amount_fen,
            pan=pending.pan,
            status=status,
            reason=reason,
            code=code,
            detail=detail,
        )

    def _reversal_blocked(self, command: str) -> Outcome:
        key = "reversal.pending"
        pending = self.store.reversal()
        self.store.journal_add(
            kind=command,
            stan="",
            batch=self.batch,
            status=st.LOCAL,
            reason=key,
            detail=f"pending reversal STAN {pending.stan if pending else '?'} not delivered",
        )
        return Outcome(
            command=command,
            reason=key,
            code=None,
            approved=False,
            screen=screen_of(key, None, self.lang),
            financial=True,
            charged=False,
            remedy=remedy_of(key, self.lang),
            lines=self._not_sent(command),
        )

    def _prelude(self, command: str, *, offline: bool = True, need_keys: bool = True) -> None:
        """What must go before any online message: the reversal, then offline sales.

        Raises :class:`Unreachable` when the host cannot be reached at all, and
        stops the command when the reversal cannot be delivered or (``need_keys``)
        an automatic sign-on on the way failed and left the terminal without keys.
        """
        self.link.connect()
        done = self._drive_prelude(offline=offline)
        if done.blocked:
            raise _Abort(self._reversal_blocked(command))
        if done.reversal:
            self._lines.append(
                note("reversal_sent", self.lang, stan=self._extra["reversal"]["stan"])
            )
        if done.unreachable is not None and self._link_error is not None:
            raise _Abort(self._unreachable(command, self._link_error, financial=True))
        if need_keys and not self.keys.signed_on:
            raise _Abort(self._local(command, "terminal.not_signed_on", financial=True))
