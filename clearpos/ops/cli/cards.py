"""``clearpos admin card`` (states, chip personalisation) and ``clearpos admin emv``
(CA keys, chip parameters)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ...clock import show
from ...keys import SecurityModule
from ...money import fen_yuan
from ...store import Tx
from .. import cards
from ..common import Refused
from .base import (
    Handler,
    _change,
    _group,
    _leaf,
    _lines,
    _pan,
    _run,
    _tokenizer,
    _yuan0,
)


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
        from .. import chip

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
    from .. import chip

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
