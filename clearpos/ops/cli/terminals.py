"""``clearpos admin terminal``: register, show, list, suspend, resume, replace, rotate the TMK, software."""

from __future__ import annotations

import argparse
from typing import Any

from ...clock import show
from ...keys import SecurityModule
from ...store import Tx
from .. import terminals
from .base import (
    TID,
    _change,
    _change_text,
    _changer,
    _group,
    _leaf,
    _lines,
    _run,
    _tmk,
)


def _terminal_doc(tx: Tx, tid: str) -> tuple[dict[str, Any], str]:
    t = terminals.get_terminal(tx, tid)
    allowed = terminals.TERMINAL.allowed(t.status)
    doc = {
        "tid": t.tid,
        "mid": t.mid,
        "status": t.status,
        "since": t.status_since,
        "since_local": show(t.status_since),
        "by": t.status_by,
        "why": t.status_why,
        "signed_on": t.signed_on,
        "keys_issued_at": t.keys_issued_at,
        "batch": t.batch,
        "min_software": t.min_software,
        "software": t.last_software,
        "last_seen": t.last_seen,
        "tmk_kcv": t.tmk_kcv,
        "replaced_by": t.replaced_by,
        "allowed": list(allowed),
        "chip": t.chip,
    }
    emv_state = ""
    if t.chip:
        wanted = tx.emv_requirement(t)
        doc["emv_download"] = {0: "up to date", 4: "CA keys due", 5: "chip parameters due"}[wanted]
        emv_state = f" · chip terminal: {doc['emv_download']}"
    text = "\n".join(
        [
            f"terminal {t.tid} of merchant {t.mid}",
            f"  status: {t.status} since {show(t.status_since)} by {t.status_by}"
            + (f" — {t.status_why}" if t.status_why else "")
            + (f" · replaced by {t.replaced_by}" if t.replaced_by else ""),
            f"  signed on: {'yes, ' + show(t.keys_issued_at) if t.signed_on and t.keys_issued_at else 'no'}"
            f" · batch {t.batch} · software {t.last_software or '-'} (min {t.min_software}) · TMK KCV {t.tmk_kcv}"
            + emv_state,
            f"  allowed now: {', '.join(allowed) or 'nothing (final)'}",
        ]
    )
    return doc, text


def _terminals(sub: Any) -> None:
    g = _group(sub, "terminal", "terminals: register, suspend, resume, replace, rotate the TMK")
    _terminals_register(g)
    _terminals_state_and_keys(g)
    _terminals_software(g)


def _terminals_register(g: Any) -> None:
    def add(a: argparse.Namespace) -> int:
        return _change(
            a,
            lambda tx: terminals.add_terminal(
                tx,
                SecurityModule.load(),
                a.tid,
                a.mid,
                a.tmk,
                by=a.by,
                why=a.why,
                min_software=a.min_software,
                chip=a.chip,
            ),
        )

    p = _leaf(
        g,
        "add",
        "register a terminal for a merchant (TMK sealed under the KEK)",
        add,
        by=True,
        why=False,
    )
    p.add_argument("--tid", required=True)
    p.add_argument("--mid", required=True)
    p.add_argument(
        "--tmk",
        required=True,
        type=_tmk,
        help="32 hex digits, loaded into the terminal out of band",
    )
    p.add_argument(
        "--min-software",
        default="0.1.0",
        help="lowest application version (field 59 A2/05), e.g. 0.1.0 (default 0.1.0)",
    )
    p.add_argument(
        "--chip", action="store_true", help="it reads chip cards (swiped chip cards get 45)"
    )

    def show_(a: argparse.Namespace) -> int:
        return _run(a, lambda tx: _terminal_doc(tx, a.tid), write=False)

    _leaf(g, "show", "state, keys, batch, software, allowed actions", show_).add_argument(
        "--tid", required=True
    )


def _terminals_state_and_keys(g: Any) -> None:
    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    {
                        "tid": t.tid,
                        "mid": t.mid,
                        "status": t.status,
                        "signed_on": t.signed_on,
                        "replaced_by": t.replaced_by,
                    },
                    f"{t.tid}  {t.mid}  {t.status:<9} {'signed on' if t.signed_on else 'no keys':<9}"
                    + (f" → {t.replaced_by}" if t.replaced_by else ""),
                )
                for t in tx.terminals(a.mid)
            ],
            "no terminals",
        )

    _leaf(g, "list", "terminals (of one merchant with --mid)", list_).add_argument("--mid")

    _changer(g, "suspend", "stop the terminal (58 terminal.suspended)", terminals.suspend, TID)
    _changer(g, "resume", "let a suspended terminal trade again", terminals.resume, TID)

    def replace(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            old, new = terminals.replace(
                tx, SecurityModule.load(), a.tid, a.new_tid, a.tmk, by=a.by, why=a.why
            )
            return {"ok": True, "retired": old.to_dict(), "added": new.to_dict()}, _change_text(
                old
            ) + "\n" + _change_text(new)

        return _run(a, body, write=True)

    p = _leaf(
        g,
        "replace",
        "retire a terminal for a new TID of the same merchant",
        replace,
        by=True,
        why=True,
    )
    p.add_argument("--tid", required=True, help="the terminal to retire")
    p.add_argument("--new-tid", required=True)
    p.add_argument("--tmk", required=True, type=_tmk, help="the new terminal's TMK (32 hex digits)")

    def rotate(a: argparse.Namespace) -> int:
        return _change(
            a,
            lambda tx: terminals.rotate_tmk(
                tx, SecurityModule.load(), a.tid, a.tmk, by=a.by, why=a.why
            ),
        )

    p = _leaf(
        g,
        "rotate-tmk",
        "new TMK; working keys cleared: next message gets A0 and re-sign-on",
        rotate,
        by=True,
        why=True,
    )
    p.add_argument("--tid", required=True)
    p.add_argument("--tmk", required=True, type=_tmk, help="the new TMK (32 hex digits)")


def _terminals_software(g: Any) -> None:
    _changer(
        g,
        "min-software",
        "require a software version (58 terminal.update_required below it)",
        terminals.set_min_software,
        TID,
        ("--version", {"help": "MMmmpp, e.g. 000200"}),
    )
