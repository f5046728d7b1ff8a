"""The web console in-process: sign-in, sessions, CSRF, roles, throttling, pages, no full PAN.

The store is a real one: a real host process loads the example world and
serves real traffic (approved and declined purchases with the test cards),
then stops; the console app is driven in-process through ASGI by a small
cookie-keeping client, so every request passes the same gate a browser's does.
Browser tests in real Chromium are in ``test_console_browser.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from host_fixture import start_host
from hostclient import PAN, Client
from starlette.applications import Starlette
from starlette.routing import Route

from clearpos.console.app import create_app
from clearpos.console.i18n import STRINGS, text
from clearpos.console.queries import parse_pan_query
from clearpos.console.security import (
    PERMISSIONS,
    LoginGuard,
    LoginThrottle,
    Perm,
    Sessions,
    allowed,
)
from clearpos.keys.crypto import check_value
from clearpos.ops.users import add_user
from clearpos.store import Database, open_database
from clearpos.store.queries.ops import audit_rows

SECRET = b"console-test-secret-32-bytes-ok!"
MID = "898310048161234"
FROZEN = "6225880000001025"
POOR = "6225880000001017"
TEST_PANS = (PAN, FROZEN, POOR, "6225880000001033")
PASSWORDS = {
    "ada": "ada-secret-1",
    "sam": "sam-secret-1",
    "tom": "tom-secret-1",
    "oli": "oli-secret-1",
}
TEMPLATES = Path(__file__).resolve().parent.parent / "clearpos" / "console" / "templates"
FULL_PAN_RE = re.compile(r"(?<!\d)\d{16,19}(?!\d)")


# ----------------------------------------------------------------------------- a tiny ASGI client


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name), "")

    def cookies_set(self) -> list[str]:
        return [v for k, v in self.headers if k == "set-cookie"]

    @property
    def location(self) -> str:
        return self.header("location")


@dataclass
class Browser:
    """Keeps cookies like a browser; every request goes through the whole ASGI app."""

    app: Starlette
    address: str = "198.51.100.7"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Resp:
        raw_path, _, query = path.partition("?")
        body = urllib.parse.urlencode(form or {}, doseq=True).encode()
        hdrs = [(b"host", b"console.test"), (b"accept-language", b"zh-CN,zh;q=0.9")]
        if self.cookies:
            jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            hdrs.append((b"cookie", jar.encode()))
        if method == "POST":
            hdrs.append((b"content-type", b"application/x-www-form-urlencoded"))
            hdrs.append((b"content-length", str(len(body)).encode()))
        for k, v in (headers or {}).items():
            hdrs.append((k.lower().encode(), v.encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": urllib.parse.unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": hdrs,
            "client": (self.address, 50123),
            "server": ("console.test", 80),
        }
        out: dict[str, Any] = {"status": 0, "headers": [], "body": b""}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = [(k.decode(), v.decode()) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        asyncio.run(self.app(scope, receive, send))  # type: ignore[arg-type]
        resp = Resp(out["status"], out["headers"], out["body"].decode("utf-8", "replace"))
        for cookie in resp.cookies_set():
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in cookie.lower() or "1970" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def get(self, path: str) -> Resp:
        return self.request("GET", path)

    def post(self, path: str, form: Mapping[str, str | list[str]] | None = None) -> Resp:
        return self.request("POST", path, form)

    def csrf(self, path: str = "/login") -> str:
        page = self.get(path)
        if page.status == 303 and path == "/login":  # signed in: any page has the token
            page = self.get("/")
        m = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.body)
        assert m, f"no CSRF field on {path}: {page.status} {page.body[:300]}"
        return m.group(1)

    def login(self, username: str, password: str | None = None) -> Resp:
        token = self.csrf("/login")
        return self.post(
            "/login",
            {"csrf": token, "username": username, "password": password or PASSWORDS[username]},
        )

    def act(self, path: str, form: Mapping[str, str | list[str]], page: str = "/") -> Resp:
        """POST a form with this session's CSRF token (taken from ``page``)."""
        return self.post(path, {"csrf": self.csrf(page), **form})


