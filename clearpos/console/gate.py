"""The console's front door: one ASGI middleware every request passes.

In order, for every request:

1. the session cookie is read (a missing or forged one gets a fresh anonymous
   id) and the display language is chosen (``?lang=`` / cookie / browser);
2. the signed-in user is looked up in the store on every request, so a
   disabled user or a changed role takes effect at once;
3. a page that is not public (public: ``/login``, ``/help``, ``/static``,
   ``/healthz``) redirects to ``/login`` when nobody is signed in;
4. every state-changing request (POST, PUT, PATCH, DELETE) must carry the
   session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``), or
   it is refused with 403 before any route runs;
5. the response gets the cookies it needs and security headers (a strict
   Content-Security-Policy: no inline script, no inline style, no framing).

The default is to deny: a route added later is protected without doing anything.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from starlette.datastructures import FormData, Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..reasons import Lang
from ..store import Tx
from .i18n import pick_lang
from .security import Session

if TYPE_CHECKING:
    from .app import Console

SESSION_COOKIE = "clearpos_session"
LANG_COOKIE = "clearpos_lang"
PUBLIC_PREFIXES = ("/login", "/help", "/static/", "/healthz", "/favicon.ico")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 256 * 1024

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(slots=True)
class Visitor:
    """Who is asking, in which language; attached to every request as ``scope["visitor"]``."""

    sid: str
    lang: Lang
    session: Session | None = None
    username: str | None = None
    role: str | None = None
    #: set by the sign-in / sign-out routes: the id the cookie must carry from now on
    new_sid: str | None = None
    set_sid_cookie: bool = False
    set_lang_cookie: bool = False
    csrf: str = ""

    @property
    def signed_in(self) -> bool:
        """True when a live session belongs to an enabled user."""
        return self.username is not None


def visitor(request: Request) -> Visitor:
    """The :class:`Visitor` the gate attached to this request."""
    v = request.scope.get("visitor")
    if not isinstance(v, Visitor):  # only when a route is mounted outside the gate
        raise RuntimeError("request did not pass the console gate")
    return v


def is_public(path: str) -> bool:
    """True for the pages that need no sign-in: sign-in itself, help, static files."""
    return path == "/login" or any(
        path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/")
        for p in PUBLIC_PREFIXES
    )


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for raw in headers.getlist("cookie"):
        try:
            jar.load(raw)
        except Exception:
            continue
    return {k: m.value for k, m in jar.items()}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return body


async def _csrf_field(scope: Scope, body: bytes) -> str | None:
    """The ``csrf`` form field of a urlencoded or multipart body, or None."""
    headers = Headers(scope=scope)
    ctype = headers.get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):
        values = urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True)
        got = values.get("csrf")
        return got[0] if got else None
    if ctype.startswith("multipart/form-data"):
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        form: FormData = await Request(scope, replay).form()
        try:
            value = form.get("csrf")
            return value if isinstance(value, str) else None
        finally:
            await form.close()
    return None


class Gate:
    """The middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        console = self.console
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        asked_lang = (query.get("lang") or [None])[0]
        lang = pick_lang(asked_lang, cookies.get(LANG_COOKIE), headers.get("accept-language"))
        sid = console.sessions.sid_of(cookies.get(SESSION_COOKIE))
        v = Visitor(sid or console.sessions.new_id(), lang)
        v.set_sid_cookie = sid is None
        v.set_lang_cookie = asked_lang in ("zh", "en") and cookies.get(LANG_COOKIE) != asked_lang
        session = console.sessions.get(sid)
        if session is not None:
            role = await console.read(_role_of, session.username)
            if role is None:  # disabled or removed since signing in
                console.sessions.sign_out(session.sid)
            else:
                v.session, v.username, v.role = session, session.username, role
        v.csrf = console.sessions.csrf_token(v.sid)
        scope["visitor"] = v
        path: str = scope["path"]
        method: str = scope["method"]
        scheme: str = scope.get("scheme", "http")

        if not v.signed_in and not is_public(path):
            target = path + ("?" + scope["query_string"].decode("latin-1") if query else "")
            nxt = urllib.parse.quote(
                masked_target(target) if method in SAFE_METHODS else "/", safe=""
            )
            await self._plain(scope, send, v, 303, b"", [("location", f"/login?next={nxt}")])
            return

        if method not in SAFE_METHODS:
            body = await _read_body(receive, MAX_FORM_BYTES)
            if body is None:
                await self._plain(scope, send, v, 413, b"request too large")
                return
            token = headers.get("x-csrf-token") or await _csrf_field(scope, body)
            if not console.sessions.csrf_ok(v.sid, token):
                await console.refuse_csrf(scope, send_with_headers(send, v, console, scheme))
                return
            receive = _replay(body)

        await self.app(scope, receive, send_with_headers(send, v, console, scheme))

    async def _plain(
        self,
        scope: Scope,
        send: Send,
        v: Visitor,
        status: int,
        body: bytes,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        wrapped = send_with_headers(send, v, self.console, scope.get("scheme", "http"))
        hdrs = [(b"content-type", b"text/plain; charset=utf-8")]
        hdrs += [(k.encode(), val.encode("latin-1")) for k, val in (extra or [])]
        await wrapped({"type": "http.response.start", "status": status, "headers": hdrs})
        await wrapped({"type": "http.response.body", "body": body})


def masked_target(target: str) -> str:
    """A path to come back to after sign-in, with card numbers cut to first 6 / last 4.

    >>> masked_target("/transactions?pan=6222021234567890123&tid=10000001")
    '/transactions?pan=622202%2A%2A%2A%2A0123&tid=10000001'
    """
    from ..ops.common import mask_text
    from .queries import parse_pan_query

    path, sep, query = target.partition("?")
    if not sep:
        return mask_text(path)
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    cut = [(k, parse_pan_query(val).shown if k == "pan" else mask_text(val)) for k, val in pairs]
    return mask_text(path) + "?" + urllib.parse.urlencode(cut)


def _role_of(tx: Tx, username: str) -> str | None:
    from ..store.queries.ops import role_of

    return role_of(tx, username)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def send_with_headers(send: Send, v: Visitor, console: Console, scheme: str = "http") -> Send:
    """Wrap ``send`` so the response carries the cookies and security headers it needs.

    Cookies are ``Secure`` when the console is configured so, or when the request
    itself came over https.
    """
    secure = console.secure or scheme == "https"

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            hdrs: list[tuple[bytes, bytes]] = list(message.get("headers", []))
            flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
            if v.new_sid is not None:
                value = console.sessions.cookie_value(v.new_sid)
                hdrs.append((b"set-cookie", f"{SESSION_COOKIE}={value}{flags}".encode()))
            elif v.set_sid_cookie:
                value = console.sessions.cookie_value(v.sid)
                hdrs.append((b"set-cookie", f"{SESSION_COOKIE}={value}{flags}".encode()))
            if v.set_lang_cookie:
                cookie = f"{LANG_COOKIE}={v.lang}{flags}; Max-Age=31536000"
                hdrs.append((b"set-cookie", cookie.encode()))
            names = {k.lower() for k, _ in hdrs}
            defaults = [
                (b"content-security-policy", CSP.encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"same-origin"),
            ]
            if b"cache-control" not in names:
                defaults.append((b"cache-control", b"no-store"))
            if secure and console.hsts_s > 0:
                hsts = f"max-age={console.hsts_s}; includeSubDomains"
                defaults.append((b"strict-transport-security", hsts.encode()))
            hdrs += [(k, val) for k, val in defaults if k not in names]
            message = {**message, "headers": hdrs}
        await send(message)

    return wrapped
