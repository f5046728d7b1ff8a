"""Diagnose a terminal, a merchant, or every transaction with one code.

For a terminal or merchant: its recent failures grouped by reason (count,
first and last time), its state history (the audit trail), and the headline
(:func:`headline`): the single most likely thing to fix *now*. A current
blocking state comes first — merchant closed or suspended, terminal replaced or
suspended, software below the minimum, no working keys; else the latest decline
since the last approved transaction whose actor is the merchant, the provider
or the terminal. A failure that is no longer true (its state lifted, or an
approval came after it) never heads the diagnosis; the latest one becomes the
second line, "it was X, now resolved at T by Y".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..clock import parse_since, show, utc_iso
from ..money import fen_yuan
from ..ops.arrears import ledger, pending_request, requests
from ..reasons import Lang, catalog
from ..store import JournalRec, MerchantRec, TerminalRec, Tx
from ..store.queries.diagnosis import replaced_terminal
from ..store.queries.ops import audit_rows, journal_rows
from .explain import TIMEOUT, explain_row, fill_ids, is_fixable
from .model import (
    Explanation,
    FailureGroup,
    Fix,
    HistoryEntry,
    MerchantDiagnosis,
    MerchantState,
    Resolved,
    TerminalDiagnosis,
    TerminalState,
)
from .sentences import (
    KIND,
    action_word,
    merchant_state,
    say,
    state_word,
    terminal_state,
    who,
    word,
)

__all__ = [
    "NotFound",
    "diagnose_code",
    "diagnose_merchant",
    "diagnose_terminal",
    "failures",
    "headline",
    "merchant_snapshot",
    "outcome_points",
    "parse_since",
    "terminal_snapshot",
]

#: journal kinds whose declines are not failures of the terminal's business
_NOT_FAILURES = ("settlement.balanced", "settlement.unbalanced")


class NotFound(LookupError):
    """Nothing to diagnose: no such terminal, merchant or transaction."""


def _is_timeout(row: JournalRec) -> bool:
    return row.kind == "reversal" and str(row.facts.get("reversal_reason")) == "98"


def _failure_reason(row: JournalRec) -> str | None:
    """The reason a row counts as a failure under, or None when it is not one."""
    if _is_timeout(row):
        return TIMEOUT
    if row.kind == "reversal" or row.code == "00" or row.status != "declined":
        return None
    if row.reason in _NOT_FAILURES:
        return None
    return row.reason if row.reason in catalog() else "host.error"


def failures(rows: Sequence[JournalRec], lang: Lang) -> list[FailureGroup]:
    """Failures grouped by reason, most frequent first (then most recent)."""
    groups: dict[str, list[JournalRec]] = {}
    for r in rows:
        key = _failure_reason(r)
        if key is not None:
            groups.setdefault(key, []).append(r)
    out = []
    cat = catalog()
    for key, rs in groups.items():
        reason = cat[key]
        facts = dict(rs[-1].facts)
        facts["notice"] = facts.get(f"notice_{lang}")
        out.append(
            FailureGroup(
                reason=key,
                screen=reason.screen_text(lang, **facts),
                actor=reason.actor.get(lang),
                category=reason.category,
                count=len(rs),
                first=rs[0].ts,
                last=rs[-1].ts,
                first_time=show(rs[0].ts),
                last_time=show(rs[-1].ts),
                tids=tuple(sorted({r.tid for r in rs})),
                rrns=tuple(r.rrn for r in rs[-5:]),
                fixable=is_fixable(reason),
            )
        )
    out.sort(key=lambda g: g.last, reverse=True)  # ties: the most recent first
    out.sort(key=lambda g: g.count, reverse=True)
    return out


def _history(tx: Tx, entity: str, ids: Sequence[str], limit: int = 50) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            ts=a.ts,
            time=show(a.ts),
            entity=a.entity,
            entity_id=a.entity_id,
            actor=a.actor,
            action=a.action,
            from_state=a.from_state,
            to_state=a.to_state,
            why=a.reason,
            detail=a.detail,
        )
        for a in audit_rows(tx, entity, ids, limit=limit)
    ]


def terminal_snapshot(tx: Tx, term: TerminalRec) -> TerminalState:
    """The terminal's state for display, with the terminal it replaced (if any)."""
    prev = replaced_terminal(tx, term.tid)
    return TerminalState(
        tid=term.tid,
        mid=term.mid,
        status=term.status,
        since=show(term.status_since),
        by=term.status_by,
        why=term.status_why,
        signed_on=term.signed_on,
        keys_issued_at=show(term.keys_issued_at) if term.keys_issued_at else None,
        batch=term.batch,
        software=term.last_software,
        min_software=term.min_software,
        last_seen=show(term.last_seen) if term.last_seen else None,
        tmk_kcv=term.tmk_kcv,
        replaced_by=term.replaced_by,
        replaces=prev,
    )