# ----------------------------------------------------------------------------- the store


@dataclass
class World:
    db: Database
    rrns: dict[str, str]  # what -> RRN

    def app(self, **kw: Any) -> Starlette:
        return create_app(self.db, secret=SECRET, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("console")
    host = start_host(tmp)
    rrns: dict[str, str] = {}
    try:
        c = Client(host.host, host.port).connect()
        assert c.sign_on().code == "00"
        rrns["approved"] = c.purchase(1234).msg.rrn  # type: ignore[attr-defined]
        rrns["frozen"] = c.purchase(2000, card=c.card(pan=FROZEN)).msg.rrn  # type: ignore[attr-defined]
        rrns["poor"] = c.purchase(90000, card=c.card(pan=POOR)).msg.rrn  # type: ignore[attr-defined]
        rrns["wrong_pin"] = c.purchase(500, card=c.card(pin="999999")).msg.rrn  # type: ignore[attr-defined]
        rrns["lost"] = c.purchase(500, card=c.card(pan="6225880000001033")).msg.rrn  # type: ignore[attr-defined]
        c.close()
    finally:
        host.stop()
    db = open_database(host.url)
    with db.transaction() as tx:
        for name, role in (
            ("ada", "admin"),
            ("sam", "supervisor"),
            ("tom", "supervisor"),
            ("oli", "operator"),
        ):
            add_user(tx, name, role, PASSWORDS[name], by="test")
    yield World(db, rrns)


@pytest.fixture(scope="module")
def app(world: World) -> Starlette:
    return world.app()


def signed_in(app: Starlette, who: str, address: str = "198.51.100.7") -> Browser:
    b = Browser(app, address)
    r = b.login(who)
    assert r.status == 303 and r.location == "/", (r.status, r.body[:500])
    return b


# ----------------------------------------------------------------------------- units


def test_pan_query_never_keeps_more_than_first6_last4() -> None:
    assert parse_pan_query(PAN).shown == "622202****0123"
    assert parse_pan_query(PAN).was_full
    assert parse_pan_query("622202 0123").like == "622202%0123"
    assert parse_pan_query("****1025").like == "%1025"
    assert parse_pan_query("").like is None


def test_roles_table() -> None:
    assert not allowed("operator", Perm.LIFECYCLE)
    assert allowed("operator", Perm.TICKETS)
    assert allowed("supervisor", Perm.LIFECYCLE) and allowed("supervisor", Perm.APPROVE)
    assert not allowed("supervisor", Perm.USERS) and not allowed("supervisor", Perm.KEYS)
    assert PERMISSIONS["admin"] == frozenset(Perm)
    assert not allowed(None, Perm.READ) and not allowed("intruder", Perm.READ)


def test_sessions_sign_and_expire() -> None:
    now = [0.0]
    s = Sessions(SECRET, idle_s=10, absolute_s=100, clock=lambda: now[0])
    live = s.sign_in("ada")
    cookie = s.cookie_value(live.sid)
    assert s.sid_of(cookie) == live.sid
    assert s.sid_of(cookie[:-2] + "xx") is None  # forged signature
    assert s.csrf_ok(live.sid, s.csrf_token(live.sid))
    assert not s.csrf_ok(live.sid, s.csrf_token("another"))
    now[0] = 9
    assert s.get(live.sid) is not None
    now[0] = 20
    assert s.get(live.sid) is None  # idle too long


def test_every_template_label_exists_in_both_languages() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_.]+)'", path.read_text("utf-8")))
    missing = sorted(k for k in used if k not in STRINGS and not k.endswith("."))
    assert not missing, f"labels used by templates but not in i18n.STRINGS: {missing}"
    for key, (zh, en) in STRINGS.items():
        assert zh.strip() and en.strip(), key
        assert text(key, "zh") == zh and text(key, "en") == en


