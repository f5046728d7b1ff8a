"""``clearpos admin user`` (the provider's staff) and ``clearpos admin login``."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from ...clock import show, utc_iso
from ...keys import KeyEncryptionKey
from ...secretin import SecretError, SecretOption, add_secret, read_fd
from ...store import Tx
from .. import users
from ..admintoken import ENV_TOKEN, issue_token
from ..common import record
from .base import (
    _change,
    _error,
    _group,
    _leaf,
    _lines,
    _run,
)


def _users(sub: Any) -> None:
    g = _group(sub, "user", "console users (argon2id password hashes)")

    def add(a: argparse.Namespace) -> int:
        from ...errors import UsageError

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


def _admin_login(a: argparse.Namespace) -> int:
    from ...errors import UsageError

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


# --------------------------------------------------------------------------- records
