"""Card numbers as people write them: one detector masks free text on the way in and
serves the leak scan (issue 16). Real SQLite files (with their WAL), the admin CLI,
a backup, the console's pages and ``clearpos lab scan``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console import Browser
from test_ops_support import run, run_json, seeded

from clearpos.console.app import create_app
from clearpos.lab.leakscan import Secrets, scan_bytes, scan_paths
from clearpos.ops.users import add_user
from clearpos.wire.mask import find_pans, is_card_number, luhn_ok, render_value, scrub

PAN = "6222021234567890123"  # the example world's card (its Luhn digit is not right)
AMEX = "378282246310005"  # 15 digits, Luhn-valid
WRITTEN = {
    "spaces": "6222 0212 3456 7890 123",
    "dashes": "6222-0212-3456-7890-123",
    "dots": "6222.0212.3456.7890.123",
    "4-6-5": "3782 822463 10005",
    "15 in one piece": AMEX,
}


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok(AMEX) and luhn_ok("6225880000001116")
    assert not luhn_ok("4111111111111112") and not luhn_ok(PAN)


@pytest.mark.parametrize("form", sorted(WRITTEN))
def test_every_written_form_is_masked_to_first_six_last_four(form: str) -> None:
    written = WRITTEN[form]
    digits = written.replace(" ", "").replace("-", "").replace(".", "")
    out = scrub(f"customer card {written}, please call")
    assert out == f"customer card {digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}, please call"
    assert scrub(out) == out, "masking twice changes nothing"


def test_what_is_not_a_card_stays_readable() -> None:
    kept = [
        "merchant 898310048161234 terminal 10000001",  # MID: 15 digits, starts with 8
        "rrn 000123456789 at 20261123123456",  # RRN, timestamp
        "phone 138 0013 8000, date 2026-12-02, amount 1 234.56",
        "stock 100 200 300 400 500 600",  # 18 digits in groups, no card shape
        "12345678901234567890123",  # 23 digits in one piece: no PAN inside
    ]
    for text in kept:
        assert scrub(text) == text, text


def test_a_pan_inside_a_longer_run_of_groups_is_found() -> None:
    assert scrub(f"{PAN} 12 yuan") == "622202*********0123 12 yuan"
    assert scrub(f"no. 12 {WRITTEN['spaces']}") == "no. 12 622202*********0123"


def test_track_text_shows_the_masked_pan_and_nothing_else() -> None:
    for track in (
        "6225880000001116=28121011234567890",
        "6225880000001116D28121011234567890",
        "%B6225880000001116^ZHANG/SAN^2812101000000?",
    ):
        out = scrub(f"track {track} end")
        assert out == "track 622588******1116 [track data hidden] end", out
        assert "2812" not in out and "101" not in out.replace("1116", "")
    for value in ("6225880000001116=28121011234567890", "6225880000001116D2812101123"):
        shown = render_value(35, value)
        assert shown == "[track, PAN 622588******1116]", shown


def test_detector_rules() -> None:
    assert is_card_number(PAN, separated=False)  # one piece, 16-19: always
    assert is_card_number(PAN, separated=True)  # starts like a card (6)
    assert not is_card_number("1002003004005006", separated=True)  # no card digit, bad Luhn
    assert is_card_number(AMEX, separated=False) and is_card_number(AMEX, separated=True)
    assert not is_card_number("898310048161234", separated=False)  # a MID passes Luhn
    (m,) = find_pans("x 3782-822463-10005 y")
    assert (m.start, m.end, m.pan, m.track) == (2, 19, AMEX, False)


# ----------------------------------------------------------------------------- on the way in


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_ticket_text_is_masked_in_the_store_its_wal_the_json_and_a_backup(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    db = seeded(store)
    url = db.url
    with db.transaction() as tx:
        add_user(tx, "zhao", "operator", "correct horse battery", by="test")
    # keep a reader open so the WAL is not checkpointed away before we look at it
    pin = sqlite3.connect(store / "store.db")
    pin.execute("BEGIN")
    pin.execute("SELECT count(*) FROM tickets").fetchone()
    rc, docs = run_json(
        "admin", "--db", url, "ticket", "open", "--tid", "10000003",
        "--title", f"card {WRITTEN['dashes']} refused", "--by", "desk",
    )  # fmt: skip
    assert rc == 0, docs
    tk = str(docs[0]["id"])
    for text in (WRITTEN["spaces"], WRITTEN["dots"], WRITTEN["4-6-5"], AMEX):
        rc, out, err = run(
            "admin", "--db", url, "ticket", "comment", "--id", tk,
            "--text", f"customer read out {text}", "--by", "desk",
        )  # fmt: skip
        assert rc == 0, (out, err)
    assert (store / "store.db-wal").exists()
    raw = _all_bytes(store)
    for form, written in WRITTEN.items():
        assert written.encode() not in raw, f"{form} stored in full"
    rc, docs = run_json("admin", "--db", url, "ticket", "show", "--id", tk, "--brief")
    shown = json.dumps(docs, ensure_ascii=False)
    assert "622202*********0123" in shown and "378282*****0005" in shown
    assert all(w not in shown for w in WRITTEN.values())
    pin.rollback()
    pin.close()
    backup = tmp_path / "backup.db"
    rc, out, err = run("admin", "--db", url, "backup", "--to", str(backup))
    assert rc == 0, (out, err)
    assert all(w.encode() not in backup.read_bytes() for w in WRITTEN.values())


def test_console_ticket_page_never_shows_a_written_pan(tmp_path: Path) -> None:
    db = seeded(tmp_path)
    with db.transaction() as tx:
        add_user(tx, "oli", "operator", "oli-horse-battery-9", by="test")
    b = Browser(create_app(db, secret=b"masking-test-secret-32-bytes-ok!"))
    assert b.login("oli", "oli-horse-battery-9").status == 303
    r = b.act(
        "/tickets",
        {"title": f"card {WRITTEN['spaces']} refused", "tid": "10000003", "body": f"also {AMEX}"},
        "/tickets/new",
    )
    assert r.status == 303, r.body[:500]
    page = b.get(r.location).body
    assert WRITTEN["spaces"] not in page and AMEX not in page
    assert "622202*********0123" in page and "378282*****0005" in page


# ----------------------------------------------------------------------------- the leak scan


@pytest.fixture
def secrets() -> Secrets:
    s = Secrets()
    s.add_card(PAN, "2812", "123456")
    s.add_card(AMEX, "2612", "1234")
    return s


@pytest.mark.parametrize("form", sorted(WRITTEN))
def test_leak_scan_finds_every_written_form(secrets: Secrets, form: str) -> None:
    (hit,) = scan_bytes(f"note: {WRITTEN[form]} ok".encode(), secrets, "f")
    assert hit.kind == "pan" and hit.offset == 6
    assert WRITTEN[form] not in str(hit)


def test_leak_scan_finds_track_text_after_a_written_pan(secrets: Secrets) -> None:
    (hit,) = scan_bytes(b"t=6222 0212 3456 7890 123=2812101", secrets, "f")
    assert hit.kind == "track2"


def test_leak_scan_ignores_masked_text_and_other_numbers(secrets: Secrets) -> None:
    for clean in (b"622202*********0123 [track data hidden]", b"4111 1111 1111 1111"):
        assert scan_bytes(clean, secrets) == [], clean


@pytest.fixture
def outside() -> Iterator[Path]:
    """Outside pytest's temporary tree: the PAN planted here on purpose must not trip
    the session's leak scan (tests/test_zz_leakscan.py)."""
    with tempfile.TemporaryDirectory(prefix="clearpos-masking-") as d:
        yield Path(d)


