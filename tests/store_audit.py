"""The audit on every test database (issue 9): what a test leaves in a host store
must add up, whatever the test itself checked.

``conftest.py`` calls :func:`audit_test_stores` after every test on the SQLite
host stores under its ``tmp_path`` and :func:`audit_url` on each PostgreSQL
database a :class:`host_fixture.Store` made, before it is dropped; anything
under the session's base temporary directory that no test-level check reached
(module-scoped hosts) is audited at the end of the session. A test that damages
a store on purpose names the file with ``@pytest.mark.broken_stores("x.db")``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from clearpos.audit import Discrepancy, run_audit

HOST_TABLES = {"meta", "merchants", "terminals", "cards", "journal", "settlements"}

#: SQLite files already audited (or exempted) this session
seen: set[Path] = set()
#: how many host stores were audited this session, by backend (for the summary line)
audited = {"sqlite": 0, "postgresql": 0}


def is_host_store(path: Path) -> bool:
    """A SQLite file holding clearpos host tables (not a terminal's or anything else)."""
    try:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return False
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            names = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False  # damaged on purpose, or not a database at all
    return names >= HOST_TABLES


def audit_url(url: str) -> list[Discrepancy]:
    audited["sqlite" if url.startswith("sqlite:") else "postgresql"] += 1
    return run_audit(url)


def audit_files(paths: Iterable[Path], exempt: Iterable[str] = ()) -> dict[str, list[Discrepancy]]:
    """Audit each host store among ``paths``; returns the ones with discrepancies."""
    skip = set(exempt)
    bad: dict[str, list[Discrepancy]] = {}
    for path in sorted(paths):
        path = path.resolve()
        if path in seen:
            continue
        seen.add(path)
        if path.name in skip or not is_host_store(path):
            continue
        found = audit_url(f"sqlite:///{path}")
        if found:
            bad[str(path)] = found
    return bad


def audit_test_stores(root: Path, exempt: Iterable[str] = ()) -> dict[str, list[Discrepancy]]:
    return audit_files(root.rglob("*.db"), exempt)


def describe(bad: dict[str, list[Discrepancy]]) -> str:
    lines = ["the audit found discrepancies in a test's host store:"]
    for where, found in bad.items():
        lines.append(f"  {where}:")
        lines += [
            f"    {d.check}: {d.detail} (rows {', '.join(map(str, d.rows))})" for d in found[:10]
        ]
    return "\n".join(lines)
