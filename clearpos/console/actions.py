"""The forms that change things. Each one is a call of a :mod:`clearpos.ops` function.

The gate has already checked the CSRF token; every handler here checks the
signed-in user's role on the server (:func:`~.security.allowed`) before
anything else, then runs the operation in one transaction with ``by`` set to
the signed-in user, so the audit row says who did it -- the same row the
command line writes. A refusal (:class:`clearpos.ops.common.Refused`) is
shown to the user as it is: it says what is allowed instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..diagnosis import tickets as ops_tickets
from ..keys import SecurityModule
from ..money import parse_yuan
from ..ops import arrears as ops_arrears
from ..ops import cards as ops_cards
from ..ops import maintenance as ops_maintenance
from ..ops import merchants as ops_merchants
from ..ops import terminals as ops_terminals
from ..ops import users as ops_users
from ..ops.common import Change, Refused
from ..store import Tx
from .gate import visitor
from .i18n import text
from .security import Perm, allowed

if TYPE_CHECKING:
    from .app import Console

__all__ = ["routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _summary(result: Any) -> str:
    """One line about what an operation did, from the Change(s) it returned."""
    changes: list[Change] = []
    items = result if isinstance(result, tuple) else (result,)
    changes = [c for c in items if isinstance(c, Change)]
    if not changes:
        return ""
    c = changes[-1]
    if c.from_state and c.to_state and c.from_state != c.to_state:
        move = f" ({c.from_state} → {c.to_state})"
    elif c.to_state and not c.from_state:
        move = f" ({c.to_state})"
    else:
        move = ""
    return f"{c.entity} {c.entity_id}: {c.action}{move}"


class Actions:
    """Handlers of the mutating routes; one instance per console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def guarded(
        self,
        perm: Perm,
        back: Callable[[Request, FormData], str],
        op: Callable[[Request, FormData, str], Callable[[Tx], Any]],
    ) -> Endpoint:
        """A route: check ``perm``, build the operation from the form, run it, go ``back``."""

        async def endpoint(request: Request) -> Response:
            v = visitor(request)
            if not allowed(v.role, perm) or v.username is None or v.session is None:
                return self.console.pages.message(
                    request, "forbidden.title", "forbidden.body", 403, role=v.role or "-"
                )
            form = await request.form()
            target = back(request, form)
            try:
                unit = op(request, form, v.username)
                result = await self.console.write(unit)
            except Refused as exc:
                v.session.flashes.append(("error", exc.message))
            except ValueError as exc:
                v.session.flashes.append(("error", str(exc)))
            else:
                summary = _summary(result)
                done = text("done", v.lang)
                v.session.flashes.append(("ok", f"{done} {summary}".strip()))
                post = getattr(unit, "after", None)
                if callable(post):
                    target = post(result) or target
            return RedirectResponse(target, 303)

        return endpoint

    # ------------------------------------------------------------------ operations

    @staticmethod
    def merchant_back(request: Request, form: FormData) -> str:
        return f"/merchants/{request.path_params['mid']}"

    @staticmethod
    def terminal_back(request: Request, form: FormData) -> str:
        return f"/terminals/{request.path_params['tid']}"

    @staticmethod
    def card_back(request: Request, form: FormData) -> str:
        return f"/cards/{request.path_params['card_id']}"

    @staticmethod
    def request_back(request: Request, form: FormData) -> str:
        mid = _field(form, "mid")
        return f"/merchants/{mid}" if mid.isalnum() else "/merchants"


