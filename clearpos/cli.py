"""The ``clearpos`` command line.

Each area registers its own subcommand module; ``main`` only dispatches.
Exit status: 0 success, 1 refused or declined, 2 bad usage (spec/world.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from .errors import UsageError

# subcommand -> module with ``register(subparsers)`` (or ``module:function``);
# imported lazily so that ``clearpos wire`` does not pay for the host's imports.
COMMANDS: dict[str, tuple[str, str]] = {
    "wire": ("clearpos.wire.cli", "decode and encode POS 8583 messages"),
    "pos": ("clearpos.terminal.cli", "the virtual POS terminal"),
    "host": ("clearpos.app", "run the acquiring host"),
    "console": ("clearpos.console.cli", "run the web console"),
    "audit": ("clearpos.audit", "check the money invariants of a store"),
    "diagnose": ("clearpos.diagnosis.cli", "explain a transaction, terminal or merchant"),
    "admin": (
        "clearpos.cli:register_admin",
        "merchants, terminals, cards, arrears, tickets, reports, backups",
    ),
    "docs": ("clearpos.helpcenter.cli", "generate the merchant help pages"),
    "demo": ("clearpos.demo", "run the whole story on an embedded store"),
    "lab": ("clearpos.lab.cli", "the fault lab: a seeded campaign of faults and crashes"),
}


class HelpfulParser(argparse.ArgumentParser):
    """An argparse parser that answers a missing command with its help, not a bare error.

    ``clearpos`` or ``clearpos admin`` alone prints the help of that level (the commands
    to choose from) on standard error and exits 2, argparse's status for bad usage:
    a script that forgot the command still fails. ``--help`` prints it and exits 0.
    """

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required:") and any(
            isinstance(a, argparse._SubParsersAction) and str(a.metavar) in message
            for a in self._actions
        ):
            self.print_help(sys.stderr)
            self.exit(2, f"\n{self.prog}: error: {message}\n")
        super().error(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand; with ``command``, only that one's module is imported and its
    options registered (the others are still listed, by name and help)."""
    from . import __version__

    parser = HelpfulParser(
        prog="clearpos",
        description="clearpos — POS acquiring host, virtual terminal and help desk.",
    )
    parser.add_argument("--version", action="version", version=f"clearpos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is not None and name != command:
            continue
        name_of_module, _, function = module.partition(":")
        getattr(importlib.import_module(name_of_module), function or "register")(p)
    return parser


def register_admin(p: argparse.ArgumentParser) -> None:
    """``clearpos admin``: the ops groups, with the ticket group of diagnosis (a
    ticket's evidence is a diagnosis, and ops may not import what is above it)."""
    from .diagnosis import tickets, tickets_cli
    from .ops import cli as ops_cli

    ops_cli.register(p, tickets=tickets_cli.register_group, lifecycles=(tickets.TICKET,))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the command is the first word (the top level's options take no value): a run of
    # `clearpos pos ...` need not import and register the host, console, admin...
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        rc: int = args.run(args)
    except UsageError as exc:
        parser.exit(2, f"clearpos: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    # ``python -m clearpos.cli`` runs this file as ``__main__``; the subcommands raise
    # ``clearpos.cli.UsageError``, so dispatch through that module, not this copy of it.
    from clearpos.cli import main as _main

    sys.exit(_main())