def test_lab_scan_cli_finds_a_written_pan_in_a_real_store(outside: Path) -> None:
    """``clearpos lab scan`` on an SQLite file where a spaced PAN was written past the
    masking (straight SQL): found; the same store written through ops: clean."""
    world = Path(__file__).resolve().parent.parent / "examples" / "world.toml"
    clean_dir, dirty_dir = outside / "clean", outside / "dirty"
    clean_dir.mkdir()
    db = seeded(clean_dir)
    rc, _, err = run(
        "admin", "--db", db.url, "ticket", "open", "--tid", "10000003",
        "--title", f"card {WRITTEN['spaces']}", "--by", "desk",
    )  # fmt: skip
    assert rc == 0, err
    shutil.copytree(clean_dir, dirty_dir)
    con = sqlite3.connect(dirty_dir / "store.db")
    con.execute("UPDATE tickets SET title = ?", (f"card {WRITTEN['spaces']}",))
    con.commit()
    con.close()
    import subprocess
    import sys

    from host_fixture import ROOT, env

    def scan(d: Path) -> tuple[int, str]:
        p = subprocess.run(
            [sys.executable, "-m", "clearpos.cli", "lab", "scan", "--world", str(world), str(d)],
            capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120,
        )  # fmt: skip
        return p.returncode, p.stdout + p.stderr

    rc, out = scan(clean_dir)
    assert rc == 0, out
    rc, out = scan(dirty_dir)
    assert rc != 0 and "622202*********0123 written in groups" in out, out
    assert WRITTEN["spaces"] not in out
    result = scan_paths([dirty_dir], Secrets.from_world_text(world.read_text("utf-8")))
    assert any(h.label.endswith("written in groups") for h in result.hits)
