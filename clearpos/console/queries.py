"""What the console reads from the store: plain functions over a read-only ``Tx``.

They run in a worker thread (``Console.read``), never on the event loop. Every
statement is read-only and uses the SQL common to SQLite and PostgreSQL; card
numbers exist in the store only masked (first 6 / last 4), and nothing here
ever sees more.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_

from ..audit import FINANCIAL
from ..clock import CST, local, parse_iso, utc_iso
from ..store import CardRec, JournalRec, MaintenanceRec, MerchantRec, TerminalRec, Tx
from ..store.queries import console as sq

__all__ = [
    "Dashboard",
    "JournalQuery",
    "PanQuery",
    "dashboard",
    "journal_detail",
    "parse_pan_query",
    "search_journal",
]

SEARCH_LIMIT = 200
"""Most rows a transaction search shows (the newest first)."""

OFFLINE_AFTER = timedelta(minutes=30)
"""An active terminal silent for longer than this counts as offline on the dashboard."""

# --------------------------------------------------------------------------- card number search


@dataclass(frozen=True, slots=True)
class PanQuery:
    """A card search by first digits and/or last digits; ``was_full`` if a full PAN was typed."""

    first: str = ""
    last: str = ""
    was_full: bool = False

    @property
    def shown(self) -> str:
        """How the search is shown back: ``622202****0123``; never more digits than that."""
        if self.first and self.last:
            return f"{self.first}****{self.last}"
        return self.first or (f"****{self.last}" if self.last else "")

    @property
    def like(self) -> str | None:
        """The LIKE pattern over ``pan_masked`` (digits and ``%`` only), or None for no filter."""
        if not (self.first or self.last):
            return None
        return f"{self.first}%{self.last}"


def parse_pan_query(text: str) -> PanQuery:
    """Read a card search; a full card number is cut down to first 6 / last 4 at once.

    >>> parse_pan_query("622202 0123")
    PanQuery(first='622202', last='0123', was_full=False)
    >>> parse_pan_query("6222021234567890123")
    PanQuery(first='622202', last='0123', was_full=True)
    >>> parse_pan_query("622202****0123").shown, parse_pan_query("0123").like
    ('622202****0123', '%0123')
    >>> parse_pan_query("62220212")  # digits only: a prefix
    PanQuery(first='62220212', last='', was_full=False)
    """
    groups = re.findall(r"\d+", text or "")
    if not groups:
        return PanQuery()
    longest = max(groups, key=len)
    if len(longest) >= 13:
        return PanQuery(longest[:6], longest[-4:], True)
    if len(groups) >= 2:
        return PanQuery(groups[0][:6], groups[-1][-4:])
    g = groups[0]
    stripped = (text or "").strip()
    if stripped.startswith("*"):
        return PanQuery("", g[-4:])
    if len(g) == 10:
        return PanQuery(g[:6], g[6:])
    if len(g) == 4 and not stripped.endswith("*"):
        return PanQuery("", g)
    return PanQuery(g[:12], "")


# --------------------------------------------------------------------------- transactions


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """Filters of the transaction search; empty fields do not filter."""

    rrn: str = ""
    tid: str = ""
    mid: str = ""
    pan: PanQuery = field(default_factory=PanQuery)
    reason: str = ""
    kind: str = ""
    outcome: str = ""  # "" | "approved" | "declined"
    since: str = ""  # UTC ISO
    until: str = ""  # UTC ISO

    @property
    def empty(self) -> bool:
        """True when nothing filters (the search shows the newest rows)."""
        return not (
            self.rrn
            or self.tid
            or self.mid
            or self.pan.like
            or self.reason
            or self.kind
            or self.outcome
            or self.since
            or self.until
        )


def local_input_to_utc(text: str) -> str:
    """A ``datetime-local`` value read as Beijing time, as the store's UTC ISO text; '' if bad.

    >>> local_input_to_utc("2026-11-23T10:00")
    '2026-11-23T02:00:00.000000Z'
    >>> local_input_to_utc("tomorrow")
    ''
    """
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return utc_iso(dt)


def search_journal(
    tx: Tx, q: JournalQuery, limit: int = SEARCH_LIMIT
) -> tuple[list[JournalRec], bool]:
    """Journal rows matching ``q``, newest first, and whether more than ``limit`` matched."""
    journal_id: int | None = None
    if q.rrn:
        digits = q.rrn.strip()
        if not digits.isdecimal() or len(digits) > 12:
            return [], False
        journal_id = int(digits)
    equal = [
        (col, value.strip())
        for col, value in (("tid", q.tid), ("mid", q.mid), ("reason", q.reason), ("kind", q.kind))
        if value
    ]
    rows = sq.search(
        tx,
        journal_id=journal_id,
        equal=equal,
        pan_like=q.pan.like,
        approved={"approved": True, "declined": False}.get(q.outcome),
        since=q.since,
        until=q.until,
        limit=limit + 1,
    )
    return rows[:limit], len(rows) > limit


@dataclass(frozen=True, slots=True)
class JournalDetail:
    """One journal row with what surrounds it."""

    rec: JournalRec
    original: JournalRec | None
    children: list[JournalRec]
    merchant: MerchantRec | None
    terminal: TerminalRec | None


def journal_detail(tx: Tx, rrn: str) -> JournalDetail | None:
    """The row an RRN names, its original and the rows that refer to it; None if unknown."""
    rec = tx.journal_by_rrn(rrn)
    if rec is None:
        return None
    original = tx.journal(rec.original_id) if rec.original_id is not None else None
    return JournalDetail(
        rec,
        original,
        sq.children(tx, rec.id),
        tx.merchant(rec.mid),
        tx.terminal(rec.tid),
    )


def recent_for(
    tx: Tx, *, tid: str | None = None, mid: str | None = None, card_id: int | None = None
) -> list[JournalRec]:
    """The newest 20 journal rows of a terminal, merchant or card."""
    if tid is not None:
        col, value = "tid", tid
    elif mid is not None:
        col, value = "mid", mid
    elif card_id is not None:
        col, value = "card_id", str(card_id)
    else:
        raise ValueError("say whose rows: tid, mid or card_id")
    return sq.recent(tx, col, value)


# --------------------------------------------------------------------------- dashboard


@dataclass(frozen=True, slots=True)
class TerminalAlert:
    """An active terminal that cannot trade right now, and why."""

    terminal: TerminalRec
    never_seen: bool
    silent_minutes: int | None
    signed_on: bool


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The numbers of the dashboard, computed at ``now``."""

    now: datetime
    per_minute: list[tuple[str, int, int]]  # (HH:MM local, approved, all) oldest first
    hour_total: int
    hour_approved: int
    day_total: int
    day_approved: int
    top_declines: list[tuple[str, int]]
    terminal_alerts: list[TerminalAlert]
    maintenance: list[MaintenanceRec]
    open_tickets: int

    @property
    def now_iso(self) -> str:
        """``now`` as the store's UTC ISO text (to compare with stored times)."""
        return utc_iso(self.now)

    @property
    def hour_rate(self) -> float | None:
        """Approved share of the last hour's transactions, None when there were none."""
        return self.hour_approved / self.hour_total if self.hour_total else None

    @property
    def day_rate(self) -> float | None:
        """Approved share of today's transactions (Beijing day), None when there were none."""
        return self.day_approved / self.day_total if self.day_total else None


