"""Schema migrations, common to SQLite and PostgreSQL.

Migrations are numbered (``schema.MIGRATIONS``) and may land out of order
(they are numbered per engineer: a store at 6 still gets 5 when 5 is merged
later), so every number that ``schema_version`` lacks is applied, in order,
each in its own transaction. Several processes may open a store at once: the
missing numbers are read again under a lock the backend gives (PostgreSQL: an
advisory lock; SQLite: the write lock of ``BEGIN IMMEDIATE``), so each is applied
once. A store with nothing missing takes no lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .schema import MIGRATIONS, Only

log = logging.getLogger("clearpos.store")

CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True)
class Dialect:
    """How one backend runs the migrations."""

    #: run one statement (``?`` placeholders); returns rows indexable by column name
    execute: Callable[[str, Sequence[Any]], Iterator[Any]]
    #: held while missing migrations are applied (other processes wait)
    locked: Callable[[], AbstractContextManager[None]]
    #: one migration's transaction (inside ``locked``)
    transaction: Callable[[], AbstractContextManager[None]]
    #: the SQL expression for "now" as UTC ``YYYY-MM-DD HH:MM:SS`` text
    now: str
    #: a portable DDL statement in the backend's words
    ddl: Callable[[str], str] = str
    #: which :class:`~clearpos.store.schema.Only` statements are this backend's
    name: str = "sqlite"


def applied(d: Dialect) -> set[int]:
    rows = d.execute("SELECT version FROM schema_version", ())
    # rows by name (sqlite3.Row, psycopg's dict_row) or plain tuples (a bare connection)
    return {int(r["version"] if hasattr(r, "keys") else r[0]) for r in rows}


def migrate(d: Dialect) -> int:
    """Apply every migration not applied yet; the store's version afterwards."""
    try:
        done = applied(d)
    except Exception:  # no schema_version yet: a new store
        done = set()
    if all(version in done for version, _, _ in MIGRATIONS):
        return max(done, default=0)
    with d.locked():
        d.execute(CREATE_VERSION_TABLE, ())
        done = applied(d)  # again, under the lock: another process may have been first
        current = max(done, default=0)
        for version, title, statements in MIGRATIONS:
            if version in done:
                continue
            with d.transaction():
                for stmt in statements:
                    if isinstance(stmt, Only) and stmt.dialect != d.name:
                        continue
                    d.execute(d.ddl(stmt), ())
                d.execute(
                    f"INSERT INTO schema_version (version, applied_at) VALUES (?, {d.now})",
                    (version,),
                )
            log.info("store migrated to version %d: %s", version, title)
            current = max(current, version)
        return current
