"""What every ``clearpos admin`` group shares: argument types, output, the store
transaction around a command, four-eyes decisions."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from ...clock import show
from ...keys import KekError, KeyEncryptionKey
from ...money import parse_yuan
from ...secretin import SecretError, SecretOption, add_secret
from ...store import DEFAULT_URL, Database, StoreError, Tx, open_database
from ...store.queries import read
from .. import users
from ..admintoken import ENV_TOKEN, check_token
from ..common import Change, Refused

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
    from ...keys.tokens import PanTokenizer

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
    from ...errors import UsageError

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