def merchant_snapshot(tx: Tx, m: MerchantRec) -> MerchantState:
    """The merchant's state for display, with what it owes and any pending resumption request."""
    req = pending_request(tx, m.mid)
    return MerchantState(
        mid=m.mid,
        name=m.name,
        status=m.status,
        suspension_cause=m.suspension_cause,
        owed=fen_yuan(m.arrears_fen),
        owed_fen=m.arrears_fen,
        since=show(m.status_since),
        by=m.status_by,
        why=m.status_why,
        restricted_types=m.restricted_types,
        single_limit=fen_yuan(m.single_limit_fen),
        pending_request=req.id if req else None,
    )


def _fix(
    key: str, headline: str, lang: Lang, *, mid: str = "", tid: str = "", **facts: object
) -> Fix:
    r = catalog()[key]
    return Fix(
        reason=key,
        source="state",
        headline=headline,
        cause=r.cause_text(lang, **facts),
        actor=r.actor.get(lang),
        remedy=fill_ids(r.remedy_steps(lang, **facts), mid=mid, tid=tid),
    )


def _merchant_blockers(tx: Tx, m: MerchantRec, lang: Lang) -> list[Fix]:
    head = merchant_state(tx, m, lang)
    if m.status == "closed":
        return [_fix("merchant.closed", head, lang, mid=m.mid)]
    if m.status == "suspended":
        cause = m.suspension_cause or "manual"
        return [
            _fix(f"merchant.suspended.{cause}", head, lang, mid=m.mid, owed=fen_yuan(m.arrears_fen))
        ]
    return []


def _terminal_blockers(tx: Tx, term: TerminalRec, lang: Lang) -> list[Fix]:
    if term.status in ("suspended", "replaced"):
        return [
            _fix(
                "terminal.suspended",
                terminal_state(tx, term, lang),
                lang,
                mid=term.mid,
                tid=term.tid,
            )
        ]
    if term.last_software is not None and term.last_software < term.min_software:
        head = say(
            "subjects.terminal_blockers.terminal_reports_software_below_the",
            lang,
            tid=term.tid,
            last_software=term.last_software,
            min_software=term.min_software,
        )
        return [_fix("terminal.update_required", head, lang, mid=term.mid, tid=term.tid)]
    if not term.signed_on:
        head = say("subjects.terminal_blockers.terminal_holds_no_working_keys", lang, tid=term.tid)
        return [_fix("terminal.not_signed_on", head, lang, mid=term.mid, tid=term.tid)]
    return []


#: reasons caused by a state of the merchant or terminal: current exactly while that
#: state is (the blockers say so), whatever the journal shows since
_STATE_REASONS = (
    "merchant.closed",
    "terminal.suspended",
    "terminal.update_required",
    "terminal.not_signed_on",
    "terminal.unknown",
)


def _is_state_reason(key: str) -> bool:
    return key.startswith("merchant.suspended.") or key in _STATE_REASONS


def _is_approval(row: JournalRec) -> bool:
    return row.reason == "approved" and row.code == "00" and row.kind != "reversal"


def outcome_points(rows: Sequence[JournalRec]) -> list[tuple[str, bool]]:
    """(time, approved) of every row that is an approval or a failure, for a chart
    of failures over time (sign-ons, parameters and settlements are left out)."""
    out = []
    for r in rows:
        if _is_approval(r) and r.kind not in _MANAGEMENT_KINDS:
            out.append((r.ts, True))
        elif _failure_reason(r) is not None:
            out.append((r.ts, False))
    return out


#: journal kinds that are not a customer's transaction
_MANAGEMENT_KINDS = ("signon", "signoff", "login", "logout", "parameters", "echo", "settle")


