"""Progress of long work, for a person watching a terminal, and silence otherwise.

``with work(quiet=args.json) as w:`` gives a :class:`Work`: ``w.step("checking")``
names what runs now, ``w.total(n)`` / ``w.advance(k)`` move a bar. On a terminal
(standard error is a TTY) it is a `rich <https://rich.readthedocs.io>`_ progress
line on standard error that disappears when the work ends; with ``--json``, off
a terminal (pipes, CI, cron) or with ``CLEARPOS_NO_PROGRESS=1`` nothing at all
is drawn, so scripts read exactly what they read before.

``rich`` (pinned in pyproject.toml) is a well-kept library that handles what a
hand-rolled bar gets wrong: terminal width, wide Chinese characters, redraw
throttling, and leaving the screen clean on exit or Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Work", "shown", "work"]


def shown(*, quiet: bool = False) -> bool:
    """Whether progress is drawn: not ``quiet`` (``--json``) and standard error is a TTY."""
    if quiet or os.environ.get("CLEARPOS_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


class Work:
    """What the long work reports; the silent one does nothing."""

    def step(self, text: str, total: int | None = None) -> None:
        """Start a step (``total`` units when known; else a spinner and a count)."""

    def total(self, n: int) -> None:
        """The current step has ``n`` units."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current step are done."""

    def at(self, done: int, total: int | None = None) -> None:
        """``done`` units (of ``total``) of the current step are done."""


class _Shown(Work):
    def __init__(self, bar: Any, title: str) -> None:
        self.bar = bar
        self.title = title
        self.task = bar.add_task(title, total=None)

    def step(self, text: str, total: int | None = None) -> None:
        self.bar.update(self.task, description=f"{self.title}: {text}", total=total, completed=0)

    def total(self, n: int) -> None:
        self.bar.update(self.task, total=n)

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def at(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.bar.update(self.task, total=total)
        self.bar.update(self.task, completed=done)


@contextmanager
def work(title: str, *, quiet: bool = False) -> Iterator[Work]:
    """A :class:`Work` that draws on a terminal (see :func:`shown`), else a silent one."""
    if not shown(quiet=quiet):
        yield Work()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        yield _Shown(bar, title)
