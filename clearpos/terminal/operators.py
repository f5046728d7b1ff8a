"""The operators: sign-in and out, the operator list, supervisor checks."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from . import store as st
from .core import (
    TerminalCore,
    TerminalError,
    _Abort,
)
from .screens import Outcome, note

__all__ = ["OperatorsMixin", "parse_operators"]

_PBKDF2_ROUNDS = 60_000


def parse_operators(spec: str) -> dict[str, dict[str, Any]]:
    """``"01:0000,99:123456:supervisor"`` -> operators with salted password hashes.

    ValueError (naming the entry, never the password) when malformed.
    """
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(p.strip() for p in spec.split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "supervisor"):
            raise ValueError(
                f"operator entry {i + 1} must be NO:PASSWORD or NO:PASSWORD:supervisor"
            )
        no, password = parts[0], parts[1]
        if not (no.isdecimal() and 1 <= len(no) <= 3):
            raise ValueError(f"operator entry {i + 1}: operator number must be 1-3 digits")
        if not password:
            raise ValueError(f"operator entry {i + 1}: password must not be empty")
        out[no] = _hash_operator(password, supervisor=len(parts) == 3)
    if not out:
        raise ValueError("at least one operator is needed")
    return out


def _hash_operator(password: str, *, supervisor: bool) -> dict[str, Any]:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
    return {"salt": salt.hex(), "hash": digest.hex(), "supervisor": supervisor}


def _password_ok(entry: dict[str, Any], password: str) -> bool:
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(entry["salt"]), _PBKDF2_ROUNDS
    )
    return hmac.compare_digest(digest.hex(), str(entry["hash"]))


class OperatorsMixin(TerminalCore):
    """The operators: sign-in and out, the operator list, supervisor checks."""

    def login(self, operator: str, password: str) -> Outcome:
        """Operator sign-in (checked locally), then sign-on if the terminal is not signed on."""
        return self._run("login", lambda: self._login(operator, password))

    def logout(self) -> Outcome:
        """Operator sign-out (local)."""

        def body() -> Outcome:
            self.store.put(operator=None)
            self.store.journal_add(kind="logout", stan="", batch=self.batch, status=st.LOCAL)
            return self._ok("logout", "approved", [note("operator_out", self.lang)])

        return self._run("logout", body)

    def set_operators(self, spec: str, supervisor_password: str | None) -> Outcome:
        """Replace the operator list (needs a supervisor's password)."""

        def body() -> Outcome:
            self._require_supervisor("operators", supervisor_password)
            try:
                ops = parse_operators(spec)
            except ValueError as exc:
                raise TerminalError(str(exc)) from None
            self.store.put(operators=ops)
            return self._ok("operators", "approved", [])

        return self._run("operators", body)

    def _login(self, operator: str, password: str) -> Outcome:
        ops: dict[str, dict[str, Any]] = self.store.get("operators", {})
        entry = ops.get(operator)
        if entry is None or not _password_ok(entry, password):
            return self._local("login", "operator.wrong_password", operator=operator)
        self.store.put(operator=operator, last_operator=operator)
        self.store.journal_add(
            kind="login", stan="", batch=self.batch, status=st.APPROVED, operator=operator
        )
        lines = [note("operator", self.lang, no=operator)]
        if self.signed_on:
            return self._ok(
                "login",
                "approved",
                lines,
                operator=operator,
                supervisor=bool(entry.get("supervisor")),
            )
        out = self._signon_outcome(operator, lines)
        out.command = "login"
        out.extra["supervisor"] = bool(entry.get("supervisor"))
        return out

    def _require_operator(self, command: str, financial: bool = True) -> str:
        op = self.operator
        if op is None:
            raise _Abort(self._local(command, "operator.not_signed_in", financial=financial))
        return op

    def _require_supervisor(self, command: str, password: str | None) -> None:
        ops: dict[str, dict[str, Any]] = self.store.get("operators", {})
        current = self.operator
        if password is None:
            if current is not None and ops.get(current, {}).get("supervisor"):
                return
            raise _Abort(
                self._local(command, "operator.wrong_password", financial=True, needs="supervisor")
            )
        if any(e.get("supervisor") and _password_ok(e, password) for e in ops.values()):
            return
        raise _Abort(self._local(command, "operator.wrong_password", financial=True))