def headline(
    tx: Tx,
    blocking: Sequence[Fix],
    rows: Sequence[JournalRec],
    lang: Lang,
    *,
    mid: str,
    tid: str,
) -> tuple[Fix | None, Resolved | None]:
    """The most likely fix now, and what was wrong before and is resolved.

    The one function behind ``clearpos diagnose``, the console's merchant and
    terminal pages and the ticket evidence. ``blocking`` is the subject's
    current blocking states (most important first); ``rows`` its journal in
    the window, oldest first. A count of older failures never decides: a
    decline heads only when it came after the last approved transaction, and a
    state's decline only while that state holds.
    """
    last_ok = max((r.ts for r in rows if _is_approval(r)), default="")
    fix = blocking[0] if blocking else None
    if fix is None:
        since_ok = [r for r in rows if r.ts > last_ok]
        now = [g for g in failures(since_ok, lang) if g.fixable and not _is_state_reason(g.reason)]
        if now:
            latest = max(now, key=lambda g: g.last)
            fix = _decline_fix(latest, lang, mid=mid, tid=tid, after_approval=bool(last_ok))
    blocked = {b.reason for b in blocking}

    def still_true(g: FailureGroup) -> bool:
        if _is_state_reason(g.reason):
            return g.reason in blocked
        return g.last > last_ok

    past = [
        g
        for g in failures(rows, lang)
        if g.fixable and not still_true(g) and (fix is None or g.reason != fix.reason)
    ]
    if not past:
        return fix, None
    return fix, _resolution(tx, max(past, key=lambda g: g.last), rows, lang, mid=mid, tid=tid)


def _decline_fix(g: FailureGroup, lang: Lang, *, mid: str, tid: str, after_approval: bool) -> Fix:
    r = catalog()[g.reason]
    n = g.count
    if after_approval:
        head = say(
            "subjects.decline_fix.failure_since_the_last_approved",
            lang,
            n=n,
            screen=g.screen,
            reason=g.reason,
            first_time=g.first_time,
            last_time=g.last_time,
            value="s" if n > 1 else "",
        )
    else:
        head = say(
            "subjects.decline_fix.recent_failure_and_no_approval",
            lang,
            n=n,
            screen=g.screen,
            reason=g.reason,
            first_time=g.first_time,
            last_time=g.last_time,
            value="s" if n > 1 else "",
        )
    return Fix(
        reason=g.reason,
        source="declines",
        headline=head,
        cause=r.cause_text(lang),
        actor=g.actor,
        remedy=fill_ids(r.remedy_steps(lang), mid=mid, tid=tid, rrn=g.rrns[-1] if g.rrns else ""),
        count=g.count,
    )


def _resolution(
    tx: Tx, g: FailureGroup, rows: Sequence[JournalRec], lang: Lang, *, mid: str, tid: str
) -> Resolved:
    """When and by whom (or by what) the failures of ``g`` stopped being true."""
    entity, ids = ("terminal", [tid]) if g.reason.startswith("terminal.") else ("merchant", [mid])
    changes = [
        a
        for a in audit_rows(tx, entity, [i for i in ids if i], since=g.last)
        if a.ts > g.last and a.from_state != a.to_state
    ]
    approvals = [r for r in rows if _is_approval(r) and r.ts > g.last]
    if changes and (_is_state_reason(g.reason) or not approvals):
        c = changes[-1]
        at, by = c.ts, who(tx, c.actor, lang)
        how = say(
            "subjects.resolution.state_change",
            lang,
            action_word=action_word(c.action, lang),
            state_word=state_word(c.from_state, lang),
            state_word_2=state_word(c.to_state, lang),
            action=c.action,
            from_state=c.from_state,
            to_state=c.to_state,
        )
    elif approvals:
        a = approvals[0]
        at, by = a.ts, say("subjects.resolution.terminal", lang, tid=a.tid)
        how = say(
            "subjects.resolution.an_approved_rrn",
            lang,
            kind_word=word(KIND, a.kind, lang),
            rrn=a.rrn,
            kind=a.kind,
        )
    else:
        at, by = g.last, say("subjects.resolution.a_change_of_state", lang)
        how = say("subjects.resolution.the_state_no_longer_holds", lang)
    line = say(
        "subjects.resolution.it_was_last_at_now",
        lang,
        screen=g.screen,
        reason=g.reason,
        last_time=g.last_time,
        at=show(at, zone=True),
        by=by,
        how=how,
    )
    return Resolved(
        reason=g.reason,
        screen=g.screen,
        last_failure=g.last,
        at=at,
        time=show(at),
        by=by,
        how=how,
        line=line,
    )


