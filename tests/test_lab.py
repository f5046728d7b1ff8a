"""The fault lab: chaos mode of the proxy, the lab world, and a seeded campaign small
enough for CI (host and terminal SIGKILLs, network faults, audit, journal and money
comparison, leak scan of its output)."""

from __future__ import annotations

import socket
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clearpos.issuer.card import load_card
from clearpos.lab.campaign import DEFAULT_RATES, LabConfig, _rng, lab_world, run_campaign
from clearpos.lab.faultproxy import (
    CHAOS_ACTIONS,
    Action,
    ChaosEvent,
    Fault,
    FaultProxy,
    chaos_decision,
)
from clearpos.lab.leakscan import Secrets, scan_paths
from clearpos.world import parse_world

# ----------------------------------------------------------------------------- chaos mode


def test_chaos_decision_depends_only_on_seed_and_frame() -> None:
    rates = dict(DEFAULT_RATES)
    first = [chaos_decision(42, n, rates, 120) for n in range(1, 3001)]
    again = [chaos_decision(42, n, rates, 120) for n in reversed(range(1, 3001))][::-1]
    assert [(f.action, f.after_bytes) if f else None for f in first] == [
        (f.action, f.after_bytes) if f else None for f in again
    ]
    other = [chaos_decision(43, n, rates, 120) for n in range(1, 3001)]
    assert [f and f.action for f in first] != [f and f.action for f in other]


def test_chaos_decision_follows_the_rates() -> None:
    rates = {Action.DROP_REQUEST: 0.1, Action.DUPLICATE: 0.05, Action.CUT_REQUEST: 0.05}
    n = 20000
    got = Counter(f.action for k in range(n) if (f := chaos_decision(7, k, rates, 90)))
    assert set(got) == set(rates)
    for action, p in rates.items():
        assert abs(got[action] / n - p) < 0.01, (action, got[action])
    cuts = [f for k in range(2000) if (f := chaos_decision(7, k, rates, 90))]
    assert all(0 <= f.after_bytes < 90 for f in cuts if f.action is Action.CUT_REQUEST)
    assert chaos_decision(7, 1, {}, 90) is None
    assert Action.PASS not in CHAOS_ACTIONS


