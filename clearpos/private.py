"""Files only their owner may read: store files, backups, exports, receipts, keys.

A journal, a backup or a receipt names merchants, amounts and masked cards; a
terminal's state holds its sealed keys. They are created mode 0600 (directories
0700) whatever the umask, and a store file found readable by others is narrowed
to 0600 when it is opened. SQLite creates a database's ``-wal`` and ``-shm``
files with the database file's own mode, so making the database file first, 0600,
covers them too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "private_open"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a directory; made 0700 when it is new (an existing one is left as is)."""
    if not path.exists():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask, never widened
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and is 0600 (a new, empty file when it is missing;
    an existing one of ours readable by group or others is narrowed)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_IMODE(mode) & 0o077:
            with contextlib.suppress(OSError):  # not ours: the owner decides
                os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def private_open(path: Path, mode: str = "w", **kw: object) -> IO[str]:
    """``open(path, mode)`` for writing text, the file created 0600 and truncated."""
    if mode not in ("w", "a"):
        raise ValueError(f"private_open writes text ('w' or 'a'), not {mode!r}")
    flags = os.O_CREAT | os.O_WRONLY | (os.O_TRUNC if mode == "w" else os.O_APPEND)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode, **kw)  # type: ignore[call-overload,no-any-return]
