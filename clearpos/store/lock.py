"""One host per SQLite store: an exclusive ``flock`` on a lock file next to the database.

``clearpos host`` takes the lock before it touches the store and keeps it until
it exits; the kernel drops it when the process dies, however it dies, so a
crashed host never leaves a store locked. The lock file holds the PID of the
holder, which is what a refused second host names.

>>> import tempfile
>>> from pathlib import Path
>>> db = Path(tempfile.mkdtemp()) / "clearpos.db"
>>> held = lock_store(db)
>>> holder(db) == os.getpid()
True
>>> held.release()
>>> holder(db) is None
True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from .sqlite import StoreError

__all__ = ["StoreInUse", "StoreLock", "holder", "lock_path", "lock_store"]


class StoreInUse(StoreError):
    """Another process holds the store's lock."""

    def __init__(self, db: Path, pid: int | None) -> None:
        who = f"the process with PID {pid}" if pid else "another process"
        super().__init__(
            f"store {db} is in use by {who} (lock {lock_path(db)}); "
            "stop that host first, or give another --db"
        )
        self.pid = pid


def lock_path(db: Path) -> Path:
    """``clearpos.db`` -> ``clearpos.db.lock``, in the same directory."""
    return db.with_name(db.name + ".lock")


@dataclass
class StoreLock:
    """A held lock; :meth:`release` (or process exit) lets the next host in."""

    db: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdecimal() else None


def lock_store(db: Path) -> StoreLock:
    """Take the store's lock or raise :class:`StoreInUse` naming the holder's PID."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise StoreInUse(db, pid) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return StoreLock(db, fd)


def holder(db: Path) -> int | None:
    """The PID holding ``db``'s lock (or -1 when unknown), None when it is free."""
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
