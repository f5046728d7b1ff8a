"""Time in clearpos: UTC ISO text in the store, China Standard Time on the wire.

China has no daylight saving, so a fixed +08:00 offset is exact.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utc_iso(dt: datetime) -> str:
    """Sortable UTC text: ``2026-11-23T02:00:00.000000Z``.

    ``isoformat`` and a slice: two thirds of ``strftime``'s cost (~2 against ~3 µs),
    on every message:

    >>> utc_iso(datetime(2026, 11, 23, 10, 0, tzinfo=CST))
    '2026-11-23T02:00:00.000000Z'
    >>> utc_iso(datetime(2026, 11, 23, 2, 0, 0, 7, tzinfo=UTC))
    '2026-11-23T02:00:00.000007Z'
    """
    # "2026-11-23T02:00:00.000000+00:00" (microseconds always written)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def cst_stamp(dt: datetime) -> str:
    """China time as ``YYYYMMDDhhmmss`` (the wire's dates and times are slices of it).

    >>> cst_stamp(datetime(2026, 11, 23, 17, 4, 5, tzinfo=UTC))
    '20261124010405'
    """
    t = dt.astimezone(CST).isoformat(timespec="seconds")  # 2026-11-24T01:04:05+08:00
    return t[0:4] + t[5:7] + t[8:10] + t[11:13] + t[14:16] + t[17:19]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local(dt: datetime) -> datetime:
    return dt.astimezone(CST)


def show(text_or_dt: str | datetime, *, seconds: bool = False, zone: bool = False) -> str:
    """A time as people in China read it: ``2026-11-23 10:02`` (CST); with ``zone``,
    ``2026-11-23 10:02 +08:00`` for a time read on its own, away from a page or
    report that says once that its times are China time."""
    dt = parse_iso(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt
    text = local(dt).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return text + " +08:00" if zone else text


class LogFormatter(logging.Formatter):
    """Log lines stamped in ISO 8601 China time with the offset:
    ``2026-11-23T10:02:03.123+08:00``, so a line read anywhere says when it was."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, CST).isoformat(timespec="milliseconds")


def log_to_stderr(level: str) -> None:
    """The root logger: standard error, :class:`LogFormatter` lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class Clock:
    """The host's clock. ``CLEARPOS_CLOCK_SKEW_S`` shifts it (for clock-skew drills)."""

    def __init__(self, skew_s: float | None = None) -> None:
        if skew_s is None:
            skew_s = float(os.environ.get("CLEARPOS_CLOCK_SKEW_S", "0") or 0)
        self.skew = timedelta(seconds=skew_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``15m``, ``1h``, ``7d``, ``2w`` ago, or an ISO date / date-time (China time if no offset).

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    >>> parse_since("90m", now).isoformat()
    '2026-11-23T10:30:00+00:00'
    >>> parse_since("2026-11-20", now).isoformat()
    '2026-11-20T00:00:00+08:00'
    """
    now = now or Clock().now()
    m = _DURATION.match(text.strip().lower())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration like 15m, 1h, 7d, 2w or a date like 2026-11-20"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=CST)
