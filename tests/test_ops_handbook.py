"""docs/provider-handbook.md is runnable: every ``clearpos admin`` / ``clearpos diagnose``
line of its ``sh`` blocks, in order, on a store loaded from the example world.

A line ending in ``# exit N: words`` must exit N and say those words; every
other line must exit 0. ``clearpos host`` / ``clearpos pos`` lines and
``export`` are the reader's setup and are not run here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from host_fixture import ROOT
from test_ops_support import run, seeded

HANDBOOK = ROOT / "docs" / "provider-handbook.md"
_EXIT = re.compile(r"#\s*exit (\d)(?::\s*(.*))?$")


def commands() -> list[tuple[int, str]]:
    """(line number, command) of each runnable line of the ``sh`` blocks."""
    out: list[tuple[int, str]] = []
    in_sh = False
    pending = ""
    for n, raw in enumerate(HANDBOOK.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if line.startswith("```"):
            in_sh = line == "```sh" and not in_sh
            continue
        if not in_sh or not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if "clearpos admin" in line or "clearpos diagnose" in line:
            out.append((n, line))
    return out


def test_the_handbook_has_examples_of_every_area() -> None:
    text = " ".join(c for _, c in commands())
    for area in (
        "merchant",
        "terminal",
        "card",
        "arrears",
        "resume",
        "maintenance",
        "ticket",
        "user",
        "report",
        "backup",
        "restore",
        "export",
        "diagnose",
    ):
        assert area in text, area


def test_every_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seeded(tmp_path, "clearpos")  # what `clearpos host --world examples/world.toml --reset` loads
    for n, line in commands():
        stdin = None
        m = re.match(r"echo '([^']*)' \| (.*)$", line)
        if m:
            stdin, line = m.group(1) + "\n", m.group(2)
        want = _EXIT.search(line)
        rc_want = int(want.group(1)) if want else 0
        words = (want.group(2) or "").strip() if want else ""
        argv = shlex.split(line, comments=True)
        assert argv[0] == "clearpos", (n, line)
        rc, out, err = run(*argv[1:], stdin=stdin)
        assert rc == rc_want, (
            f"docs/provider-handbook.md:{n}: exit {rc}, want {rc_want}\n{line}\n{out}{err}"
        )
        if words:
            assert words in out + err, (
                f"docs/provider-handbook.md:{n}: {words!r} not said:\n{out}{err}"
            )
    assert (tmp_path / "clearpos-backup.db").is_file() and (tmp_path / "journal.csv").is_file()
    assert (tmp_path / "report-2026-11-23.csv").read_text("utf-8").startswith("date,mid,")
