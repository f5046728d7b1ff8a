"""``clearpos admin maintenance``: windows announced to terminals."""

from __future__ import annotations

import argparse
from typing import Any

from ...store import Tx
from .. import maintenance
from .base import (
    ID,
    _changer,
    _group,
    _leaf,
    _lines,
    _positive,
    _run,
)


def _window_text(d: dict[str, Any]) -> str:
    return f"#{d['id']}  {d['who']:<6} {d['start_local']} → {d['end_local']}  {d['state']:<9}  {d['notice_zh']} / {d['notice_en']}"


def _maintenance(sub: Any) -> None:
    g = _group(sub, "maintenance", "host and issuer maintenance windows and their notices")

    def add(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            w, _ = maintenance.schedule(
                tx,
                a.who,
                maintenance.parse_moment(a.start),
                maintenance.parse_moment(a.end),
                a.notice_zh,
                a.notice_en,
                by=a.by,
                why=a.why,
            )
            d = maintenance.window_dict(w)
            return {"ok": True, **d}, "scheduled " + _window_text(d)

        return _run(a, body, write=True)

    p = _leaf(
        g,
        "add",
        "announce a window (terminals learn it at their next exchange)",
        add,
        by=True,
        why=False,
    )
    p.add_argument("--who", required=True, choices=["host", "issuer"])
    p.add_argument(
        "--start", required=True, help="e.g. 2026-11-23T02:00+08:00 (China time without offset)"
    )
    p.add_argument("--end", required=True)
    p.add_argument("--notice-zh", required=True)
    p.add_argument("--notice-en", required=True)

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (d, _window_text(d))
                for d in (
                    maintenance.window_dict(w) for w in maintenance.listing(tx, include_past=a.all)
                )
            ],
            "no maintenance windows",
        )

    _leaf(g, "list", "windows not yet over (--all: every window)", list_).add_argument(
        "--all", action="store_true"
    )

    def move(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            w, _ = maintenance.move(
                tx,
                a.id,
                maintenance.parse_moment(a.start),
                maintenance.parse_moment(a.end),
                by=a.by,
                why=a.why,
            )
            d = maintenance.window_dict(w)
            return {"ok": True, "moved_from": a.id, **d}, f"window #{a.id} moved: " + _window_text(
                d
            )

        return _run(a, body, write=True)

    p = _leaf(g, "move", "new times (re-announced to every terminal)", move, by=True, why=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)

    _changer(g, "cancel", "cancel a window", maintenance.cancel, ID)
