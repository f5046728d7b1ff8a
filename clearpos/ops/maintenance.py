"""Maintenance windows and their notices (SCENARIOS.md A9).

A window is the host's own (declines 96 ``host.maintenance``) or the issuer's
(91 ``issuer.unavailable``). Scheduling, moving or cancelling one bumps the
store's configuration generation, so every running host reloads it; a
terminal whose last parameter download is older than the newest window is
told so in the header of its next answer (processing requirement 1) and
downloads the notice — before the window starts.

Notices travel in field 62 of the parameter download (at most 512 bytes for
the host name and every window not yet over), so scheduling is refused when
the notices would not fit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..clock import CST, Clock, show, utc_iso
from ..store import MaintenanceRec, Tx
from ..store.queries import ops as q
from ..world import MAINTENANCE_WHO
from .common import Change, Refused, check_actor, mask_text, now_iso, record

__all__ = [
    "FIELD62_MAX",
    "cancel",
    "listing",
    "move",
    "parse_moment",
    "schedule",
    "window",
    "window_dict",
]

FIELD62_MAX = 512
_RECORD_HEAD = 5  # tag N2 + length N3
_STAMP = 14  # YYYYMMDDhhmmss


def parse_moment(text: str) -> datetime:
    """ISO 8601 date-time; without an offset it is China time.

    >>> show(parse_moment("2026-11-23 02:00"))
    '2026-11-23 02:00'
    >>> parse_moment("2026-11-23T02:00:00Z").hour
    2
    """
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(
            f"{text!r} is not a date-time like 2026-11-23T02:00+08:00 (China time when no offset)"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=CST)


def _notice_bytes(zh: str, en: str) -> int:
    return 4 * _RECORD_HEAD + 2 * _STAMP + len(zh.encode()) + len(en.encode())


def _check_fit(tx: Tx, now: str, extra: tuple[str, str] | None, skip: int | None = None) -> None:
    name = tx.meta("acquirer.name", "clearpos")
    total = _RECORD_HEAD + len(name.encode())
    for w in tx.maintenance_upcoming(now):
        if w.id != skip:
            total += _notice_bytes(w.notice_zh, w.notice_en)
    if extra is not None:
        total += _notice_bytes(*extra)
    if total > FIELD62_MAX:
        raise Refused(
            f"the notices of every window not yet over would take {total} bytes of field 62, "
            f"more than {FIELD62_MAX}: shorten the notices or cancel an old window"
        )


def _check_notice(zh: str, en: str) -> tuple[str, str]:
    zh, en = mask_text(zh.strip()), mask_text(en.strip())
    if not zh or not en:
        raise Refused("a window needs both notices: --notice-zh TEXT --notice-en TEXT")
    for text in (zh, en):
        if not text.isprintable():
            raise Refused("a notice is one line of printable text")
    return zh, en


def _check_span(start: datetime, end: datetime, now: datetime) -> None:
    if end <= start:
        raise Refused(f"the window ends ({show(end)}) before it starts ({show(start)})")
    if end <= now:
        raise Refused(f"the window is already over ({show(end)} is past)")
    if end - start > timedelta(days=7):
        raise Refused("a maintenance window longer than 7 days is not maintenance: split it")


def window(tx: Tx, wid: int) -> MaintenanceRec:
    """The window with this id (cancelled or not); Refused when there is none."""
    w = q.maintenance_window(tx, wid)
    if w is None:
        raise Refused(f"no maintenance window #{wid}", entity="maintenance", entity_id=str(wid))
    return w


def window_dict(w: MaintenanceRec, now: str | None = None) -> dict[str, Any]:
    """A window as JSON-friendly data, with China times and whether it is on now."""
    now = now or utc_iso(Clock().now())
    state = (
        "cancelled"
        if w.cancelled
        else "over"
        if w.end_at <= now
        else "active"
        if w.start_at <= now
        else "scheduled"
    )
    return {
        "id": w.id,
        "who": w.who,
        "start": w.start_at,
        "end": w.end_at,
        "start_local": show(w.start_at),
        "end_local": show(w.end_at),
        "notice_zh": w.notice_zh,
        "notice_en": w.notice_en,
        "created_by": w.created_by,
        "created_at": w.created_at,
        "state": state,
    }


def listing(
    tx: Tx, *, include_past: bool = False, now: datetime | None = None
) -> list[MaintenanceRec]:
    """Windows not yet over (or all of them, cancelled included), by start time."""
    if include_past:
        return q.maintenance_every(tx)
    return tx.maintenance_upcoming(now_iso(now))


def schedule(
    tx: Tx,
    who: str,
    start: datetime,
    end: datetime,
    notice_zh: str,
    notice_en: str,
    *,
    by: str,
    why: str = "",
    now: datetime | None = None,
) -> tuple[MaintenanceRec, Change]:
    """Announce a host or issuer window; running hosts pick it up at once."""
    by = check_actor(by)
    if who not in MAINTENANCE_WHO:
        raise Refused(f"who must be {' or '.join(MAINTENANCE_WHO)}, got {who!r}")
    clock_now = now if now is not None else Clock().now()
    _check_span(start, end, clock_now)
    zh, en = _check_notice(notice_zh, notice_en)
    at = utc_iso(clock_now)
    _check_fit(tx, at, (zh, en))
    wid = tx.insert_maintenance(
        who=who,
        start_at=utc_iso(start),
        end_at=utc_iso(end),
        notice_zh=zh,
        notice_en=en,
        created_by=by,
        created_at=at,
        cancelled=0,
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="maintenance",
        entity_id=str(wid),
        action="schedule",
        to_state="scheduled",
        why=why.strip() or en,
        detail={"who": who, "start": utc_iso(start), "end": utc_iso(end)},
    )
    return window(tx, wid), change


def move(
    tx: Tx,
    wid: int,
    start: datetime,
    end: datetime,
    *,
    by: str,
    why: str,
    now: datetime | None = None,
) -> tuple[MaintenanceRec, Change]:
    """Change a window's times: the old window is cancelled and a new one announced.

    The new window gets a new id, so terminals that already downloaded the old
    notice are told to download parameters again.
    """
    by = check_actor(by)
    w = window(tx, wid)
    clock_now = now if now is not None else Clock().now()
    at = utc_iso(clock_now)
    if w.cancelled or w.end_at <= at:
        state = "cancelled" if w.cancelled else "over"
        raise Refused(
            f"window #{wid} is {state}: schedule a new one",
            entity="maintenance",
            entity_id=str(wid),
            state=state,
            action="move",
        )
    if not why.strip():
        raise Refused("say why: --why TEXT is required to move a window")
    _check_span(start, end, clock_now)
    _check_fit(tx, at, (w.notice_zh, w.notice_en), skip=wid)
    tx.update_maintenance(wid, cancelled=1)
    new_id = tx.insert_maintenance(
        who=w.who,
        start_at=utc_iso(start),
        end_at=utc_iso(end),
        notice_zh=w.notice_zh,
        notice_en=w.notice_en,
        created_by=by,
        created_at=at,
        cancelled=0,
    )
    record(
        tx,
        at=at,
        by=by,
        entity="maintenance",
        entity_id=str(wid),
        action="move",
        from_state="active" if w.start_at <= at else "scheduled",
        to_state="cancelled",
        why=why.strip(),
        detail={"moved_to": new_id},
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="maintenance",
        entity_id=str(new_id),
        action="schedule",
        to_state="scheduled",
        why=why.strip(),
        detail={"who": w.who, "start": utc_iso(start), "end": utc_iso(end), "moved_from": wid},
    )
    return window(tx, new_id), change


def cancel(tx: Tx, wid: int, *, by: str, why: str, now: datetime | None = None) -> Change:
    """Cancel a window that is not over; hosts stop declining at once if it was active."""
    by = check_actor(by)
    w = window(tx, wid)
    at = now_iso(now)
    if w.cancelled or w.end_at <= at:
        state = "cancelled" if w.cancelled else "over"
        raise Refused(
            f"window #{wid} is already {state}",
            entity="maintenance",
            entity_id=str(wid),
            state=state,
            action="cancel",
        )
    if not why.strip():
        raise Refused("say why: --why TEXT is required to cancel a window")
    was = "active" if w.start_at <= at else "scheduled"
    tx.update_maintenance(wid, cancelled=1)
    return record(
        tx,
        at=at,
        by=by,
        entity="maintenance",
        entity_id=str(wid),
        action="cancel",
        from_state=was,
        to_state="cancelled",
        why=why.strip(),
        detail={"who": w.who, "start": w.start_at, "end": w.end_at},
    )
