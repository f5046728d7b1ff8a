"""Secrets from a prompt, standard input or a file descriptor, not the command line.

A value on the command line is visible to every user of the machine in ``ps``
and is kept in the shell's history. Every secret option (``--pin``, ``--tmk``,
``--password``, ``--supervisor-password``) therefore also takes:

* ``-``: read one line from standard input -- or, when standard input is a
  terminal, ask for it without echo;
* ``--X-fd N`` instead of ``--X``: read one line from file descriptor N (e.g.
  ``--pin-fd 3 3<pin.txt``, or a pipe a calling program holds).

The value itself still works, for scripts and tests on a machine of one's own.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass

__all__ = ["STDIN", "SecretError", "SecretOption", "add_secret", "read_fd", "read_stdin"]

STDIN = "-"
_MAX = 4096


class SecretError(ValueError):
    """A secret could not be read; ``str()`` says from where and what to do."""


@dataclass(frozen=True, slots=True)
class SecretOption:
    """One secret option pair: ``--flag`` and ``--flag-fd``."""

    flag: str
    label: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def fd_dest(self) -> str:
        return self.dest + "_fd"

    def resolve(self, args: argparse.Namespace, *, used_stdin: list[str]) -> str | None:
        """The secret the options name (None when neither was given)."""
        value = getattr(args, self.dest, None)
        fd = getattr(args, self.fd_dest, None)
        if value is not None and fd is not None:
            raise SecretError(f"give {self.flag} or {self.flag}-fd, not both")
        if fd is not None:
            return read_fd(fd, self.label)
        if value == STDIN:
            if used_stdin:
                raise SecretError(
                    f"{used_stdin[0]} already reads standard input: give {self.flag}-fd N instead"
                )
            used_stdin.append(self.flag)
            return read_stdin(self.label)
        return None if value is None else str(value)

    def require(self, args: argparse.Namespace, *, used_stdin: list[str]) -> str:
        """The secret; when neither option was given, asked for on the terminal."""
        found = self.resolve(args, used_stdin=used_stdin)
        if found is not None:
            return found
        if sys.stdin is not None and sys.stdin.isatty() and not used_stdin:
            used_stdin.append(self.flag)
            return read_stdin(self.label)
        raise SecretError(
            f"the {self.label} is needed: give {self.flag} - (standard input), "
            f"{self.flag}-fd N, or {self.flag} VALUE"
        )


def add_secret(
    p: argparse.ArgumentParser, flag: str, label: str, help_text: str, *, fd: bool = True
) -> SecretOption:
    """``--flag VALUE|-`` and ``--flag-fd N`` on ``p`` (help says why not the value).

    ``fd=False`` leaves out ``--flag-fd`` where it would make another option's
    abbreviation ambiguous (``pos --operators`` vs ``pos login --operator``)."""
    opt = SecretOption(flag, label)
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        flag,
        metavar="VALUE|-",
        help=f"{help_text}; '-' reads it from standard input (asks without echo on a "
        f"terminal): a value here shows in ps and the shell history",
    )
    if not fd:
        return opt
    group.add_argument(
        flag + "-fd",
        type=_fd,
        metavar="N",
        help=f"read the {label} from file descriptor N (one line)",
    )
    return opt


def _fd(text: str) -> int:
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"expected a file descriptor number, got {text!r}")
    return int(text)


def _line(raw: str, label: str, source: str) -> str:
    line = raw.split("\n", 1)[0].rstrip("\r")
    if not line:
        raise SecretError(f"no {label} on {source}")
    return line


def read_stdin(label: str) -> str:
    """One line from standard input, or a no-echo prompt when it is a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return _line(getpass.getpass(f"{label}: "), label, "the terminal")
        except (EOFError, KeyboardInterrupt):
            raise SecretError(f"no {label} given") from None
    if sys.stdin is None:
        raise SecretError(f"no standard input to read the {label} from")
    return _line(sys.stdin.readline(_MAX), label, "standard input")


def read_fd(fd: int, label: str) -> str:
    """One line from file descriptor ``fd`` (read up to its end or a newline)."""
    chunks: list[bytes] = []
    try:
        while sum(map(len, chunks)) < _MAX:
            chunk = os.read(fd, 512)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\n" in chunk:
                break
    except OSError as exc:
        raise SecretError(
            f"cannot read the {label} from file descriptor {fd}: {exc.strerror}"
        ) from None
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"the {label} on file descriptor {fd} is not UTF-8 text") from None
    return _line(text, label, f"file descriptor {fd}")