def _suspend(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, cause, why = request.path_params["mid"], _field(form, "cause"), _field(form, "why")
    return lambda tx: ops_merchants.suspend(tx, mid, cause, by=by, why=why)


def _resume(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, why = request.path_params["mid"], _field(form, "why")
    return lambda tx: ops_merchants.resume(tx, mid, by=by, why=why)


def _restrict(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, why = request.path_params["mid"], _field(form, "why")
    types = [t for t in form.getlist("types") if isinstance(t, str)]
    return lambda tx: ops_merchants.restrict(tx, mid, types, by=by, why=why)


def _lift(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, why = request.path_params["mid"], _field(form, "why")
    return lambda tx: ops_merchants.lift(tx, mid, by=by, why=why)


def _limit(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, why = request.path_params["mid"], _field(form, "why")
    fen = parse_yuan(_field(form, "amount").strip())
    return lambda tx: ops_merchants.set_single_limit(tx, mid, fen, by=by, why=why)


def _charge(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, kind, why = request.path_params["mid"], _field(form, "kind"), _field(form, "why")
    fen, voucher = (
        parse_yuan(_field(form, "amount").strip(), positive=True),
        _field(form, "voucher"),
    )
    return lambda tx: ops_arrears.charge(tx, mid, kind, fen, by=by, why=why, voucher=voucher)


def _pay(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, voucher, note = request.path_params["mid"], _field(form, "voucher"), _field(form, "note")
    fen = parse_yuan(_field(form, "amount").strip(), positive=True)
    return lambda tx: ops_arrears.pay(tx, mid, fen, voucher, by=by, note=note)


def _request_resumption(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    mid, note = request.path_params["mid"], _field(form, "note")
    return lambda tx: ops_arrears.request_resumption(tx, mid, by=by, note=note)


def _approve(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    rid, why = int(request.path_params["rid"]), _field(form, "why")
    return lambda tx: ops_arrears.approve(tx, rid, by=by, why=why)


def _reject(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    rid, why = int(request.path_params["rid"]), _field(form, "why")
    return lambda tx: ops_arrears.reject(tx, rid, by=by, why=why)


def _terminal_move(action: str) -> Callable[[Request, FormData, str], Callable[[Tx], Any]]:
    def build(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
        tid, why = request.path_params["tid"], _field(form, "why")
        fn = ops_terminals.suspend if action == "suspend" else ops_terminals.resume
        return lambda tx: fn(tx, tid, by=by, why=why)

    return build


def _software(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    tid, version, why = request.path_params["tid"], _field(form, "version"), _field(form, "why")
    return lambda tx: ops_terminals.set_min_software(tx, tid, version.strip(), by=by, why=why)


def _typed_tmk(form: FormData) -> bytes:
    """A TMK typed by the key custodian, checked against the KCV typed beside it."""
    from ..keys.crypto import check_value

    raw = "".join(_field(form, "tmk").split())
    expected = _field(form, "kcv").strip().upper()
    try:
        tmk = bytes.fromhex(raw)
    except ValueError:
        raise ValueError("the TMK must be 32 hexadecimal digits (16 bytes)") from None
    if len(tmk) != 16:
        raise ValueError("the TMK must be 32 hexadecimal digits (16 bytes)")
    kcv = check_value(tmk).hex().upper()
    if len(expected) < 6 or not kcv.startswith(expected):
        raise ValueError(
            "the check value typed does not match the TMK typed: re-enter both "
            "(the key custodian's KCV, at least 6 hex digits)"
        )
    return tmk


def _rotate_tmk(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    """Rotate a TMK typed by the key custodian; it is checked against its KCV, never shown."""
    tid, why = request.path_params["tid"], _field(form, "why")
    tmk = _typed_tmk(form)
    hsm = SecurityModule.load()
    return lambda tx: ops_terminals.rotate_tmk(tx, hsm, tid, tmk, by=by, why=why)


def _replace(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    """换机: retire the terminal for a new TID of the same merchant, with the new
    device's TMK (typed, checked against its KCV, sealed, never shown)."""
    tid, why = request.path_params["tid"], _field(form, "why")
    new_tid = _field(form, "new_tid").strip()
    if not (len(new_tid) == 8 and new_tid.isascii() and new_tid.isdecimal()):
        raise ValueError(f"the new terminal id must be 8 digits (field 41), got {new_tid!r}")
    tmk = _typed_tmk(form)
    hsm = SecurityModule.load()
    return lambda tx: ops_terminals.replace(tx, hsm, tid, new_tid, tmk, by=by, why=why)


def _card_move(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    card_id, action, why = (
        int(request.path_params["card_id"]),
        _field(form, "action"),
        _field(form, "why"),
    )
    if action not in ops_cards.ACTIONS:
        raise ValueError(f"card action must be one of {', '.join(ops_cards.ACTIONS)}")

    def unit(tx: Tx) -> Any:
        card = ops_cards.find_card(tx, card_id=card_id)
        return ops_cards.move(tx, card, action, by=by, why=why)

    return unit


def _unlock_pin(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    card_id, why = int(request.path_params["card_id"]), _field(form, "why")

    def unit(tx: Tx) -> Any:
        card = ops_cards.find_card(tx, card_id=card_id)
        return ops_cards.unlock_pin(tx, card, by=by, why=why)

    return unit


def _schedule(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    who = _field(form, "who")
    start = ops_maintenance.parse_moment(_field(form, "start"))
    end = ops_maintenance.parse_moment(_field(form, "end"))
    zh, en, why = _field(form, "notice_zh"), _field(form, "notice_en"), _field(form, "why")
    return lambda tx: ops_maintenance.schedule(tx, who, start, end, zh, en, by=by, why=why)


def _cancel_window(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    wid, why = int(request.path_params["wid"]), _field(form, "why")
    return lambda tx: ops_maintenance.cancel(tx, wid, by=by, why=why)


def _add_user(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    username, role, password = (
        _field(form, "username").strip(),
        _field(form, "role"),
        _field(form, "password"),
    )
    return lambda tx: ops_users.add_user(tx, username, role, password, by=by)


class _DisableUser:
    """Disable a user and end their console sessions once it is committed."""

    def __init__(self, console: Console, username: str, by: str, why: str) -> None:
        self.console, self.username, self.by, self.why = console, username, by, why

    def __call__(self, tx: Tx) -> Any:
        return ops_users.disable_user(tx, self.username, by=self.by, why=self.why)

    def after(self, result: Any) -> str | None:
        self.console.sessions.sign_out_user(self.username)
        return None


class _OpenTicket:
    """Open a ticket (evidence gathered by ops), add its description as the first comment."""

    def __init__(self, form: FormData, by: str) -> None:
        self.by = by
        self.title = _field(form, "title")
        self.body = _field(form, "body")
        self.refs = {k: _field(form, k).strip() for k in ("tid", "mid", "rrn")}
        self.owner = _field(form, "owner").strip()

    def __call__(self, tx: Tx) -> Any:
        ticket, change = ops_tickets.open_ticket(
            tx,
            self.title,
            by=self.by,
            owner=self.owner,
            tid=self.refs["tid"],
            mid=self.refs["mid"],
            rrn=self.refs["rrn"],
        )
        if self.body.strip():
            ops_tickets.comment(tx, ticket.id, self.body, by=self.by)
        return ticket, change

    def after(self, result: Any) -> str:
        return f"/tickets/{result[0].id}"


def _open_ticket(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    return _OpenTicket(form, by)


def _ticket_step(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
    """One ticket action from the form's ``action``: comment, assign, resolve, close, reopen."""
    ticket_id, action = int(request.path_params["ticket_id"]), _field(form, "action")
    value = _field(form, "text")
    if action == "comment":
        return lambda tx: ops_tickets.comment(tx, ticket_id, value, by=by)
    if action == "assign":
        return lambda tx: ops_tickets.assign(tx, ticket_id, value or by, by=by)
    if action == "resolve":
        return lambda tx: ops_tickets.resolve(tx, ticket_id, value, by=by)
    if action == "close":
        return lambda tx: ops_tickets.close(tx, ticket_id, by=by, why=value)
    if action == "reopen":
        return lambda tx: ops_tickets.reopen(tx, ticket_id, by=by, why=value)
    raise ValueError("ticket action must be comment, assign, resolve, close or reopen")


def routes(console: Console) -> list[Route]:
    """The mutating routes of the console (POST only)."""
    a = Actions(console)
    m, t, c = a.merchant_back, a.terminal_back, a.card_back

    def disable(request: Request, form: FormData, by: str) -> Callable[[Tx], Any]:
        return _DisableUser(console, request.path_params["username"], by, _field(form, "why"))

    def users_back(request: Request, form: FormData) -> str:
        return "/users"

    def maintenance_back(request: Request, form: FormData) -> str:
        return "/maintenance"

    def tickets_back(request: Request, form: FormData) -> str:
        return "/tickets/new"

    def ticket_back(request: Request, form: FormData) -> str:
        return f"/tickets/{request.path_params['ticket_id']}"

    table: list[tuple[str, Perm, Callable[[Request, FormData], str], Any]] = [
        ("/merchants/{mid}/suspend", Perm.LIFECYCLE, m, _suspend),
        ("/merchants/{mid}/resume", Perm.LIFECYCLE, m, _resume),
        ("/merchants/{mid}/restrict", Perm.LIFECYCLE, m, _restrict),
        ("/merchants/{mid}/lift", Perm.LIFECYCLE, m, _lift),
        ("/merchants/{mid}/limit", Perm.LIFECYCLE, m, _limit),
        ("/merchants/{mid}/charge", Perm.PAYMENTS, m, _charge),
        ("/merchants/{mid}/pay", Perm.PAYMENTS, m, _pay),
        ("/merchants/{mid}/request", Perm.PAYMENTS, m, _request_resumption),
        ("/resumption/{rid:int}/approve", Perm.APPROVE, a.request_back, _approve),
        ("/resumption/{rid:int}/reject", Perm.APPROVE, a.request_back, _reject),
        ("/terminals/{tid}/suspend", Perm.LIFECYCLE, t, _terminal_move("suspend")),
        ("/terminals/{tid}/resume", Perm.LIFECYCLE, t, _terminal_move("resume")),
        ("/terminals/{tid}/software", Perm.LIFECYCLE, t, _software),
        ("/terminals/{tid}/rotate-tmk", Perm.KEYS, t, _rotate_tmk),
        ("/terminals/{tid}/replace", Perm.KEYS, t, _replace),
        ("/cards/{card_id:int}/status", Perm.LIFECYCLE, c, _card_move),
        ("/cards/{card_id:int}/unlock-pin", Perm.LIFECYCLE, c, _unlock_pin),
        ("/maintenance", Perm.MAINTENANCE, maintenance_back, _schedule),
        ("/maintenance/{wid:int}/cancel", Perm.MAINTENANCE, maintenance_back, _cancel_window),
        ("/tickets", Perm.TICKETS, tickets_back, _open_ticket),
        ("/tickets/{ticket_id:int}", Perm.TICKETS, ticket_back, _ticket_step),
        ("/users", Perm.USERS, users_back, _add_user),
        ("/users/{username}/disable", Perm.USERS, users_back, disable),
    ]
    return [
        Route(path, a.guarded(perm, back, op), methods=["POST"]) for path, perm, back, op in table
    ]
