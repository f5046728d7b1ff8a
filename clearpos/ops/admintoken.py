"""Short-lived sign-in tokens for the admin CLI (``clearpos admin login``).

Four-eyes decisions (approving or rejecting a resumption, 复机) need the
decider's own credentials, never a bare ``--by NAME``. Typing a password for
each decision is one way; a token from ``clearpos admin login`` is the other:

``cpa1.<payload>.<mac>`` -- payload = base64url JSON ``{"u": user, "exp": epoch
seconds, "n": nonce}``, mac = HMAC-SHA256 under a key derived from the KEK over
the payload *and the user's current password hash*. So a token is worth nothing
without the KEK, ends at ``exp``, and dies at once when the user's password
changes or the user is disabled. It is a bearer secret for its lifetime: keep it
in ``$CLEARPOS_ADMIN_TOKEN``, not on a command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from ..keys import KeyEncryptionKey
from ..store import Tx
from ..store.queries import ops as q
from .common import Refused
from .users import verify_password

__all__ = ["ENV_TOKEN", "MAX_MINUTES", "check_token", "issue_token"]

ENV_TOKEN = "CLEARPOS_ADMIN_TOKEN"
MAX_MINUTES = 8 * 60
_PREFIX = "cpa1"


def _key(kek: KeyEncryptionKey) -> bytes:
    return kek.derive(b"clearpos admin token v1", 32)


def _hash_of(tx: Tx, username: str) -> str | None:
    row = q.user_row(tx, username, enabled=True)
    return None if row is None else str(row["password_hash"])


def _mac(kek: KeyEncryptionKey, payload: str, pw_hash: str) -> str:
    digest = hmac.new(_key(kek), f"{payload}.{pw_hash}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue_token(
    tx: Tx,
    kek: KeyEncryptionKey,
    username: str,
    password: str,
    *,
    minutes: int = 15,
    now: float | None = None,
) -> tuple[str, float]:
    """A token for ``username`` when ``password`` is theirs: (token, expiry epoch)."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise Refused(f"a token lasts 1 to {MAX_MINUTES} minutes, not {minutes}")
    if verify_password(tx, username, password) is None:
        raise Refused(f"wrong password for {username!r}, or no such enabled user")
    pw_hash = _hash_of(tx, username)
    assert pw_hash is not None
    exp = (time.time() if now is None else now) + minutes * 60
    body = json.dumps({"u": username, "exp": int(exp), "n": secrets.token_hex(8)})
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{_PREFIX}.{payload}.{_mac(kek, payload, pw_hash)}", float(int(exp))


def check_token(tx: Tx, kek: KeyEncryptionKey, token: str, *, now: float | None = None) -> str:
    """The user a valid token names; :class:`Refused` saying why it is not valid."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise Refused("not an admin token: get one with clearpos admin login --username NAME")
    _, payload, mac = parts
    try:
        doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        username, exp = str(doc["u"]), float(doc["exp"])
    except (ValueError, KeyError, TypeError):
        raise Refused("the admin token is damaged: log in again") from None
    pw_hash = _hash_of(tx, username)
    if pw_hash is None or not hmac.compare_digest(mac, _mac(kek, payload, pw_hash)):
        raise Refused(
            "the admin token is not valid (another KEK, a changed password or a disabled "
            "user): log in again with clearpos admin login"
        )
    if (time.time() if now is None else now) >= exp:
        raise Refused("the admin token has expired: log in again with clearpos admin login")
    return username
