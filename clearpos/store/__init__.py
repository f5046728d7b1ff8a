"""``clearpos.store`` — the durable store behind the host.

``open_database(url)`` gives a backend (SQLite or PostgreSQL);
``backend.transaction()`` a synchronous unit of work; ``backend.writer()`` the
host's writer, whose ``run(unit)`` runs a unit of work off the event loop and
resolves after its commit. The pipeline talks only to :class:`Tx`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from .pg import PgDatabase, PgTx, PgWriter
from .records import (
    AidRec,
    AuditRec,
    CapkRec,
    CardRec,
    ChipRec,
    JournalEntry,
    JournalRec,
    MaintenanceRec,
    MerchantRec,
    SettlementRec,
    TerminalRec,
    journal_id_of,
    rrn_of,
)
from .sqlite import GroupCommitWriter as SqliteWriter
from .sqlite import SqliteDatabase
from .tx import CREDIT_KINDS, DEBIT_KINDS, EMV_KINDS, ISSUER_KEY_NAMES, Tx
from .writer import BatchWriter, OnCommit, StoreError

T = TypeVar("T")

DEFAULT_URL = "sqlite:///clearpos.db"

Database = SqliteDatabase | PgDatabase


class Writer(Protocol):
    """What the host needs of a backend's writer: :class:`BatchWriter` (``writer.py``),
    group commit on SQLite (one thread) and on PostgreSQL (``writers`` threads)."""

    commits: int
    units: int

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def run(self, unit: Callable[[Tx], T]) -> asyncio.Future[T]: ...


#: the name the host modules import; any backend's writer
GroupCommitWriter = Writer


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for any other URL."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not path:
        raise StoreError("sqlite URL needs a path: sqlite:///clearpos.db")
    return Path(path)


def open_database(url: str = DEFAULT_URL, *, create: bool = True) -> Database:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
    ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?writers=N]``.

    With ``create=False`` (every command that reads or changes an existing
    store) a SQLite file that does not exist is refused, naming where it was
    looked for, instead of being created empty; only ``clearpos host``,
    ``demo`` and ``admin init`` create stores.
    """
    path = sqlite_path(url)
    if path is not None:
        if not create and str(path) != ":memory:" and not path.is_file():
            raise StoreError(
                f"no store at {path.absolute()} (from --db {url}): check the path, or create "
                "one with `clearpos admin init --db URL` or `clearpos host --world FILE --db URL`"
            )
        return SqliteDatabase(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PgDatabase(url)
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")


__all__ = [
    "CREDIT_KINDS",
    "DEBIT_KINDS",
    "DEFAULT_URL",
    "EMV_KINDS",
    "ISSUER_KEY_NAMES",
    "AidRec",
    "AuditRec",
    "BatchWriter",
    "CapkRec",
    "CardRec",
    "ChipRec",
    "Database",
    "GroupCommitWriter",
    "JournalEntry",
    "JournalRec",
    "MaintenanceRec",
    "MerchantRec",
    "OnCommit",
    "PgDatabase",
    "PgTx",
    "PgWriter",
    "SettlementRec",
    "SqliteDatabase",
    "SqliteWriter",
    "StoreError",
    "TerminalRec",
    "Tx",
    "Writer",
    "journal_id_of",
    "open_database",
    "rrn_of",
    "sqlite_path",
]
