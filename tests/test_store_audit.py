"""The audit on every test database: the mechanism itself (tests/store_audit.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from host_fixture import TEST_KEK
from store_audit import audit_test_stores, is_host_store

from clearpos.host.cli import build_engine
from clearpos.host.seed import seed
from clearpos.keys import KeyEncryptionKey
from clearpos.store import open_database
from clearpos.terminal.store import Store as TerminalStore
from clearpos.world import load_world

WORLD = Path(__file__).resolve().parent.parent / "examples" / "world.toml"


def _host_store(path: Path) -> None:
    db = open_database(f"sqlite:///{path}")
    _, hsm, tokens = build_engine(KeyEncryptionKey(bytes.fromhex(TEST_KEK)))
    seed(db, load_world(WORLD), hsm, tokens, reset=False)


@pytest.mark.broken_stores("tampered.db")  # broken on purpose: the audit must see it
def test_a_store_whose_money_does_not_add_up_is_reported(tmp_path: Path) -> None:
    _host_store(tmp_path / "clean.db")
    (tmp_path / "sub").mkdir()
    _host_store(tmp_path / "sub" / "tampered.db")
    with sqlite3.connect(tmp_path / "sub" / "tampered.db") as conn:
        conn.execute("UPDATE cards SET balance_fen = balance_fen + 1 WHERE id = 1")
    TerminalStore(tmp_path / "pos").close()  # a terminal's store is not a host store
    assert is_host_store(tmp_path / "clean.db")
    assert not any(is_host_store(p) for p in (tmp_path / "pos").glob("*.db"))
    bad = audit_test_stores(tmp_path)
    assert list(bad) == [str((tmp_path / "sub" / "tampered.db").resolve())]
    assert bad[next(iter(bad))][0].check == "balance"
    # once audited, a file is not audited again (the session-end pass skips it)
    assert audit_test_stores(tmp_path) == {}


@pytest.mark.broken_stores("broken.db")
def test_exempt_names_are_left_out(tmp_path: Path) -> None:
    _host_store(tmp_path / "broken.db")
    with sqlite3.connect(tmp_path / "broken.db") as conn:
        conn.execute("UPDATE cards SET holds_fen = holds_fen + 1 WHERE id = 1")
    assert audit_test_stores(tmp_path, ["broken.db"]) == {}
