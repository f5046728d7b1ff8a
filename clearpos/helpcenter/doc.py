"""A tiny document model: what a help page says, before it is Markdown or HTML.

A :class:`Page` is a title and a list of blocks (headings, paragraphs, lists);
a block holds a run of inlines (plain text, emphasis, code, links to other help
pages). The renderers in :mod:`clearpos.helpcenter.render` turn the same page
into Markdown and HTML, so both say exactly the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from ..reasons import Lang
from .commands import find_mentions

__all__ = [
    "Block",
    "Code",
    "Heading",
    "Inline",
    "Items",
    "Link",
    "Page",
    "Para",
    "Run",
    "Strong",
    "prose",
]


@dataclass(frozen=True, slots=True)
class Link:
    """A link to another help page: ``slug`` in ``lang`` (``index``, ``r/<key>``, ``c/<code>``...)."""

    text: str
    slug: str
    lang: Lang


@dataclass(frozen=True, slots=True)
class Code:
    """Literal text: a command, a reason key, a field value."""

    text: str


@dataclass(frozen=True, slots=True)
class Strong:
    """Emphasised text."""

    text: str


Inline: TypeAlias = str | Link | Code | Strong
Run: TypeAlias = tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading; level 2 headings open a section, ``anchor`` is its id."""

    level: int
    run: Run
    anchor: str = ""


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph; ``note`` marks small print (help code, codes)."""

    run: Run
    note: bool = False


@dataclass(frozen=True, slots=True)
class Items:
    """A list; ``ordered`` for steps that must be done in order."""

    items: tuple[Run, ...]
    ordered: bool = False


Block: TypeAlias = Heading | Para | Items


@dataclass(frozen=True, slots=True)
class Page:
    """One help page in one language."""

    lang: Lang
    slug: str
    title: str
    description: str
    blocks: tuple[Block, ...]
    help_code: str = ""
    #: the site's name as the merchant knows it (``{company} 帮助中心``); '' for the default
    site: str = ""


_KEY = re.compile(r"(?<![\w.])[a-z]+(?:\.[a-z_]+)+(?![\w])")


def prose(text: str, keys: frozenset[str] = frozenset()) -> Run:
    """Running text with the commands it names, and the reason keys in ``keys``, as code.

    >>> prose("运行 clearpos pos ... doctor 查看", frozenset())
    ('运行 ', Code(text='clearpos pos ... doctor'), ' 查看')
    >>> prose("the reason is card.frozen.", frozenset({"card.frozen"}))
    ('the reason is ', Code(text='card.frozen'), '.')
    """
    spans: list[tuple[int, int, str]] = [(m.start, m.end, m.text) for m in find_mentions(text)]
    for m in _KEY.finditer(text):
        if m.group(0) in keys and not any(s <= m.start() < e for s, e, _ in spans):
            spans.append((m.start(), m.end(), m.group(0)))
    out: list[Inline] = []
    pos = 0
    for start, end, literal in sorted(spans):
        if start > pos:
            out.append(text[pos:start])
        out.append(Code(literal))
        pos = end
    if pos < len(text):
        out.append(text[pos:])
    return tuple(out)
