"""Errors every layer may raise and only the command line turns into an exit status."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad command-line usage detected after parsing (exit status 2, spec/world.md).

    Raised by a subcommand's ``run`` (ops, diagnosis, ...) when the arguments
    parse but do not make sense together; ``clearpos.cli.main`` prints it as
    ``clearpos: error: ...`` and exits 2.
    """
