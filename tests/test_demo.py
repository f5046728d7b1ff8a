"""`clearpos demo` runs the whole story and leaves a store diagnose can read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from host_fixture import env

from clearpos.audit import run_audit


def test_demo_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "demo", "--dir", str(out), "--lang", "en", "--json"],
        capture_output=True, text=True, env=env(), timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert len(r.stdout.splitlines()) == 1, r.stdout[:500]  # --json: the JSON document alone
    summary = json.loads(r.stdout)
    story = r.stderr
    assert summary["ok"] and summary["seconds"] < 60
    seen = set(summary["outcomes"])
    for key in (
        "approved", "operator.wrong_password", "card.insufficient_funds", "card.frozen", "card.expired",
        "card.lost", "card.stolen", "card.daily_limit", "merchant.single_limit", "risk.card_velocity",
        "card.wrong_pin", "card.pin_tries_exceeded", "host.maintenance", "network.timeout",
        "mac.invalid", "offline.stored", "merchant.suspended.arrears", "merchant.restricted",
        "terminal.suspended", "terminal.update_required", "merchant.suspended.risk", "settlement.balanced",
        "card.pin_required",
    ):  # fmt: skip
        assert key in seen, key
    # the chip scene: inserted, the card verifies the ARPC; a tap under the no-PIN limit;
    # one over it declined 55, then approved with the PIN
    chip = story[story.index("a chip card: inserted, and tapped") :]
    chip = chip[: chip.index("━━ D1")]
    assert chip.count("the card verified the host's ARPC; its second GENERATE AC answered TC") == 2
    assert chip.count("🧾 UnionPay Debit  AID A000000333010101  TC ") == 2, chip
    assert "Code: 55" in chip and "Reason: card.pin_required" in chip
    assert chip.count("✔ Approved") == 3 and "621483*********2144" in chip
    assert "customer NOT charged" in story.lower() or "not charged" in story.lower()
    assert "6222021234567890123" not in story + r.stdout
    assert "from $CLEARPOS_KEK" in story + r.stdout  # the demo says where its KEK came from
    db = f"sqlite:///{out / 'clearpos.db'}"
    assert run_audit(db) == []
    d = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "diagnose", "--db", db, "--tid", "10000003", "--json"],
        capture_output=True, text=True, env=env(), timeout=60, check=False,
    )  # fmt: skip
    assert d.returncode == 0, d.stderr
    assert any(
        json.loads(line).get("reason") == "merchant.suspended.arrears"
        for line in d.stdout.splitlines()
    )
