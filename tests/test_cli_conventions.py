"""The command line's conventions (spec/world.md "Commands", issue 17 item 9).

Real processes against one real host: ``--json`` is one JSON document per line for
every command, with the fields the spec promises; ``-`` is standard output; exit
status 0 / 1 / 2; ``--version``; a bare ``clearpos`` prints the help; ``--explain``
suggests keys and takes the words of a screen; a bad TID leaves no state behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_fixture import ROOT, TEST_KEK, HostProc, env, start_host

from clearpos import __version__

TID, MID, TMK = "10000001", "898310048161234", "0123456789ABCDEFFEDCBA9876543210"
CARD = ("--card", "6222021234567890123", "--expiry", "2812", "--pin", "123456")
FROZEN = ("--card", "6225880000001025", "--expiry", "2812")
POS_FIELDS = {"reason", "code", "approved", "screen", "stan", "rrn", "amount_fen"}
DIAGNOSE_FIELDS = {"rrn", "tid", "reason", "cause", "actor", "remedy"}


def clearpos(
    *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *args],
        capture_output=True, text=True, env={**env(), **(extra_env or {})}, timeout=120,
        check=False, cwd=cwd or ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def json_lines(r: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every line of standard output is one JSON document (and there is at least one)."""
    lines = r.stdout.splitlines()
    assert lines, (r.returncode, r.stderr)
    docs = []
    for line in lines:
        doc = json.loads(line)  # raises on prose
        assert isinstance(doc, dict), line
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostProc, Path]]:
    tmp = tmp_path_factory.mktemp("conventions")
    h = start_host(tmp)
    state = tmp / "pos"
    pos = ("pos", "--host", f"{h.host}:{h.port}", "--state", str(state), "--tid", TID)
    r = clearpos(
        *pos, "--mid", MID, "--tmk", TMK, "login", "--operator", "01", "--password", "0000"
    )
    assert r.returncode == 0, r.stderr
    try:
        yield h, state
    finally:
        h.stop()