# ----------------------------------------------------------------------------- security


PARAMS = {
    "mid": MID,
    "tid": "10000001",
    "rrn": "000000000002",
    "card_id:int": "1",
    "rid:int": "1",
    "wid:int": "1",
    "ticket_id:int": "1",
    "username": "oli",
    "lang": "zh",
    "slug:path": "index",
}


def concrete(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: PARAMS[m.group(1)], path)


def all_routes(app: Starlette) -> list[tuple[str, str]]:
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            for method in sorted((r.methods or {"GET"}) - {"HEAD"}):
                out.append((method, concrete(r.path)))
    return out


def is_public(path: str) -> bool:
    return path == "/login" or path == "/healthz" or path.split("?")[0].startswith("/help")


def test_every_page_but_login_and_help_redirects_when_not_signed_in(app: Starlette) -> None:
    routes = all_routes(app)
    assert len(routes) > 40
    for method, path in routes:
        r = Browser(app).request(method, path, {} if method == "POST" else None)
        if is_public(path):
            assert not r.location.startswith("/login"), (method, path, r.status)
            continue
        assert r.status == 303, (method, path, r.status)
        assert r.location.startswith("/login?next="), (method, path, r.location)
    # and a made-up page, too: the gate denies by default
    r = Browser(app).get("/no/such/page")
    assert r.status == 303 and r.location.startswith("/login")


def test_login_logout_and_the_old_cookie_is_dead(app: Starlette, world: World) -> None:
    b = Browser(app)
    anonymous = b.get("/login")
    assert anonymous.status == 200 and "clearpos_session=" in " ".join(anonymous.cookies_set())
    before = dict(b.cookies)
    r = b.login("sam")
    assert r.status == 303 and r.location == "/"
    assert b.cookies["clearpos_session"] != before["clearpos_session"]  # a new id at sign-in
    signed = dict(b.cookies)
    page = b.get("/")
    assert page.status == 200 and "sam" in page.body and "运营总览" in page.body
    r = b.act("/logout", {})
    assert r.status == 303 and r.location == "/login?bye=1"
    assert b.get("/").status == 303
    b.cookies = signed  # replay the cookie of the ended session
    r = b.get("/")
    assert r.status == 303 and r.location.startswith("/login")
    with world.db.reader() as tx:
        actions = [a.action for a in audit_rows(tx, "user", ["sam"])]
    assert "login" in actions and "logout" in actions


def test_refused_login_says_so_and_is_audited(app: Starlette, world: World) -> None:
    b = Browser(app, "198.51.100.21")
    r = b.login("sam", "not-the-password")
    assert r.status == 401 and "用户名或密码错误" in r.body
    assert b.get("/").status == 303
    r = b.login("nobody", "whatever-it-is")
    assert r.status == 401 and "用户名或密码错误" in r.body  # same answer for unknown users
    with world.db.reader() as tx:
        failed = [
            a for a in audit_rows(tx, "user", ["sam", "nobody"]) if a.action == "login.failed"
        ]
    assert {a.entity_id for a in failed} >= {"sam", "nobody"}
    assert all(a.detail.get("address") == "198.51.100.21" for a in failed)


