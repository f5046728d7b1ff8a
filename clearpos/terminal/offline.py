"""Offline sales: stored under the floor limit when the host is unreachable, uploaded later."""

from __future__ import annotations

from datetime import datetime

from clearpos.wire import (
    FinancialRequest,
    FinancialResponse,
    Kind,
)

from . import store as st
from .core import (
    CardInput,
    TerminalCore,
    _Abort,
    _Reply,
)
from .protocol import (
    OfflineDeclined,
    OfflineKept,
    OfflineMoved,
    OfflineUploaded,
)
from .screens import Outcome, note, reason_of, remedy_of, screen_of
from .store import JournalRow, without_pin

__all__ = ["OfflineMixin"]


class OfflineMixin(TerminalCore):
    """Offline sales: stored under the floor limit when the host is unreachable, uploaded later."""

    def _upload_offline(self, command: str) -> None:
        """Upload queued offline sales; raises _Abort when the link fails."""
        done = self._drive_prelude(offline=True, reversal=False)
        if done.unreachable is not None and self._link_error is not None:
            raise _Abort(self._unreachable(command, self._link_error, financial=True))

    def _record_offline(
        self,
        action: OfflineMoved | OfflineUploaded | OfflineDeclined | OfflineKept,
        rows: dict[int, JournalRow],
        reply: _Reply | None,
    ) -> None:
        """Store what happened to one queued offline sale."""
        if isinstance(action, OfflineKept):
            self.store.journal_update(action.row, detail=action.error)
            return
        if isinstance(action, OfflineMoved):
            old, moved = action.old, action.moved
            self.store.journal_update(
                action.row,
                stan=moved.stan,
                batch=moved.batch,
                sealed=self.sealer.seal(moved),
                detail=f"moved from batch {old.batch} STAN {old.stan}: "
                "the host had closed that batch",
            )
            self._lines.append(
                note("offline_moved", self.lang, old=old.stan, batch=old.batch, stan=moved.stan)
            )
            return
        assert reply is not None and isinstance(reply.msg, FinancialResponse)
        m = reply.msg
        key = reason_of(action.code, m.reason)
        uploaded = isinstance(action, OfflineUploaded)
        if uploaded:
            self.store.journal_update(
                action.row,
                status=st.OFFLINE_UPLOADED,
                code=action.code,
                reason=key,
                rrn=m.rrn or rows[action.row].rrn,
                org=m.organisation.strip(),
                host_date=m.host_date or "",
                host_time=m.host_time or "",
            )
        else:
            self.store.journal_update(
                action.row, status=st.OFFLINE_DECLINED, code=action.code, reason=key
            )
        self._lines.append(
            note(
                "offline_uploaded" if uploaded else "offline_declined", self.lang, stan=action.stan
            )
        )
        self._extra.setdefault("offline_uploads", []).append(
            {"stan": action.stan, "code": action.code, "reason": key, "uploaded": uploaded}
        )

    def _offline_sale(self, amount_fen: int, card_in: CardInput) -> Outcome:
        stan = self.store.next_stan()
        auth = "L" + stan[1:]
        card = without_pin(card_in.card(None))
        req = FinancialRequest(
            kind=Kind.OFFLINE,
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            card=card,
            auth_code=auth,
        )
        now = datetime.now(self.tz)
        jid = self.store.journal_add(
            kind="offline",
            stan=stan,
            batch=self.batch,
            amount_fen=amount_fen,
            pan=card.masked_pan,
            entry=card.entry_mode,
            status=st.OFFLINE_STORED,
            reason="offline.stored",
            auth_code=auth,
            operator=self.operator or "",
            host_date=now.strftime("%m%d"),
            host_time=now.strftime("%H%M%S"),
            sealed=self.sealer.seal(req),
        )
        out = Outcome(
            command="purchase",
            reason="offline.stored",
            code=None,
            approved=True,
            screen=screen_of("offline.stored", None, self.lang),
            stan=stan,
            amount_fen=amount_fen,
            financial=True,
            charged=True,
            lines=[note("offline_stored", self.lang)],
            remedy=remedy_of("offline.stored", self.lang),
            extra={"auth_code": auth, "batch": self.batch, "pan": card.masked_pan, "offline": True},
        )
        self._receipt(self.store.journal_row(jid), out)
        return out
