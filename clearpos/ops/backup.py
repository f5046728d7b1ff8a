"""Records (备份, SCENARIOS.md B8): backup, checked restore, masked journal export.

- :func:`backup_sqlite` copies a running SQLite store with the SQLite online
  backup API (a consistent snapshot while the host keeps writing), then checks
  the copy; the copy is a single self-contained file (rollback journal, not WAL).
- :func:`check_backup` opens a backup read-only and checks it before use:
  ``PRAGMA integrity_check``, the schema version (not newer than this
  clearpos), and the money invariants of ``clearpos audit``.
- :func:`restore_sqlite` restores a checked backup into a store, refusing a
  target that holds data unless ``force``.
- :func:`export_journal` writes journal rows as CSV with masked card numbers.

A PostgreSQL store is backed up with PostgreSQL's own tools;
:data:`PG_GUIDANCE` says how.
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..audit import audit_tx
from ..clock import show
from ..progress import Work
from ..store import Tx
from ..store.schema import LATEST
from .common import Refused, fen_yuan

__all__ = [
    "PG_GUIDANCE",
    "BackupCheck",
    "backup_sqlite",
    "check_backup",
    "export_journal",
    "is_postgres",
    "restore_sqlite",
    "sqlite_path",
]

PG_GUIDANCE = (
    "this store is PostgreSQL: back it up with PostgreSQL's own tools, e.g.\n"
    "  pg_dump --format=custom --file clearpos.dump 'postgresql://USER@HOST/DB'\n"
    "and restore into an empty database with\n"
    "  pg_restore --dbname 'postgresql://USER@HOST/NEWDB' --no-owner clearpos.dump\n"
    "then check it: clearpos audit --db postgresql://USER@HOST/NEWDB"
)

_TABLES = ("merchants", "terminals", "cards", "journal", "settlements", "audit", "maintenance")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///PATH`` URL; Refused for anything else."""
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise Refused(f"not a SQLite store URL: {url!r} (expected sqlite:///PATH)")
    return Path(url[len("sqlite:///") :])


@dataclass(frozen=True, slots=True)
class BackupCheck:
    """What the check of a backup found; ``ok`` when it may be used."""

    path: str
    ok: bool
    integrity: str
    schema_version: int
    counts: dict[str, int]
    problems: tuple[str, ...] = field(default_factory=tuple)
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "integrity": self.integrity,
            "schema_version": self.schema_version,
            "counts": self.counts,
            "problems": list(self.problems),
            "bytes": self.size,
        }


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def check_backup(path: Path, progress: Work | None = None) -> BackupCheck:
    """Integrity, schema version and the audit invariants of a backup file."""
    w = progress or Work()
    if not path.is_file():
        raise Refused(f"no backup file {path}")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise Refused(f"{path} is not a SQLite file")
    problems: list[str] = []
    counts: dict[str, int] = {}
    version = 0
    integrity = "not checked"
    with _read_only(path) as conn:
        try:
            w.step("integrity check")
            integrity = "; ".join(
                str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()
            )
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
            try:
                row = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version"
                ).fetchone()
                version = int(row[0])
            except sqlite3.OperationalError:
                problems.append("no schema_version table: not a clearpos store")
            if version > LATEST:
                problems.append(
                    f"schema version {version} is newer than this clearpos ({LATEST}): "
                    "upgrade clearpos first"
                )
            if version and not problems:
                w.step("counting rows", len(_TABLES))
                for table in _TABLES:
                    counts[table] = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                    w.advance()
                w.step("audit")
                for d in audit_tx(Tx(conn)):
                    problems.append(f"audit {d.check}: {d.detail}")
        except sqlite3.DatabaseError as exc:
            problems.append(f"cannot be read as a SQLite database: {exc}")
    return BackupCheck(
        str(path), not problems, integrity, version, counts, tuple(problems), path.stat().st_size
    )


