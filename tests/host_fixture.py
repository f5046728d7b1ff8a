"""Start a real host process on loopback, on SQLite or on PostgreSQL.

``start_host(tmp)`` uses a fresh SQLite file; ``start_host(tmp, store=store)``
uses the :class:`Store` a test was parametrized with (``store`` fixture in
conftest.py): for PostgreSQL a fresh database ``clearpos_test_<random>`` on the
server named by ``CLEARPOS_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped at teardown, and
``--workers 2`` (``CLEARPOS_TEST_PG_WORKERS``) so that every host test also
crosses process boundaries.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

TEST_KEK = "5e" * 32
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_WORLD = ROOT / "examples" / "world.toml"
PG_ADMIN_URL = os.environ.get("CLEARPOS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_WORKERS = int(os.environ.get("CLEARPOS_TEST_PG_WORKERS", "2"))
BACKENDS = ("sqlite", "postgresql")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["CLEARPOS_KEK"] = TEST_KEK
    e.setdefault("PYTHONUNBUFFERED", "1")
    return e


def pg_unavailable() -> str | None:
    """Why no PostgreSQL can be used for tests, or None when one answers."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc}); run `make test` to set up .venv"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return (
            f"no PostgreSQL at CLEARPOS_TEST_PG={PG_ADMIN_URL} ({str(exc).strip()}); "
            "run scripts/ensure-postgres.sh (make test does)"
        )
    return None


@dataclass
class Store:
    """One backend for a test run; makes (and drops) PostgreSQL databases."""

    backend: str
    workers: int = 1
    made: list[str] = field(default_factory=list)

    def new_url(self, tmp: Path, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{tmp / f'{name}.db'}"
        import psycopg

        db = f"clearpos_test_{secrets.token_hex(6)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        self.made.append(db)
        parts = urlsplit(PG_ADMIN_URL)
        return urlunsplit(parts._replace(path=f"/{db}"))

    def drop_all(self) -> None:
        """Audit every database this store made (issue 9), then drop them all."""
        if not self.made:
            return
        import psycopg
        from store_audit import audit_url, describe

        parts = urlsplit(PG_ADMIN_URL)
        bad = {}
        for db in self.made:
            found = audit_url(urlunsplit(parts._replace(path=f"/{db}")))
            if found:
                bad[db] = found
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for db in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.made.clear()
        assert not bad, describe(bad)


SQLITE = Store("sqlite")


@dataclass
class HostProc:
    proc: subprocess.Popen[str]
    host: str
    port: int
    db: Path
    world: Path
    log: Path
    db_url: str = ""

    @property
    def url(self) -> str:
        return self.db_url or f"sqlite:///{self.db}"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a query on the host's store (``?`` placeholders, any backend)."""
        from clearpos.store import open_database

        with open_database(self.url).reader() as tx:
            return [dict(r) for r in tx.conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """The first row of a query, as a tuple (what sqlite3's fetchone gives)."""
        found = self.rows(sql, params)
        return tuple(found[0].values())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_host(
    tmp: Path,
    *,
    world_text: str | None = None,
    reset: bool = True,
    port: int = 0,
    db: Path | None = None,
    extra: tuple[str, ...] = (),
    name: str = "host",
    store: Store = SQLITE,
    url: str | None = None,
) -> HostProc:
    """A host on ``store`` (a fresh database unless ``url`` or ``db`` names one)."""
    world = tmp / f"{name}-world.toml"
    if not world.exists() or world_text is not None:
        world.write_text(
            world_text if world_text is not None else EXAMPLE_WORLD.read_text("utf-8"), "utf-8"
        )
    db = db or tmp / f"{name}.db"
    if url is None:
        url = f"sqlite:///{db}" if store.backend == "sqlite" else store.new_url(tmp, name)
    workers = ("--workers", str(store.workers)) if store.workers > 1 else ()
    log = tmp / f"{name}.log"
    args = [
        sys.executable, "-m", "clearpos.cli", "host",
        "--world", str(world), "--db", url, "--listen", f"127.0.0.1:{port}",
        *(["--reset", "--yes"] if reset else []), *workers, *extra,
    ]  # fmt: skip
    logf = log.open("a", encoding="utf-8")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=logf, text=True, env=env(), cwd=ROOT
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
        if m:
            return HostProc(proc, m.group(1), int(m.group(2)), db, world, log, url)
    with contextlib.suppress(Exception):
        proc.kill()
    raise RuntimeError(f"host did not start: {line!r}\n{log.read_text()}")


def world_with(extra_toml: str) -> str:
    """The example world plus more TOML (e.g. a maintenance window)."""
    return EXAMPLE_WORLD.read_text("utf-8") + "\n" + extra_toml
