"""The pages: sign-in and sign-out, and everything staff read.

Reads go through :class:`~clearpos.console.app.Console.read` (a worker
thread, a read-only snapshot). The only writes here are the audit rows of
signing in and out. Forms that change things live in :mod:`.actions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import urllib.parse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import helpcenter
from ..clock import local, show, utc_iso
from ..diagnosis import diagnose_merchant, diagnose_terminal
from ..diagnosis import tickets as ops_tickets
from ..diagnosis.subjects import outcome_points
from ..ops import arrears as ops_arrears
from ..ops import cards as ops_cards
from ..ops import merchants as ops_merchants
from ..ops import terminals as ops_terminals
from ..ops import users as ops_users
from ..ops.common import Refused, mask_text, now_iso, record
from ..reasons import Lang
from ..store import Tx
from ..store.queries.ops import audit_rows, journal_rows
from ..world import SUSPENSION_CAUSES, TRANSACTION_TYPES
from . import charts, queries
from .chip import chip_view
from .explain import explain, fact_items
from .gate import masked_target, visitor
from .i18n import text
from .security import ROLES, Perm, allowed

if TYPE_CHECKING:
    from .app import Console

__all__ = ["routes"]

log = logging.getLogger("clearpos.console")

HELP_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Help pages carry their own inline stylesheet and no script."""

_DUMMY_HASH = PasswordHasher().hash("clearpos-console-timing-equaliser")
_MAX_NAME = 64


