"""The merchant help center: one page per screen message, per field 39 code, per situation.

Pages are generated from the reason catalog (:mod:`clearpos.reasons`) and a
small hand-written guide (``guide.toml``: situations, one-sentence meanings,
the causes clearpos tells apart and how, what not to do, when to open a
ticket). ``clearpos docs build`` writes them to ``docs/help/{zh,en}`` as
Markdown and HTML; the console serves the same pages under ``/help``.

For the console and everything that links to help:

- :func:`render_index` / :func:`render_page` -- HTML with console links;
- :func:`help_url` -- the stable path of a reason key or code's page;
- :func:`short_code` -- what a merchant reads off the screen and types to find it
  (``H62`` for a code, ``H62A`` for a reason);
- :func:`resolve` -- the page for what a merchant typed.

URL scheme (``slug`` is the same in both languages)::

    /help/<lang>                 index, grouped by the situations of SCENARIOS.md
    /help/<lang>/r/<reason key>  one screen message, e.g. /help/zh/r/card.frozen
    /help/<lang>/c/<code>        one field 39 code,   e.g. /help/zh/c/62
    /help/<lang>/s/<situation>   one situation,       e.g. /help/zh/s/sign-on-again

>>> help_url("card.frozen")
'/help/zh/r/card.frozen'
>>> help_url("62", "en"), help_url("code.A0"), help_url("Z9")
('/help/en/c/62', '/help/zh/c/A0', '/help/zh')
>>> short_code("62"), short_code("card.frozen")
('H62', 'H62A')
>>> resolve("h62"), resolve("H62A"), resolve("请重新签到"), resolve("MAC校验错，请重新签到", "en")
('/help/zh/c/62', '/help/zh/r/card.frozen', '/help/zh/s/sign-on-again', '/help/en/r/mac.invalid')
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..reasons import LANGS, Lang, catalog
from . import guide as _guide
from .build import BuildReport
from .build import build as _build
from .build import stale as _stale
from .guide import Guide, GuideError, load_guide
from .pages import Contact, HelpSite
from .pages import short_code as _short_code
from .render import HELP_PREFIX, ServedLinks, to_html

__all__ = [
    "HELP_PREFIX",
    "BuildReport",
    "Contact",
    "Guide",
    "GuideError",
    "HelpSite",
    "build",
    "help_url",
    "load_guide",
    "render_index",
    "render_page",
    "resolve",
    "short_code",
    "site",
    "stale",
]


@cache
def packaged_contact() -> Contact:
    """The company, hotline and hours of the packaged demo world (``clearpos demo``'s)."""
    from importlib import resources

    with resources.as_file(resources.files("clearpos.data").joinpath("world.toml")) as path:
        return contact_of(path)


def contact_of(world_file: Path) -> Contact:
    """The ``[acquirer]`` company, hotline and hours of a world file (WorldError if bad)."""
    from ..world import load_world

    a = load_world(world_file).acquirer
    return Contact(a.company_name, a.hotline, a.hours)


@cache
def site(contact: Contact | None = None) -> HelpSite:
    """The help pages of the packaged catalog and guide for ``contact`` (default: the
    packaged world's), built once per contact."""
    return HelpSite(catalog(), _guide.guide(), contact or packaged_contact())


def _lang(lang: str) -> Lang | None:
    return "zh" if lang == "zh" else "en" if lang == "en" else None


def render_page(lang: str, slug: str, contact: Contact | None = None) -> str | None:
    """The HTML of page ``slug`` in ``lang`` with console links, or None if there is none.

    ``slug`` is ``""`` or ``index``, ``r/<reason key>``, ``c/<code>`` (any case) or
    ``s/<situation>``: the path after ``/help/<lang>/``. No sign-in is needed to
    show it: pages hold no merchant data.
    """
    code = _lang(lang)
    page = site(contact).page(code, slug) if code is not None else None
    return to_html(page, ServedLinks()) if page is not None else None


def render_index(lang: str, contact: Contact | None = None) -> str:
    """The HTML of the index in ``lang`` (``zh`` or ``en``) with console links.

    ValueError for another language.
    """
    html = render_page(lang, "index", contact)
    if html is None:
        raise ValueError(f"no help pages in {lang!r}: use one of {', '.join(LANGS)}")
    return html


def help_url(key_or_code: str, lang: str = "zh") -> str:
    """The console path of the help page for a reason key or a field 39 code.

    Accepts a reason key (``card.frozen``), a code (``62``, ``a0``), a terminal's
    ``code.62`` or a short code (``H62``). Anything else gets the index, so a link
    built from a screen is never dead. An unknown ``lang`` gives Chinese.
    """
    code = _lang(lang) or "zh"
    text = key_or_code.strip()
    cat = catalog()
    if text in cat:
        return f"{HELP_PREFIX}/{code}/r/{text}"
    named = cat.for_help_code(text)
    if named is not None and text.upper() not in ("H" + c for c in cat.codes):
        return f"{HELP_PREFIX}/{code}/r/{named}"
    candidates = [text]
    if text.startswith("code."):
        candidates.append(text[5:])
    if text[:1] in ("H", "h"):
        candidates.append(text[1:])
    for candidate in candidates:
        if candidate.upper() in cat.codes:
            return f"{HELP_PREFIX}/{code}/c/{candidate.upper()}"
    return f"{HELP_PREFIX}/{code}"


def short_code(key_or_code: str) -> str:
    """What a merchant types to find a page: the reason key itself, or ``H`` + the code.

    ValueError when ``key_or_code`` is neither a reason key nor a field 39 code.
    """
    return _short_code(key_or_code, catalog())


def resolve(query: str, lang: str = "zh") -> str | None:
    """The console path for what a merchant typed, or None when nothing matches.

    Understands short codes (``H62``), codes (``62``), reason keys, ``code.62``,
    a help path, and the exact words of a screen message, a situation or a code's
    fallback text, in either language.
    """
    code = _lang(lang) or "zh"
    text = query.strip()
    if not text:
        return None
    s = site()
    if text.startswith(HELP_PREFIX + "/"):
        rest = text[len(HELP_PREFIX) + 1 :]
        want, _, slug = rest.partition("/")
        wanted = _lang(want)
        canonical = s.normalise(slug) if wanted is not None else None
        if wanted is None or canonical is None:
            return None
        if canonical == "index":
            return f"{HELP_PREFIX}/{wanted}"
        return f"{HELP_PREFIX}/{wanted}/{canonical}"
    url = help_url(text, code)
    if url != f"{HELP_PREFIX}/{code}":
        return url
    for lang_ in LANGS:
        for reason in s.catalog:
            if reason.screen_text(lang_) == text:
                return f"{HELP_PREFIX}/{code}/r/{reason.key}"
        for situation in s.guide.situations.values():
            if text in (situation.link.get(lang_), situation.title.get(lang_)):
                return f"{HELP_PREFIX}/{code}/s/{situation.slug}"
        for number, words in s.catalog.codes.items():
            if words.get(lang_) == text:
                return f"{HELP_PREFIX}/{code}/c/{number}"
    return None


def build(out: Path, contact: Contact | None = None) -> BuildReport:
    """Write the help pages of the packaged catalog and guide under ``out``."""
    return _build(out, site(contact))


def stale(out: Path, contact: Contact | None = None) -> list[str]:
    """How ``out`` differs from a fresh build (empty when it is current)."""
    return _stale(out, site(contact))
