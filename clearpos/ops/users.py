"""Console users: a username, a role, and an argon2id password hash (never the password).

Roles, from least to most: ``operator`` (looks things up, opens and works
tickets), ``supervisor`` (also approves or rejects resumption requests),
``admin`` (everything). The web console signs people in with
:func:`verify_password`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..store import Tx
from ..store.queries import ops as q
from .common import Change, Refused, check_actor, now_iso, record

__all__ = [
    "APPROVER_ROLES",
    "ROLES",
    "User",
    "add_user",
    "check_password",
    "disable_user",
    "get_user",
    "list_users",
    "require_role",
    "verify_password",
]

ROLES = ("operator", "supervisor", "admin")
APPROVER_ROLES = frozenset({"supervisor", "admin"})
MIN_PASSWORD = 8
MAX_PASSWORD = 128
#: zxcvbn's score 0-4; 3 is "safely unguessable: moderate protection from an offline
#: slow-hash scenario" (about 10^8 guesses or more), what an argon2id hash behind a
#: locked-out sign-in form needs. ``password`` and ``12345678`` score 0.
MIN_STRENGTH = 3
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class User:
    """A console user as stored (the hash is never part of this record)."""

    id: int
    username: str
    role: str
    created_at: str
    created_by: str
    disabled: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "disabled": self.disabled,
        }

    @classmethod
    def of(cls, r: Any) -> User:
        return cls(
            int(r["id"]),
            r["username"],
            r["role"],
            r["created_at"],
            r["created_by"],
            bool(r["disabled"]),
        )


def check_password(password: str, username: str) -> None:
    """Refuse a password an attacker would guess: too short, or weak by zxcvbn's
    estimate (dictionaries of common passwords, names, keyboard walks, dates,
    l33t, repeats, and the user name itself), with its advice in the refusal."""
    if len(password) < MIN_PASSWORD:
        raise Refused(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Refused(f"the password must have at most {MAX_PASSWORD} characters")
    from zxcvbn import zxcvbn

    verdict = zxcvbn(password, user_inputs=[username, "clearpos", "console", "unionpay"])
    if int(verdict["score"]) >= MIN_STRENGTH:
        return
    feedback = verdict.get("feedback") or {}
    advice = " ".join(
        t for t in [feedback.get("warning") or "", *(feedback.get("suggestions") or [])] if t
    )
    raise Refused(
        f"the password is too easy to guess (strength {verdict['score']} of 4, "
        f"{MIN_STRENGTH} needed)"
        + (f": {advice}" if advice else "")
        + "; a few unrelated words make a strong one"
    )


def get_user(tx: Tx, username: str) -> User | None:
    row = q.user_row(tx, username)
    return User.of(row) if row else None


def list_users(tx: Tx) -> list[User]:
    return [User.of(r) for r in q.user_rows(tx)]


def add_user(
    tx: Tx,
    username: str,
    role: str,
    password: str,
    *,
    by: str,
    now: datetime | None = None,
) -> tuple[User, Change]:
    """Register a console user; the password is stored only as an argon2id hash."""
    by = check_actor(by)
    if not _USERNAME.match(username):
        raise Refused(
            f"username {username!r} must be 2-32 characters: a lower-case letter, then "
            "lower-case letters, digits, '.', '_' or '-'"
        )
    if role not in ROLES:
        raise Refused(f"role {role!r} is unknown; use one of {', '.join(ROLES)}")
    check_password(password, username)
    if get_user(tx, username) is not None:
        raise Refused(f"user {username!r} already exists", entity="user", entity_id=username)
    at = now_iso(now)
    uid = tx.insert_row(
        "users",
        {
            "username": username,
            "role": role,
            "password_hash": _hasher.hash(password),
            "created_at": at,
            "created_by": by,
            "disabled": 0,
        },
    )
    change = record(
        tx,
        at=at,
        by=by,
        entity="user",
        entity_id=username,
        action="add",
        to_state="enabled",
        detail={"role": role, "id": uid},
    )
    user = get_user(tx, username)
    assert user is not None
    return user, change


def disable_user(
    tx: Tx, username: str, *, by: str, why: str, now: datetime | None = None
) -> Change:
    """Stop a user from signing in (the record and its history stay)."""
    by = check_actor(by)
    user = get_user(tx, username)
    if user is None:
        raise Refused(f"no user {username!r}", entity="user", entity_id=username)
    if user.disabled:
        raise Refused(
            f"user {username!r} is already disabled",
            entity="user",
            entity_id=username,
            state="disabled",
            action="disable",
        )
    at = now_iso(now)
    tx.update_row("users", "username", username, {"disabled": 1})
    return record(
        tx,
        at=at,
        by=by,
        entity="user",
        entity_id=username,
        action="disable",
        from_state="enabled",
        to_state="disabled",
        why=why,
    )


def verify_password(tx: Tx, username: str, password: str) -> User | None:
    """The user when the password is right and the user is enabled; None otherwise.

    A hash made with older argon2 parameters is upgraded in place (the caller
    commits the transaction).
    """
    row = q.user_row(tx, username, enabled=True)
    if row is None:
        return None
    stored = str(row["password_hash"])
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(stored):
        tx.update_row("users", "username", username, {"password_hash": _hasher.hash(password)})
    return User.of(row)


def require_role(tx: Tx, username: str, roles: frozenset[str], what: str) -> str:
    """``username`` when it is an enabled user with one of ``roles``; Refused otherwise.

    ``what`` completes "only a supervisor or admin may ...", e.g. "approve a resumption request".
    """
    user = get_user(tx, username)
    ranked = [r for r in ROLES if r in roles]
    wanted = " or ".join(ranked)
    if user is None or user.disabled:
        raise Refused(
            f"only a registered {wanted} may {what}; {username!r} is "
            + ("disabled" if user else "not a console user")
            + f" (add one with: clearpos admin user add --username NAME --role {ranked[0]} --by YOU)"
        )
    if user.role not in roles:
        raise Refused(f"only a {wanted} may {what}; {username!r} has the role {user.role}")
    return user.username
