"""Rendering: the Jinja2 environment, the filters templates use, and the standard pages.

Templates get, besides their own data: ``t(key, **facts)`` for the console's
labels, ``lang``, ``user`` / ``role``, ``can(perm)``, ``csrf`` (the hidden field
every form carries), ``path`` and ``flash``. Reason texts always come from the
catalog (``reason_screen``, ``reason_actor``) so pages and terminals say the
same thing.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..clock import show
from ..money import fen_label
from ..ops.common import mask_text
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


_COMMAND = re.compile(
    r"clearpos(?: (?:\.\.\.|--?[\w-]+|[A-Z][A-Z_]*|[0-9][\w.]*|(?!(?:to|and|or|the|with|for|"
    r"once|if|then|again|when|first|before|after|on|in|it)\b)[a-z][a-z_-]*))+"
)


def commands(text: str) -> Markup:
    """Escape ``text`` and set each ``clearpos ...`` command in it as code, so a reader
    (and the check for untranslated words) tells a command from prose."""
    out, last = [], 0
    for m in _COMMAND.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(Markup('<code class="cmd key">{}</code>').format(m.group(0)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def enum_word(group: str, value: str, lang: Lang) -> str:
    """``enum_word("kind", "purchase", "zh")`` -> ``消费``; the value itself when unknown
    (a test fails on any shown untranslated)."""
    from ..diagnosis.sentences import ACTION, KIND

    pair = STRINGS.get(f"{group}.{value}")
    if pair is None:
        pair = {"kind": KIND, "action": ACTION}.get(group, {}).get(value)
    return (pair[0] if lang == "zh" else pair[1]) if pair else value


def entry_mode_text(mode: str | None, lang: Lang) -> str:
    """Field 22 in words: ``022`` -> ``刷卡，不能输密码 (022)``; ``-`` when missing."""
    if not mode:
        return "–"
    how = STRINGS.get(f"entry.{mode[:2]}")
    pin = STRINGS.get(f"pin.{mode[2:3]}")
    if how is None:
        return mode
    i = 0 if lang == "zh" else 1
    words = how[i] + (("，" if lang == "zh" else ", ") + pin[i] if pin else "")
    return f"{words} ({mode})"


def state_text(value: str, lang: Lang) -> str:
    """An audited state such as ``suspended(arrears)`` in words: ``停机（欠费）``."""
    if not value:
        return "–"
    base, _, cause = value.partition("(")
    shown = enum_word("state", base, lang)
    if cause:
        why = enum_word("cause", cause.rstrip(")"), lang)
        shown += f"（{why}）" if lang == "zh" else f" ({why})"
    return shown


def state_why(by: str, why: str) -> str:
    """The why of a state as shown (the seed's "loaded from FILE" is no reason)."""
    from ..diagnosis.sentences import state_why as why_of

    return why_of(by, why) or "–"


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
        self.env.filters["commands"] = lambda s: commands(mask_text(s))
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

        def enum(group: str, value: str) -> str:
            """A stored value (a kind, an action, a ledger event) in the page's language."""
            return enum_word(group, value, lang)

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
            "enum": enum,
            "entry": lambda mode: entry_mode_text(mode, lang),
            "state_text": lambda value: state_text(value, lang),
            "why": lambda by, why: state_why(by, why),
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