def pos(h: HostProc, state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return clearpos("pos", "--host", f"{h.host}:{h.port}", "--state", str(state), *argv)


# --------------------------------------------------------------------------- --json


@pytest.mark.parametrize(
    "argv",
    [
        ("purchase", "1.00", *CARD),
        ("purchase", "2.00", *FROZEN),
        ("balance", *CARD),
        ("echo",),
    ],
    ids=["purchase", "declined", "balance", "echo"],
)
def test_pos_json_has_the_spec_fields(host: tuple[HostProc, Path], argv: tuple[str, ...]) -> None:
    h, state = host
    r = pos(h, state, "--json", *argv)
    (doc,) = json_lines(r)
    if argv[0] != "echo":
        assert set(doc) >= POS_FIELDS, sorted(doc)
    assert r.returncode == (0 if doc["approved"] else 1), doc
    assert "6222021234567890123" not in r.stdout


def test_diagnose_json_per_transaction_and_per_subject(host: tuple[HostProc, Path]) -> None:
    h, state = host
    declined = json_lines(pos(h, state, "--json", "purchase", "3.00", *FROZEN))[0]
    rrn = declined["rrn"]
    (one,) = json_lines(clearpos("diagnose", "--db", h.url, "--rrn", rrn, "--json"))
    assert set(one) >= DIAGNOSE_FIELDS and isinstance(one["remedy"], list)
    for argv in (("--tid", TID), ("--mid", MID)):
        docs = json_lines(clearpos("diagnose", "--db", h.url, *argv, "--json"))
        *txns, subject = docs
        assert subject["type"] in ("terminal", "merchant")
        assert subject["transactions"] == len(txns) >= 1
        assert all(set(t) >= DIAGNOSE_FIELDS and t["type"] == "transaction" for t in txns)
    coded = json_lines(clearpos("diagnose", "--db", h.url, "--code", "card.frozen", "--json"))
    assert coded and all(d["reason"] == "card.frozen" for d in coded)
    (explained,) = json_lines(clearpos("diagnose", "--explain", "card.frozen", "--json"))
    assert explained["reason"] == "card.frozen"


ADMIN_JSON = [
    ("merchant", "list"),
    ("merchant", "show", "--mid", MID),
    ("terminal", "list"),
    ("terminal", "show", "--tid", TID),
    ("card", "list"),
    ("arrears", "show", "--mid", "898310048163002"),
    ("resume", "list"),
    ("maintenance", "list", "--all"),
    ("ticket", "list"),
    ("user", "list"),
    ("lifecycles",),
    ("report", "--date", "2026-11-23"),
]


@pytest.mark.parametrize("argv", ADMIN_JSON, ids=lambda a: " ".join(a[:2]))
def test_admin_json_is_one_document_per_line(
    host: tuple[HostProc, Path], argv: tuple[str, ...]
) -> None:
    h, _ = host
    r = clearpos("admin", "--db", h.url, "--json", *argv)
    assert r.returncode == 0, r.stderr
    if r.stdout:  # an empty list prints nothing with --json
        json_lines(r)


def test_audit_json(host: tuple[HostProc, Path]) -> None:
    h, _ = host
    (doc,) = json_lines(clearpos("audit", "--db", h.url, "--json"))
    assert doc["ok"] is True and doc["discrepancies"] == []


# --------------------------------------------------------------------------- "-" is stdout


def test_export_and_report_to_dash_write_standard_output(
    host: tuple[HostProc, Path], tmp_path: Path
) -> None:
    h, _ = host
    r = clearpos("admin", "export", "--db", h.url, "--since", "1d", "--to", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.startswith("rrn,time_cst,") and rows
    assert "journal rows written to standard output" in r.stderr
    assert not (tmp_path / "-").exists()
    j = clearpos(
        "admin", "export", "--db", h.url, "--since", "1d", "--to", "-", "--json", cwd=tmp_path
    )
    assert j.stdout.startswith("rrn,") and json.loads(j.stderr)["rows"] == len(rows)
    rep = clearpos(
        "admin", "--db", h.url, "report", "--date", "2026-11-23", "--to", "-", cwd=tmp_path
    )
    assert rep.returncode == 0 and not (tmp_path / "-").exists()


# --------------------------------------------------------------------------- exit status, help


def test_version_matches_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    r = clearpos("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"clearpos {project['version']}"
    assert __version__ == project["version"]


@pytest.mark.parametrize("argv", [(), ("admin",), ("admin", "merchant")], ids=str)
def test_a_missing_command_prints_the_help(argv: tuple[str, ...]) -> None:
    r = clearpos(*argv)
    assert r.returncode == 2
    assert "usage: clearpos" in r.stderr and "the following arguments are required" in r.stderr
    assert ("diagnose" in r.stderr) if not argv else ("-h, --help" in r.stderr)
    assert clearpos(*argv, "--help").returncode == 0


def test_explain_suggests_and_accepts_screen_text() -> None:
    r = clearpos("diagnose", "--explain", "card.frozn")
    assert r.returncode == 2 and "did you mean card.frozen?" in r.stderr
    for words in ("卡已冻结", "Card frozen - call issuing bank", "card frozen"):
        (doc,) = json_lines(clearpos("diagnose", "--explain", words, "--json"))
        assert doc["reason"] == "card.frozen", words
    nothing = clearpos("diagnose", "--explain", "xyzzy")
    assert nothing.returncode == 2 and "neither a reason key nor a screen text" in nothing.stderr


def test_kek_mismatch_is_refused_with_1(host: tuple[HostProc, Path]) -> None:
    h, state = host
    other = "a7" * 32
    assert other != TEST_KEK
    r = clearpos(
        "pos", "--host", f"{h.host}:{h.port}", "--state", str(state), "echo",
        extra_env={"CLEARPOS_KEK": other},
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "do not open with this KEK" in r.stderr


def test_bad_tid_or_first_use_without_tmk_leaves_no_state(tmp_path: Path) -> None:
    r = clearpos(
        "pos", "--host", "127.0.0.1:9", "--tid", "1234", "--mid", MID, "--tmk", TMK, "echo",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and "must be 8 characters" in r.stderr
    r = clearpos(
        "pos", "--host", "127.0.0.1:9", "--tid", "10000009", "--mid", MID, "echo", cwd=tmp_path
    )
    assert r.returncode == 2 and "give the TMK" in r.stderr
    assert list(tmp_path.iterdir()) == [] or list((tmp_path / "pos-state").iterdir()) == []


PURCHASE_HEX = (
    "007560000300006031000001000200302404C020C09811000000000000001234000017281202100006376222021234"
    "567890123D2812201000000000003130303030303031383938333130303438313631323334313536"
    "3D8CF07ABF66B432260000000000000000112200000100004232343343373530"
)


@pytest.mark.parametrize(
    "argv",
    [
        ("wire", "decode", PURCHASE_HEX, "--json"),
        ("docs", "build", "--check", "--json"),
    ],
    ids=["wire decode", "docs build"],
)
def test_other_commands_json(argv: tuple[str, ...]) -> None:
    r = clearpos(*argv)
    assert r.returncode == 0, r.stderr
    (doc,) = json_lines(r)
    assert doc and "6222021234567890123" not in r.stdout


def test_init_and_kek_json(tmp_path: Path) -> None:
    (init,) = json_lines(
        clearpos("admin", "init", "--db", f"sqlite:///{tmp_path / 'n.db'}", "--json")
    )
    assert init["ok"] is True and init["created"].endswith("n.db")
    kek_file = tmp_path / "kek"
    (kek,) = json_lines(clearpos("admin", "kek", "new", "--out", str(kek_file), "--json"))
    assert kek["file"] == str(kek_file) and len(kek["fingerprint"]) == 8
    assert (kek_file.stat().st_mode & 0o777) == 0o600
    again = clearpos("admin", "kek", "new", "--out", str(kek_file), "--json")
    (refused,) = json_lines(again)
    assert again.returncode == 1 and refused["ok"] is False and "already exists" in refused["error"]
