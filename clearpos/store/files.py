"""SQLite store files as files: a read-only look, a consistent copy, what they hold.

For the backup and restore of ``clearpos ops backup`` (the policy — what may be
overwritten, what a backup must pass — stays in :mod:`clearpos.ops.backup`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..private import private_file
from .tx import Tx

__all__ = [
    "copy",
    "has_rows",
    "integrity",
    "read_only",
    "row_counts",
    "schema_version",
    "sealed_keys",
]


@contextmanager
def read_only(path: Path) -> Iterator[Tx]:
    """A :class:`Tx` over the file opened read-only (``mode=ro``), closed afterwards."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield Tx(conn)
    finally:
        conn.close()


def integrity(tx: Tx) -> str:
    """``PRAGMA integrity_check``: ``ok``, or its findings joined by ``; ``."""
    return "; ".join(str(r[0]) for r in tx.conn.execute("PRAGMA integrity_check").fetchall())


def schema_version(tx: Tx) -> int | None:
    """The newest migration applied, or None when there is no ``schema_version`` table."""
    try:
        row = tx.conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0])


def row_counts(tx: Tx, tables: Iterable[str]) -> dict[str, int]:
    """How many rows each table holds."""
    return {t: int(tx.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}


def has_rows(path: Path, tables: Iterable[str]) -> bool:
    """Whether the file exists and any of ``tables`` holds a row (unreadable tables count as empty)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with read_only(path) as tx:
        for table in tables:
            try:
                if tx.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    return True
            except sqlite3.DatabaseError:
                continue
    return False


def copy(source: str, target: Path, *, self_contained: bool) -> None:
    """Copy a store with SQLite's online backup API: a consistent snapshot while
    writers go on. ``source`` is a path or a ``file:...`` URI; ``self_contained``
    leaves the copy in rollback-journal mode (one file, no WAL beside it)."""
    src = sqlite3.connect(source, uri=source.startswith("file:"), timeout=30)
    try:
        dst = sqlite3.connect(str(private_file(target)), timeout=30)  # 0600, docs/security.md
        try:
            src.backup(dst)
            if self_contained:
                dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def sealed_keys(path: Path) -> list[tuple[str, str, str]]:
    """(name, context, sealed text) of every sealed key in one SQLite file: a
    terminal's device store (its ``config`` table) or a host store (``terminals``);
    nothing for a file that is neither (or not SQLite at all)."""
    out: list[tuple[str, str, str]] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return out
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "config" in tables:
            cfg = dict(db.execute("SELECT key, value FROM config WHERE key IN ('keys', 'tid')"))
            if "keys" in cfg and "tid" in cfg:
                tid = json.loads(cfg["tid"])
                for name, sealed in json.loads(cfg["keys"]).items():
                    out.append((name, f"terminal-{name}:{tid}", str(sealed)))
        if "meta" in tables:  # a host store: the issuer's chip master keys, sealed
            db.row_factory = sqlite3.Row
            for name, value in (Tx(db).issuer_keys_sealed() or {}).items():
                out.append((f"imk_{name}", f"imk:{name}", value))
            db.row_factory = None
        if "terminals" in tables:
            for tid, *sealed in db.execute(
                "SELECT tid, tmk_sealed, pik_sealed, mak_sealed FROM terminals"
            ):
                for name, value in zip(("tmk", "pik", "mak"), sealed, strict=True):
                    if value:
                        out.append((name, f"{name}:{tid}", str(value)))
    except (sqlite3.Error, ValueError, AttributeError):
        pass
    finally:
        db.close()
    return out
