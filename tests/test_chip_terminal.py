"""The virtual terminal with simulated chip cards (issue 19, item 4), against a real host.

``clearpos admin cards personalise`` writes the card file; ``pos purchase --chip``
and ``--tap`` run the card's side of EMV (ARQC, then the second GENERATE AC on the
host's 91), the ATC goes on in the file; ``--chip-fails`` falls back to the swipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import EXAMPLE_WORLD, ROOT, HostProc, Store, env, start_host

from clearpos.audit import run_audit
from clearpos.issuer.card import load_card
from clearpos.keys import KeyEncryptionKey
from clearpos.keys.tokens import PanTokenizer
from clearpos.wire import tlv as _tlv

TID, MID, TMK = "10000011", "898310048161234", "7B6A59483726150413243546576879A8"
CHIP19 = "6214830000000002144"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    world = EXAMPLE_WORLD.read_text("utf-8").replace(
        "card_velocity = { count = 5, window_s = 60, lock_s = 1800 }", ""
    )
    h = start_host(tmp_path_factory.mktemp("chipterm"), store=store, world_text=world)
    yield h
    h.stop()
    assert run_audit(h.url) == []
    assert CHIP19 not in h.log_text()


def clearpos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *args],
        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120,
    )  # fmt: skip


def pos(h: HostProc, state: Path, *args: str) -> dict[str, object]:
    r = clearpos(
        "pos", "--host", f"{h.host}:{h.port}", "--tid", TID, "--mid", MID, "--tmk", TMK,
        "--state", str(state), "--json", *args,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def test_chip_tap_and_fallback_from_a_personalised_card(host: HostProc, tmp_path: Path) -> None:
    card_file = tmp_path / "card.toml"
    r = clearpos("admin", "--db", host.url, "cards", "personalise", CHIP19, "--out", str(card_file))
    assert r.returncode == 0, r.stderr
    assert (card_file.stat().st_mode & 0o777) == 0o600
    atc0 = load_card(card_file).atc
    state = tmp_path / "pos"
    assert pos(host, state, "login", "--operator", "01", "--password", "0000")["approved"]

    sale = pos(host, state, "purchase", "12.34", "--chip", str(card_file), "--pin", "123456")
    assert sale["approved"] and sale["reason"] == "approved", sale
    assert load_card(card_file).atc == atc0 + 1  # the card's ATC goes on, in its file
    (row,) = host.rows(
        "SELECT entry_mode, facts FROM journal WHERE id = ?", (int(str(sale["rrn"])),)
    )
    assert row["entry_mode"] == "051" and '"arqc": "verified"' in row["facts"]
    # the receipt, as a real chip receipt: AID, label, ARQC, TC and ATC, on both copies
    chip = sale["chip"]
    assert isinstance(chip, dict) and chip["cryptogram"] == "TC"
    card = load_card(card_file)
    assert chip["aid"] == card.aid and chip["label"] == card.label and chip["atc"] == card.atc
    receipt = Path(str(sale["receipt"])).read_text("utf-8")
    assert len(str(chip["tc"])) == 16 and chip["tc"] != chip["arqc"]
    for label, value in (("AID:", card.aid), ("应用标签:", card.label), ("ARQC:", chip["arqc"]),
                         ("TC:", chip["tc"]), ("ATC:", f"{card.atc:04X}")):  # fmt: skip
        assert sum(ln.startswith(label) and ln.endswith(f" {value}")
                   for ln in receipt.splitlines()) == 2, (label, receipt)  # fmt: skip

    tap = pos(host, state, "purchase", "20.00", "--tap", str(card_file))
    assert tap["approved"], tap
    (row,) = host.rows("SELECT entry_mode FROM journal WHERE id = ?", (int(str(tap["rrn"])),))
    assert row["entry_mode"] == "072"

    over = pos(host, state, "purchase", "1000.01", "--tap", str(card_file))
    assert not over["approved"] and over["reason"] == "card.pin_required", over

    fallback = pos(
        host, state, "purchase", "3.00", "--chip", str(card_file), "--chip-fails", "--pin", "123456"
    )
    assert fallback["approved"], fallback
    (row,) = host.rows(
        "SELECT entry_mode, facts FROM journal WHERE id = ?", (int(str(fallback["rrn"])),)
    )
    assert row["entry_mode"] == "801" and '"fallback": true' in row["facts"]
    assert "AID:" not in Path(str(fallback["receipt"])).read_text("utf-8")  # no chip read

    swipe = pos(host, state, "purchase", "3.00", "--card", CHIP19, "--expiry", "2812",
                "--pin", "123456")  # fmt: skip
    assert not swipe["approved"], swipe  # service code 201 from a plain swipe: chip required
    assert swipe["reason"] == "card.chip_required"


def test_card_options_are_checked(host: HostProc, tmp_path: Path) -> None:
    r = clearpos(
        "pos", "--host", f"{host.host}:{host.port}", "--tid", TID, "--mid", MID, "--tmk", TMK,
        "--state", str(tmp_path / "p"), "purchase", "1.00", "--chip-fails",
    )  # fmt: skip
    assert r.returncode == 2 and "--chip-fails needs --chip or --tap" in r.stderr
    r = clearpos(
        "pos", "--host", f"{host.host}:{host.port}", "--tid", TID, "--mid", MID, "--tmk", TMK,
        "--state", str(tmp_path / "p"), "purchase", "1.00", "--chip", str(tmp_path / "none.toml"),
    )  # fmt: skip
    assert r.returncode == 2 and "card file" in r.stderr


def _balance(h: HostProc, pan: str) -> int:
    tok = PanTokenizer(KeyEncryptionKey(bytes.fromhex("5e" * 32))).token(pan)
    row = h.one("SELECT balance_fen - holds_fen FROM cards WHERE pan_token = ?", (tok,))
    return int(row[0])


def test_the_card_refusing_after_an_approval_is_reversed_and_not_charged(
    host: HostProc, tmp_path: Path
) -> None:
    card_file = tmp_path / "card.toml"
    r = clearpos("admin", "--db", host.url, "cards", "personalise", CHIP19, "--out", str(card_file))
    assert r.returncode == 0, r.stderr
    state = tmp_path / "pos"
    assert pos(host, state, "login", "--operator", "01", "--password", "0000")["approved"]
    # a fresh device store starts its STANs again: close the host's batch of the other
    # tests' terminal first, so this one's STANs are new to the host
    assert pos(host, state, "settle")["approved"]
    before = _balance(host, CHIP19)

    sale = pos(host, state, "purchase", "7.00", "--chip", str(card_file), "--pin", "123456",
               "--card-refuses")  # fmt: skip
    assert not sale["approved"] and sale["reason"] == "card.refused_after_approval", sale
    assert sale["charged"] is False and sale["host_code"] == "00", sale
    reversal = sale["reversal"]
    assert isinstance(reversal, dict) and (reversal["reason_code"], reversal["done"]) == (
        "06",
        True,
    )
    chip = sale["chip"]
    assert isinstance(chip, dict) and chip["cryptogram"] == "AAC" and chip["tc"] == ""
    assert chip["issuer_auth"] == "verified"  # the ARPC was fine: the card itself said no
    assert _balance(host, CHIP19) == before  # the host undid the approved sale

    # on the host: the approved 0200 and its 0400 reason 06, which carried the card's 55
    stan = str(sale["stan"])
    rows = host.rows(
        "SELECT mti, status, facts, original_id FROM journal"
        " WHERE tid = ? AND batch = ? AND stan = ? ORDER BY id",
        (TID, str(sale["batch"]), stan),
    )
    assert [(r["mti"], r["status"]) for r in rows][:1] == [("0200", "reversed")], rows
    (rev,) = [r for r in rows if r["mti"] == "0400"]
    facts = json.loads(rev["facts"])
    assert facts["reversal_reason"] == "06" and rev["original_id"] is not None
    # 95, 9F10 (the AAC's IAD) and the ATC of the sale it undoes
    assert set(facts["chip_data"]) >= {"95", "9F10", "9F36"}
    assert int(facts["chip_data"]["9F36"], 16) == chip["atc"]

    again = pos(host, state, "purchase", "7.00", "--chip", str(card_file), "--pin", "123456")
    assert again["approved"], again  # without the flag the same card goes through
    assert _balance(host, CHIP19) == before - 700


def test_card_refuses_is_checked(host: HostProc, tmp_path: Path) -> None:
    base = ("pos", "--host", f"{host.host}:{host.port}", "--tid", TID, "--mid", MID, "--tmk", TMK,
            "--state", str(tmp_path / "p"), "purchase", "1.00")  # fmt: skip
    r = clearpos(*base, "--card-refuses")
    assert r.returncode == 2 and "--card-refuses needs --chip or --tap" in r.stderr
    card_file = tmp_path / "card.toml"
    r = clearpos("admin", "--db", host.url, "cards", "personalise", CHIP19, "--out", str(card_file))
    assert r.returncode == 0, r.stderr
    r = clearpos(*base, "--chip", str(card_file), "--chip-fails", "--card-refuses")
    assert r.returncode == 2 and "leave out --chip-fails" in r.stderr


def _forget_chip_downloads(h: HostProc) -> None:
    """Make the host see terminal TID as fresh: it holds none of the CA keys or AIDs."""
    sql = "UPDATE terminals SET capk_loaded = '', aid_loaded = '' WHERE tid = {}"
    if h.url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(h.db)
        con.execute(sql.format("?"), (TID,))
        con.commit()
        con.close()
    else:
        import psycopg

        with psycopg.connect(h.url) as con:
            con.execute(sql.format("%s"), (TID,))  # type: ignore[arg-type]


def test_a_chip_terminal_follows_processing_requirements_4_and_5(
    host: HostProc, tmp_path: Path
) -> None:
    _forget_chip_downloads(host)
    state = tmp_path / "pos"
    login = pos(host, state, "login", "--operator", "01", "--password", "0000")
    assert login["approved"], login
    # the sign-on's answer said 4: the terminal fetched the CA keys, then the AIDs
    assert login["chip_download"] == {"loaded": ["capk", "aid"], "counts": {"capk": 3, "aid": 1}}
    (row,) = host.rows("SELECT capk_loaded, aid_loaded FROM terminals WHERE tid = ?", (TID,))
    assert row["capk_loaded"] != "" and row["aid_loaded"] != ""

    from clearpos.terminal.store import Store as DeviceStore

    dev = DeviceStore(state)
    try:
        keys = {(k.rid, k.index): k for k in dev.chip_capks()}
        aids = dev.chip_aids()
    finally:
        dev.close()
    assert set(keys) == {("A000000333", "02"), ("A000000333", "03"), ("A000000333", "04")}
    assert all(len(k.expiry) == 8 and k.modulus and k.exponent for k in keys.values())
    assert keys["A000000333", "03"].check_value.startswith("87F0CD7C")  # as published
    assert [a.aid for a in aids] == ["A000000333010101"]
    tags = _tlv.flatten(_tlv.decode(bytes.fromhex(aids[0].tlv)))
    assert {"DF11", "DF12", "DF13", "9F1B", "DF20", "DF21"} <= set(tags)

    # the host now has nothing more to ask: a sign-on downloads nothing
    again = pos(host, state, "signon")
    assert again["approved"] and "chip_download" not in again, again
    # the explicit command downloads everything again, whatever the host asks
    explicit = pos(host, state, "download-chip")
    assert explicit["approved"] and explicit["reason"] == "approved", explicit
    assert explicit["chip_download"] == {
        "loaded": ["capk", "aid"],
        "counts": {"capk": 3, "aid": 1},
    }


def _chip_line(h: HostProc, state: Path) -> dict[str, object]:
    report = pos(h, state, "doctor", "--lang", "en")
    (line,) = [c for c in report["checks"] if c["name"] == "chip parameters"]  # type: ignore[attr-defined]
    return line  # type: ignore[no-any-return]


def test_doctor_compares_the_chip_parameters_with_the_host(host: HostProc, tmp_path: Path) -> None:
    state = tmp_path / "pos"
    assert pos(host, state, "login", "--operator", "01", "--password", "0000")["approved"]
    assert pos(host, state, "download-chip")["approved"]
    line = _chip_line(host, state)
    assert line["ok"] is True and "3 CA keys" in str(line["detail"]), line
    assert "A000000333/03 20301231" in str(line["detail"]) and "1 AIDs" in str(line["detail"])

    # the acquirer adds a CA key: doctor names it and says what to do
    modulus = "C1" * 128
    admin = ("admin", "--db", host.url, "emv", "capk")
    who = ("--by", "test", "--why", "a new CA key")
    r = clearpos(*admin, "add", *who, "--rid", "A000000333", "--index", "0B", "--modulus", modulus,
                 "--expiry", "20301231")  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        line = _chip_line(host, state)
        assert line["ok"] is False and "CA keys missing A000000333/0B" in str(line["detail"])
        assert any("download-chip" in step for step in line["remedy"]), line  # type: ignore[attr-defined]
        assert pos(host, state, "download-chip")["approved"]
        line = _chip_line(host, state)
        assert line["ok"] is True and "4 CA keys" in str(line["detail"]), line
    finally:
        r = clearpos(*admin, "remove", *who, "--rid", "A000000333", "--index", "0B")
        assert r.returncode == 0, r.stderr
    line = _chip_line(host, state)
    assert line["ok"] is False and "the host no longer has A000000333/0B" in str(line["detail"])
