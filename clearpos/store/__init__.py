"""``clearpos.store`` — the durable store behind the host.

``open_database(url)`` gives a backend; ``backend.transaction()`` a synchronous
unit of work; ``backend.writer()`` the host's group-committing writer. The
pipeline talks only to :class:`Tx`.
"""

from __future__ import annotations

from pathlib import Path

from .records import (
    CardRec,
    JournalRec,
    MaintenanceRec,
    MerchantRec,
    TerminalRec,
    journal_id_of,
    rrn_of,
)
from .sqlite import GroupCommitWriter, SqliteDatabase, StoreError
from .tx import CREDIT_KINDS, DEBIT_KINDS, Tx

DEFAULT_URL = "sqlite:///clearpos.db"

Database = SqliteDatabase


def open_database(url: str = DEFAULT_URL) -> Database:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise StoreError("sqlite URL needs a path: sqlite:///clearpos.db")
        return SqliteDatabase(Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            "the PostgreSQL backend is not available in this build yet; use sqlite:///PATH"
        )
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")


__all__ = [
    "CREDIT_KINDS",
    "DEBIT_KINDS",
    "DEFAULT_URL",
    "CardRec",
    "Database",
    "GroupCommitWriter",
    "JournalRec",
    "MaintenanceRec",
    "MerchantRec",
    "SqliteDatabase",
    "StoreError",
    "TerminalRec",
    "Tx",
    "journal_id_of",
    "open_database",
    "rrn_of",
]
