"""The life of a journal row's status, as a table (STYLE.md §8), like merchants'
and terminals' (``clearpos/ops/lifecycle.py``).

A row is written once with the status its message earned (``approved``,
``declined``, or ``unbalanced`` for a settlement whose totals disagreed).
Later messages may move an approved row on; nothing else ever changes it:

>>> for action, sources, target, meaning in JOURNAL.table():
...     print(f"{action:8} {sources:19} -> {target:9} {meaning}")
void     approved            -> voided    a void (of a sale or completion) or a pre-auth void undid it
complete approved            -> completed a completion took the money the pre-authorisation held
reverse  approved            -> reversed  a reversal undid it
restore  voided | completed  -> approved  the void or completion that closed it was itself reversed

A move the table does not allow is a defect of the host, not a decline: it
raises, the unit of work is rolled back, and the terminal gets 96
(``host.error``), with nothing of the message applied.

>>> JOURNAL.target("void", "reversed", "000000000042")
Traceback (most recent call last):
...
clearpos.ops.common.Refused: transaction 000000000042 is reversed: cannot void; allowed from reversed: nothing (reversed is final)
"""

from __future__ import annotations

from ..ops.lifecycle import Lifecycle, Rule
from ..store import JournalRec, Tx

JOURNAL = Lifecycle(
    "transaction",
    ("approved", "declined", "unbalanced", "voided", "completed", "reversed"),
    (
        Rule(
            "void",
            frozenset({"approved"}),
            "voided",
            "a void (of a sale or completion) or a pre-auth void undid it",
        ),
        Rule(
            "complete",
            frozenset({"approved"}),
            "completed",
            "a completion took the money the pre-authorisation held",
        ),
        Rule("reverse", frozenset({"approved"}), "reversed", "a reversal undid it"),
        Rule(
            "restore",
            frozenset({"voided", "completed"}),
            "approved",
            "the void or completion that closed it was itself reversed",
        ),
    ),
)


def move(tx: Tx, row: JournalRec, action: str) -> str:
    """Move ``row`` by ``action`` (a row of :data:`JOURNAL`); returns its new status."""
    status = JOURNAL.target(action, row.status, row.rrn)
    tx.update_journal(row.id, status=status)
    return status
