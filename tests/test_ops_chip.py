"""`clearpos admin cards personalise` and `clearpos admin emv capk|aid`: audited, precise refusals,
and a personalised card whose cryptograms the issuer verifies."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from test_ops_support import KEK, run, run_json, seeded

from clearpos.issuer.card import TerminalData, load_card
from clearpos.issuer.chipkeys import stored_issuer_keys
from clearpos.issuer.emv import EmvIssuer
from clearpos.keys import SecurityModule
from clearpos.keys.tokens import PanTokenizer

CHIP19 = "6214830000000002144"
CHIP16 = "6225880000001140"
PLAIN = "6222021234567890123"
MODULUS = "C1" * 128


@pytest.fixture
def url(tmp_path: Path) -> str:
    seeded(tmp_path)
    return f"sqlite:///{tmp_path / 'store.db'}"


def audit_rows(url: str, entity: str) -> list[dict[str, str]]:
    from clearpos.store import open_database

    with open_database(url).reader() as tx:
        rows = tx.conn.execute(
            "SELECT * FROM audit WHERE entity = ? ORDER BY id", (entity,)
        ).fetchall()
        return [dict(r) for r in rows]


@pytest.mark.parametrize(("pan", "cvn"), [(CHIP19, "18"), (CHIP16, "10")])
def test_personalise_writes_a_card_the_issuer_accepts(
    url: str, tmp_path: Path, pan: str, cvn: str
) -> None:
    out = tmp_path / "card.toml"
    rc, docs = run_json("admin", "--db", url, "cards", "personalise", pan, "--out", str(out))
    assert rc == 0, docs
    assert docs[0]["action"] == "personalise" and docs[0]["cvn"] == cvn and docs[0]["atc"] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    card = load_card(out)
    assert (card.pan, card.cvn, card.atc, card.expiry) == (pan, cvn, 0, "2812")
    # the card's cryptogram verifies at the issuer with the keys the store keeps sealed
    first = card.first_generate_ac(TerminalData(amount_fen=1234, date_yymmdd="261202"))
    from clearpos.store import open_database

    with open_database(url).reader() as tx:
        keys = stored_issuer_keys(tx, SecurityModule(KEK))
        rec = tx.card_by_token(PanTokenizer(KEK).token(pan))
        assert keys is not None and rec is not None
        chip = tx.card_chip(rec.id)
        assert chip is not None
    check = EmvIssuer(keys).verify(pan, chip, first.tags, 1234)
    assert check.reason is None, check.facts
    [row] = audit_rows(url, "card")[-1:]
    assert row["action"] == "personalise" and row["actor"] == "admin"
    assert pan not in json.dumps(audit_rows(url, "card"))


def test_personalise_refusals(url: str, tmp_path: Path) -> None:
    out = tmp_path / "card.toml"
    rc, _, err = run("admin", "--db", url, "cards", "personalise", PLAIN, "--out", str(out))
    assert rc == 1
    assert "refused: card 622202*********0123 has no chip" in err
    assert PLAIN not in err
    rc, _, err = run(
        "admin", "--db", url, "cards", "personalise", "6225889999999999", "--out", str(out)
    )
    assert rc == 1 and "no such card at the issuer" in err
    assert not out.exists()
    assert run("admin", "--db", url, "cards", "personalise", CHIP19, "--out", str(out))[0] == 0
    rc, _, err = run("admin", "--db", url, "cards", "personalise", CHIP19, "--out", str(out))
    assert rc == 1 and "exists; give --force" in err
    rc, _, _ = run(
        "admin", "--db", url, "card", "personalise", CHIP19, "--out", str(out), "--force"
    )
    assert rc == 0
    rc, _, err = run("admin", "--db", url, "cards", "personalise", "12345", "--out", str(out))
    assert rc == 2 and "card number must be 13-19 digits" in err


def test_capk_list_add_replace_remove(url: str) -> None:
    rc, docs = run_json("admin", "--db", url, "emv", "capk", "list")
    assert rc == 0 and [d["index"] for d in docs] == ["02", "03", "04"]
    assert docs[0]["check_value"] == "03BB335A8549A03B87AB089D006F60852E4B8060"
    assert docs[2]["bits"] == 1984
    add = ("admin", "--db", url, "emv", "capk", "add", "--rid", "a000000333", "--index", "80",
           "--modulus", MODULUS, "--expiry", "20301231", "--by", "li", "--why", "new test key")  # fmt: skip
    rc, [doc] = run_json(*add)
    assert rc == 0 and (doc["action"], doc["id"]) == ("add", "A000000333/80")
    rc, [doc] = run_json(*add[:-4], "--by", "li", "--why", "again")
    assert rc == 0 and doc["action"] == "replace"
    rc, docs = run_json("admin", "--db", url, "emv", "capk", "list")
    assert [d["index"] for d in docs] == ["02", "03", "04", "80"]
    rm = ("admin", "--db", url, "emv", "capk", "remove", "--rid", "A000000333", "--index", "80",
          "--by", "li", "--why", "withdrawn")  # fmt: skip
    assert run_json(*rm)[0] == 0
    rc, _, err = run(*rm)
    assert rc == 1 and "no CA key A000000333 80" in err
    actions = [r["action"] for r in audit_rows(url, "emv_capk")]
    assert actions == ["add", "replace", "remove"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--modulus", "C1" * 10), "--modulus must be 128 to 496 hex digits, got 20"),
        (("--exponent", "05"), '--exponent must be "03" or "010001"'),
        (("--expiry", "20301332"), "--expiry 20301332 is not a real date"),
        (("--rid", "A0000003"), "--rid must be exactly 10 hex digits, got 8"),
    ],
)
def test_capk_add_refusals(url: str, change: tuple[str, str], message: str) -> None:
    base = {"--rid": "A000000333", "--index": "81", "--modulus": MODULUS, "--expiry": "20301231"}
    base[change[0]] = change[1]
    argv = [x for pair in base.items() for x in pair]
    rc, _, err = run("admin", "--db", url, "emv", "capk", "add", *argv, "--by", "li", "--why", "x")
    assert rc == 1 and message in err, err
    assert audit_rows(url, "emv_capk") == []


def test_aid_list_and_set(url: str) -> None:
    rc, [doc] = run_json("admin", "--db", url, "emv", "aid", "list")
    assert rc == 0 and doc["contactless_cvm_limit"] == "1000.00"
    rc, [doc] = run_json("admin", "--db", url, "emv", "aid", "set", "--aid", "A000000333010101",
                         "--contactless-cvm-limit", "500.00", "--by", "li", "--why", "lower")  # fmt: skip
    assert rc == 0 and doc["action"] == "set"
    assert doc["detail"] == {"contactless_cvm_limit": "500.00"}
    rc, [doc] = run_json("admin", "--db", url, "emv", "aid", "set", "--aid", "A000000333010102",
                         "--tac-online", "d84004f800", "--by", "li", "--why", "credit")  # fmt: skip
    assert rc == 0 and doc["action"] == "add"
    rc, docs = run_json("admin", "--db", url, "emv", "aid", "list")
    assert [(d["aid"], d["tac_online"]) for d in docs] == [
        ("A000000333010101", "D84004F800"),
        ("A000000333010102", "D84004F800"),
    ]
    rc, _, err = run("admin", "--db", url, "emv", "aid", "set", "--aid", "A000000333010101",
                     "--contactless-cvm-limit", "6000.00", "--by", "li", "--why", "x")  # fmt: skip
    assert (
        rc == 1
        and "--contactless-cvm-limit must not be above --contactless-limit (¥5000.00)" in err
    )
    rc, _, err = run("admin", "--db", url, "emv", "aid", "set", "--aid", "A000000333010101",
                     "--contactless-cvm-limit", "500.00", "--by", "li", "--why", "x")  # fmt: skip
    assert rc == 1 and "already has these parameters" in err
    assert [r["action"] for r in audit_rows(url, "emv_aid")] == ["set", "add"]


def test_emv_changes_ask_chip_terminals_to_download_again(url: str) -> None:
    from clearpos.store import open_database

    db = open_database(url)
    with db.transaction() as tx:
        tx.mark_emv_loaded("10000011", "capk", tx.emv_generation("capk"))
        tx.mark_emv_loaded("10000011", "aid", tx.emv_generation("aid"))
        terminal = tx.terminal("10000011")
        assert terminal is not None and tx.emv_requirement(terminal) == 0
    rc, _ = run_json("admin", "--db", url, "emv", "aid", "set", "--aid", "A000000333010101",
                     "--floor-limit", "1.00", "--by", "li", "--why", "x")  # fmt: skip
    assert rc == 0
    with db.reader() as tx:
        terminal = tx.terminal("10000011")
        assert terminal is not None and tx.emv_requirement(terminal) == 5


def test_chip_terminal_add_show_and_replace(url: str) -> None:
    rc, [doc] = run_json("admin", "--db", url, "terminal", "add", "--tid", "10000021",
                         "--mid", "898310048161234", "--tmk", "00112233445566778899AABBCCDDEE21",
                         "--chip", "--by", "li")  # fmt: skip
    assert rc == 0 and doc["detail"]["chip"] is True
    rc, [doc] = run_json("admin", "--db", url, "terminal", "show", "--tid", "10000021")
    assert doc["chip"] is True and doc["emv_download"] == "CA keys due"
    rc, out, _ = run("admin", "--db", url, "terminal", "show", "--tid", "10000021")
    assert "chip terminal: CA keys due" in out
    rc, [doc] = run_json("admin", "--db", url, "terminal", "show", "--tid", "10000001")
    assert doc["chip"] is False and "emv_download" not in doc
    rc, docs = run_json("admin", "--db", url, "terminal", "replace", "--tid", "10000021",
                        "--new-tid", "10000022", "--tmk", "00112233445566778899AABBCCDDEE22",
                        "--by", "li", "--why", "broken")  # fmt: skip
    assert rc == 0, docs
    rc, [doc] = run_json("admin", "--db", url, "terminal", "show", "--tid", "10000022")
    assert doc["chip"] is True  # the replacement reads chips like the device it replaces
