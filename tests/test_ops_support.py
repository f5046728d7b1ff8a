"""Shared helpers of the operations and diagnosis tests (no tests here): a seeded store, the CLI in-process."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

from host_fixture import EXAMPLE_WORLD, TEST_KEK

from clearpos.host.seed import seed
from clearpos.keys import KeyEncryptionKey, SecurityModule
from clearpos.keys.tokens import PanTokenizer
from clearpos.store import Database, open_database
from clearpos.world import load_world

KEK = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
ARREARS_MID = "898310048163002"  # suspended for arrears, owes 58.00
MAIN_MID = "898310048161234"


def seeded(tmp: Path, name: str = "store") -> Database:
    """A store loaded from the example world (no host process)."""
    db = open_database(f"sqlite:///{tmp / (name + '.db')}")
    seed(db, load_world(EXAMPLE_WORLD), SecurityModule(KEK), PanTokenizer(KEK), reset=False)
    return db


def parser() -> argparse.ArgumentParser:
    """``clearpos`` with only ``admin`` and ``diagnose`` (other areas may be mid-change)."""
    from clearpos.cli import register_admin
    from clearpos.diagnosis import cli as diagnose_cli

    p = argparse.ArgumentParser(prog="clearpos")
    sub = p.add_subparsers(dest="command", required=True)
    register_admin(sub.add_parser("admin"))
    diagnose_cli.register(sub.add_parser("diagnose"))
    return p


def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``clearpos ARGV`` in-process: (exit status, stdout, stderr)."""
    import sys

    from clearpos.errors import UsageError

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    old_kek = os.environ.get("CLEARPOS_KEK")
    os.environ["CLEARPOS_KEK"] = TEST_KEK  # the host's KEK, as an operator beside it would have
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                args = parser().parse_args(list(argv))
                rc = int(args.run(args))
            except SystemExit as exc:
                rc = int(exc.code or 0)
            except UsageError as exc:
                print(f"clearpos: error: {exc}", file=sys.stderr)
                rc = 2
    finally:
        sys.stdin = old_stdin
        if old_kek is None:
            del os.environ["CLEARPOS_KEK"]
        else:
            os.environ["CLEARPOS_KEK"] = old_kek
    return rc, out.getvalue(), err.getvalue()


def run_json(*argv: str, stdin: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Run with ``--json``: (exit status, one document per output line)."""
    rc, out, _err = run(*argv, "--json", stdin=stdin)
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return rc, docs


def add_user(db_url: str, username: str, role: str) -> None:
    rc, out, err = run(
        "admin", "--db", db_url, "user", "add", "--username", username, "--role", role,
        "--by", "root", "--password-stdin", stdin="correct horse battery\n",
    )  # fmt: skip
    assert rc == 0, (out, err)
