"""``clearpos admin`` — merchants, terminals, cards, arrears, resumption, maintenance,
tickets, users, reports, backups.

Every change takes ``--by NAME`` (who) and most take ``--why TEXT``; each is
one store transaction with its audit row. ``--json`` prints one JSON document
per line. Exit status: 0 done, 1 refused (an illegal transition says what is
allowed from the current state; unknown ids; a store that cannot be opened),
2 bad usage (missing options, an amount with more than two decimals...).

``--db`` and ``--json`` may come before the group (``clearpos admin --db URL
merchant ...``) or after the action (``clearpos admin backup --db URL ...``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..clock import parse_since, show, utc_iso
from ..errors import UsageError
from ..keys import KekError, KeyEncryptionKey, SecurityModule
from ..money import fen_yuan, parse_yuan
from ..private import private_open
from ..progress import work
from ..secretin import SecretError, SecretOption, add_secret, read_fd
from ..store import DEFAULT_URL, Database, StoreError, Tx, open_database
from ..store.queries import read
from . import arrears, cards, maintenance, merchants, reports, terminals, tickets, users
from .admintoken import ENV_TOKEN, check_token, issue_token
from .backup import (
    PG_GUIDANCE,
    backup_sqlite,
    check_backup,
    export_journal,
    is_postgres,
    restore_sqlite,
    write_journal_csv,
)
from .common import Change, Refused, record

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- argument types


def _yuan(text: str) -> int:
    try:
        return parse_yuan(text.strip(), positive=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _yuan0(text: str) -> int:
    try:
        return parse_yuan(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tmk(text: str) -> bytes:
    t = text.strip()
    if len(t) != 32 or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise argparse.ArgumentTypeError(
            f"TMK must be 32 hex digits (double-length 3DES key), got {len(t)} characters"
        )
    return bytes.fromhex(t)


def _pan(text: str) -> str:
    if not (text.isascii() and text.isdecimal() and 13 <= len(text) <= 19):
        raise argparse.ArgumentTypeError(
            f"card number must be 13-19 digits, got {len(text)} characters"
        )
    return text


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date must be YYYY-MM-DD, got {text!r}") from None


def _positive(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return int(text)


# --------------------------------------------------------------------------- output


def _emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, sort_keys=True))
    else:
        print(text)


def _refused(args: argparse.Namespace, exc: Refused) -> int:
    if args.json:
        print(json.dumps(exc.to_dict(), ensure_ascii=False, sort_keys=True))
    else:
        print(f"clearpos admin: refused: {exc.message}", file=sys.stderr)
    return 1


def _error(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        print(f"clearpos admin: {message}", file=sys.stderr)
    return 1


def _change_text(c: Change) -> str:
    move = (
        f"{c.from_state} → {c.to_state}" if c.from_state != c.to_state else (c.to_state or "done")
    )
    why = f" — {c.why}" if c.why else ""
    return f"{c.entity} {c.entity_id}: {c.action}: {move} by {c.by} at {show(c.at, zone=True)}{why}"


def _db(args: argparse.Namespace) -> Database:
    """The store ``--db`` names; one that does not exist is refused, not created."""
    return open_database(args.db, create=False)


def _tokenizer() -> Any:
    from ..keys.tokens import PanTokenizer

    return PanTokenizer(KeyEncryptionKey.load())


def _run(
    args: argparse.Namespace, body: Callable[[Tx], tuple[dict[str, Any], str]], *, write: bool
) -> int:
    """Run ``body`` in one transaction (or a read snapshot) and print its result."""
    try:
        db = _db(args)
        with db.transaction() if write else read(db) as tx:
            doc, text = body(tx)
    except Refused as exc:
        return _refused(args, exc)
    except (StoreError, KekError) as exc:
        return _error(args, str(exc))
    _emit(args, doc, text)
    return 0


def _change(args: argparse.Namespace, fn: Callable[[Tx], Change]) -> int:
    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        c = fn(tx)
        return c.to_dict(), _change_text(c)

    return _run(args, body, write=True)


def _lines(
    args: argparse.Namespace, fn: Callable[[Tx], list[tuple[dict[str, Any], str]]], empty: str
) -> int:
    try:
        db = _db(args)
        with read(db) as tx:
            items = fn(tx)
    except Refused as exc:
        return _refused(args, exc)
    except StoreError as exc:
        return _error(args, str(exc))
    if not items and not args.json:
        print(empty)
    for doc, text in items:
        _emit(args, doc, text)
    return 0


# --------------------------------------------------------------------------- parser helpers


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=argparse.SUPPRESS, help=f"store URL (default {DEFAULT_URL})")
    p.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document per line"
    )


def _leaf(
    sub: Any, name: str, help_text: str, run: Handler, *, by: bool = False, why: bool | None = None
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    _common(p)
    if by:
        p.add_argument("--by", required=True, help="who does this (recorded in the audit trail)")
    if why is not None:
        p.add_argument("--why", required=why, default="", help="why (recorded in the audit trail)")
    p.set_defaults(run=run)
    return p


Arg = tuple[str, dict[str, Any]]  # an option and its add_argument keywords


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _changer(
    g: Any,
    name: str,
    help_text: str,
    fn: Callable[..., Change],
    key: Arg,
    *more: Arg,
    why: bool = True,
) -> argparse.ArgumentParser:
    """A leaf for one audited state change: ``fn(tx, KEY, *MORE, by=, why=)``, every
    option required, printed as the change (``--json``: its document)."""

    def run(a: argparse.Namespace) -> int:
        values = [getattr(a, _dest(flag)) for flag, _ in (key, *more)]
        return _change(a, lambda tx: fn(tx, *values, by=a.by, why=a.why))

    p = _leaf(g, name, help_text, run, by=True, why=why)
    for flag, kw in (key, *more):
        p.add_argument(flag, required=True, **kw)
    return p


MID: Arg = ("--mid", {})
TID: Arg = ("--tid", {})
ID: Arg = ("--id", {"type": _positive})


def _group(sub: Any, name: str, help_text: str, *, aliases: tuple[str, ...] = ()) -> Any:
    p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
    _common(p)
    g = p.add_subparsers(dest=f"{name}_action", metavar="ACTION")
    g.required = True
    return g


# --------------------------------------------------------------------------- merchants


def _merchant_doc(tx: Tx, mid: str) -> tuple[dict[str, Any], str]:
    m = merchants.get_merchant(tx, mid)
    allowed = merchants.MERCHANT.allowed(m.status)
    doc = {
        "mid": m.mid,
        "name": m.name,
        "status": m.status,
        "suspension_cause": m.suspension_cause,
        "owed": fen_yuan(m.arrears_fen),
        "single_limit": fen_yuan(m.single_limit_fen),
        "restricted_types": list(m.restricted_types),
        "since": m.status_since,
        "since_local": show(m.status_since),
        "by": m.status_by,
        "why": m.status_why,
        "terminals": [t.tid for t in tx.terminals(mid)],
        "allowed": list(allowed),
    }
    cause = f" ({m.suspension_cause})" if m.suspension_cause else ""
    text = "\n".join(
        [
            f"merchant {m.mid} {m.name}",
            f"  status: {m.status}{cause} since {show(m.status_since)} by {m.status_by}"
            + (f" — {m.status_why}" if m.status_why else ""),
            f"  owes: ¥{fen_yuan(m.arrears_fen)} · single limit: ¥{fen_yuan(m.single_limit_fen)}"
            + (f" · restricted: {', '.join(m.restricted_types)}" if m.restricted_types else ""),
            f"  terminals: {', '.join(doc['terminals']) or '-'}",
            f"  allowed now: {', '.join(allowed) or 'nothing (final)'}",
        ]
    )
    return doc, text


def _merchants(sub: Any) -> None:
    g = _group(
        sub, "merchant", "merchants: register, suspend (停机), resume (复机), restrict, close"
    )

    def add(a: argparse.Namespace) -> int:
        return _change(
            a,
            lambda tx: merchants.add_merchant(
                tx, a.mid, a.name, single_limit_fen=a.single_limit, by=a.by, why=a.why
            ),
        )

    p = _leaf(g, "add", "register a new, active merchant", add, by=True, why=False)
    p.add_argument("--mid", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--single-limit", type=_yuan0, default=0, help="yuan, 0 = none")

    def show_(a: argparse.Namespace) -> int:
        return _run(a, lambda tx: _merchant_doc(tx, a.mid), write=False)

    _leaf(g, "show", "state, what is owed, terminals, allowed actions", show_).add_argument(
        "--mid", required=True
    )

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    {
                        "mid": m.mid,
                        "name": m.name,
                        "status": m.status,
                        "cause": m.suspension_cause,
                        "owed": fen_yuan(m.arrears_fen),
                    },
                    f"{m.mid}  {m.status:<10} {m.suspension_cause:<8} ¥{fen_yuan(m.arrears_fen):>9}  {m.name}",
                )
                for m in tx.merchants()
            ],
            "no merchants",
        )

    _leaf(g, "list", "every merchant with its state", list_)

    _changer(
        g,
        "suspend",
        "stop the merchant (停机): every transaction declines 03",
        merchants.suspend,
        MID,
        ("--cause", {"choices": ["arrears", "risk", "manual"]}),
    )

    def resume(a: argparse.Namespace) -> int:
        try:
            with read(_db(a)) as tx:
                m = tx.merchant(a.mid)
        except StoreError as exc:
            return _error(a, str(exc))
        if m is not None and m.suspension_cause == "arrears" and m.status == "suspended":
            # this approves the pending resumption request: the approver signs in
            return _decide(a, lambda tx, by: merchants.resume(tx, a.mid, by=by, why=a.why))
        if not a.by:
            return _error(a, "say who resumes it: --by NAME")
        return _change(a, lambda tx: merchants.resume(tx, a.mid, by=a.by, why=a.why))

    p = _leaf(
        g,
        "resume",
        "let a suspended merchant trade again (复机); arrears: approves the pending request "
        "(supervisor)" + FOUR_EYES,
        resume,
    )
    p.add_argument("--mid", required=True)
    p.add_argument("--why", default="", help="why (recorded in the audit trail)")
    _decider_args(p)

    def restrict(a: argparse.Namespace) -> int:
        types = [t for chunk in a.types for t in chunk.split(",") if t]
        return _change(a, lambda tx: merchants.restrict(tx, a.mid, types, by=a.by, why=a.why))

    p = _leaf(
        g,
        "restrict",
        "refuse some transaction types (58 merchant.restricted)",
        restrict,
        by=True,
        why=True,
    )
    p.add_argument("--mid", required=True)
    p.add_argument(
        "--types", required=True, nargs="+", help="e.g. refund preauth (or refund,preauth)"
    )

    _changer(g, "lift", "lift the restriction", merchants.lift, MID)
    _changer(g, "close", "end the contract (final)", merchants.close, MID)
    _changer(
        g,
        "limit",
        "change the single-transaction cap (61 merchant.single_limit)",
        merchants.set_single_limit,
        MID,
        ("--amount", {"type": _yuan0, "help": "yuan, 0 = none"}),
    )


# --------------------------------------------------------------------------- terminals


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

    _changer(
        g,
        "min-software",
        "require a software version (58 terminal.update_required below it)",
        terminals.set_min_software,
        TID,
        ("--version", {"help": "MMmmpp, e.g. 000200"}),
    )


# --------------------------------------------------------------------------- cards


def _card(tx: Tx, a: argparse.Namespace) -> Any:
    if a.card_id is not None:
        return cards.find_card(tx, card_id=a.card_id)
    if a.pan is None:
        raise Refused("name the card: --pan PAN or --card-id N")
    return cards.find_card(tx, token=_tokenizer().token(a.pan))


def _card_doc(c: Any) -> tuple[dict[str, Any], str]:
    allowed = cards.CARD.allowed(c.status)
    doc = {
        "id": c.id,
        "pan": c.pan_masked,
        "status": c.status,
        "pin_locked": c.pin_locked,
        "wrong_pin": c.wrong_pin,
        "organisation": c.organisation,
        "expiry": c.expiry,
        "available": fen_yuan(c.available_fen),
        "daily_limit": fen_yuan(c.daily_limit_fen),
        "since": c.status_since,
        "by": c.status_by,
        "why": c.status_why,
        "allowed": list(allowed),
    }
    text = (
        f"card {c.id} {c.pan_masked} {c.organisation}: {c.status} since {show(c.status_since)} by {c.status_by}"
        + (" · PIN locked" if c.pin_locked else "")
        + f" · available ¥{fen_yuan(c.available_fen)} · allowed now: {', '.join(allowed) or 'nothing (final)'}"
    )
    return doc, text


def _card_args(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--pan", type=_pan, help="card number (found by its token; never stored or shown)"
    )
    who.add_argument("--card-id", type=int)


def _cards(sub: Any) -> None:
    g = _group(
        sub,
        "card",
        "card accounts at the simulated issuer: freeze, lost, stolen, close, PIN unlock, "
        "personalise a chip card",
        aliases=("cards",),
    )

    def show_(a: argparse.Namespace) -> int:
        return _run(a, lambda tx: _card_doc(_card(tx, a)), write=False)

    _card_args(_leaf(g, "show", "a card's state (masked)", show_))

    def list_(a: argparse.Namespace) -> int:
        return _lines(a, lambda tx: [_card_doc(c) for c in tx.cards()], "no cards")

    _leaf(g, "list", "every card (masked)", list_)

    def mover(action: str) -> Handler:
        def run(a: argparse.Namespace) -> int:
            return _change(a, lambda tx: cards.move(tx, _card(tx, a), action, by=a.by, why=a.why))

        return run

    for name, action, text in (
        ("freeze", "freeze", "freeze the account (62 card.frozen)"),
        ("unfreeze", "unfreeze", "unfreeze it"),
        ("lost", "report_lost", "reported lost (41 card.lost; final)"),
        ("stolen", "report_stolen", "reported stolen (43 card.stolen; final)"),
        ("close", "close", "close the account (62 card.closed; final)"),
    ):
        _card_args(_leaf(g, name, text, mover(action), by=True, why=True))

    def unlock(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: cards.unlock_pin(tx, _card(tx, a), by=a.by, why=a.why))

    _card_args(
        _leaf(
            g, "unlock-pin", "clear a PIN lock after too many wrong PINs", unlock, by=True, why=True
        )
    )

    def personalise(a: argparse.Namespace) -> int:
        from . import chip

        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            token = _tokenizer().token(a.pan)
            card, c = chip.personalise(
                tx, SecurityModule.load(), token, a.pan, Path(a.out), by=a.by, force=a.force
            )
            doc = {**c.to_dict(), "file": str(a.out), "cvn": card.cvn, "atc": card.atc}
            text = (
                f"card {c.entity_id} {card!r}: chip card file written to {a.out} "
                f"(CVN {card.cvn}, ATC {card.atc}); keep it private: it holds the card's keys"
            )
            return doc, text

        return _run(a, body, write=True)

    p = _leaf(
        g,
        "personalise",
        "write a simulated chip card file (ICC keys from the issuer keys) for pos --chip/--tap",
        personalise,
    )
    p.add_argument("pan", type=_pan, help="card number (never stored; the file holds it)")
    p.add_argument("--out", required=True, help="card FILE to write (mode 0600)")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
    p.add_argument("--by", default="admin", help="who does this (audit trail; default admin)")


# --------------------------------------------------------------------------- chip: CA keys, AIDs


def _emv(sub: Any) -> None:
    from . import chip

    g = _group(sub, "emv", "what chip terminals download: CA public keys and chip parameters")
    capk = _group(g, "capk", "CA public keys (0820 372 / 0800 370)")

    def capk_list(a: argparse.Namespace) -> int:
        return _lines(a, lambda tx: [chip.capk_doc(k) for k in tx.capks()], "no CA keys")

    _leaf(capk, "list", "every CA key the host gives terminals", capk_list)

    def capk_add(a: argparse.Namespace) -> int:
        return _change(
            a,
            lambda tx: chip.put_capk(
                tx, a.rid, a.index, a.modulus, a.exponent, a.expiry, by=a.by, why=a.why
            ),
        )

    p = _leaf(capk, "add", "add (or replace) a CA key; chip terminals download again", capk_add,
              by=True, why=True)  # fmt: skip
    p.add_argument("--rid", required=True, help="registered application provider id, 10 hex")
    p.add_argument("--index", required=True, help="key index, 2 hex")
    p.add_argument("--modulus", required=True, help="the whole modulus, hex")
    p.add_argument("--exponent", default="03", help='"03" (default) or "010001"')
    p.add_argument("--expiry", required=True, help="YYYYMMDD")

    def capk_remove(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: chip.remove_capk(tx, a.rid, a.index, by=a.by, why=a.why))

    p = _leaf(capk, "remove", "withdraw a CA key", capk_remove, by=True, why=True)
    p.add_argument("--rid", required=True)
    p.add_argument("--index", required=True)

    aid = _group(g, "aid", "chip parameters per application (0820 382 / 0800 380)")

    def aid_list(a: argparse.Namespace) -> int:
        return _lines(a, lambda tx: [chip.aid_doc(x) for x in tx.aids()], "no AIDs")

    _leaf(aid, "list", "every AID's chip parameters", aid_list)

    def aid_set(a: argparse.Namespace) -> int:
        changes = chip.AidChanges(
            a.app_version,
            a.floor_limit,
            a.contactless_limit,
            a.contactless_cvm_limit,
            a.tac_default,
            a.tac_online,
            a.tac_denial,
        )
        return _change(a, lambda tx: chip.set_aid(tx, a.aid, changes, by=a.by, why=a.why))

    p = _leaf(aid, "set", "create an AID or change some of its parameters", aid_set,
              by=True, why=True)  # fmt: skip
    p.add_argument("--aid", required=True, help="application id, 10-32 hex")
    p.add_argument("--app-version", help="4 hex, e.g. 0030")
    p.add_argument("--floor-limit", type=_yuan0, help="yuan")
    p.add_argument("--contactless-limit", type=_yuan0, help="yuan; taps above it are refused")
    p.add_argument("--contactless-cvm-limit", type=_yuan0, help="yuan; taps above it need a PIN")
    for name in ("tac-default", "tac-online", "tac-denial"):
        p.add_argument(f"--{name}", help="terminal action code, 10 hex")


# --------------------------------------------------------------------------- arrears and resumption


def _entry_text(e: arrears.LedgerEntry) -> str:
    voucher = f" voucher {e.voucher}" if e.voucher else ""
    return f"{show(e.ts)}  {e.mid}  {e.kind:<8} ¥{fen_yuan(e.amount_fen):>10}  owes ¥{fen_yuan(e.balance_fen)}  by {e.actor}{voucher}  {e.note}"


def _arrears(sub: Any) -> None:
    g = _group(sub, "arrears", "fees and fines owed to the provider, and payments (with vouchers)")

    def charge(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            e, _ = arrears.charge(
                tx, a.mid, a.kind, a.amount, by=a.by, why=a.why, voucher=a.voucher
            )
            return {"ok": True, **e.to_dict()}, _entry_text(e)

        return _run(a, body, write=True)

    p = _leaf(g, "charge", "record a fee or fine the merchant owes", charge, by=True, why=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--kind", required=True, choices=list(arrears.CHARGE_KINDS))
    p.add_argument("--amount", required=True, type=_yuan, help="yuan, e.g. 58.00")
    p.add_argument("--voucher", default="", help="invoice or notice reference")

    def pay(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            e, _ = arrears.pay(tx, a.mid, a.amount, a.voucher, by=a.by, note=a.note)
            return {"ok": True, **e.to_dict()}, _entry_text(e)

        return _run(a, body, write=True)

    p = _leaf(g, "pay", "record a payment with its voucher reference (保留凭证)", pay, by=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--amount", required=True, type=_yuan, help="yuan, at most what is owed")
    p.add_argument("--voucher", required=True, help="payment voucher reference")
    p.add_argument("--note", default="")

    def show_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            m = merchants.get_merchant(tx, a.mid)
            entries = arrears.ledger(tx, a.mid)
            doc = {
                "mid": a.mid,
                "owed": fen_yuan(m.arrears_fen),
                "entries": [e.to_dict() for e in entries],
            }
            lines = [f"merchant {a.mid} owes ¥{fen_yuan(m.arrears_fen)}"] + [
                _entry_text(e) for e in entries
            ]
            return doc, "\n".join(lines)

        return _run(a, body, write=False)

    _leaf(g, "show", "what the merchant owes, and every fee, fine and payment", show_).add_argument(
        "--mid", required=True
    )

    r = _group(sub, "resume", "resumption after arrears (复机): request, approve, reject")

    def request(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            req, _ = arrears.request_resumption(tx, a.mid, by=a.by, note=a.note)
            return (
                {"ok": True, **req.to_dict()},
                f"resumption request #{req.id} for merchant {a.mid} pending; a supervisor approves it: "
                f"clearpos admin resume approve --id {req.id} --by SUPERVISOR",
            )

        return _run(a, body, write=True)

    p = _leaf(r, "request", "ask to trade again (only when nothing is owed)", request, by=True)
    p.add_argument("--mid", required=True)
    p.add_argument("--note", default="", help="e.g. the voucher of the last payment")

    def approve(a: argparse.Namespace) -> int:
        return _decide(a, lambda tx, by: arrears.approve(tx, a.id, by=by, why=a.why))

    def reject(a: argparse.Namespace) -> int:
        return _decide(a, lambda tx, by: arrears.reject(tx, a.id, by=by, why=a.why))

    for name, text, fn, why in (
        ("approve", "a supervisor approves: the merchant is active again", approve, False),
        ("reject", "a supervisor rejects, with the reason", reject, True),
    ):
        p = _leaf(r, name, text + FOUR_EYES, fn, why=why)
        p.add_argument("--id", type=_positive, required=True)
        _decider_args(p)

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    q.to_dict(),
                    f"#{q.id}  {q.mid}  {q.status:<8} asked {show(q.requested_at)} by {q.requested_by}"
                    + (
                        f"; {q.status} {show(q.decided_at)} by {q.decided_by}: {q.decision_why}"
                        if q.decided_at
                        else ""
                    ),
                )
                for q in arrears.requests(tx, a.mid, a.status)
            ],
            "no resumption requests",
        )

    p = _leaf(r, "list", "resumption requests", list_)
    p.add_argument("--mid")
    p.add_argument("--status", choices=["pending", "approved", "rejected"])


# --------------------------------------------------------------------------- maintenance


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


# --------------------------------------------------------------------------- tickets


def _ticket_text(tk: tickets.Ticket) -> str:
    about = tk.rrn or tk.tid or tk.mid
    owner = f" owner {tk.owner}" if tk.owner else ""
    return f"#{tk.id}  {tk.status:<11} {tk.subject} {about}{owner}  {tk.title}"


def _tickets(sub: Any) -> None:
    g = _group(sub, "ticket", "support tickets with evidence attached automatically")

    def open_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            tk, _ = tickets.open_ticket(
                tx,
                a.title,
                by=a.by,
                tid=a.tid or "",
                mid=a.mid or "",
                rrn=a.rrn or "",
                owner=a.owner,
                last=a.last,
            )
            n = len(tk.evidence.get("transactions", []))
            return (
                {"ok": True, **tk.to_dict()},
                f"opened ticket {_ticket_text(tk)}\n  evidence: states, {n} transactions, diagnosis (zh, en)",
            )

        return _run(a, body, write=True)

    p = _leaf(
        g, "open", "open a ticket for a terminal, a transaction or a merchant", open_, by=True
    )
    about = p.add_mutually_exclusive_group(required=True)
    about.add_argument("--tid")
    about.add_argument("--rrn")
    about.add_argument("--mid")
    p.add_argument("--title", required=True)
    p.add_argument("--owner", default="", help="who works on it (the ticket starts in_progress)")
    p.add_argument(
        "--last", type=_positive, default=20, help="transactions in the evidence (default 20)"
    )

    def show_(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            tk = tickets.get_ticket(tx, a.id)
            notes = tickets.comments(tx, a.id)
            hist = tickets.history(tx, a.id)
            doc = {
                **tk.to_dict(evidence=not a.brief),
                "comments": [c.to_dict() for c in notes],
                "history": hist,
                "allowed": list(tickets.TICKET.allowed(tk.status)),
            }
            lines = [_ticket_text(tk), f"  opened {show(tk.opened_at)} by {tk.opened_by}"]
            if tk.resolution:
                lines.append(f"  resolution: {tk.resolution}")
            diag = tk.evidence.get("diagnosis", {}).get(a.lang) or {}
            fix = diag.get("fix") if isinstance(diag, dict) else None
            if fix:
                lines.append(f"  diagnosis at opening: {fix['headline']} ({fix['reason']})")
            ev = tk.evidence.get("transactions", [])
            if ev:
                lines.append(f"  last {len(ev)} transactions at opening:")
                lines += [
                    f"    {e['rrn']} {e['time']} {e['tid']} {e['kind']:<9} {e['amount'] or '':>9} {e['pan']:<19} {e['code'] or '--'} {e['reason']}"
                    for e in ev
                ]
            lines.append("  history:")
            lines += [
                f"    {h['time']} {h['by']}: {h['action']}"
                + (f" {h['from'] or '-'} → {h['to']}" if h["from"] != h["to"] else "")
                + (f" — {h['why']}" if h["why"] else "")
                for h in hist
            ]
            if notes:
                lines.append("  comments:")
                lines += [f"    {c.to_dict()['time']} {c.author}: {c.body}" for c in notes]
            lines.append(f"  allowed now: {', '.join(doc['allowed']) or 'nothing'}")
            return doc, "\n".join(lines)

        return _run(a, body, write=False)

    p = _leaf(g, "show", "a ticket with its evidence, history and comments", show_)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--lang", choices=["zh", "en"], default="zh")
    p.add_argument("--brief", action="store_true", help="leave the evidence out of --json")

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (tk.to_dict(evidence=False), _ticket_text(tk))
                for tk in tickets.list_tickets(
                    tx, status=a.status, owner=a.owner, tid=a.tid, mid=a.mid
                )
            ],
            "no tickets",
        )

    p = _leaf(g, "list", "tickets, newest first", list_)
    p.add_argument("--status", choices=list(tickets.STATUSES))
    p.add_argument("--owner")
    p.add_argument("--tid")
    p.add_argument("--mid")

    def comment(a: argparse.Namespace) -> int:
        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            c = tickets.comment(tx, a.id, a.text, by=a.by)
            return {
                "ok": True,
                "ticket": a.id,
                **c.to_dict(),
            }, f"ticket #{a.id}: comment by {c.author}"

        return _run(a, body, write=True)

    p = _leaf(g, "comment", "add a comment", comment, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--text", required=True)

    def assign(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: tickets.assign(tx, a.id, a.owner, by=a.by))

    p = _leaf(g, "assign", "give it an owner (open → in_progress)", assign, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--owner", required=True)

    def resolve(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: tickets.resolve(tx, a.id, a.resolution, by=a.by))

    p = _leaf(g, "resolve", "say what fixed it", resolve, by=True)
    p.add_argument("--id", required=True, type=_positive)
    p.add_argument("--resolution", required=True)

    _changer(g, "close", "close a resolved ticket", tickets.close, ID, why=False)
    _changer(g, "reopen", "reopen a resolved or closed ticket", tickets.reopen, ID)


# --------------------------------------------------------------------------- users


def _users(sub: Any) -> None:
    g = _group(sub, "user", "console users (argon2id password hashes)")

    def add(a: argparse.Namespace) -> int:
        from ..errors import UsageError

        if a.password_fd is not None:
            try:
                password = read_fd(a.password_fd, "password")
            except SecretError as exc:
                return _error(a, str(exc))
        elif a.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass(f"password for {a.username}: ")
            if getpass.getpass("again: ") != password:
                return _error(a, "the passwords differ")
        else:
            raise UsageError(
                "give the password on standard input with --password-stdin, or "
                "--password-fd N (never on the command line: ps and shell history show it)"
            )

        def body(tx: Tx) -> tuple[dict[str, Any], str]:
            user, _ = users.add_user(tx, a.username, a.role, password, by=a.by)
            return {
                "ok": True,
                **user.to_dict(),
            }, f"user {user.username} ({user.role}) added by {a.by}"

        return _run(a, body, write=True)

    p = _leaf(g, "add", "register a console user", add, by=True)
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=list(users.ROLES))
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.add_argument(
        "--password-fd", type=int, metavar="N", help="read the password from file descriptor N"
    )

    def list_(a: argparse.Namespace) -> int:
        return _lines(
            a,
            lambda tx: [
                (
                    u.to_dict(),
                    f"{u.username:<16} {u.role:<10} {'disabled' if u.disabled else 'enabled':<8} added {show(u.created_at)} by {u.created_by}",
                )
                for u in users.list_users(tx)
            ],
            "no users",
        )

    _leaf(g, "list", "console users (never their passwords)", list_)

    def disable(a: argparse.Namespace) -> int:
        return _change(a, lambda tx: users.disable_user(tx, a.username, by=a.by, why=a.why))

    _leaf(g, "disable", "stop a user from signing in", disable, by=True, why=True).add_argument(
        "--username", required=True
    )


# --------------------------------------------------------------------------- four eyes

FOUR_EYES = (
    ". The decider signs in: --by NAME and NAME's password (asked for, or --password -, "
    f"--password-fd N), or a token from `clearpos admin login` (${ENV_TOKEN} or --token -)"
)
_TOKEN = SecretOption("--token", "admin token")


def _decider_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", help="who decides (must sign in: see below)")
    add_secret(p, "--password", "password", "the decider's own password")
    add_secret(p, "--token", "admin token", f"a token from clearpos admin login (or ${ENV_TOKEN})")


def _decide(a: argparse.Namespace, fn: Callable[[Tx, str], Change]) -> int:
    """Run a four-eyes decision as the user whose credentials were given: their
    password (checked against the store) or their admin token; never a bare --by."""
    from ..errors import UsageError

    used: list[str] = []
    try:
        token = _TOKEN.resolve(a, used_stdin=used) or os.environ.get(ENV_TOKEN) or None
        password = None
        if token is None:
            if not a.by:
                raise UsageError(
                    "say who decides: --by NAME (with NAME's password), or a token from "
                    "clearpos admin login"
                )
            opt = SecretOption("--password", f"password of {a.by}")
            password = opt.require(a, used_stdin=used)
    except SecretError as exc:
        raise UsageError(str(exc)) from None

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        if token is not None:
            who = check_token(tx, KeyEncryptionKey.load(), token)
            if a.by and a.by != who:
                raise Refused(f"the admin token is {who}'s, not {a.by}'s")
        else:
            assert password is not None
            if users.verify_password(tx, a.by, password) is None:
                raise Refused(f"wrong password for {a.by!r}, or no such enabled user")
            who = a.by
        c = fn(tx, who)
        return c.to_dict(), _change_text(c)

    return _run(a, body, write=True)


def _admin_login(a: argparse.Namespace) -> int:
    from ..errors import UsageError

    try:
        password = SecretOption("--password", f"password of {a.username}").require(a, used_stdin=[])
    except SecretError as exc:
        raise UsageError(str(exc)) from None

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        token, exp = issue_token(
            tx, KeyEncryptionKey.load(), a.username, password, minutes=a.minutes
        )
        until = show(utc_iso(datetime.fromtimestamp(exp, UTC)))
        record(  # the sign-in is in the audit trail (the token itself never is)
            tx,
            at=utc_iso(datetime.now(UTC)),
            by=a.username,
            entity="user",
            entity_id=a.username,
            action="admin.login",
            detail={"until": utc_iso(datetime.fromtimestamp(exp, UTC))},
        )
        return (
            {"ok": True, "username": a.username, "token": token, "expires": exp},
            f"export {ENV_TOKEN}={token}\n# {a.username}, valid until {until}; "
            "approvals then need no password",
        )

    return _run(a, body, write=True)


def _login_parser(sub: Any) -> None:
    p = _leaf(
        sub,
        "login",
        f"sign in for four-eyes decisions: prints a short-lived token for ${ENV_TOKEN}",
        _admin_login,
    )
    p.add_argument("--username", required=True)
    p.add_argument("--minutes", type=int, default=15, help="how long the token lasts (default 15)")
    add_secret(p, "--password", "password", "your console password (asked for when not given)")


# --------------------------------------------------------------------------- keys


# --------------------------------------------------------------------------- records


def _report(a: argparse.Namespace) -> int:
    fmt = "json" if a.json else a.format

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        days = reports.daily_report(tx, a.date, a.mid)
        return {"days": reports.report_json(days)}, reports.report_csv(days)

    try:
        with read(_db(a)) as tx:
            doc, text = body(tx)
    except StoreError as exc:
        return _error(a, str(exc))
    if fmt == "json":
        out = "\n".join(json.dumps(d, ensure_ascii=False, sort_keys=True) for d in doc["days"])
        out = out + "\n" if out else ""
    else:
        out = text
    if a.to and a.to != "-":
        with private_open(Path(a.to), "w", encoding="utf-8") as fh:
            fh.write(out)
        print(
            f"report for {a.date} written to {a.to} ({len(doc['days'])} merchants)", file=sys.stderr
        )
    else:
        sys.stdout.write(out)
    return 0


def _backup(a: argparse.Namespace) -> int:
    if is_postgres(a.db):
        return _error(a, PG_GUIDANCE)
    try:
        with work(f"backing up {a.db}", quiet=a.json) as w:
            check = backup_sqlite(a.db, Path(a.to), force=a.force, progress=w)
    except Refused as exc:
        return _refused(a, exc)
    doc = {"ok": check.ok, "to": a.to, **check.to_dict()}
    text = (
        f"backup of {a.db} written to {a.to}: {check.size} bytes, schema {check.schema_version}, "
        + ", ".join(f"{k} {v}" for k, v in check.counts.items())
        + ("; check OK" if check.ok else "; CHECK FAILED: " + "; ".join(check.problems))
    )
    _emit(a, doc, text)
    return 0 if check.ok else 1


def _restore(a: argparse.Namespace) -> int:
    if is_postgres(a.db):
        return _error(a, PG_GUIDANCE)
    try:
        with work(f"checking {a.source}", quiet=a.json) as w:
            source = Path(a.source)
            check = (
                check_backup(source, w)
                if a.check_only
                else restore_sqlite(source, a.db, force=a.force, progress=w)
            )
    except Refused as exc:
        return _refused(a, exc)
    if a.check_only:
        doc = {"ok": check.ok, **check.to_dict()}
        text = f"{a.source}: " + ("OK" if check.ok else "FAILED: " + "; ".join(check.problems))
        _emit(a, doc, text)
        return 0 if check.ok else 1
    doc = {"ok": True, "restored_to": a.db, **check.to_dict()}
    _emit(
        a,
        doc,
        f"restored {a.source} into {a.db} (integrity ok, schema {check.schema_version}, audit clean)",
    )
    return 0


def _export(a: argparse.Namespace) -> int:
    try:
        since = utc_iso(parse_since(a.since))
        until = utc_iso(parse_since(a.until)) if a.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    to_stdout = a.to == "-"

    def body(tx: Tx) -> tuple[dict[str, Any], str]:
        with work("exporting", quiet=a.json) as w:
            if to_stdout:
                n = write_journal_csv(tx, sys.stdout, since=since, until=until, progress=w)
            else:
                n = export_journal(
                    tx, Path(a.to), since=since, until=until, force=a.force, progress=w
                )
        return (
            {
                "ok": True,
                "to": a.to,
                "rows": n,
                "since": since,
                "until": until,
            },
            f"{n} journal rows written to {'standard output' if to_stdout else a.to} (card numbers masked)",
        )

    if not to_stdout:
        return _run(a, body, write=False)
    # the CSV is standard output; the summary (text or JSON) goes to standard error
    try:
        with read(_db(a)) as tx:
            doc, text = body(tx)
    except Refused as exc:
        return _refused(a, exc)
    except StoreError as exc:
        return _error(a, str(exc))
    sys.stdout.flush()
    print(json.dumps(doc, ensure_ascii=False, sort_keys=True) if a.json else text, file=sys.stderr)
    return 0


def _init(a: argparse.Namespace) -> int:
    """Create an empty store with the current schema; an existing one is left alone."""
    from ..store import sqlite_path

    try:
        path = sqlite_path(a.db)
        if path is not None and path.exists():
            return _error(a, f"store {path.absolute()} already exists; nothing was changed")
        db = open_database(a.db, create=True)
        with read(db) as tx:
            if not tx.is_empty():
                return _error(a, f"store {db.url} already holds data; nothing was changed")
    except StoreError as exc:
        return _error(a, str(exc))
    _emit(
        a,
        {"ok": True, "created": db.url},
        f"created an empty store {db.url}; load a world with "
        f"`clearpos host --world FILE --db {db.url}`, then add the first console user with "
        f"`clearpos admin --db {db.url} user add --username NAME --role admin --by NAME`",
    )
    return 0


def _kek_new(a: argparse.Namespace) -> int:
    """A fresh KEK file, made once; the one every clearpos command then reads."""
    from ..keys.kek import default_kek_path, new_kek_file

    path = Path(a.out).expanduser() if a.out else default_kek_path()
    try:
        kek = new_kek_file(path)
    except KekError as exc:
        return _error(a, str(exc))
    hint = (
        ""
        if path.absolute() == default_kek_path().absolute()
        else f"; point clearpos at it with: export CLEARPOS_KEK_FILE={path.absolute()}"
    )
    _emit(
        a,
        {"ok": True, "file": str(path.absolute()), "fingerprint": kek.fingerprint()},
        f"KEK written to {path.absolute()} (mode 0600, fingerprint {kek.fingerprint()}){hint}. "
        "Keep a copy somewhere safe: without it no stored key can be opened.",
    )
    return 0


def _kek(sub: Any) -> None:
    g = _group(sub, "kek", "the key-encryption key that seals every stored key")
    p = _leaf(g, "new", "make the KEK file once (never replaces one)", _kek_new)
    p.add_argument("--out", help="KEK FILE (default $CLEARPOS_KEK_FILE or ~/.clearpos/kek)")


def _lifecycles(a: argparse.Namespace) -> int:
    tables = [
        merchants.MERCHANT,
        terminals.TERMINAL,
        cards.CARD,
        tickets.TICKET,
        arrears.REQUEST,
    ]
    for lc in tables:
        rows = [{"action": r[0], "from": r[1], "to": r[2], "meaning": r[3]} for r in lc.table()]
        if a.json:
            print(
                json.dumps(
                    {"entity": lc.entity, "states": list(lc.states), "transitions": rows},
                    ensure_ascii=False,
                )
            )
        else:
            print(f"{lc.entity}: {' | '.join(lc.states)}")
            for r in rows:
                print(f"  {r['action']:<14} {r['from']:<40} → {r['to']:<12} {r['meaning']}")
    return 0


def _records(sub: Any) -> None:
    p = _leaf(sub, "report", "daily report per merchant (自动对账): CSV or JSON", _report)
    p.add_argument("--date", required=True, type=_day, help="business date YYYY-MM-DD (China time)")
    p.add_argument("--mid")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--to", help="write to FILE instead of standard output (- is standard output)")

    p = _leaf(
        sub,
        "backup",
        "consistent copy of a running SQLite store (PostgreSQL: pg_dump guidance)",
        _backup,
    )
    p.add_argument("--to", required=True, help="backup FILE")
    p.add_argument("--force", action="store_true", help="overwrite FILE")

    p = _leaf(sub, "restore", "check a backup, then restore it into a store", _restore)
    p.add_argument("--from", dest="source", required=True, help="backup FILE")
    p.add_argument("--force", action="store_true", help="overwrite a store that holds data")
    p.add_argument("--check-only", action="store_true", help="check the backup, restore nothing")

    p = _leaf(sub, "export", "journal as CSV, card numbers masked", _export)
    p.add_argument("--since", required=True, help="15m, 1d, 7d or a date like 2026-11-20")
    p.add_argument("--until", help="same forms; default now")
    p.add_argument("--to", required=True, help="CSV FILE, or - for standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE")

    _leaf(sub, "init", "create an empty store (the only admin command that creates one)", _init)
    _leaf(sub, "lifecycles", "the state machines: allowed transitions of each entity", _lifecycles)


# --------------------------------------------------------------------------- entry


def register(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  clearpos admin --db sqlite:///clearpos.db merchant show --mid 898310048163002\n"
        "  clearpos admin --db sqlite:///clearpos.db arrears pay --mid 898310048163002 --amount 58.00 --voucher PAY-1 --by wang\n"
        "  clearpos admin --db sqlite:///clearpos.db terminal suspend --tid 10000001 --by li --why 'screen broken'\n"
        "  clearpos admin backup --db sqlite:///clearpos.db --to backup.db"
    )
    p.add_argument("--db", default=DEFAULT_URL, help=f"store URL (default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help="one JSON document per line")
    sub = p.add_subparsers(dest="admin_group", metavar="GROUP")
    sub.required = True
    _merchants(sub)
    _terminals(sub)
    _cards(sub)
    _emv(sub)
    _arrears(sub)
    _maintenance(sub)
    _tickets(sub)
    _users(sub)
    _login_parser(sub)
    _records(sub)
    _kek(sub)