def backup_sqlite(
    url: str, target: Path, *, force: bool = False, progress: Work | None = None
) -> BackupCheck:
    """A consistent copy of a (running) SQLite store at ``target``, checked after writing."""
    w = progress or Work()
    source = sqlite_path(url)
    if not source.is_file():
        raise Refused(f"no SQLite store at {source}")
    if target.exists():
        if not force:
            raise Refused(f"{target} already exists: choose another file or give --force")
        target.unlink()
    if target.resolve() == source.resolve():
        raise Refused("the backup cannot be the store itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(source), timeout=30)
    try:
        dst = sqlite3.connect(str(target))
        try:
            w.step("copying pages")
            # the online backup API: a consistent snapshot, writers go on
            src.backup(dst, pages=_PAGES, progress=_pages_done(w))
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    return check_backup(target, w)


#: pages the backup API copies per step (between progress reports)
_PAGES = 4096


def _pages_done(w: Work) -> Callable[[int, int, int], None]:
    def report(status: int, remaining: int, total: int) -> None:
        w.at(total - remaining, total)

    return report


def _has_data(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with _read_only(path) as conn:
        for table in ("merchants", "cards", "journal", "audit"):
            try:
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    return True
            except sqlite3.DatabaseError:
                continue
    return False


def restore_sqlite(
    source: Path, url: str, *, force: bool = False, progress: Work | None = None
) -> BackupCheck:
    """Check ``source`` and copy it into the store at ``url``.

    Refused when the check finds a problem, or when the target holds data and
    ``force`` is not given. Stop the host using the target first.
    """
    w = progress or Work()
    check = check_backup(source, w)
    if not check.ok:
        raise Refused(
            f"backup {source} failed its check, nothing restored: " + "; ".join(check.problems)
        )
    target = sqlite_path(url)
    from ..store.lock import StoreInUse, lock_store

    try:
        lock = lock_store(target)  # a host serving the target would go on with a wiped store
    except StoreInUse as exc:
        raise Refused(f"nothing restored: {exc}") from None
    try:
        _restore_locked(source, target, force=force, progress=w)
    finally:
        lock.release()
    return check


def _restore_locked(source: Path, target: Path, *, force: bool, progress: Work) -> None:
    if _has_data(target) and not force:
        raise Refused(
            f"store {target} already holds merchants, cards, transactions or audit rows: "
            "restore into a new file, or give --force to overwrite it (stop its host first)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(target), timeout=30)
        try:
            progress.step("copying pages")
            src.backup(dst, pages=_PAGES, progress=_pages_done(progress))
        finally:
            dst.close()
    finally:
        src.close()
    from ..store import open_database

    open_database(f"sqlite:///{target}")  # brings an older backup up to the current schema


EXPORT_HEADER = (
    "rrn",
    "time_cst",
    "business_date",
    "tid",
    "mid",
    "batch",
    "stan",
    "mti",
    "kind",
    "amount",
    "pan_masked",
    "organisation",
    "code",
    "reason",
    "status",
    "auth_code",
    "entry_mode",
    "original_rrn",
    "settlement_id",
)


def export_journal(
    tx: Tx,
    target: Path,
    *,
    since: str,
    until: str | None = None,
    force: bool = False,
    progress: Work | None = None,
) -> int:
    """Journal rows from ``since`` (UTC ISO) as CSV at ``target``; returns the row count.

    Card numbers are the masked ones the journal holds; facts and trails are not exported.
    """
    if target.exists() and not force:
        raise Refused(f"{target} already exists: choose another file or give --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as fh:
        return write_journal_csv(tx, fh, since=since, until=until, progress=progress)


def write_journal_csv(
    tx: Tx, fh: TextIO, *, since: str, until: str | None = None, progress: Work | None = None
) -> int:
    """Journal rows from ``since`` as CSV on ``fh`` (a file, or standard output for ``-``)."""
    sql = "SELECT * FROM journal WHERE ts >= ?"
    params: list[Any] = [since]
    if until:
        sql += " AND ts < ?"
        params.append(until)
    n = 0
    shown = progress or Work()
    shown.step("journal rows")
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(EXPORT_HEADER)
    for r in tx.conn.execute(sql + " ORDER BY id", params).fetchall():
        w.writerow(
            (
                f"{int(r['id']):012d}",
                show(r["ts"], seconds=True),
                r["business_date"],
                r["tid"],
                r["mid"],
                r["batch"],
                r["stan"],
                r["mti"],
                r["kind"],
                fen_yuan(int(r["amount_fen"])) if r["amount_fen"] is not None else "",
                r["pan_masked"],
                (r["organisation"] or "").strip(),
                r["code"],
                r["reason"],
                r["status"],
                r["auth_code"],
                r["entry_mode"],
                f"{int(r['original_id']):012d}" if r["original_id"] is not None else "",
                r["settlement_id"] if r["settlement_id"] is not None else "",
            )
        )
        n += 1
        if n % 1000 == 0:
            shown.advance(1000)
    return n
