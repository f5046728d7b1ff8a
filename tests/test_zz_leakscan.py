"""Leak scan: the scanner finds what it must (and only that); then, as the suite's last
test, every file the suite left behind -- logs, journals, exports, receipts, terminal
state, host stores, tickets, console pages -- is scanned for the test data's secrets.

The session scan covers this pytest run's temporary directory and, when present,
``artifacts/`` and ``demo-run/`` in the checkout. Secrets come from the demo and
example worlds, every world file found there, the fault-lab runs found there
(``lab.json``), and the working keys unsealed from every store found, with the test
KEK and the lab KEKs. Zero hits required.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearpos.keys import KeyEncryptionKey
from clearpos.keys.crypto import PinEngine, pin_block
from clearpos.lab.campaign import DEMO_WORLD
from clearpos.lab.leakscan import Secrets, clear_pin_block, scan_bytes, scan_paths

ROOT = Path(__file__).resolve().parents[1]
TEST_KEK = "5e" * 32
PAN = "6222021234567890123"
PAN16 = "6225880000001116"
TMK = "0123456789ABCDEFFEDCBA9876543210"
WORKING = bytes.fromhex("13579BDF02468ACE2468ACE013579BDF")


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    s = Secrets()
    s.add_world(DEMO_WORLD)
    s.add_working_keys([WORKING])
    return s


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside pytest's temporary tree: what these tests plant there on
    purpose must not trip the session scan at the end."""
    with tempfile.TemporaryDirectory(prefix="clearpos-leakscan-") as d:
        yield Path(d)


def test_clear_pin_block_matches_the_key_module() -> None:
    for pin, pan in (("123456", PAN), ("8888", "6214830000000001138"), ("1234", PAN16)):
        assert clear_pin_block(pin, pan) == pin_block(pin, pan)


def test_finds_pans_track2_keys_and_pin_blocks(secrets: Secrets) -> None:
    block = PinEngine(WORKING).encrypt("123456", PAN16)
    cases: list[tuple[bytes, str]] = [
        (b"card " + PAN.encode() + b" ok", "pan"),
        (b'{"track2": "' + f"{PAN16}={2812}".encode() + b'"}', "track2"),
        (b"x" + bytes.fromhex(PAN + "D2812") + b"y", "track2"),
        (b"x" + bytes.fromhex("0" + PAN16 + "D28") + b"y", "pan"),
        (b"\x00\x01" + bytes.fromhex(PAN16) + b"\x02", "pan"),
        (b"\x00" + bytes.fromhex("0" + PAN) + b"\x02", "pan"),
        (b"tmk=" + TMK.lower().encode(), "tmk"),
        (b"\xff" + bytes.fromhex(TMK) + b"\xfe", "tmk"),
        (b"key " + WORKING.hex().upper().encode(), "working-key"),
        (b"blob" + WORKING + b"end", "working-key"),
        (b"52=" + clear_pin_block("123456", PAN).hex().encode(), "pin-block"),
        (b"f52 " + block.hex().upper().encode(), "pin-block"),
        (b"raw" + block, "pin-block"),
        (b'{"pin": "123456"}', "pin"),
        (b"PIN: 8888\n", "pin"),
        (b"clearpos pos purchase 1 --pin 123456", "pin"),
        (b"pin=8888&x=1", "pin"),
    ]
    for data, kind in cases:
        found = scan_bytes(data, secrets, "f")
        assert [h.kind for h in found] == [kind], (data, found)
        assert PAN not in str(found[0]) and TMK not in str(found[0]).upper()


def test_reports_offset_and_masked_secret(secrets: Secrets) -> None:
    data = b"0123456789" + PAN.encode()
    (hit,) = scan_bytes(data, secrets, "logs/host.log")
    assert (hit.path, hit.offset, hit.kind) == ("logs/host.log", 10, "pan")
    assert str(hit) == "logs/host.log:10: pan 622202*********0123"


def test_no_false_alarms(secrets: Secrets) -> None:
    clean = [
        b"622202*********0123 approved",  # masked PANs are fine
        b'{"stan": "123456", "amount_fen": 88880}',  # PIN digits in unrelated fields
        b"rrn 000123456789 batch 000001 ts 20261123123456",
        b'{"pin_tries": 3, "pin_locked": false, "pin": true}',
        b"opinion=123456",  # not the word pin
        b"12345678 8888 0000",
        bytes(range(256)) * 4,
    ]
    for data in clean:
        assert scan_bytes(data, secrets) == [], data


def test_world_files_are_sources_not_hits(outside: Path) -> None:
    tmp_path = outside
    world = tmp_path / "w" / "my-world.toml"
    world.parent.mkdir()
    world.write_text(
        '[[cards]]\npan = "6217990000000001"\nexpiry = "2912"\npin = "424242"\n', "utf-8"
    )
    (tmp_path / "log.txt").write_text("sale 6217990000000001 pin=424242\n")
    result = scan_paths([tmp_path], Secrets())
    assert result.worlds == [str(world)]
    assert sorted(h.kind for h in result.hits) == ["pan", "pin"]


def test_working_keys_are_unsealed_from_stores(outside: Path) -> None:
    tmp_path = outside
    import sqlite3

    kek = KeyEncryptionKey(bytes.fromhex(TEST_KEK))
    db = tmp_path / "host.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE terminals (tid, tmk_sealed, pik_sealed, mak_sealed)")
        conn.execute(
            "INSERT INTO terminals VALUES (?, ?, ?, ?)",
            (
                "10000009",
                kek.seal(bytes.fromhex(TMK), "tmk:10000009"),
                kek.seal(WORKING, "pik:10000009"),
                kek.seal(WORKING[:8], "mak:10000009"),
            ),
        )
    (tmp_path / "dump.txt").write_text(f"mak {WORKING[:8].hex()}\n")
    s = Secrets()
    assert s.add_sealed_stores(tmp_path, [kek]) == 3
    hits = scan_paths([tmp_path], s).hits
    assert [(Path(h.path).name, h.kind) for h in hits] == [("dump.txt", "working-key")]


def _session_secrets(roots: list[Path]) -> Secrets:
    s = Secrets()
    s.add_world(DEMO_WORLD)
    s.add_world(ROOT / "examples" / "world.toml")
    keks = [KeyEncryptionKey(bytes.fromhex(TEST_KEK))]
    for root in roots:
        s.add_lab_runs(root)
        s.add_sealed_stores(root, keks)
    return s


def test_zz_nothing_the_suite_wrote_leaks(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Last test of the session: the suite's files hold no PAN, track 2, PIN block,
    PIN, TMK or working key of the test data."""
    roots = [tmp_path_factory.getbasetemp()]
    roots += [p for p in (ROOT / "artifacts", ROOT / "demo-run") if p.is_dir()]
    secrets = _session_secrets(roots)
    result = scan_paths(roots, secrets)
    report = json.dumps(result.to_json(), indent=1, ensure_ascii=False)
    print(f"leak scan: {result.files} files, {result.bytes} bytes, {len(result.hits)} hits")
    assert result.hits == [], report
