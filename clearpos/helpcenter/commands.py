"""Commands named in help texts: find them, and check them against the real parser.

Help texts name commands the way the catalog does: ``clearpos pos ... doctor``,
``clearpos diagnose --rrn RRN``, ``clearpos pos ... login --operator 01 --password
PASSWORD``. ``...`` stands for the options elided before an action, upper-case
words are placeholders. :func:`find_mentions` finds them in running text,
Chinese or English, without knowing which commands exist, so the rendered pages
do not change when a command is registered::

    >>> [m.text for m in find_mentions("运行 clearpos pos ... doctor 查看主机是否可达")]
    ['clearpos pos ... doctor']
    >>> [m.text for m in find_mentions("then clearpos pos ... signon with the new --tmk.")]
    ['clearpos pos ... signon']
    >>> find_mentions("按 clearpos POS 8583 规范")  # the product, not a command
    []

:func:`check_mention` walks an ``argparse`` parser (``clearpos.cli.build_parser()``)
along a mention and says what does not exist.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

__all__ = ["Mention", "check_mention", "find_mentions"]

_START = re.compile(r"(?<![\w./-])clearpos(?=[ \t]+[a-z])")
_GAP = re.compile(r"[ \t]+")
_TOKEN = re.compile(
    r"\.\.\."  # elided options
    r"|--?[A-Za-z][\w-]*"  # an option
    r"|[A-Z][A-Z0-9_]*(?!\w)"  # a placeholder: STAN, RRN, MID
    r"|[0-9][\w:-]*(?:\.[\w:-]+)*"  # a value: 01, 15m, 12.34, 127.0.0.1:5800
    r"|[a-z][\w-]*(?:[./:][\w-]+)*"  # a word: a command, or an option's value
)
# Words that end a mention when they follow a command in running English.
_PROSE = frozenset(
    {
        "a", "after", "again", "also", "an", "and", "are", "as", "at", "before", "but", "each",
        "every", "first", "for", "from", "if", "in", "instead", "is", "it", "its", "line", "of",
        "on", "once", "or", "output", "shows", "so", "the", "then", "to", "too", "until",
        "when", "where", "which", "with",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mention:
    """One command named in a text: where it is and its words after ``clearpos``."""

    start: int
    end: int
    tokens: tuple[str, ...]

    @property
    def text(self) -> str:
        """The mention as written, with single spaces: ``clearpos pos ... doctor``."""
        return " ".join(("clearpos", *self.tokens))


def _scan(text: str, pos: int) -> tuple[list[str], int]:
    """The tokens of a mention whose ``clearpos`` ends at ``pos``, and where it ends."""
    tokens: list[str] = []
    end = pos
    words_allowed = True  # a command word may come next
    after_elision = False  # after ``...`` only one more command word (the action)
    value_allowed = False  # the previous token was an option
    while True:
        gap = _GAP.match(text, end)
        if gap is None:
            break
        m = _TOKEN.match(text, gap.end())
        if m is None:
            break
        token = m.group(0)
        nxt = text[m.end() : m.end() + 1]
        if nxt and not (nxt.isspace() or nxt in ".,;:!?)]}'\"，。；：！？）、】"):
            break  # glued to something that is not a command: stop before it
        if token == "...":
            words_allowed, after_elision, value_allowed = True, True, False
        elif token.startswith("-"):
            words_allowed, value_allowed = False, True
        elif token[0].islower():
            if value_allowed:
                value_allowed = False
            elif words_allowed and token not in _PROSE:
                words_allowed = not after_elision
            else:
                break
        else:  # a placeholder or a value
            value_allowed = False
            words_allowed = words_allowed and not after_elision and bool(tokens)
        tokens.append(token)
        end = m.end()
    return tokens, end


def find_mentions(text: str) -> list[Mention]:
    """Every command named in ``text``, in order (``clearpos`` followed by a lower-case word)."""
    out: list[Mention] = []
    for m in _START.finditer(text):
        if out and m.start() < out[-1].end:
            continue
        tokens, end = _scan(text, m.end())
        if tokens and tokens[0][0].islower():
            out.append(Mention(m.start(), end, tuple(tokens)))
    return out


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, argparse.ArgumentParser] = action.choices
            return choices
    return None


def _option(chain: list[argparse.ArgumentParser], name: str) -> argparse.Action | None:
    for parser in reversed(chain):
        for action in parser._actions:
            if name in action.option_strings:
                return action
    return None


def check_mention(parser: argparse.ArgumentParser, mention: Mention) -> str | None:
    """None when every command and option of ``mention`` exists in ``parser``; else why not.

    Command words must be subcommands of the command before them; an option must
    belong to the command it follows or to one before it (``clearpos pos --tid T
    ... signon``); placeholders and values are not checked.
    """
    chain = [parser]
    path = ["clearpos"]
    tokens = list(mention.tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "...":
            continue
        if token.startswith("-"):
            action = _option(chain, token)
            if action is None:
                return f"{' '.join(path)} has no option {token}"
            if action.nargs != 0 and i < len(tokens) and not tokens[i].startswith("-"):
                i += 1  # its value
            continue
        subs = _subcommands(chain[-1])
        if subs is not None and token[0].islower():
            if token not in subs:
                known = ", ".join(sorted(subs))
                return f"{' '.join(path)} has no command {token!r} (it has: {known})"
            chain.append(subs[token])
            path.append(token)
        elif subs is None and token[0].islower():
            return f"{' '.join(path)} takes no command {token!r}"
    return None
