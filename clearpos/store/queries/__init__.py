"""``clearpos.store.queries`` — what the layers above the host read and write.

The host's own queries are :class:`~clearpos.store.Tx` methods. Here are those
of the operations (:mod:`.ops`), the console (:mod:`.console`), the diagnosis
(:mod:`.diagnosis`), the money audit (:mod:`.audit`) and the lab and demo
(:mod:`.lab`): named functions over a ``Tx``, in the SQL common to SQLite and
PostgreSQL (``?`` placeholders; the PostgreSQL backend translates them). No
module outside ``clearpos.store`` writes SQL (``tests/test_architecture.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .. import Database, Tx

#: a row read by column name (``sqlite3.Row`` or a psycopg dict row)
Row = Mapping[str, Any]

#: The WHERE term of the partial index ``journal_reason_ts`` (migration 7). A query
#: by a decline reason adds it, redundant as it is: a planner uses a partial index
#: only where the query's own terms imply the index's (a parameter's value is not
#: known when PostgreSQL plans a prepared statement).
DECLINES_ONLY = "reason <> 'approved'"

__all__ = ["DECLINES_ONLY", "Row", "marks", "read"]


@contextmanager
def read(db: Database) -> Iterator[Tx]:
    """``db.reader()`` whose reads take no row locks.

    A read-only PostgreSQL transaction refuses ``SELECT ... FOR UPDATE``, which
    :class:`Tx` adds to the reads of rows it means to update (``Tx.lock``).
    """
    with db.reader() as tx:
        tx.lock = ""
        yield tx


def marks(values: Collection[object]) -> str:
    """One ``?`` placeholder per value, comma-separated.

    >>> marks(("a", "b", "c"))
    '?, ?, ?'
    """
    return ", ".join("?" for _ in values)
