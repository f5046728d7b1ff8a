"""Leak scan and chip cards: a card file is a secret source (the card itself), and its
ICC keys, the issuer keys and chip data (5A / 57 as BCD) found anywhere else are leaks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearpos.host.seed import seed
from clearpos.issuer.card import bound, personalised
from clearpos.issuer.emv import EmvIssuer, IssuerKeys
from clearpos.keys import KeyEncryptionKey, SecurityModule
from clearpos.keys.tokens import PanTokenizer
from clearpos.lab.leakscan import Secrets, scan_paths
from clearpos.store import open_database
from clearpos.wire import tlv
from clearpos.world import load_world

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "examples" / "world.toml"
PAN = "6214830000000002144"
KEYS = IssuerKeys(
    bytes.fromhex("0123456789ABCDEF0123456789ABCDEF"),
    bytes.fromhex("FEDCBA9876543210FEDCBA9876543210"),
    bytes.fromhex("89ABCDEF0123456789ABCDEF01234567"),
)


@pytest.fixture
def outside() -> Iterator[Path]:
    """Outside pytest's temporary tree: what is planted here on purpose must not trip
    the suite's final scan."""
    with tempfile.TemporaryDirectory(prefix="clearpos-leakscan-chip-") as d:
        yield Path(d)


def test_card_file_is_a_source_and_its_keys_elsewhere_are_leaks(outside: Path) -> None:
    icc = EmvIssuer(KEYS).icc_keys(PAN, "01")
    card = bound(personalised(PAN, "01", "2812", "220", "18", icc), outside / "card.toml")
    card.save()
    (outside / "clean.log").write_text("chip sale 621483*********2144 approved\n")
    (outside / "keys.log").write_text(f"debug icc {icc.smi.hex()}\n")
    result = scan_paths([outside], Secrets())
    assert result.card_files == [str(outside / "card.toml")]
    assert [(Path(h.path).name, h.kind) for h in result.hits] == [("keys.log", "icc-key")]
    assert "6214830000000002144" not in str(result.hits)


def test_chip_data_tags_5a_and_57_are_found(outside: Path) -> None:
    s = Secrets()
    s.add_world(WORLD)
    field55 = tlv.encode(
        [
            ("9F36", b"\x00\x01"),
            ("5A", bytes.fromhex(PAN + "F")),
            ("57", bytes.fromhex(PAN + "D2812220F")),
        ]
    )
    (outside / "frame.bin").write_bytes(b"\x00" * 7 + field55)
    (outside / "frame.hex").write_text(field55.hex().upper())
    hits = scan_paths([outside], s).hits
    kinds = sorted((Path(h.path).name, h.kind, h.label.split(" of ")[0]) for h in hits)
    assert kinds == [
        (name, "chip-data", f"tag {tag}")
        for name in ("frame.bin", "frame.hex")
        for tag in ("57 (track 2 equivalent)", "5A (PAN)")
    ], kinds


def test_issuer_keys_from_the_world_and_from_a_store(outside: Path) -> None:
    s = Secrets()
    s.add_world(WORLD)
    (outside / "dump.txt").write_text(f"imk {KEYS.ac.hex().upper()}\n")
    assert [h.kind for h in scan_paths([outside], s).hits] == ["issuer-key"]
    # the store keeps them sealed; unsealed with the KEK they become secrets too
    kek = KeyEncryptionKey.generate()
    store = outside / "host" / "store.db"
    store.parent.mkdir()
    db = open_database(f"sqlite:///{store}")
    world = load_world(WORLD)
    seed(db, world, SecurityModule(kek), PanTokenizer(kek), reset=False)
    fresh = Secrets()
    # every terminal's TMK and the three issuer keys
    assert fresh.add_sealed_stores(outside / "host", [kek]) == len(world.terminals) + 3
    (outside / "host" / "smc.txt").write_text(KEYS.smc.hex())
    hits = scan_paths([outside / "host"], fresh).hits
    assert [(Path(h.path).name, h.kind) for h in hits] == [("smc.txt", "issuer-key")]


def test_chip_data_tags_as_hex_in_a_log_are_card_data(outside: Path) -> None:
    """Field 55 written to a log as hex, with 5A, 57 and 9F1F in it (either case)."""
    s = Secrets()
    s.add_world(WORLD)
    track1_dd = b"0000123000000"
    field55 = tlv.encode(
        [
            ("9F26", bytes.fromhex("0123456789ABCDEF")),
            ("5A", bytes.fromhex(PAN + "F")),
            ("57", bytes.fromhex(PAN + "D2812220" + "0000000000F")),
            ("9F1F", track1_dd),
            ("9F36", b"\x00\x07"),
        ]
    )
    text = field55.hex()
    (outside / "upper.log").write_text(f"INFO chip sale 55={text.upper()} done\n")
    (outside / "lower.log").write_text(f"debug field55 {text}\n")
    (outside / "raw.bin").write_bytes(b"\x01\x02" + field55 + b"\x00")
    hits = scan_paths([outside], s).hits
    got = sorted((Path(h.path).name, h.label) for h in hits)
    for name in ("lower.log", "raw.bin", "upper.log"):
        labels = [label for n, label in got if n == name]
        assert any(lb.startswith("tag 5A (PAN) of 621483") for lb in labels), (name, labels)
        assert any(lb.startswith("tag 57 (track 2 equivalent) of 621483") for lb in labels)
        assert any(
            lb.startswith("tag 9F1F (track 1 discretionary data, 13 bytes)") for lb in labels
        )
        assert all(h.kind == "chip-data" for h in hits if Path(h.path).name == name), hits
    assert PAN not in str(hits)
    # only the tags: the same bytes without 5A, 57 and 9F1F are no leak
    clean = tlv.encode([("9F26", bytes.fromhex("0123456789ABCDEF")), ("9F36", b"\x00\x07")])
    (outside / "upper.log").write_text(f"INFO chip sale 55={clean.hex().upper()} done\n")
    (outside / "lower.log").unlink()
    (outside / "raw.bin").write_bytes(clean)
    assert scan_paths([outside], s).hits == []


def test_a_card_file_left_half_saved_is_a_source_not_a_leak(outside: Path) -> None:
    icc = EmvIssuer(KEYS).icc_keys(PAN, "01")
    card = bound(personalised(PAN, "01", "2812", "220", "18", icc), outside / "card.toml")
    card.save()
    (outside / "card.toml").rename(outside / "card.toml.tmp")  # killed before the rename
    result = scan_paths([outside], Secrets())
    assert result.hits == [] and result.card_files == [str(outside / "card.toml.tmp")]