def safe_next(target: str | None) -> str:
    """A same-site path to go to after sign-in; anything else becomes ``/``.

    >>> safe_next("/transactions?rrn=1"), safe_next("//evil.example/"), safe_next("https://x/")
    ('/transactions?rrn=1', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return masked_target(target)


def client_address(request: Request) -> str:
    """The peer address the throttle counts against."""
    return request.client.host if request.client is not None else "-"


def _login_attempt(tx: Tx, username: str, password: str, address: str) -> str | None:
    """Verify a password and write the audit row; the username when it is right."""
    user = ops_users.verify_password(tx, username, password) if username else None
    if user is None:
        if username == "" or ops_users.get_user(tx, username) is None:
            with contextlib.suppress(VerificationError):  # same argon2 cost for unknown users
                PasswordHasher().verify(_DUMMY_HASH, password or "-")
        record(
            tx,
            at=now_iso(),
            by=username or "-",
            entity="user",
            entity_id=username or "-",
            action="login.failed",
            detail={"address": address, "via": "console"},
        )
        return None
    record(
        tx,
        at=now_iso(),
        by=user.username,
        entity="user",
        entity_id=user.username,
        action="login",
        detail={"address": address, "via": "console", "role": user.role},
    )
    return user.username


def _audit_user_event(tx: Tx, username: str, action: str, detail: dict[str, Any]) -> None:
    record(
        tx,
        at=now_iso(),
        by=username,
        entity="user",
        entity_id=username,
        action=action,
        detail=detail,
    )


class Views:
    """Route handlers for the read side; one instance per console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pages = console.pages

    # ------------------------------------------------------------------ sign-in

    async def login_form(self, request: Request) -> Response:
        v = visitor(request)
        if v.signed_in:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        note = ""
        if request.query_params.get("bye"):
            note = "login.signed_out"
        elif request.query_params.get("next"):
            note = "login.expired"
        return self.pages.render(
            request, "login.html", next=safe_next(request.query_params.get("next")),
            error="", note=note, username="",
        )  # fmt: skip

    async def login(self, request: Request) -> Response:
        v = visitor(request)
        form = await request.form()
        username = mask_text(str(form.get("username", "")).strip()[:_MAX_NAME])
        password = str(form.get("password", ""))
        nxt = safe_next(str(form.get("next", "/")))
        address = client_address(request)
        guard = self.console.guard
        locked = guard.locked_until(username, address)
        if locked is None:
            who = await self.console.write(_login_attempt, username, password, address)
            if who is not None:
                guard.success(username, address)
                self.console.sessions.sign_out(v.sid)
                session = self.console.sessions.sign_in(who)
                v.new_sid = session.sid
                log.info("console sign-in: %s from %s", who, address)
                return RedirectResponse(nxt, 303)
            log.warning("console sign-in refused: %r from %s", username, address)
            locked = guard.failure(username, address)
            if locked is not None:
                log.warning(
                    "console sign-in locked: %r from %s until %s",
                    username,
                    address,
                    show(_epoch_iso(locked), seconds=True),
                )
                await self.console.write(
                    _audit_user_event, username or "-", "login.locked",
                    {"address": address, "until": show(_epoch_iso(locked), seconds=True),
                     "lock_s": round(locked - time.time())},
                )  # fmt: skip
        error = "login.refused"
        until = ""
        status = 401
        if locked is not None:
            error, status = "login.locked", 429
            until = show(_epoch_iso(locked), seconds=True)
        return self.pages.render(
            request, "login.html", status=status, next=nxt, error=error, until=until,
            note="", username=username,
        )  # fmt: skip

    async def logout(self, request: Request) -> Response:
        v = visitor(request)
        if v.username is not None:
            await self.console.write(
                _audit_user_event, v.username, "logout", {"address": client_address(request)}
            )
        self.console.sessions.sign_out(v.sid)
        v.new_sid = self.console.sessions.new_id()
        return RedirectResponse("/login?bye=1", 303)

    # ------------------------------------------------------------------ dashboard

    async def dashboard(self, request: Request) -> Response:
        data = await self.console.read(queries.dashboard, self.console.clock.now())
        every = request.query_params.get("every", "10")
        seconds = min(max(int(every), 2), 300) if every.isdecimal() else 10
        return self.pages.render(
            request, "dashboard.html", d=data, charts=self._charts(request, data), every=seconds
        )

    async def dashboard_live(self, request: Request) -> Response:
        data = await self.console.read(queries.dashboard, self.console.clock.now())
        return self.pages.render(
            request, "dashboard_live.html", d=data, charts=self._charts(request, data),
            keep_flashes=True,
        )  # fmt: skip

    def _charts(self, request: Request, d: queries.Dashboard) -> dict[str, Any]:
        lang = visitor(request).lang
        cat = self.console.catalog
        labels = [
            (key, cat.describe(key, lang) if key in cat else key) for key, _ in d.top_declines
        ]
        return {
            "minutes": charts.per_minute(d.per_minute, lang),
            "declines": charts.top_reasons(
                [
                    (key, label, n)
                    for (key, label), (_, n) in zip(labels, d.top_declines, strict=True)
                ],
                lang,
            ),
        }

    # ------------------------------------------------------------------ transactions

    async def transactions(self, request: Request) -> Response:
        p = request.query_params
        pan = queries.parse_pan_query(p.get("pan", ""))
        if pan.was_full:
            again = {k: val for k, val in p.items() if k != "pan"}
            again.update(pan=pan.shown, panfull="1")
            return RedirectResponse("/transactions?" + urllib.parse.urlencode(again), 303)
        q = queries.JournalQuery(
            rrn=p.get("rrn", "").strip(),
            tid=p.get("tid", "").strip(),
            mid=p.get("mid", "").strip(),
            pan=pan,
            reason=p.get("reason", "").strip(),
            kind=p.get("kind", "").strip(),
            outcome=p.get("outcome", "") if p.get("outcome") in ("approved", "declined") else "",
            since=queries.local_input_to_utc(p.get("since", "")) if p.get("since") else "",
            until=queries.local_input_to_utc(p.get("until", "")) if p.get("until") else "",
        )
        if (
            q.rrn
            and q.rrn.isdecimal()
            and not any((q.tid, q.mid, q.pan.like, q.reason, q.kind, q.outcome, q.since, q.until))
        ):
            found = await self.console.read(queries.journal_detail, q.rrn)
            if found is not None:
                return RedirectResponse(f"/transactions/{found.rec.rrn}", 303)
        rows, capped = await self.console.read(queries.search_journal, q)
        return self.pages.render(
            request,
            "transactions.html",
            q=q,
            form={  # typed text is shown back, never a card number in it
                k: mask_text(val) for k, val in {
                    "rrn": q.rrn, "tid": q.tid, "mid": q.mid, "pan": pan.shown, "reason": q.reason,
                    "kind": q.kind, "outcome": q.outcome, "since": p.get("since", ""),
                    "until": p.get("until", ""),
                }.items()
            },
            panfull=bool(p.get("panfull")),
            rows=rows,
            capped=capped,
            limit=queries.SEARCH_LIMIT,
            reasons=self.console.catalog.keys(),
            kinds=(*TRANSACTION_TYPES, "preauth_void", "completion_void", "reversal", "signon",
                   "settlement"),
        )  # fmt: skip

    async def transaction(self, request: Request) -> Response:
        rrn = request.path_params["rrn"]
        lang = visitor(request).lang
        cat = self.console.catalog

        def load(tx: Tx) -> Any:
            d = queries.journal_detail(tx, rrn)
            if d is None:
                return None
            return d, explain(tx, d.rec, lang, cat)

        found = await self.console.read(load)
        if found is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=f"RRN {rrn}"
            )
        detail, why = found
        return self.pages.render(
            request, "transaction.html", d=detail, r=detail.rec, why=why,
            facts=fact_items(detail.rec), chip=chip_view(detail.rec, lang),
        )  # fmt: skip

    # ------------------------------------------------------------------ merchants

    async def merchants(self, request: Request) -> Response:
        rows = await self.console.read(queries.merchant_rows)
        return self.pages.render(request, "merchants.html", rows=rows)

    def _diagnosis(self, tx: Tx, lang: Lang, *, mid: str = "", tid: str = "") -> dict[str, Any]:
        """The diagnosis headline (the one of ``clearpos diagnose``) and the failure chart."""
        now = self.console.clock.now()
        since = now - timedelta(days=7)
        if tid:
            d: Any = diagnose_terminal(tx, tid, since=since, lang=lang, limit=5)
            rows = journal_rows(tx, tids=[tid], since=utc_iso(since))
        else:
            d = diagnose_merchant(tx, mid, since=since, lang=lang, limit=5)
            rows = journal_rows(tx, mid=mid, since=utc_iso(since))
        points, _ = charts.time_buckets(outcome_points(rows), now)
        chart = charts.over_time(points, lang, text("dx.chart", lang)) if points else None
        return {"dx": d, "dx_chart": chart}

    async def merchant(self, request: Request) -> Response:
        mid = request.path_params["mid"]
        lang = visitor(request).lang

        def load(tx: Tx) -> dict[str, Any] | None:
            m = tx.merchant(mid)
            if m is None:
                return None
            return {
                **self._diagnosis(tx, lang, mid=mid),
                "m": m,
                "terminals": tx.terminals(mid),
                "ledger": list(reversed(ops_arrears.ledger(tx, mid))),
                "requests": list(reversed(ops_arrears.requests(tx, mid))),
                "history": list(reversed(audit_rows(tx, "merchant", [mid], limit=50))),
                "recent": queries.recent_for(tx, mid=mid),
                "allowed": ops_merchants.MERCHANT.allowed(m.status),
            }

        data = await self.console.read(load)
        if data is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=f"MID {mid}"
            )
        return self.pages.render(
            request, "merchant.html", causes=SUSPENSION_CAUSES, types=TRANSACTION_TYPES, **data
        )

    # ------------------------------------------------------------------ terminals

    async def terminals(self, request: Request) -> Response:
        rows = await self.console.read(queries.terminal_list)
        return self.pages.render(request, "terminals.html", rows=rows)

    async def terminal(self, request: Request) -> Response:
        tid = request.path_params["tid"]
        lang = visitor(request).lang

        def load(tx: Tx) -> dict[str, Any] | None:
            t = tx.terminal(tid)
            if t is None:
                return None
            return {
                **self._diagnosis(tx, lang, tid=tid),
                "term": t,
                "m": tx.merchant(t.mid),
                "history": list(reversed(audit_rows(tx, "terminal", [tid], limit=50))),
                "recent": queries.recent_for(tx, tid=tid),
                "allowed": ops_terminals.TERMINAL.allowed(t.status),
            }

        data = await self.console.read(load)
        if data is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=f"TID {tid}"
            )
        return self.pages.render(request, "terminal.html", **data)

    # ------------------------------------------------------------------ cards

    async def cards(self, request: Request) -> Response:
        pan = queries.parse_pan_query(request.query_params.get("pan", ""))
        if pan.was_full:
            return RedirectResponse(
                "/cards?" + urllib.parse.urlencode({"pan": pan.shown, "panfull": "1"}), 303
            )
        rows = await self.console.read(queries.card_list, pan)
        return self.pages.render(
            request, "cards.html", rows=rows, pan=pan.shown,
            panfull=bool(request.query_params.get("panfull")),
        )  # fmt: skip

    async def card(self, request: Request) -> Response:
        card_id = int(request.path_params["card_id"])

        def load(tx: Tx) -> dict[str, Any] | None:
            c = tx.card(card_id)
            if c is None:
                return None
            return {
                "c": c,
                "history": list(reversed(audit_rows(tx, "card", [str(card_id)], limit=50))),
                "recent": queries.recent_for(tx, card_id=card_id),
                "allowed": [a for a in ops_cards.CARD.allowed(c.status) if a in ops_cards.ACTIONS],
                "can_unlock": c.pin_locked and "unlock_pin" in ops_cards.CARD.allowed(c.status),
            }

        data = await self.console.read(load)
        if data is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=f"card {card_id}"
            )
        return self.pages.render(request, "card.html", **data)

    # ------------------------------------------------------------------ maintenance

    async def maintenance(self, request: Request) -> Response:
        now = self.console.clock.now()
        upcoming, past, every = await self.console.read(queries.maintenance_windows, now)
        today = local(now)
        year, month = today.year, today.month
        asked = request.query_params.get("month", "")
        if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", asked):
            year, month = int(asked[:4]), int(asked[5:])
        grid = queries.month_grid(year, month, every)
        return self.pages.render(
            request, "maintenance.html", upcoming=upcoming, past=past,
            now=now_iso(now), grid=grid,
            today=today.day if (today.year, today.month) == (year, month) else 0,
        )  # fmt: skip

    # ------------------------------------------------------------------ tickets

    async def tickets(self, request: Request) -> Response:
        status = request.query_params.get("status", "")
        mine = request.query_params.get("mine", "")
        owner = visitor(request).username if mine else None
        wanted = status if status in ops_tickets.STATUSES else None

        def load(tx: Tx) -> list[ops_tickets.Ticket]:
            rows = ops_tickets.list_tickets(tx, status=wanted, owner=owner)
            if status == "":  # default: everything not closed
                rows = [r for r in rows if r.status != "closed"]
            return rows

        rows = await self.console.read(load)
        return self.pages.render(
            request, "tickets.html", rows=rows, wanted_status=status, statuses=ops_tickets.STATUSES,
            mine=bool(mine),
        )  # fmt: skip

    async def ticket_form(self, request: Request) -> Response:
        p = request.query_params
        refs = {k: mask_text(p.get(k, "").strip()) for k in ("tid", "mid", "rrn")}
        return self.pages.render(request, "ticket_new.html", refs=refs)

    async def ticket(self, request: Request) -> Response:
        ticket_id = int(request.path_params["ticket_id"])

        def load(tx: Tx) -> dict[str, Any] | None:
            try:
                tk = ops_tickets.get_ticket(tx, ticket_id)
            except Refused:
                return None
            return {
                "tk": tk,
                "comments": ops_tickets.comments(tx, ticket_id),
                "history": list(reversed(audit_rows(tx, "ticket", [str(ticket_id)]))),
                "allowed": ops_tickets.TICKET.allowed(tk.status),
                "users": [u.username for u in ops_users.list_users(tx) if not u.disabled],
            }

        data = await self.console.read(load)
        if data is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=f"#{ticket_id}"
            )
        ev = data["tk"].evidence
        lang = visitor(request).lang
        explained = (ev.get("transaction") or {}).get("explained", {}).get(lang)
        diagnosis = (ev.get("diagnosis") or {}).get(lang)
        evidence_json = json.dumps(ev, ensure_ascii=False, indent=1, sort_keys=True)
        return self.pages.render(
            request, "ticket.html", ev=ev, explained=explained, diagnosis=diagnosis,
            evidence_json=evidence_json, **data,
        )  # fmt: skip

    # ------------------------------------------------------------------ users

    async def users(self, request: Request) -> Response:
        v = visitor(request)
        if not allowed(v.role, Perm.USERS):
            return self.pages.message(
                request, "forbidden.title", "forbidden.body", 403, role=v.role or "-"
            )
        rows = await self.console.read(ops_users.list_users)
        return self.pages.render(request, "users.html", rows=rows, roles=ROLES)

    # ------------------------------------------------------------------ help (no sign-in)

    async def help_root(self, request: Request) -> Response:
        """``/help`` (``?reason=KEY`` for one reason's page) -> the help centre in the language."""
        lang = visitor(request).lang
        reason = request.query_params.get("reason", "")
        query = request.query_params.get("q", "")
        if query:  # the search box: a help code, a code, a key or the words of a screen
            found = helpcenter.resolve(query, lang)
            return RedirectResponse(found or f"/help/{lang}", 303)
        return RedirectResponse(
            helpcenter.help_url(reason, lang) if reason else f"/help/{lang}", 303
        )

    async def help_page(self, request: Request) -> Response:
        """One page of the help centre, exactly as :mod:`clearpos.helpcenter` renders it."""
        lang = request.path_params["lang"]
        slug = request.path_params.get("slug", "index")
        contact = await self.console.read(_contact)
        page = await asyncio.to_thread(helpcenter.render_page, lang, slug, contact)
        if page is None:
            return self.pages.message(
                request, "notfound.title", "notfound.body", 404, what=request.url.path
            )
        return HTMLResponse(
            page,
            headers={"content-security-policy": HELP_CSP, "cache-control": "public, max-age=300"},
        )

    # ------------------------------------------------------------------ misc

    async def healthz(self, request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")


def _contact(tx: Tx) -> helpcenter.Contact | None:
    """The company, hotline and hours the loaded world gave (None: an older store)."""
    company = tx.meta("acquirer.company")
    if not company:
        return None
    return helpcenter.Contact(company, tx.meta("acquirer.hotline"), tx.meta("acquirer.hours"))


def _epoch_iso(epoch: float) -> str:
    from datetime import UTC, datetime

    from ..clock import utc_iso

    return utc_iso(datetime.fromtimestamp(epoch, UTC))


def routes(console: Console) -> list[Route]:
    """The read-side routes of the console."""
    v = Views(console)
    return [
        Route("/login", v.login_form, methods=["GET"]),
        Route("/login", v.login, methods=["POST"]),
        Route("/logout", v.logout, methods=["POST"]),
        Route("/", v.dashboard, methods=["GET"]),
        Route("/dashboard/live", v.dashboard_live, methods=["GET"]),
        Route("/transactions", v.transactions, methods=["GET"]),
        Route("/transactions/{rrn}", v.transaction, methods=["GET"]),
        Route("/merchants", v.merchants, methods=["GET"]),
        Route("/merchants/{mid}", v.merchant, methods=["GET"]),
        Route("/terminals", v.terminals, methods=["GET"]),
        Route("/terminals/{tid}", v.terminal, methods=["GET"]),
        Route("/cards", v.cards, methods=["GET"]),
        Route("/cards/{card_id:int}", v.card, methods=["GET"]),
        Route("/maintenance", v.maintenance, methods=["GET"]),
        Route("/tickets", v.tickets, methods=["GET"]),
        Route("/tickets/new", v.ticket_form, methods=["GET"]),
        Route("/tickets/{ticket_id:int}", v.ticket, methods=["GET"]),
        Route("/users", v.users, methods=["GET"]),
        Route("/help", v.help_root, methods=["GET"]),
        Route("/help/{lang}", v.help_page, methods=["GET"]),
        Route("/help/{lang}/{slug:path}", v.help_page, methods=["GET"]),
        Route("/healthz", v.healthz, methods=["GET"]),
    ]
