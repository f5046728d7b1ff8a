"""Markdown and HTML for a help page, with links for the console or for files.

The same :class:`~clearpos.helpcenter.doc.Page` renders to both formats; only
the form of the links differs:

- :class:`ServedLinks` -- absolute console paths, ``/help/zh/r/card.frozen``;
- :class:`FileLinks` -- relative file paths, ``../c/62.html`` or ``../c/62.md``,
  so ``docs/help`` can be browsed as files or on a code host.

HTML is plain and semantic (header, nav, main, article, sections, ordered
steps), one small inline stylesheet, no script, readable on a phone. Every
text is escaped.
"""

from __future__ import annotations

import posixpath
import re
from html import escape
from typing import Protocol

from ..reasons import Lang
from .doc import Code, Heading, Inline, Items, Link, Page, Para, Run, Strong, prose

__all__ = ["FileLinks", "Links", "ServedLinks", "file_path", "to_html", "to_markdown"]

HELP_PREFIX = "/help"


class Links(Protocol):
    """Turns a link target (language and slug) into an href as seen from ``source``."""

    def href(self, source: Page, lang: Lang, slug: str) -> str: ...

    def search(self, source: Page) -> tuple[str, str | None]:
        """The search form's action, and the path to the site root for the offline search
        scripts (None when the pages are served and searched by the console)."""
        ...


