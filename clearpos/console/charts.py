"""Inline SVG charts for the dashboard: no script, no external library, readable by Playwright.

Every chart has a ``<title>`` and per-bar ``<title>`` tooltips, and scales
with its container (``viewBox``); colours come from CSS classes so the
stylesheet owns the look.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from ..reasons import Lang

__all__ = ["over_time", "per_minute", "time_buckets", "top_reasons"]

#: bucket widths the failure chart chooses from, in seconds, with their label formats
_BUCKETS = ((60, "%H:%M"), (600, "%H:%M"), (3600, "%m-%d %H:00"), (86400, "%m-%d"))


def time_buckets(
    stamps: Sequence[tuple[str, bool]], now: datetime, *, most: int = 48
) -> tuple[list[tuple[str, int, int]], int]:
    """(label, approved, all) per bucket from the first stamp to ``now``, China time, and the
    bucket width in seconds: the narrowest width that needs at most ``most`` buckets.
    ``stamps`` are (UTC ISO time, approved) pairs."""
    from ..clock import CST, parse_iso

    if not stamps:
        return [], 0
    times = [(parse_iso(ts).astimezone(CST), ok) for ts, ok in stamps]
    start = min(t for t, _ in times)
    end = max(now.astimezone(CST), max(t for t, _ in times))
    span = (end - start).total_seconds()
    width, fmt = next(((w, f) for w, f in _BUCKETS if span / w < most), _BUCKETS[-1])
    base = start.timestamp() // width * width
    n = int((end.timestamp() - base) // width) + 1
    counts = [[0, 0] for _ in range(n)]
    for t, ok in times:
        i = int((t.timestamp() - base) // width)
        counts[i][1] += 1
        counts[i][0] += int(ok)
    labels = [datetime.fromtimestamp(base + i * width, CST).strftime(fmt) for i in range(n)]
    return [(labels[i], ok, all_) for i, (ok, all_) in enumerate(counts)], width


def over_time(points: Sequence[tuple[str, int, int]], lang: Lang, title: str) -> Markup:
    """Stacked bars over time (approved bottom, failed top) under ``title``."""
    return _stacked(points, title)


def per_minute(points: Sequence[tuple[str, int, int]], lang: Lang) -> Markup:
    """Stacked bars per minute: approved (bottom) and declined (top), with time labels."""
    title = "每分钟批准/拒绝笔数" if lang == "zh" else "Approved / declined per minute"
    return _stacked(points, title)


def _stacked(points: Sequence[tuple[str, int, int]], title: str) -> Markup:
    w, h, pad_l, pad_b, pad_t = 420, 170, 26, 20, 8
    n = max(len(points), 1)
    top = max([all_ for _, _, all_ in points] + [1])
    bar = (w - pad_l) / n
    inner = h - pad_b - pad_t
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line class="axis" x1="{pad_l}" y1="{h - pad_b}" x2="{w}" y2="{h - pad_b}"/>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{h - pad_b}" text-anchor="end">0</text>',
    ]
    for i, (label, ok, all_) in enumerate(points):
        x = pad_l + i * bar + 1
        ok_h = inner * ok / top
        bad_h = inner * (all_ - ok) / top
        y_ok = h - pad_b - ok_h
        tip = f"{label}: {ok}/{all_}"
        parts.append(f"<g><title>{escape(tip)}</title>")
        if ok:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{y_ok:.1f}" width="{bar - 2:.1f}" height="{ok_h:.1f}"/>'
            )
        if all_ - ok:
            parts.append(
                f'<rect class="bad" x="{x:.1f}" y="{y_ok - bad_h:.1f}" width="{bar - 2:.1f}" '
                f'height="{bad_h:.1f}"/>'
            )
        parts.append("</g>")
        if i % 10 == 0 or i == len(points) - 1:
            last = i == len(points) - 1
            anchor, tx = ("end", w - 1) if last else ("middle", x + bar / 2)
            parts.append(
                f'<text class="tick" x="{tx:.1f}" y="{h - 5}" text-anchor="{anchor}">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def top_reasons(rows: Sequence[tuple[str, str, int]], lang: Lang) -> Markup:
    """Bars of (reason key, label, count), the label above its bar so it reads on a phone;
    each bar links to those declined transactions."""
    if not rows:
        return Markup("")
    row_h, w, count_w = 40, 420, 40
    h = row_h * len(rows) + 2
    top = max(n for _, _, n in rows)
    title = "主要拒绝原因" if lang == "zh" else "Top decline reasons"
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (key, label, n) in enumerate(rows):
        y = i * row_h
        bw = max(2.0, (w - count_w) * n / top)
        href = "/transactions?" + urllib.parse.urlencode({"reason": key, "outcome": "declined"})
        parts.append(
            f'<a href="{escape(href)}"><title>{escape(key)}: {n}</title>'
            f'<text class="label" x="0" y="{y + 14}">{escape(label)}</text>'
            f'<rect class="bad" x="0" y="{y + 19}" width="{bw:.1f}" height="14" rx="2"/>'
            f'<text class="count" x="{bw + 6:.1f}" y="{y + 31}">{n}</text></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