def test_login_throttle_locks_user_and_address(world: World) -> None:
    app = world.app(throttle=LoginThrottle(max_failures=5, window_s=300, lock_s=60))
    b = Browser(app, "192.0.2.50")
    codes = [b.login("tom", f"wrong-{i}").status for i in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    r = b.login("tom")  # the right password, but the pair is locked
    assert r.status == 429 and "锁定" in r.body
    assert signed_in(app, "tom", address="192.0.2.51")  # another address is not locked
    with world.db.reader() as tx:
        rows = audit_rows(tx, "user", ["tom"])
    assert [a.action for a in rows].count("login.locked") == 1


def test_a_spray_of_user_names_from_one_address_locks_no_real_user(world: World) -> None:
    """Nonsense names typed from one address lock those names, never a real user who
    shares the address (issue 16: the old per-address lock did)."""
    app = world.app()
    b = Browser(app, "192.0.2.60")
    codes = [b.login(f"nobody{i}", "guess-1234").status for i in range(40)]
    assert set(codes) == {401}, codes
    assert Browser(app, "192.0.2.60").login("ada").status == 303


def test_guessing_one_user_from_many_addresses_locks_that_name(world: World) -> None:
    guard = LoginGuard(per_user=LoginThrottle(max_failures=4, window_s=300, lock_s=300))
    app = world.app(guard=guard)
    assert signed_in(app, "sam", address="192.0.2.70")  # sam's own desk
    codes = [Browser(app, f"203.0.113.{i}").login("sam", "guess").status for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert Browser(app, "203.0.113.99").login("sam").status == 429, "a new address waits"
    assert Browser(app, "192.0.2.70").login("sam").status == 303, "sam's desk is not locked out"
    assert Browser(app, "203.0.113.99").login("tom").status == 303, "other names are free"


def test_global_cap_lets_only_known_pairs_try(world: World) -> None:
    app = world.app(guard=LoginGuard(global_failures=6))
    assert signed_in(app, "tom", address="192.0.2.80")
    codes = [Browser(app, f"198.18.0.{i}").login(f"x{i}", "guess").status for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert Browser(app, "198.18.1.1").login("ada").status == 429, "an unknown pair waits"
    assert Browser(app, "192.0.2.80").login("tom").status == 303, "a known pair signs in"


def test_session_cookie_flags(world: World) -> None:
    for secure in (False, True):
        b = Browser(world.app(secure=secure))
        b.get("/login")
        r = b.login("ada")
        cookie = next(c for c in r.cookies_set() if c.startswith("clearpos_session="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_security_headers(app: Starlette) -> None:
    r = Browser(app).get("/login")
    csp = r.header("content-security-policy")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("cache-control") == "no-store"


def test_a_form_without_csrf_token_is_refused(app: Starlette, world: World) -> None:
    b = signed_in(app, "sam")
    form = {"cause": "risk", "why": "csrf probe"}
    r = b.post(f"/merchants/{MID}/suspend", form)
    assert r.status == 403 and "表单已失效" in r.body
    other = signed_in(app, "tom")
    r = b.post(f"/merchants/{MID}/suspend", {**form, "csrf": other.csrf()})
    assert r.status == 403  # another session's token does not do
    r = b.post(f"/merchants/{MID}/suspend", {**form, "csrf": "0" * 64})
    assert r.status == 403
    assert (
        Browser(app).post("/login", {"username": "sam", "password": PASSWORDS["sam"]}).status == 403
    )
    assert b.post("/logout").status == 403 and b.get("/").status == 200  # still signed in
    with world.db.reader() as tx:
        m = tx.merchant(MID)
    assert m is not None and m.status == "active"


def test_an_operator_cannot_suspend_or_do_supervisor_work(app: Starlette, world: World) -> None:
    b = signed_in(app, "oli")
    page = b.get(f"/merchants/{MID}")
    assert page.status == 200 and 'id="suspend-form"' not in page.body
    r = b.act(f"/merchants/{MID}/suspend", {"cause": "risk", "why": "should not work"})
    assert r.status == 403 and "不能执行此操作" in r.body
    for method, path in all_routes(app):
        if method != "POST" or path in ("/login", "/logout") or path.startswith("/tickets"):
            continue
        assert b.act(path, {"why": "x"}).status == 403, path
    assert b.get("/users").status == 403
    sup = signed_in(app, "sam")
    assert (
        sup.act("/users", {"username": "eve", "role": "admin", "password": "x" * 12}).status == 403
    )
    r = sup.act("/terminals/10000007/rotate-tmk", {"tmk": "00" * 16, "kcv": "000000", "why": "x"})
    assert r.status == 403
    with world.db.reader() as tx:
        m = tx.merchant(MID)
        assert m is not None and m.status == "active"
        assert (
            tx.conn.execute("SELECT COUNT(*) AS n FROM users WHERE username = 'eve'").fetchone()[
                "n"
            ]
            == 0
        )


def test_a_disabled_user_is_signed_out_at_once(app: Starlette, world: World) -> None:
    with world.db.transaction() as tx:
        add_user(tx, "kim", "operator", "kim-secret-1", by="test")
    kim = Browser(app)
    assert kim.login("kim", "kim-secret-1").status == 303
    ada = signed_in(app, "ada")
    r = ada.act("/users/kim/disable", {"why": "left the company"}, page="/users")
    assert r.status == 303
    r = kim.get("/")
    assert r.status == 303 and r.location.startswith("/login")
    assert kim.login("kim", "kim-secret-1").status == 401


def test_open_redirect_after_login_is_refused(app: Starlette) -> None:
    b = Browser(app)
    token = b.csrf()
    r = b.post(
        "/login",
        {
            "csrf": token,
            "username": "ada",
            "password": PASSWORDS["ada"],
            "next": "//evil.example/x",
        },
    )
    assert r.status == 303 and r.location == "/"


# ----------------------------------------------------------------------------- pages and flows


def test_transaction_search_and_diagnosis(app: Starlette, world: World) -> None:
    b = signed_in(app, "oli")
    r = b.get(
        "/transactions?" + urllib.parse.urlencode({"pan": "622588 1025", "outcome": "declined"})
    )
    assert (
        r.status == 200 and world.rrns["frozen"] in r.body and world.rrns["approved"] not in r.body
    )
    r = b.get(f"/transactions?rrn={world.rrns['frozen']}")
    assert r.status == 303 and r.location == f"/transactions/{world.rrns['frozen']}"
    page = b.get(r.location)
    assert page.status == 200
    assert 'id="cause"' in page.body and "冻结" in page.body  # cause, in Chinese
    assert "card.frozen" in page.body and "/help/zh/r/card.frozen" in page.body
    en = b.get(r.location + "?lang=en")
    assert "frozen" in en.body.lower() and b.cookies.get("clearpos_lang") == "en"
    r = b.get("/transactions?reason=card.insufficient_funds")
    assert world.rrns["poor"] in r.body and world.rrns["frozen"] not in r.body
    assert b.get("/transactions/999999999999").status == 404


def test_a_typed_full_pan_is_cut_before_it_is_shown(app: Starlette) -> None:
    b = signed_in(app, "oli")
    r = b.get(f"/transactions?pan={PAN}")
    assert r.status == 303 and PAN not in r.location
    assert "pan=622202%2A%2A%2A%2A0123" in r.location
    page = b.get(r.location)
    assert PAN not in page.body and "622202****0123" in page.body
    r = b.get(f"/cards?pan={PAN}")
    assert r.status == 303 and PAN not in r.location
    stranger = Browser(app)  # not signed in: the way back to the search keeps no full PAN either
    r = stranger.get(f"/transactions?pan={PAN}&tid=10000001")
    assert r.status == 303 and PAN not in urllib.parse.unquote(r.location)
    page = stranger.get(r.location)
    assert page.status == 200 and PAN not in page.body
    page = stranger.get(f"/login?next=/transactions%3Fpan%3D{PAN}")
    assert PAN not in page.body
    for echo in (f"/transactions?tid={PAN}", f"/terminals/{PAN}", f"/tickets/new?rrn={PAN}",
                 f"/merchants/{PAN}?lang=en"):  # fmt: skip
        assert PAN not in b.get(echo).body, echo


def test_suspend_pay_request_approve_through_ops(app: Starlette, world: World) -> None:
    mid = "898310048162001"  # the restricted shop: its own state, not shared with other tests
    sam, tom = signed_in(app, "sam"), signed_in(app, "tom")
    page = f"/merchants/{mid}"
    assert (
        sam.act(
            f"{page}/charge", {"kind": "fee", "amount": "30.00", "why": "service fee"}, page
        ).status
        == 303
    )
    assert sam.act(f"{page}/suspend", {"cause": "arrears", "why": "fee unpaid"}, page).status == 303
    shown = sam.get(page).body
    assert "停机（欠费）" in shown and "¥30.00" in shown
    refused = sam.act(f"{page}/request", {"note": "too early"}, page)
    assert refused.status == 303 and "still owes" in sam.get(page).body  # ops refused: shown
    assert (
        sam.act(f"{page}/pay", {"amount": "30.00", "voucher": "V-1", "note": ""}, page).status
        == 303
    )
    assert sam.act(f"{page}/request", {"note": "paid"}, page).status == 303
    with world.db.reader() as tx:
        rid = int(
            tx.conn.execute("SELECT id FROM resumption_requests WHERE mid = ?", (mid,)).fetchone()[
                "id"
            ]
        )
    sam.act(f"/resumption/{rid}/approve", {"mid": mid, "why": "self"}, page)
    assert "cannot also approve" in sam.get(page).body  # four eyes: ops refuses, page says so
    assert (
        tom.act(f"/resumption/{rid}/approve", {"mid": mid, "why": "paid in full"}, page).status
        == 303
    )
    with world.db.reader() as tx:
        m = tx.merchant(mid)
        rows = audit_rows(tx, "merchant", [mid])
    assert m is not None and m.status == "active" and m.arrears_fen == 0
    assert [a.actor for a in rows if a.action == "resumption.approve"] == ["tom"]
    assert {"arrears.fee", "suspend", "arrears.payment", "resumption.request", "resume"} <= {
        a.action for a in rows
    }


def test_rotate_tmk_checks_the_kcv_and_never_shows_the_key(
    app: Starlette, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARPOS_KEK", "5e" * 32)
    new = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F1")
    kcv = check_value(new).hex().upper()
    ada = signed_in(app, "ada")
    page = "/terminals/10000007"
    ada.act(f"{page}/rotate-tmk", {"tmk": new.hex(), "kcv": "ABCDEF", "why": "mistyped"}, page)
    after_bad = ada.get(page).body
    assert "check value typed does not match" in after_bad
    r = ada.act(
        f"{page}/rotate-tmk", {"tmk": new.hex(), "kcv": kcv[:6], "why": "yearly rotation"}, page
    )
    assert r.status == 303
    shown = ada.get(page).body
    assert kcv in shown and new.hex().upper() not in shown.upper()
    with world.db.reader() as tx:
        t = tx.terminal("10000007")
        rows = audit_rows(tx, "terminal", ["10000007"])
    assert t is not None and t.tmk_kcv == kcv and not t.signed_on
    assert rows[-1].action == "rotate_tmk" and rows[-1].actor == "ada"
    assert new.hex().upper() not in json.dumps([r.detail for r in rows]).upper()


def test_replace_terminal_with_a_new_tid_and_tmk(
    app: Starlette, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """换机 from the terminal page: the new TMK is checked against its KCV and never
    shown; the old terminal is retired and points to the new one."""
    monkeypatch.setenv("CLEARPOS_KEK", "5e" * 32)
    new = bytes.fromhex("1F2E3D4C5B6A79788796A5B4C3D2E1F0")
    kcv = check_value(new).hex().upper()
    ada = signed_in(app, "ada")
    page = "/terminals/10000007"
    assert 'id="terminal-replace"' in ada.get(page).body
    ada.act(
        f"{page}/replace", {"new_tid": "1000009", "tmk": new.hex(), "kcv": kcv, "why": "x"}, page
    )
    assert "must be 8 digits" in ada.get(page).body
    ada.act(
        f"{page}/replace",
        {"new_tid": "10000099", "tmk": new.hex(), "kcv": "ABCDEF", "why": "x"},
        page,
    )
    assert "check value typed does not match" in ada.get(page).body
    r = ada.act(
        f"{page}/replace",
        {"new_tid": "10000099", "tmk": new.hex(), "kcv": kcv[:6], "why": "screen broken"},
        page,
    )
    assert r.status == 303
    old_page = ada.get(page).body
    assert 'href="/terminals/10000099"' in old_page and 'id="terminal-replace"' not in old_page
    new_page = ada.get("/terminals/10000099").body
    assert kcv in new_page and new.hex().upper() not in (old_page + new_page).upper()
    with world.db.reader() as tx:
        old_t, new_t = tx.terminal("10000007"), tx.terminal("10000099")
        rows = audit_rows(tx, "terminal", ["10000007", "10000099"])
    assert old_t is not None and old_t.status == "replaced" and old_t.replaced_by == "10000099"
    assert new_t is not None and new_t.mid == old_t.mid and new_t.tmk_kcv == kcv
    assert {r.actor for r in rows if r.action in ("replace", "add")} == {"ada"}
    assert new.hex().upper() not in json.dumps([r.detail for r in rows]).upper()
    # a supervisor (no keys permission) sees no form, and a forged POST is refused
    tom = signed_in(app, "tom")
    assert 'id="terminal-replace"' not in tom.get("/terminals/10000001").body
    forged = {"new_tid": "10000098", "tmk": new.hex(), "kcv": kcv, "why": "x"}
    assert tom.act("/terminals/10000001/replace", forged, "/terminals/10000001").status == 403


def test_maintenance_and_ticket(app: Starlette, world: World) -> None:
    sam = signed_in(app, "sam")
    form = {
        "who": "issuer",
        "start": "2099-06-01T01:00",
        "end": "2099-06-01T02:00",
        "notice_zh": "发卡行维护 01:00–02:00",
        "notice_en": "Issuer maintenance 01:00–02:00",
        "why": "issuer asked",
    }
    assert sam.act("/maintenance", form, "/maintenance").status == 303
    assert "发卡行维护 01:00–02:00" in sam.get("/maintenance").body
    # the month grid (China time): the window sits on 1 June 2099 only
    grid = sam.get("/maintenance?month=2099-06").body
    cell = re.search(r'<td class="[^"]*busy" data-day="(\d+)">(.*?)</td>', grid, re.S)
    assert cell is not None and cell.group(1) == "1", grid
    assert "01:00–02:00" in cell.group(2) and "发卡行" in cell.group(2)
    assert grid.count(" busy") == 1 and 'href="?month=2099-05"' in grid
    assert 'id="month-grid"' in sam.get("/maintenance?month=2099-13").body  # ignored: this month
    assert "发卡行维护 01:00–02:00" in sam.get("/").body
    oli = signed_in(app, "oli")
    r = oli.act(
        "/tickets",
        {
            "title": f"customer says card {PAN} was refused",
            "rrn": world.rrns["frozen"],
            "body": "call back",
        },
        "/tickets/new",
    )
    assert r.status == 303 and re.fullmatch(r"/tickets/\d+", r.location)
    page = oli.get(r.location)
    assert page.status == 200 and world.rrns["frozen"] in page.body and "call back" in page.body
    assert PAN not in page.body and "622202*********0123" in page.body
    assert world.rrns["frozen"] in oli.get("/tickets").body
    r = oli.act(r.location, {"action": "assign", "text": "oli"}, r.location)
    assert r.status == 303


def test_no_page_contains_a_full_pan(
    app: Starlette, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    ada = signed_in(app, "ada")
    with world.db.reader() as tx:
        rrns = [r["id"] for r in tx.conn.execute("SELECT id FROM journal").fetchall()]
        cards = [r["id"] for r in tx.conn.execute("SELECT id FROM cards").fetchall()]
        tickets = [r["id"] for r in tx.conn.execute("SELECT id FROM tickets").fetchall()]
        mids = [m.mid for m in tx.merchants()]
        tids = [t.tid for t in tx.terminals()]
    pages = ["/", "/dashboard/live", "/transactions", "/transactions?outcome=declined", "/merchants",
             "/terminals", "/cards", "/maintenance", "/tickets", "/tickets?status=open", "/users",
             "/tickets/new", "/help/zh", "/help/en", "/help/zh/r/card.frozen"]  # fmt: skip
    pages += [f"/transactions/{i:012d}" for i in rrns]
    pages += [f"/cards/{i}" for i in cards] + [f"/tickets/{i}" for i in tickets]
    pages += [f"/merchants/{m}" for m in mids] + [f"/terminals/{t}" for t in tids]
    seen = 0
    for lang in ("zh", "en"):
        ada.get(f"/?lang={lang}")
        for p in pages:
            r = ada.get(p)
            assert r.status == 200, (p, r.status)
            for pan in TEST_PANS:
                assert pan not in r.body, f"full PAN on {p}"
            assert not FULL_PAN_RE.search(r.body), (p, FULL_PAN_RE.search(r.body))
            seen += 1
    assert seen == 2 * len(pages)
    for record in caplog.records:
        line = record.getMessage()
        assert not any(pan in line for pan in TEST_PANS), line


def test_start_console_serves_in_the_running_loop_and_stops(world: World) -> None:
    import socket
    import urllib.request

    from clearpos.console.app import start_console

    async def scenario() -> tuple[int, str]:
        server = await start_console(world.db, "127.0.0.1", 0, secret=SECRET, announce=False)
        try:
            with socket.socket() as taken:  # a second console on the same port is refused at once
                taken.bind(("127.0.0.1", 0))
                taken.listen(1)
                with pytest.raises(OSError):
                    await start_console(
                        world.db, "127.0.0.1", taken.getsockname()[1], secret=SECRET, announce=False
                    )

            def fetch() -> tuple[int, str]:
                with urllib.request.urlopen(server.url + "/login", timeout=10) as r:
                    return r.status, r.read().decode()

            return await asyncio.to_thread(fetch)
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), 10)

    status, body = asyncio.run(scenario())
    assert status == 200 and 'name="csrf"' in body


def test_month_grid_places_windows_by_china_time() -> None:
    from clearpos.console.queries import month_grid
    from clearpos.store import MaintenanceRec

    def window(wid: int, start: str, end: str) -> MaintenanceRec:
        return MaintenanceRec(wid, "host", start, end, "维护", "maintenance", "sam", start, False)

    across = window(1, "2026-11-30T15:00:00.000000Z", "2026-12-01T18:30:00.000000Z")
    to_midnight = window(2, "2026-11-23T14:00:00.000000Z", "2026-11-23T16:00:00.000000Z")

    def busy(grid: Any) -> dict[int, list[tuple[int, str, str]]]:
        return {
            c[0]: [(s.window.id, s.start, s.end) for s in c[1]]
            for w in grid.weeks
            for c in w
            if c and c[1]
        }

    nov = month_grid(2026, 11, [across, to_midnight])
    # 23:00 CST on the 30th onward; 22:00 until midnight on the 23rd, nothing on the 24th
    assert busy(nov) == {23: [(2, "22:00", "")], 30: [(1, "23:00", "")]}
    dec = month_grid(2026, 12, [across, to_midnight])
    assert busy(dec) == {1: [(1, "", "")], 2: [(1, "", "02:30")]}
    # Monday first: 1 November 2026 is a Sunday; every week has seven cells
    assert nov.weeks[0][:6] == [None] * 6 and nov.weeks[0][6] == (1, [])
    assert all(len(w) == 7 for w in nov.weeks) and (nov.prev, nov.next) == ("2026-10", "2026-12")
    assert (month_grid(2027, 1, []).prev, month_grid(2026, 12, []).next) == ("2026-12", "2027-01")