class ServedLinks:
    """Console paths: ``/help/<lang>`` for the index, ``/help/<lang>/<slug>`` otherwise."""

    def __init__(self, prefix: str = HELP_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def href(self, source: Page, lang: Lang, slug: str) -> str:
        return f"{self.prefix}/{lang}" if slug == "index" else f"{self.prefix}/{lang}/{slug}"

    def search(self, source: Page) -> tuple[str, str | None]:
        return self.prefix, None


def file_path(lang: Lang, slug: str, ext: str) -> str:
    """Where a page lives under the output directory: ``zh/r/card.frozen.html``."""
    return f"{lang}/{slug}.{ext}"


class FileLinks:
    """Relative paths between generated files with extension ``ext`` (``md`` or ``html``)."""

    def __init__(self, ext: str) -> None:
        self.ext = ext

    def href(self, source: Page, lang: Lang, slug: str) -> str:
        here = posixpath.dirname(file_path(source.lang, source.slug, self.ext))
        return posixpath.relpath(file_path(lang, slug, self.ext), here)

    def search(self, source: Page) -> tuple[str, str | None]:
        here = posixpath.dirname(file_path(source.lang, source.slug, self.ext))
        root = posixpath.relpath(".", here)
        return "#", root + "/"


_SITE = {"zh": "POS机帮助中心", "en": "POS Help Center"}
_OTHER = {"zh": "English", "en": "中文"}
_FOOTER = {
    "zh": "本页根据原因目录自动生成，请勿手工修改。",
    "en": "Generated from the reason catalog; do not edit by hand.",
}
_HTML_LANG = {"zh": "zh-CN", "en": "en"}


def _site(page: Page) -> str:
    """The site's name on this page: the company's help center, or the default."""
    return page.site or _SITE[page.lang]


_SEARCH = {
    "zh": ("搜索屏幕提示、帮助码或应答码", "搜索"),
    "en": ("Search a screen message, help code or response code", "Search"),
}


def _search_form(page: Page, links: Links) -> str:
    action, _ = links.search(page)
    hint, button = _SEARCH[page.lang]
    return (
        f'<form role="search" class="search" action="{escape(action, quote=True)}" method="get">'
        f'<input type="search" name="q" id="help-search" aria-label="{escape(hint, quote=True)}" '
        f'placeholder="{escape(hint, quote=True)}" autocomplete="off">'
        f'<button type="submit">{button}</button></form>'
        '<ul id="search-results" hidden></ul>'
    )


def _search_scripts(page: Page, links: Links) -> list[str]:
    _, root = links.search(page)
    if root is None:
        return []
    r = escape(root, quote=True)
    return [
        f'<script src="{r}search-index.js"></script>',
        f'<script src="{r}search.js" data-root="{r}" data-lang="{page.lang}"></script>',
    ]


def _other(lang: Lang) -> Lang:
    return "en" if lang == "zh" else "zh"


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md_text(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_run(run: Run, page: Page, links: Links) -> str:
    out: list[str] = []
    for part in run:
        if isinstance(part, str):
            out.append(_md_text(part))
        elif isinstance(part, Code):
            out.append(f"`{part.text}`")
        elif isinstance(part, Strong):
            out.append(f"**{_md_text(part.text)}**")
        else:
            out.append(f"[{_md_text(part.text)}]({links.href(page, part.lang, part.slug)})")
    return "".join(out)


def to_markdown(page: Page, links: Links | None = None) -> str:
    """The page as Markdown (relative ``.md`` links unless ``links`` says otherwise)."""
    links = links or FileLinks("md")
    lang = page.lang
    home = links.href(page, lang, "index")
    other = links.href(page, _other(lang), page.slug)
    lines = [f"[{_md_text(_site(page))}]({home}) · [{_OTHER[lang]}]({other})", ""]
    for block in page.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + _md_run(block.run, page, links), ""]
        elif isinstance(block, Para):
            lines += [_md_run(block.run, page, links), ""]
        else:
            for number, item in enumerate(block.items, start=1):
                mark = f"{number}." if block.ordered else "-"
                lines.append(f"{mark} {_md_run(item, page, links)}")
            lines.append("")
    lines += ["---", "", _md_run(prose(_FOOTER[lang]), page, links), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

_STYLE = (
    ".search{display:flex;gap:.4rem;margin:.5rem 0}.search input{flex:1;padding:.4rem}"
    "#search-results{margin:.2rem 0 1rem}"
    "body{margin:0;color:#1b1b1b;background:#fff;line-height:1.65;"
    'font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif}'
    "header,main,footer{max-width:44rem;margin:0 auto;padding:0 1rem}"
    "header nav{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.5rem;"
    "padding:.75rem 0;border-bottom:1px solid #ddd}"
    "h1{font-size:1.45rem;line-height:1.35;margin:1.25rem 0 .5rem}"
    "h2{font-size:1.12rem;margin:1.75rem 0 .4rem}"
    "li{margin:.35rem 0}ol,ul{padding-left:1.4rem}"
    "a{color:#0b57d0}a:visited{color:#6b3fa0}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;"
    "background:#f2f2f2;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}"
    ".note{color:#555;font-size:.92rem}"
    "footer{color:#666;font-size:.85rem;border-top:1px solid #ddd;margin-top:2.5rem;"
    "padding-top:.5rem;padding-bottom:2rem}"
)


def _html_inline(part: Inline, page: Page, links: Links) -> str:
    if isinstance(part, str):
        return escape(part, quote=False)
    if isinstance(part, Code):
        return f"<code>{escape(part.text, quote=False)}</code>"
    if isinstance(part, Strong):
        return f"<strong>{escape(part.text, quote=False)}</strong>"
    assert isinstance(part, Link)
    href = escape(links.href(page, part.lang, part.slug), quote=True)
    extra = "" if part.lang == page.lang else f' hreflang="{part.lang}"'
    return f'<a href="{href}"{extra}>{escape(part.text, quote=False)}</a>'


def _html_run(run: Run, page: Page, links: Links) -> str:
    return "".join(_html_inline(part, page, links) for part in run)


def to_html(page: Page, links: Links | None = None) -> str:
    """The page as a whole HTML document (relative ``.html`` links unless ``links`` says otherwise)."""
    links = links or FileLinks("html")
    lang = page.lang
    other = _other(lang)
    home = escape(links.href(page, lang, "index"), quote=True)
    other_href = escape(links.href(page, other, page.slug), quote=True)
    title = page.title if page.slug == "index" else f"{page.title} · {_site(page)}"
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{_HTML_LANG[lang]}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title, quote=False)}</title>",
        f'<meta name="description" content="{escape(page.description, quote=True)}">',
        f'<link rel="alternate" hreflang="{_HTML_LANG[other]}" href="{other_href}">',
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f'<nav aria-label="{escape(_site(page), quote=True)}">'
        f'<a href="{home}">{escape(_site(page), quote=False)}</a> '
        f'<a href="{other_href}" hreflang="{other}" lang="{_HTML_LANG[other]}">{_OTHER[lang]}</a>'
        "</nav>",
        _search_form(page, links),
        "</header>",
        "<main>",
        "<article>",
    ]
    in_section = False
    for block in page.blocks:
        if isinstance(block, Heading):
            text = _html_run(block.run, page, links)
            if block.level == 2:
                if in_section:
                    out.append("</section>")
                anchor = f' id="{escape(block.anchor, quote=True)}"' if block.anchor else ""
                out.append(f"<section{anchor}>")
                in_section = True
            out.append(f"<h{block.level}>{text}</h{block.level}>")
        elif isinstance(block, Para):
            cls = ' class="note"' if block.note else ""
            out.append(f"<p{cls}>{_html_run(block.run, page, links)}</p>")
        elif isinstance(block, Items):
            tag = "ol" if block.ordered else "ul"
            out.append(f"<{tag}>")
            out += [f"<li>{_html_run(item, page, links)}</li>" for item in block.items]
            out.append(f"</{tag}>")
    if in_section:
        out.append("</section>")
    out += [
        "</article>",
        "</main>",
        "<footer>",
        f"<p>{_html_run(prose(_FOOTER[lang]), page, links)}</p>",
        "</footer>",
        *_search_scripts(page, links),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out)