@pytest.fixture
def echo_server() -> Iterator[int]:
    """An upstream that answers every length-prefixed frame with the same bytes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                head = conn.recv(2)
                if len(head) < 2:
                    return
                n = int.from_bytes(head, "big")
                body = b""
                while len(body) < n:
                    chunk = conn.recv(n - len(body))
                    if not chunk:
                        return
                    body += chunk
                conn.sendall(head + body)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _frame(mti: str) -> bytes:
    body = bytes(11) + bytes.fromhex(mti) + b"payload"
    return len(body).to_bytes(2, "big") + body


def _exchange(sock: socket.socket, frame: bytes) -> bytes | None:
    sock.sendall(frame)
    sock.settimeout(0.5)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def test_chaos_mode_scheduled_faults_first_observer_numbers_frames(echo_server: int) -> None:
    events: list[ChaosEvent] = []
    with FaultProxy(("127.0.0.1", echo_server), record=False) as proxy:
        proxy.chaos(9, {Action.DROP_REQUEST: 1.0}, observer=events.append)
        proxy.inject(Fault(Action.PASS, mti="0200"))  # the first 0200 passes, scheduled
        with socket.create_connection(("127.0.0.1", proxy.port)) as s:
            assert _exchange(s, _frame("0200")) == _frame("0200")
            assert _exchange(s, _frame("0200")) is None  # chaos: dropped
        proxy.calm()
        with socket.create_connection(("127.0.0.1", proxy.port)) as s:
            assert _exchange(s, _frame("0820")) == _frame("0820")
        assert proxy.seen == []  # record=False
        assert proxy.counts[("request", "0200")] == 2
        assert proxy.chaos_counts == Counter({Action.DROP_REQUEST: 1})
        assert proxy.frames == 3
    assert [(e.frame, e.mti, e.action, e.scheduled) for e in events] == [
        (1, "0200", Action.PASS, True),
        (2, "0200", Action.DROP_REQUEST, False),
    ]


def test_chaos_rates_are_checked(echo_server: int) -> None:
    with FaultProxy(("127.0.0.1", echo_server)) as proxy:
        with pytest.raises(ValueError, match="more than 1"):
            proxy.chaos(1, {Action.DROP_REQUEST: 0.7, Action.DUPLICATE: 0.6})
        with pytest.raises(ValueError, match="cannot draw"):
            proxy.chaos(1, {Action.PASS: 0.1})


# ----------------------------------------------------------------------------- the lab world


def test_lab_world_is_deterministic_valid_and_without_velocity_rule() -> None:
    a, b = lab_world(5, 6, 10), lab_world(5, 6, 10)
    assert a.toml == b.toml and a != lab_world(6, 6, 10)
    world = parse_world(a.toml, "lab.toml")
    assert world.risk.card_velocity is None and not world.maintenance
    assert [t.tid for t in world.terminals][:2] == ["10000001", "10000007"]
    assert len(world.terminals) == 6 and all(t.status == "active" for t in world.terminals)
    good = [c for c in a.cards if c.good]
    assert len(good) >= 10 + 6 and all(c.balance_fen >= 10**9 for c in good)
    assert {c.status for c in a.cards if not c.good} >= {"frozen"}
    assert len({c.masked for c in a.cards}) == len(a.cards)  # masked PANs identify cards
    assert "6222021234567890123" in {c.pan for c in a.cards}  # the demo's normal cards
    assert tomllib.loads(a.toml)["merchants"][0]["status"] == "active"
    # chip: the demo's chip terminal third, generated terminals in turn; chip cards
    assert [t.chip for t in a.terminals] == [False, False, True, True, False, True]
    assert [t.chip for t in world.terminals] == [t.chip for t in a.terminals]
    chip = {c.pan for c in world.cards if c.chip is not None}
    assert {"6214830000000002144", "6225880000001140"} < chip and len(chip) == 2 + 10 // 4
    assert world.issuer is not None and world.risk.quickpass_no_pin_limit_fen == 100_000


# ----------------------------------------------------------------------------- a campaign

SEED = 8583


def _first(kind: str, rate: float, limit: int) -> int:
    return next(k for k in range(limit) if _rng(SEED, kind, k).random() < rate)


def _ci_campaign(tmp_path: Path, **kw: Any) -> LabConfig:
    """A campaign small enough for CI: 3 terminals, faults at 1.5x the default rates."""
    base: dict[str, Any] = {
        "out": tmp_path / "lab",
        "seed": SEED,
        "terminals": 3,
        "transactions": 100,
        "timeout": 0.25,
        "delay": 0.35,
        "rates": {a: r * 1.5 for a, r in DEFAULT_RATES.items()},
    }
    return LabConfig(**{**base, **kw})


def test_fault_lab_seeded_campaign(tmp_path: Path) -> None:
    """Faults, host SIGKILLs (in flight and between operations), killed `clearpos pos`
    subprocesses; then audit, journal-by-journal and money comparison, leak scan."""
    cfg = _ci_campaign(
        tmp_path,
        host_kill_rate=0.008,
        host_kill_between=0.01,
        cli_rate=0.04,
        cli_kill_share=0.7,
    )
    # the seed's schedule has crashes early on (these depend on the seed alone)
    assert _first("host-kill", cfg.host_kill_rate, 10_000) < 100  # request frame 51
    assert _first("host-between", cfg.host_kill_between, 10_000) < 100  # operation 26
    assert sum(_rng(SEED, "cli-pick", k).random() < cfg.cli_rate for k in range(100)) >= 3
    report = run_campaign(cfg)
    text = report.text()
    assert report.discrepancies == [], text
    assert report.errors == [] and report.audit == 0, text
    assert report.ok and text.endswith("RESULT: OK")
    assert report.transactions >= cfg.transactions
    assert report.faults_injected >= 10, text
    assert len(report.faults) >= 4, text
    assert report.host_restarts >= 2 and report.host_kills_in_flight >= 1, text
    assert report.cli_runs >= 3, text
    assert report.reversals_sent >= 5 and report.reversals_confirmed >= 1, text
    assert report.settlements >= cfg.terminals  # every terminal settled at the end
    assert report.leak_hits == 0 and report.leak_files > 20, text
    # chip sales on the chip terminal 10000011: inserted and tapped, approved and not
    chip, tap = report.operations["chip"], report.operations["tap"]
    assert chip >= 5 and tap >= 5 and chip + tap >= 0.15 * report.transactions, text
    assert report.results["chip:approved"] >= 3 and report.results["tap:approved"] >= 3, text
    cards = sorted((cfg.out / "cards").glob("*.toml"))
    approved = report.results["chip:approved"] + report.results["tap:approved"]
    assert len(cards) == 2 + 24 // 4 and sum(load_card(c).atc for c in cards) >= approved
    # the campaign's own output, scanned again from its lab.json: card files are the
    # cards themselves (sources), and nothing else holds their PAN, track 2 or keys
    again = Secrets()
    assert again.add_lab_runs(cfg.out) == 1
    scan = scan_paths([cfg.out], again)
    assert scan.hits == [] and sorted(map(Path, scan.card_files)) == cards, scan.hits
    out = cfg.out
    assert (out / "report.txt").read_text().strip() == text
    assert (out / "host.db").exists() and list((out / "logs").glob("host-*.log"))
    assert all((out / "terminals" / t / "terminal.db").exists() for t in ("10000001", "10000007"))
    assert (out / "exports" / "host-journal.jsonl").stat().st_size > 0


def test_same_seed_same_schedule(tmp_path: Path) -> None:
    """Two calm-host runs of one seed: the same operations, faults and outcomes."""

    def once(name: str) -> tuple[object, ...]:
        cfg = LabConfig(
            out=tmp_path / name,
            seed=77,
            terminals=2,
            transactions=60,
            timeout=0.5,
            delay=0.8,
            rates={a: r for a, r in DEFAULT_RATES.items() if a is not Action.CORRUPT_RESPONSE},
            host_kill_rate=0.0,
            host_kill_between=0.0,
            cli_rate=0.0,
            leak_scan=False,
        )
        r = run_campaign(cfg)
        assert r.ok, r.text()
        return (r.operations, r.faults, r.results, r.frames)

    first = once("a")
    assert first[1], "the seed draws faults"
    assert once("b") == first


# ----------------------------------------------------------------------------- findings

from support.hostproc import TEST_KEK, HostProcess, host  # noqa: E402, F401

from clearpos.keys import KeyEncryptionKey  # noqa: E402
from clearpos.terminal import CardInput, HostLink, Terminal  # noqa: E402

TID = "10000001"
MID = "898310048161234"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
SPARE = CardInput("6225880000001116", "2812", "123456")
OTHER = CardInput("6225880000001124", "2812", "123456")


def _terminal(state: Path, port: int, **kw: object) -> Terminal:
    return Terminal(
        state,
        link=HostLink("127.0.0.1", port, timeout=0.5),
        tid=TID,
        mid=MID,
        tmk=TMK,
        kek=KeyEncryptionKey(bytes.fromhex(TEST_KEK)),
        lang="en",
        **kw,  # type: ignore[arg-type]
    )


def test_offline_sale_after_a_lost_settlement_answer_reaches_the_host(
    tmp_path: Path,
    host: HostProcess,  # noqa: F811 - the imported fixture
) -> None:
    """The settlement's answer is lost: the host closed batch B, the terminal is still
    in B. The host goes away; an offline sale is stored in batch B. Back online, the
    upload must reach the host (the customer was told they are charged)."""
    with (
        FaultProxy(("127.0.0.1", host.port)) as proxy,
        _terminal(tmp_path / "pos", proxy.port, floor_limit_fen=10000) as t,
    ):
        assert t.login("01", "0000").approved
        assert t.purchase(1000, SPARE).approved
        batch = t.batch
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0500"))
        assert not t.settle().approved  # the host closed the batch; the terminal cannot know
        proxy.down()
        off = t.purchase(500, OTHER)
        assert off.reason == "offline.stored" and off.charged is True and t.batch == batch
        proxy.up()
        first = t.purchase(100, SPARE)  # the upload meets 77: the terminal signs on again
        assert t.batch != batch, (first.reason, first.lines)
        again = t.purchase(100, SPARE)  # the sale goes in the new batch, then this one
        assert again.approved, (again.reason, again.lines)
        assert any("moved to the current batch" in line for line in again.lines), again.lines
        (row,) = t.store.journal("kind = 'offline'")
        assert row.status == "offline_uploaded" and row.batch == t.batch, row
        assert row.stan != off.stan and f"moved from batch {batch} STAN {off.stan}" in row.detail
        assert proxy.requests("0220")  # it reached the host
        assert t.settle().approved


def test_fault_lab_campaign_on_postgresql_with_two_workers(tmp_path: Path) -> None:
    """The same lab against PostgreSQL and a supervisor with two workers; a host kill
    takes the whole process group down (SIGKILL), so in-flight work dies in both."""
    from conftest import require_pg
    from host_fixture import Store

    require_pg()
    store = Store("postgresql")
    try:
        cfg = _ci_campaign(
            tmp_path,
            seed=SEED + 1,
            transactions=120,
            host_kill_rate=0.01,
            host_kill_between=0.01,
            cli_rate=0.03,
            db=store.new_url(tmp_path, "lab"),
            workers=2,
        )
        report = run_campaign(cfg)
        text = report.text()
        assert report.discrepancies == [] and report.errors == [] and report.audit == 0, text
        assert report.ok and report.host_restarts >= 1, text
        assert "--workers 2" in report.command and "--db postgresql://" in report.command
        assert not (cfg.out / "host.db").exists()  # the store is the PostgreSQL database
    finally:
        store.drop_all()


def test_refund_approved_but_answer_mac_fails_is_not_shown_as_not_credited(
    tmp_path: Path,
    host: HostProcess,  # noqa: F811 - the imported fixture
) -> None:
    with (
        FaultProxy(("127.0.0.1", host.port)) as proxy,
        _terminal(tmp_path / "pos", proxy.port) as t,
    ):
        assert t.login("01", "0000").approved
        sale = t.purchase(4000, SPARE)
        assert sale.approved and sale.rrn
        proxy.inject(Fault(Action.CORRUPT_RESPONSE, mti="0220"))
        out = t.refund(1000, sale.rrn, supervisor_password="123456")
        assert out.code == "A0" and out.extra["host_code"] == "00"
        assert proxy.requests("0400") == []  # a refund is never reversed...
        # ...so the host's credit stands: the terminal must not say "not credited"
        row = t.store.journal("kind = 'refund'")[-1]
        assert out.extra["credited"] is None, (out.extra, out.lines)
        assert row.status == "unknown" and row.reason == "mac.invalid", row.status
        assert any("do NOT refund again" in line for line in out.lines), out.lines
        # the host credited it: settlement finds the batch unbalanced, uploads, closes
        settled = t.settle()
        assert settled.approved, (settled.reason, settled.lines)


def test_settlement_after_a_lost_settlement_answer_succeeds(
    tmp_path: Path,
    host: HostProcess,  # noqa: F811 - the imported fixture
) -> None:
    with (
        FaultProxy(("127.0.0.1", host.port)) as proxy,
        _terminal(tmp_path / "pos", proxy.port) as t,
    ):
        assert t.login("01", "0000").approved
        assert t.purchase(1000, SPARE).approved
        proxy.inject(Fault(Action.DROP_RESPONSE, mti="0500"))
        lost = t.settle()
        assert lost.reason == "network.timeout"  # the host balanced and closed the batch
        outcomes = [t.settle() for _ in range(3)]  # what the screen says: retry later
        assert any(o.approved for o in outcomes), [o.reason for o in outcomes]


def test_duplicated_settlement_and_upload_end_close_the_batch_once(
    tmp_path: Path,
    host: HostProcess,  # noqa: F811 - the imported fixture
) -> None:
    from clearpos.audit import run_audit
    from clearpos.store import open_database

    with (
        FaultProxy(("127.0.0.1", host.port)) as proxy,
        _terminal(tmp_path / "pos", proxy.port) as t,
    ):
        assert t.login("01", "0000").approved
        sale = t.purchase(1000, SPARE)
        assert sale.approved and t.purchase(2000, OTHER).approved
        # the terminal lost one sale: its totals differ, so the settlement is unbalanced
        t.store._db.execute("UPDATE journal SET status = 'declined' WHERE stan = ?", (sale.stan,))
        batch = t.batch
        proxy.inject(
            Fault(Action.DUPLICATE, mti="0500"), Fault(Action.DUPLICATE, mti="0320", times=2)
        )
        out = t.settle()
        assert out.approved and out.reason == "settlement.unbalanced", out.to_json()
        with open_database(host.db_url).reader() as tx:
            host_batch = tx.terminal(TID).batch  # type: ignore[union-attr]
        found = run_audit(host.db_url)
        assert (found, host_batch) == ([], t.batch), (found, batch, host_batch, t.batch)
