"""``clearpos admin`` — merchants, terminals, cards, arrears, resumption, maintenance,
tickets, users, reports, backups.

Every change takes ``--by NAME`` (who) and most take ``--why TEXT``; each is
one store transaction with its audit row. ``--json`` prints one JSON document
per line. Exit status: 0 done, 1 refused (an illegal transition says what is
allowed from the current state; unknown ids; a store that cannot be opened),
2 bad usage (missing options, an amount with more than two decimals...).

``--db`` and ``--json`` may come before the group (``clearpos admin --db URL
merchant ...``) or after the action (``clearpos admin backup --db URL ...``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from ...store import DEFAULT_URL
from ..lifecycle import Lifecycle
from .arrears import _arrears
from .cards import _cards, _emv
from .maintenance import _maintenance
from .merchants import _merchants
from .records import _kek, _records
from .terminals import _terminals
from .users import _login_parser, _users

__all__ = ["register"]


def register(
    p: argparse.ArgumentParser,
    *,
    tickets: Callable[[Any], None] | None = None,
    lifecycles: Sequence[Lifecycle] = (),
) -> None:
    """The ``admin`` groups; ``tickets`` adds the ticket group (it lives in
    diagnosis, above ops: ``clearpos.cli`` passes it in), ``lifecycles`` more
    tables for ``admin lifecycles``."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  clearpos admin --db sqlite:///clearpos.db merchant show --mid 898310048163002\n"
        "  clearpos admin --db sqlite:///clearpos.db arrears pay --mid 898310048163002 --amount 58.00 --voucher PAY-1 --by wang\n"
        "  clearpos admin --db sqlite:///clearpos.db terminal suspend --tid 10000001 --by li --why 'screen broken'\n"
        "  clearpos admin backup --db sqlite:///clearpos.db --to backup.db"
    )
    p.add_argument("--db", default=DEFAULT_URL, help=f"store URL (default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help="one JSON document per line")
    sub = p.add_subparsers(dest="admin_group", metavar="GROUP")
    sub.required = True
    _merchants(sub)
    _terminals(sub)
    _cards(sub)
    _emv(sub)
    _arrears(sub)
    _maintenance(sub)
    if tickets is not None:
        tickets(sub)
    _users(sub)
    _login_parser(sub)
    _records(sub, lifecycles)
    _kek(sub)
