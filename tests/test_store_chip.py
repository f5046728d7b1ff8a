"""The chip parts of the store (migration 5), on SQLite and PostgreSQL: chip rows and
the last ATC, sealed issuer keys, CA keys and AIDs with their generations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import EXAMPLE_WORLD, TEST_KEK, Store

from clearpos.host.seed import seed
from clearpos.issuer.chipkeys import stored_issuer_keys
from clearpos.keys import KeyEncryptionKey, SealedKeyError, SecurityModule
from clearpos.keys.tokens import PanTokenizer
from clearpos.store import AidRec, CapkRec, Database, open_database
from clearpos.store.schema import LATEST
from clearpos.world import load_world

KEK = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
HSM = SecurityModule(KEK)
TOKENS = PanTokenizer(KEK)
WORLD = load_world(EXAMPLE_WORLD)
CHIP19 = "6214830000000002144"
CHIP16 = "6225880000001140"


@pytest.fixture(scope="module")
def db(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = store.new_url(tmp_path_factory.mktemp("chipstore"), "chip")
    database = open_database(url)
    seed(database, WORLD, HSM, TOKENS, reset=False)
    yield database


def card_id(db: Database, pan: str) -> int:
    with db.reader() as tx:
        card = tx.card_by_token(TOKENS.token(pan))
        assert card is not None
        return card.id


def test_migration_5_is_applied_before_6() -> None:
    from clearpos.store.schema import MIGRATIONS

    versions = [m[0] for m in MIGRATIONS]
    assert versions.index(5) < versions.index(6) and max(versions) == LATEST


def test_seed_keeps_chip_rows(db: Database) -> None:
    with db.reader() as tx:
        chip19 = tx.card_chip(card_id(db, CHIP19))
        chip16 = tx.card_chip(card_id(db, CHIP16))
        plain = tx.card_chip(card_id(db, "6222021234567890123"))
        assert chip19 is not None and (chip19.psn, chip19.cvn, chip19.service_code) == (
            "01",
            "18",
            "220",
        )
        assert chip19.last_atc == -1
        assert chip16 is not None and chip16.cvn == "10"
        assert plain is None
        chips = [t.tid for t in tx.terminals() if t.chip]
        assert chips == ["10000011"]
        assert tx.meta("risk.quickpass_no_pin_limit_fen") == "100000"
        assert tx.quickpass_no_pin_limit_fen() == 100_000


def test_issuer_keys_sealed_at_rest(db: Database) -> None:
    assert WORLD.issuer is not None
    with db.reader() as tx:
        sealed = tx.issuer_keys_sealed()
        assert sealed is not None and set(sealed) == {"ac", "smi", "smc"}
        rows = tx.conn.execute("SELECT key, value FROM meta").fetchall()
        stored = " ".join(f"{r['key']}={r['value']}" for r in rows)
        for clear in (WORLD.issuer.imk_ac, WORLD.issuer.imk_smi, WORLD.issuer.imk_smc):
            assert clear.hex().upper() not in stored.upper()
        keys = stored_issuer_keys(tx, HSM)
        assert keys is not None
        assert (keys.ac, keys.smi, keys.smc) == (
            WORLD.issuer.imk_ac,
            WORLD.issuer.imk_smi,
            WORLD.issuer.imk_smc,
        )
        # each key is bound to its name: the AC key does not open as the SMI key
        with pytest.raises(SealedKeyError):
            HSM.open_issuer_key("smi", sealed["ac"])
        # and it does not open under another KEK
        with pytest.raises(SealedKeyError):
            SecurityModule(KeyEncryptionKey.generate()).open_issuer_key("ac", sealed["ac"])


def test_accept_atc_only_goes_up(db: Database) -> None:
    cid = card_id(db, CHIP19)
    with db.transaction() as tx:
        assert tx.accept_atc(cid, 3, "2026-12-02T00:00:00Z")
        assert not tx.accept_atc(cid, 3, "2026-12-02T00:00:01Z")  # the same ATC again
        assert not tx.accept_atc(cid, 2, "2026-12-02T00:00:02Z")  # an older one
        assert tx.accept_atc(cid, 4, "2026-12-02T00:00:03Z")
    with db.reader() as tx:
        chip = tx.card_chip(cid)
        assert chip is not None and (chip.last_atc, chip.atc_at) == (4, "2026-12-02T00:00:03Z")


def test_capks_and_aids_from_the_world(db: Database) -> None:
    with db.reader() as tx:
        capks = tx.capks()
        assert [(k.rid, k.index) for k in capks] == [(k.rid, k.index) for k in WORLD.capks]
        assert capks[0] == CapkRec(
            WORLD.capks[0].rid,
            WORLD.capks[0].index,
            WORLD.capks[0].modulus,
            WORLD.capks[0].exponent,
            WORLD.capks[0].expiry,
            WORLD.capks[0].check_value,
        )
        assert tx.capk("A000000333", "03") == capks[1]
        assert tx.capk("A000000333", "99") is None
        [aid] = tx.aids()
        assert aid.aid == "A000000333010101" and aid.contactless_cvm_limit_fen == 100_000
        assert tx.emv_generation("capk") and tx.emv_generation("aid")


def test_processing_requirement_follows_downloads(db: Database) -> None:
    with db.transaction() as tx:
        chip = tx.terminal("10000011")
        plain = tx.terminal("10000001")
        assert chip is not None and plain is not None
        assert tx.emv_requirement(plain) == 0  # a terminal that reads no chips
        assert tx.emv_requirement(chip) == 4  # fresh: CA keys first
        tx.mark_emv_loaded("10000011", "capk", tx.emv_generation("capk"))
    with db.transaction() as tx:
        chip = tx.terminal("10000011")
        assert chip is not None and tx.emv_requirement(chip) == 5
        tx.mark_emv_loaded("10000011", "aid", tx.emv_generation("aid"))
    with db.transaction() as tx:
        chip = tx.terminal("10000011")
        assert chip is not None and tx.emv_requirement(chip) == 0
        before = tx.config_generation()
        # a new CA key: the terminal must download keys again, and configuration changed
        new = tx.put_capk(CapkRec("A000000333", "80", "C1" * 128, "03", "20301231", "00" * 20))
        assert new
        assert tx.meta("config.gen") != before
        assert tx.emv_requirement(chip) == 4
        assert not tx.put_capk(CapkRec("A000000333", "80", "C2" * 128, "03", "20311231", "11" * 20))
        replaced = tx.capk("A000000333", "80")
        assert replaced is not None and (replaced.modulus[:2], replaced.expiry) == (
            "C2",
            "20311231",
        )
        assert tx.delete_capk("A000000333", "80")
        assert not tx.delete_capk("A000000333", "80")
        gen = tx.emv_generation("aid")
        params = AidRec(
            "A000000333010102", "0030", 0, 500_000, 100_000, "0" * 10, "0" * 10, "0" * 10
        )
        assert tx.put_aid(params)
        assert tx.aid("A000000333010102") == params
        assert tx.emv_generation("aid") != gen
        assert tx.delete_aid("A000000333010102") and not tx.delete_aid("A000000333010102")
        with pytest.raises(ValueError, match="EMV download kind must be one of capk, aid"):
            tx.emv_generation("keys")


def test_reset_wipes_chip_tables(store: Store, tmp_path: Path) -> None:
    database = open_database(store.new_url(tmp_path, "reset-chip"))
    seed(database, WORLD, HSM, TOKENS, reset=False)
    cid = card_id(database, CHIP19)
    with database.transaction() as tx:
        assert tx.accept_atc(cid, 9, "2026-12-02T00:00:00Z")
        tx.put_capk(CapkRec("A000000333", "81", "C1" * 128, "03", "20301231", "00" * 20))
    counts = seed(database, WORLD, HSM, TOKENS, reset=True)
    assert (counts["chip_cards"], counts["capks"], counts["aids"]) == (3, 3, 1)
    with database.reader() as tx:
        assert tx.capk("A000000333", "81") is None
        chip = tx.card_chip(card_id(database, CHIP19))
        assert chip is not None and chip.last_atc == -1


def test_a_migration_landing_out_of_order_is_still_applied(store: Store, tmp_path: Path) -> None:
    """Migration numbers are per engineer: a store already at a later number (here a
    made-up 99) still gets 5 when it arrives."""
    import sqlite3
    from typing import Any

    import psycopg
    from psycopg.rows import dict_row

    from clearpos.store import pg, schema, sqlite

    conn: Any
    if store.backend == "sqlite":
        conn, run = sqlite3.connect(tmp_path / "old.db", isolation_level=None), sqlite.migrate
    else:
        conn = psycopg.connect(store.new_url(tmp_path, "old"), row_factory=dict_row)
        run = pg.migrate
    saved = schema.MIGRATIONS[:]
    try:
        schema.MIGRATIONS[:] = [m for m in saved if m[0] < 5]  # a store made before 5
        run(conn)
        schema.MIGRATIONS[:] = saved
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 'x')")
        if store.backend == "postgresql":
            conn.commit()
        assert run(conn) == 99
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        versions = sorted(int(r[0] if store.backend == "sqlite" else r["version"]) for r in rows)
        assert versions == [*range(1, schema.LATEST + 1), 99]
        conn.execute("SELECT card_id, last_atc FROM card_chips")  # the table exists now
    finally:
        schema.MIGRATIONS[:] = saved
        conn.close()