def _explained(
    tx: Tx, rows: Sequence[JournalRec], lang: Lang, limit: int
) -> tuple[Explanation, ...]:
    failed = [r for r in rows if _failure_reason(r) is not None]
    return tuple(explain_row(tx, r, lang) for r in failed[-limit:])


def diagnose_terminal(
    tx: Tx, tid: str, *, since: datetime, lang: Lang = "zh", limit: int = 10
) -> TerminalDiagnosis:
    """A terminal's state, recent failures, history and the most likely fix."""
    term = tx.terminal(tid)
    start = utc_iso(since)
    rows = journal_rows(tx, tids=[tid], since=start)
    if term is None:
        if not rows:
            raise NotFound(f"no terminal {tid!r} and no transactions from it since {show(start)}")
        head = say("subjects.diagnose_terminal.no_terminal_is_registered_at", lang, tid=tid)
        groups = failures(rows, lang)
        unknown = _fix("terminal.unknown", head, lang, tid=tid)
        return TerminalDiagnosis(
            tid,
            start,
            None,
            None,
            (unknown,),
            tuple(groups),
            unknown,
            (),
            _explained(tx, rows, lang, limit),
            lang,
        )
    m = tx.merchant(term.mid)
    blocking: list[Fix] = []
    if m is not None:
        blocking += _merchant_blockers(tx, m, lang)
    blocking += _terminal_blockers(tx, term, lang)
    groups = failures(rows, lang)
    fix, resolved = headline(tx, blocking, rows, lang, mid=term.mid, tid=tid)
    ids = [tid]
    state = terminal_snapshot(tx, term)
    if state.replaces:
        ids.insert(0, state.replaces)
    return TerminalDiagnosis(
        tid=tid,
        window_start=start,
        terminal=state,
        merchant=merchant_snapshot(tx, m) if m else None,
        blocking=tuple(blocking),
        failures=tuple(groups),
        fix=fix,
        history=tuple(_history(tx, "terminal", ids)),
        transactions=_explained(tx, rows, lang, limit),
        lang=lang,
        resolved=resolved,
    )


def diagnose_merchant(
    tx: Tx, mid: str, *, since: datetime, lang: Lang = "zh", limit: int = 10
) -> MerchantDiagnosis:
    """A merchant's state, terminals, arrears, recent failures, history and the most likely fix."""
    m = tx.merchant(mid)
    if m is None:
        raise NotFound(f"no merchant {mid!r} in this store")
    start = utc_iso(since)
    rows = journal_rows(tx, mid=mid, since=start)
    terms = tx.terminals(mid)
    blocking = _merchant_blockers(tx, m, lang)
    for term in terms:
        if term.status != "replaced":
            blocking += _terminal_blockers(tx, term, lang)
    groups = failures(rows, lang)
    fix, resolved = headline(tx, blocking, rows, lang, mid=mid, tid="")
    return MerchantDiagnosis(
        mid=mid,
        window_start=start,
        merchant=merchant_snapshot(tx, m),
        terminals=tuple(terminal_snapshot(tx, term) for term in terms),
        arrears=tuple(e.to_dict() for e in ledger(tx, mid)),
        requests=tuple(r.to_dict() for r in requests(tx, mid)),
        blocking=tuple(blocking),
        failures=tuple(groups),
        fix=fix,
        history=tuple(_history(tx, "merchant", [mid])),
        transactions=_explained(tx, rows, lang, limit),
        lang=lang,
        resolved=resolved,
    )


def diagnose_code(
    tx: Tx, code: str, *, since: datetime, lang: Lang = "zh", limit: int = 50
) -> list[Explanation]:
    """Every transaction with this field 39 code — or this reason key — since ``since``."""
    start = utc_iso(since)
    cat = catalog()
    if code in cat:
        if code == TIMEOUT:
            rows = [r for r in journal_rows(tx, kinds=["reversal"], since=start) if _is_timeout(r)]
            rows = rows[-limit:]
        else:
            rows = journal_rows(tx, reason=code, since=start, limit=limit)
    else:
        rows = journal_rows(tx, code=code.strip().upper(), since=start, limit=limit)
    return [explain_row(tx, r, lang) for r in rows]
