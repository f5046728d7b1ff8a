"""Sign-in sessions, CSRF tokens, login throttling and roles for the console.

* **Sessions** live on the server (in memory, per console process). The browser
  holds only a random session id, signed with a key derived from the KEK, in an
  ``HttpOnly; SameSite=Lax`` cookie (``Secure`` when served over https). Signing
  out forgets the id on the server, so a copied cookie is dead after logout; a
  session also ends after ``idle_s`` without requests or ``absolute_s`` in all.
  Signing in always issues a new id (no session fixation).
* **CSRF**: the token of a form is an HMAC of the session id, so it changes at
  every sign-in and sign-out and needs no storage; anonymous visitors get an id
  too, which protects the sign-in form itself.
* **Throttling** (:class:`LoginGuard`): failed sign-ins are counted per (user
  name, address) -- 5 in 15 minutes lock that pair for a minute -- and per user
  name from any address -- 10 in 15 minutes lock the name for 15 minutes -- and
  in all, with a cap (100 in 5 minutes) past which only a (name, address) pair
  that has signed in before may try. A pair that has signed in before is never
  stopped by the per-name lock or the cap, so nobody can lock real users out from
  elsewhere; and one address typing nonsense names locks only those names.
  The address is the TCP peer unless the console is told which proxies to trust
  (``--trusted-proxy``): an ``X-Forwarded-For`` from anyone else is ignored.
* **Roles**: what each role may do is the table :data:`PERMISSIONS`; routes ask
  :func:`allowed` on the server for every mutation, whatever the page showed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from itsdangerous import BadSignature, Signer

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "LoginGuard",
    "LoginThrottle",
    "Perm",
    "Session",
    "Sessions",
    "allowed",
]


class Perm(StrEnum):
    """Things a console user may do."""

    READ = "read"  # every page
    TICKETS = "tickets"  # open, comment on and close tickets
    LIFECYCLE = "lifecycle"  # suspend / resume / restrict merchants, terminals, cards
    PAYMENTS = "payments"  # record arrears payments, request resumption
    APPROVE = "approve"  # approve or reject resumption requests
    MAINTENANCE = "maintenance"  # schedule and cancel maintenance windows
    USERS = "users"  # add users, change roles, disable
    KEYS = "keys"  # rotate terminal master keys


ROLES: tuple[str, ...] = ("operator", "supervisor", "admin")
"""Console roles, from least to most trusted."""

PERMISSIONS: dict[str, frozenset[Perm]] = {
    "operator": frozenset({Perm.READ, Perm.TICKETS}),
    "supervisor": frozenset(
        {Perm.READ, Perm.TICKETS, Perm.LIFECYCLE, Perm.PAYMENTS, Perm.APPROVE, Perm.MAINTENANCE}
    ),
    "admin": frozenset(Perm),
}
"""Role -> what it may do. An admin may do everything a supervisor may, plus users and keys."""


def allowed(role: str | None, perm: Perm) -> bool:
    """True when ``role`` carries ``perm``; an unknown or missing role carries nothing."""
    return role is not None and perm in PERMISSIONS.get(role, frozenset())


@dataclass(slots=True)
class Session:
    """One signed-in browser."""

    sid: str
    username: str
    created: float
    last_seen: float
    #: messages for the next page this session sees: (kind "ok" | "error", text)
    flashes: list[tuple[str, str]] = field(default_factory=list)


class Sessions:
    """Server-side sessions keyed by random ids; cookies carry only a signed id."""

    def __init__(
        self,
        secret: bytes,
        *,
        idle_s: float = 30 * 60,
        absolute_s: float = 12 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._signer = Signer(secret, salt="clearpos.console.session", digest_method=hashlib.sha256)
        self._csrf_key = hmac.new(secret, b"clearpos console csrf", hashlib.sha256).digest()
        self._live: dict[str, Session] = {}
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._clock = clock

    @staticmethod
    def new_id() -> str:
        """A fresh unguessable session id (anonymous until someone signs in with it)."""
        return secrets.token_urlsafe(24)

    def cookie_value(self, sid: str) -> str:
        """The cookie text for ``sid``: the id and its signature."""
        return self._signer.sign(sid).decode("ascii")

    def sid_of(self, cookie: str | None) -> str | None:
        """The session id in a cookie, or None if it is missing or its signature is wrong."""
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

    def csrf_token(self, sid: str) -> str:
        """The CSRF token every form of this session must carry."""
        return hmac.new(self._csrf_key, sid.encode("ascii"), hashlib.sha256).hexdigest()

    def csrf_ok(self, sid: str, token: str | None) -> bool:
        """True when ``token`` is this session's CSRF token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(self.csrf_token(sid), str(token))

    def sign_in(self, username: str) -> Session:
        """Start a session for ``username`` under a new id; the caller sets the cookie."""
        now = self._clock()
        self._expire(now)
        s = Session(self.new_id(), username, now, now)
        self._live[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        """The live session for ``sid`` (and mark it used), or None."""
        if sid is None:
            return None
        s = self._live.get(sid)
        if s is None:
            return None
        now = self._clock()
        if now - s.last_seen > self.idle_s or now - s.created > self.absolute_s:
            del self._live[sid]
            return None
        s.last_seen = now
        return s

    def sign_out(self, sid: str | None) -> None:
        """Forget the session: its cookie no longer signs anyone in."""
        if sid is not None:
            self._live.pop(sid, None)

    def sign_out_user(self, username: str) -> int:
        """End every session of ``username`` (disabled user, role change); how many ended."""
        gone = [sid for sid, s in self._live.items() if s.username == username]
        for sid in gone:
            del self._live[sid]
        return len(gone)

    def _expire(self, now: float) -> None:
        stale = [
            sid
            for sid, s in self._live.items()
            if now - s.last_seen > self.idle_s or now - s.created > self.absolute_s
        ]
        for sid in stale:
            del self._live[sid]

    def __len__(self) -> int:
        return len(self._live)


@dataclass(slots=True)
class _Attempts:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    """Lock a (user name, address) pair after repeated failed sign-ins.

    >>> t = LoginThrottle(max_failures=2, window_s=60, lock_s=30, clock=lambda: 100.0)
    >>> t.failure("ann", "10.0.0.1"), t.failure("ann", "10.0.0.1")
    (None, 130.0)
    >>> t.locked_until("ann", "10.0.0.1"), t.locked_until("ann", "10.0.0.2")
    (130.0, None)
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 15 * 60,
        lock_s: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lock_s = lock_s
        self._clock = clock
        self._pairs: dict[tuple[str, str], _Attempts] = {}

    @staticmethod
    def _key(username: str, address: str) -> tuple[str, str]:
        return username.strip().casefold(), address

    def locked_until(self, username: str, address: str) -> float | None:
        """When the lock of this pair ends (epoch seconds), or None if it is not locked."""
        a = self._pairs.get(self._key(username, address))
        if a is None or a.locked_until <= self._clock():
            return None
        return a.locked_until

    def failure(self, username: str, address: str) -> float | None:
        """Count a failed sign-in; the lock's end if this failure locks the pair, else None."""
        now = self._clock()
        if len(self._pairs) > 10_000:  # bound memory under a spray of names
            self._pairs = {k: v for k, v in self._pairs.items() if v.locked_until > now}
        a = self._pairs.setdefault(self._key(username, address), _Attempts())
        a.failures = [t for t in a.failures if now - t < self.window_s]
        a.failures.append(now)
        if len(a.failures) >= self.max_failures:
            a.failures.clear()
            a.locked_until = now + self.lock_s
            return a.locked_until
        return None

    def success(self, username: str, address: str) -> None:
        """A successful sign-in clears the pair's failures."""
        self._pairs.pop(self._key(username, address), None)


#: stands for "any address" in the per-name counter
ANY_ADDRESS = "*"


class LoginGuard:
    """Who may try a password now: the three counters of the module docstring.

    >>> g = LoginGuard(per_user=LoginThrottle(max_failures=2, window_s=60, lock_s=60,
    ...                                       clock=lambda: 100.0), clock=lambda: 100.0)
    >>> g.failure("ann", "10.0.0.1"), g.failure("ann", "10.0.0.2")
    (None, 160.0)
    >>> g.locked_until("ann", "10.0.0.3"), g.locked_until("bob", "10.0.0.3")
    (160.0, None)
    """

    def __init__(
        self,
        *,
        per_pair: LoginThrottle | None = None,
        per_user: LoginThrottle | None = None,
        global_failures: int = 100,
        global_window_s: float = 5 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_pair = per_pair or LoginThrottle(clock=clock)
        self.per_user = per_user or LoginThrottle(
            max_failures=10, window_s=15 * 60, lock_s=15 * 60, clock=clock
        )
        self.global_failures = global_failures
        self.global_window_s = global_window_s
        self._clock = clock
        self._recent: deque[float] = deque()
        #: (name, address) pairs that signed in: never held by the name lock or the cap
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _pair(self, username: str, address: str) -> tuple[str, str]:
        return username.strip().casefold(), address

    def known(self, username: str, address: str) -> bool:
        return self._pair(username, address) in self._known

    def _global_until(self) -> float | None:
        now = self._clock()
        while self._recent and now - self._recent[0] >= self.global_window_s:
            self._recent.popleft()
        if len(self._recent) >= self.global_failures:
            return self._recent[0] + self.global_window_s
        return None

    def locked_until(self, username: str, address: str) -> float | None:
        """When this sign-in may be tried again (epoch seconds), or None: now."""
        pair = self.per_pair.locked_until(username, address)
        if pair is not None or self.known(username, address):
            return pair
        return self.per_user.locked_until(username, ANY_ADDRESS) or self._global_until()

    def failure(self, username: str, address: str) -> float | None:
        """Count a failed sign-in; the lock's end if it locks this sign-in, else None."""
        self._recent.append(self._clock())
        if len(self._recent) > 4 * self.global_failures:
            self._recent.popleft()
        pair = self.per_pair.failure(username, address)
        user = self.per_user.failure(username, ANY_ADDRESS)
        if pair is not None or self.known(username, address):
            return pair
        return user or self._global_until()

    def success(self, username: str, address: str) -> None:
        """The pair's failures are forgotten and the pair is known from now on (the
        name's own count stays: someone else may be guessing it elsewhere)."""
        self.per_pair.success(username, address)
        key = self._pair(username, address)
        self._known[key] = None
        self._known.move_to_end(key)
        while len(self._known) > 10_000:
            self._known.popitem(last=False)
