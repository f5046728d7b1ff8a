"""Rendering: the Jinja2 environment, the filters templates use, and the standard pages.

Templates get, besides their own data: ``t(key, **facts)`` for the console's
labels, ``lang``, ``user`` / ``role``, ``can(perm)``, ``csrf`` (the hidden field
every form carries), ``path`` and ``flash``. Reason texts always come from the
catalog (``reason_screen``, ``reason_actor``) so pages and terminals say the
same thing.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..clock import show
from ..money import fen_label
from ..ops.tickets import mask_text
from ..reasons import Lang
from .gate import masked_target
from .i18n import STRINGS, text
from .security import Perm, allowed

if TYPE_CHECKING:
    from .app import Console

PACKAGE_DIR = Path(__file__).resolve().parent

__all__ = ["PACKAGE_DIR", "Pages", "help_link", "yuan"]


#: fen as yuan on a page (``¥1,234.56``), the name the templates use
yuan = fen_label


def local_time(iso: str | None, seconds: bool = False) -> str:
    """A stored UTC time as Beijing time, ``2026-11-23 10:02``; ``-`` when missing."""
    if not iso:
        return "-"
    try:
        return show(iso, seconds=seconds)
    except ValueError:
        return iso


def help_link(key_or_code: str, lang: Lang) -> str:
    """The help page of a reason key or field 39 code (``/help/zh/r/card.frozen``)."""
    from ..helpcenter import help_url

    return help_url(key_or_code, lang)


class Pages:
    """Renders templates for one console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.env = Environment(
            loader=FileSystemLoader(PACKAGE_DIR / "templates"),
            autoescape=select_autoescape(("html",), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["yuan"] = yuan
        self.env.filters["local"] = local_time
        self.env.filters["scrub"] = mask_text
        self.env.filters["pct"] = lambda x: "-" if x is None else f"{x * 100:.1f}%"

    def render(
        self, request: Request, template: str, status: int = 200, **data: Any
    ) -> HTMLResponse:
        """A full page, with the frame's data added."""
        from .gate import visitor

        v = visitor(request)
        lang = v.lang
        cat = self.console.catalog
        flashes: list[tuple[str, str]] = []
        if v.session is not None and not data.pop("keep_flashes", False):
            flashes, v.session.flashes = v.session.flashes, []

        def t(key: str, **facts: object) -> str:
            return text(key, lang, **facts)

        def reason_screen(key: str, code: str = "", **facts: object) -> str:
            return cat.describe(key, lang, **facts) if key in cat else cat.code_text(code, lang)

        def reason_actor(key: str) -> str:
            r = cat.get(key)
            return r.actor.get(lang) if r is not None else ""

        def state(value: str, cause: str = "") -> str:
            shown = STRINGS.get(f"state.{value}")
            word = (shown[0] if lang == "zh" else shown[1]) if shown else value
            if cause:
                c = STRINGS.get(f"cause.{cause}")
                why = (c[0] if lang == "zh" else c[1]) if c else cause
                word += f"（{why}）" if lang == "zh" else f" ({why})"
            return word

        def lang_url(to: str) -> str:
            q = dict(request.query_params)
            q["lang"] = to
            return masked_target(request.url.path + "?" + urllib.parse.urlencode(q))

        context: dict[str, Any] = {
            "t": t,
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "lang_url": lang_url,
            "user": v.username,
            "role": v.role,
            "can": lambda perm: allowed(v.role, Perm(perm)),
            "csrf": Markup('<input type="hidden" name="csrf" value="{}">').format(v.csrf),
            "csrf_token": v.csrf,
            "path": request.url.path,
            "flashes": flashes,
            "reason_screen": reason_screen,
            "reason_actor": reason_actor,
            "state": state,
            "help_link": lambda key: help_link(key, lang),
            "catalog": cat,
        }
        context.update(data)
        body = self.env.get_template(template).render(context)
        return HTMLResponse(body, status_code=status)

    def message(
        self,
        request: Request,
        title_key: str,
        body_key: str,
        status: int = 200,
        **facts: object,
    ) -> HTMLResponse:
        """A page that says one thing (forbidden, not found, form expired)."""
        shown = {k: mask_text(v) if isinstance(v, str) else v for k, v in facts.items()}
        return self.render(
            request, "message.html", status=status, title_key=title_key, body_key=body_key,
            facts=shown,
        )  # fmt: skip

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """404 (and 405) page."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if "visitor" not in request.scope:
            return HTMLResponse("not found", status_code=status)
        return self.message(
            request, "notfound.title", "notfound.body", status, what=request.url.path
        )

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """500: a plain page that shows no internals."""
        return HTMLResponse(
            "<!doctype html><title>500</title><p>Internal error / 内部错误</p>", status_code=500
        )
