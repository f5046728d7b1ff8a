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

import csv
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..audit import audit_tx
from ..clock import show
from ..money import fen_yuan
from ..private import private_open
from ..progress import Work
from ..store import Tx, files, rrn_of
from ..store.queries import ops as q
from ..store.schema import LATEST
from .common import Refused

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
    with files.read_only(path) as tx:
        try:
            w.step("integrity check")
            integrity = files.integrity(tx)
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
            found = files.schema_version(tx)
            if found is None:
                problems.append("no schema_version table: not a clearpos store")
            version = found or 0
            if version > LATEST:
                problems.append(
                    f"schema version {version} is newer than this clearpos ({LATEST}): "
                    "upgrade clearpos first"
                )
            if version and not problems:
                w.step("counting rows")
                counts = files.row_counts(tx, _TABLES)
                w.step("audit")
                for d in audit_tx(tx):
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
    w.step("copying pages")
    files.copy(str(source), target, self_contained=True)
    return check_backup(target, w)


def restore_sqlite(
    source: Path, url: str, *, force: bool = False, progress: Work | None = None
) -> BackupCheck:
    """Check ``source`` and copy it into the store at ``url``.

    Refused when the check finds a problem, when a host holds the target store's
    lock, or when the target holds data and ``force`` is not given.
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
    if files.has_rows(target, ("merchants", "cards", "journal", "audit")) and not force:
        raise Refused(
            f"store {target} already holds merchants, cards, transactions or audit rows: "
            "restore into a new file, or give --force to overwrite it (stop its host first)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    progress.step("copying pages")
    files.copy(f"file:{source}?mode=ro", target, self_contained=False)
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
    with private_open(target, "w", encoding="utf-8", newline="") as fh:
        return write_journal_csv(tx, fh, since=since, until=until, progress=progress)


def write_journal_csv(
    tx: Tx, fh: IO[str], *, since: str, until: str | None = None, progress: Work | None = None
) -> int:
    """Journal rows from ``since`` as CSV on ``fh`` (a file, or standard output for ``-``)."""
    n = 0
    shown = progress or Work()
    shown.step("journal rows")
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(EXPORT_HEADER)
    for r in q.journal_between(tx, since, until):
        w.writerow(
            (
                r.rrn,
                show(r.ts, seconds=True),
                r.business_date,
                r.tid,
                r.mid,
                r.batch,
                r.stan,
                r.mti,
                r.kind,
                fen_yuan(r.amount_fen) if r.amount_fen is not None else "",
                r.pan_masked,
                (r.organisation or "").strip(),
                r.code,
                r.reason,
                r.status,
                r.auth_code,
                r.entry_mode,
                rrn_of(r.original_id) if r.original_id is not None else "",
                r.settlement_id if r.settlement_id is not None else "",
            )
        )
        n += 1
        if n % 1000 == 0:
            shown.advance(1000)
    return n