def _counts(tx: Tx, since: str) -> tuple[int, int]:
    return sq.counts_since(tx, since, FINANCIAL)


def dashboard(tx: Tx, now: datetime, minutes: int = 30) -> Dashboard:
    """Approvals per minute, approval rates, top declines, terminal alerts, maintenance, tickets."""
    now = now.astimezone(UTC)
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    by_minute: Mapping[str, tuple[int, int]] = sq.per_minute(tx, utc_iso(start), FINANCIAL)
    per_minute: list[tuple[str, int, int]] = []
    for i in range(minutes):
        t = start + timedelta(minutes=i)
        ok, n = by_minute.get(t.strftime("%Y-%m-%dT%H:%M"), (0, 0))
        per_minute.append((t.astimezone(CST).strftime("%H:%M"), ok, n))
    hour_n, hour_ok = _counts(tx, utc_iso(now - timedelta(hours=1)))
    local_midnight = now.astimezone(CST).replace(hour=0, minute=0, second=0, microsecond=0)
    day_n, day_ok = _counts(tx, utc_iso(local_midnight))
    top = sq.top_declines(tx, utc_iso(now - timedelta(hours=24)), FINANCIAL)
    alerts: list[TerminalAlert] = []
    for term in tx.terminals():
        if term.status != "active" or term.replaced_by:
            continue
        silent: int | None = None
        offline = True
        if term.last_seen is not None:
            gap = now - datetime.fromisoformat(term.last_seen.replace("Z", "+00:00"))
            silent = max(0, int(gap.total_seconds() // 60))
            offline = gap > OFFLINE_AFTER
        if offline or not term.signed_on:
            alerts.append(TerminalAlert(term, term.last_seen is None, silent, term.signed_on))
    return Dashboard(
        now,
        per_minute,
        hour_n,
        hour_ok,
        day_n,
        day_ok,
        top,
        alerts,
        tx.maintenance_upcoming(utc_iso(now))[:5],
        sq.open_ticket_count(tx),
    )


# --------------------------------------------------------------------------- lists


@dataclass(frozen=True, slots=True)
class MerchantRow:
    """A merchant with its terminal count."""

    merchant: MerchantRec
    terminals: int


def merchant_rows(tx: Tx) -> list[MerchantRow]:
    """Every merchant with how many terminals it has."""
    counts = sq.terminal_counts(tx)
    return [MerchantRow(m, counts.get(m.mid, 0)) for m in tx.merchants()]


def terminal_list(tx: Tx) -> list[TerminalRec]:
    """Every terminal, by TID."""
    return tx.terminals()


def card_list(tx: Tx, pan: PanQuery | None = None) -> list[CardRec]:
    """Every card, or those matching a first 6 / last 4 search."""
    if pan is None or pan.like is None:
        return tx.cards()
    return sq.cards_like(tx, pan.like)


def maintenance_windows(
    tx: Tx, now: datetime
) -> tuple[list[MaintenanceRec], list[MaintenanceRec], list[MaintenanceRec]]:
    """(coming up or in progress, the 20 most recent past, all) windows not cancelled."""
    now_iso = utc_iso(now)
    every = tx.maintenance_all()
    upcoming = [w for w in every if w.end_at > now_iso]
    past = [w for w in every if w.end_at <= now_iso][-20:]
    past.reverse()
    return upcoming, past, every


@dataclass(frozen=True, slots=True)
class DaySlot:
    """One window as seen on one day of the month grid (China time)."""

    window: MaintenanceRec
    start: str  # HH:MM on this day, "" when it began on an earlier day
    end: str  # HH:MM on this day, "" when it goes on past midnight


@dataclass(frozen=True, slots=True)
class MonthGrid:
    year: int
    month: int
    #: weeks Monday first; a day is None outside the month, else (day, its windows)
    weeks: list[list[tuple[int, list[DaySlot]] | None]]
    prev: str  # YYYY-MM
    next: str


def month_grid(year: int, month: int, windows: list[MaintenanceRec]) -> MonthGrid:
    """The month's days in China time (CST), each with the windows that touch it;
    a window across midnight shows on every day it covers."""
    first = date(year, month, 1)
    days = calendar.monthrange(year, month)[1]
    slots: dict[int, list[DaySlot]] = {d: [] for d in range(1, days + 1)}
    for w in windows:
        start, end = local(parse_iso(w.start_at)), local(parse_iso(w.end_at))
        if end <= start:
            continue
        day = max(start.date(), first)
        last = min(end.date(), date(year, month, days))
        while day <= last:
            midnight = datetime.combine(day, time_(0), start.tzinfo)
            if end > midnight:  # a window ending at 00:00 does not touch that day
                slots[day.day].append(
                    DaySlot(
                        w,
                        start.strftime("%H:%M") if start.date() == day else "",
                        end.strftime("%H:%M") if end.date() == day else "",
                    )
                )
            day += timedelta(days=1)
    cells: list[tuple[int, list[DaySlot]] | None] = [None] * first.weekday()
    cells += [(d, slots[d]) for d in range(1, days + 1)]
    cells += [None] * (-len(cells) % 7)
    weeks = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    prev = date(year - 1, 12, 1) if month == 1 else date(year, month - 1, 1)
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return MonthGrid(year, month, weeks, prev.strftime("%Y-%m"), nxt.strftime("%Y-%m"))
