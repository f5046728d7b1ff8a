"""``clearpos diagnose`` — the cause, who must act and the remedy, from the journal.

    clearpos diagnose --db URL (--rrn R | --tid T | --mid M | --code C | --explain KEY)
                      [--since DURATION] [--lang zh|en] [--json]

``--code`` takes a field 39 code (``03``) or a reason key (``network.timeout``).
``--explain`` needs no store: the catalog's words for a reason key, for
outcomes the terminal decides alone (``operator.wrong_password``...).

With ``--json``: one JSON document per line — one per transaction
(``{"rrn", "tid", "reason", "cause", "actor", "remedy": [...], ...}``); for
``--tid`` / ``--mid`` those lines, then the terminal or merchant document
(headline ``fix``, ``resolved``, failures, history) whose ``"transactions"``
counts the lines before it.

Exit status: 0 diagnosed, 1 nothing found (no such RRN, terminal or merchant)
or the store cannot be opened, 2 bad usage.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any, cast

from ..errors import UsageError
from ..reasons import Lang, catalog
from ..store import DEFAULT_URL, StoreError, open_database
from ..store.queries import read
from .explain import explain_reason, explain_rrn
from .render import render_explanation, render_merchant, render_terminal
from .subjects import NotFound, diagnose_code, diagnose_merchant, diagnose_terminal, parse_since

__all__ = ["register"]


def register(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  clearpos diagnose --db sqlite:///clearpos.db --rrn 000000000042\n"
        "  clearpos diagnose --db sqlite:///clearpos.db --tid 10000003 --since 1d --lang en\n"
        "  clearpos diagnose --db sqlite:///clearpos.db --code 90 --since 15m --json\n"
        "  clearpos diagnose --explain operator.wrong_password --lang en"
    )
    p.add_argument("--db", default=None, help=f"store URL (default {DEFAULT_URL})")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--rrn", help="one transaction, by its retrieval reference number")
    what.add_argument("--tid", help="a terminal: failures, history, the most likely fix")
    what.add_argument("--mid", help="a merchant: failures, arrears, history, the most likely fix")
    what.add_argument("--code", help="every transaction with this field 39 code or reason key")
    what.add_argument(
        "--explain",
        metavar="KEY",
        help="a reason key, or the text the screen showed (zh or en), from the catalog alone",
    )
    p.add_argument("--since", default="7d", help="window: 15m, 1h, 7d, 2w or a date (default 7d)")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="language (default zh)")
    p.add_argument(
        "--limit", type=int, default=20, help="most transactions to explain (default 20)"
    )
    p.add_argument("--json", action="store_true", help="one JSON document per line")
    p.set_defaults(run=run)


def _emit(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, ensure_ascii=False, sort_keys=True))


def _emit_subject(doc: dict[str, Any]) -> None:
    """spec/world.md: one JSON document per line, and per transaction at least
    rrn, tid, reason, cause, actor, remedy. So each explained transaction is a
    line of its own, and the terminal or merchant summary comes last, without
    the transactions repeated."""
    transactions = doc.pop("transactions", None) or []
    for t in transactions:
        _emit(t)
    doc["transactions"] = len(transactions)
    _emit(doc)


def _fail(args: argparse.Namespace, message: str) -> int:
    if args.json:
        _emit({"ok": False, "error": message})
    else:
        print(f"clearpos diagnose: {message}", file=sys.stderr)
    return 1


def _plain(text: str) -> str:
    """Screen text as compared: no case, spaces or punctuation, digits kept."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def explain_key(text: str) -> str:
    """The reason key ``--explain`` means: a key, or the words a screen showed.

    >>> frozen_zh = catalog()["card.frozen"].screen.zh  # the Chinese screen text
    >>> explain_key("card.frozen"), explain_key(frozen_zh), explain_key("card frozen")
    ('card.frozen', 'card.frozen', 'card.frozen')

    Anything else is bad usage with the nearest keys offered (``card.frozn`` ->
    did you mean card.frozen?).
    """
    from ..errors import UsageError

    cat = catalog()
    if text in cat:
        return text
    wanted = _plain(text)
    screens: dict[str, set[str]] = {}
    for r in cat:
        for lang in ("zh", "en"):
            screens.setdefault(_plain(r.screen_text(lang)), set()).add(r.key)
    by_key = {_plain(r.key): r.key for r in cat}
    hits = screens.get(wanted) or ({by_key[wanted]} if wanted in by_key else set())
    if not hits and len(wanted) >= 2:  # the first words of a screen that ran on
        hits = {k for s, keys in screens.items() if s.startswith(wanted) for k in keys}
    if len(hits) == 1:
        return next(iter(hits))
    if hits:
        raise UsageError(
            f"--explain: the screen {text!r} is shown for several reasons: "
            + ", ".join(sorted(hits))
            + "; give one of them"
        )
    near = difflib.get_close_matches(text.strip().lower(), list(cat.keys()), n=3, cutoff=0.75)
    if not near:  # the nearest screens, for words typed from a terminal
        near = sorted(
            {k for s in difflib.get_close_matches(wanted, list(screens), n=3) for k in screens[s]}
        )
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    raise UsageError(
        f"--explain: {text!r} is neither a reason key nor a screen text of the catalog{hint}"
    )


def run(args: argparse.Namespace) -> int:
    lang = cast(Lang, args.lang)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.explain:
        e = explain_reason(explain_key(args.explain), lang)
        if args.json:
            _emit(e.to_dict())
        else:
            print(render_explanation(e))
        return 0
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        db = open_database(args.db or DEFAULT_URL, create=False)
        with read(db) as tx:
            if args.rrn:
                found = explain_rrn(tx, args.rrn, lang)
                if found is None:
                    return _fail(args, f"no transaction with RRN {args.rrn!r} in {db.url}")
                if args.json:
                    _emit(found.to_dict())
                else:
                    print(render_explanation(found))
                return 0
            if args.tid:
                td = diagnose_terminal(tx, args.tid, since=since, lang=lang, limit=args.limit)
                if args.json:
                    _emit_subject(td.to_dict())
                else:
                    print(render_terminal(td))
                return 0
            if args.mid:
                md = diagnose_merchant(tx, args.mid, since=since, lang=lang, limit=args.limit)
                if args.json:
                    _emit_subject(md.to_dict())
                else:
                    print(render_merchant(md))
                return 0
            code = str(args.code)
            if code not in catalog() and not (len(code) == 2 and code.isalnum()):
                raise UsageError(
                    f"--code {code!r}: give a field 39 code (e.g. 03) or a reason key (e.g. card.frozen)"
                )
            rows = diagnose_code(tx, code, since=since, lang=lang, limit=args.limit)
    except NotFound as exc:
        return _fail(args, str(exc))
    except StoreError as exc:
        return _fail(args, str(exc))
    if not rows:
        if args.json:
            _emit({"ok": True, "code": code, "count": 0, "since": args.since})
        else:
            print(f"no transactions with {code} since {args.since}")
            if code in catalog():
                print()
                print(render_explanation(explain_reason(code, lang)))
        return 0
    for e in rows:
        if args.json:
            _emit(e.to_dict())
        else:
            print(render_explanation(e))
            print()
    return 0
