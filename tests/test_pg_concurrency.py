"""Several host processes on one PostgreSQL: limits hold and every fen is accounted for.

Four workers behind one port, 50 terminals (10 merchants) each on its own
connection, all hammering the same 20 cards at once, so that one card is used
by several processes at the same moment. Cards are built to sit at the edge
of one limit each:

* velocity cards: the world's rule allows 5 approved purchases per 60 s;
* daily-limit cards: ¥100.00 a day, purchases of ¥25.00 (4 fit, the 5th not);
* low-balance cards: ¥70.00, purchases of ¥20.00 (3 fit).

While they hammer, terminals reverse some of their approved purchases, and
send some requests twice at once on two connections (a duplicate that may
reach two different processes). Afterwards: no limit was ever exceeded, each
edge was reached, exactly one of each duplicate pair was processed, no answer
was a host error, and every fen the cards lost is a purchase some terminal
saw approved and did not reverse; ``clearpos audit`` finds nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require_pg
from host_fixture import EXAMPLE_WORLD, TEST_KEK, HostProc, Store, env, start_host
from hostclient import PAN, Client

from clearpos.audit import run_audit
from clearpos.keys import KeyEncryptionKey, TerminalKeys
from clearpos.keys.tokens import PanTokenizer
from clearpos.wire import FinancialRequest, Kind, OriginalRef, Reversal, decode_frame
from clearpos.wire.framing import Frame

WORKERS = 4
TERMINALS = 50
MERCHANTS = 10
PER_TERMINAL = 14
VELOCITY = 5


def luhn(prefix: str) -> str:
    digits = [int(c) for c in prefix + "0"]
    for i in range(len(digits) - 2, -1, -2):
        d = digits[i] * 2
        digits[i] = d - 9 if d > 9 else d
    return prefix + str((10 - sum(digits) % 10) % 10)


@dataclass(frozen=True)
class CardSpec:
    pan: str
    edge: str  # velocity | daily | balance
    balance_fen: int
    daily_fen: int
    amount_fen: int


CARDS = (
    [CardSpec(luhn(f"62258801{i:07d}"), "velocity", 100000, 2000000, 100 + i) for i in range(8)]
    + [CardSpec(luhn(f"62258802{i:07d}"), "daily", 100000, 10000, 2500) for i in range(6)]
    + [CardSpec(luhn(f"62258803{i:07d}"), "balance", 7000, 2000000, 2000) for i in range(6)]
)
TERMS = [(f"3{i:07d}", f"89831004{i % MERCHANTS:07d}", os.urandom(16)) for i in range(TERMINALS)]


def world() -> str:
    out = [
        '[acquirer]\ninstitution = "48020000"\nname = "concurrency"\n',
        f"[risk]\ncard_velocity = {{ count = {VELOCITY}, window_s = 60, lock_s = 1800 }}\n",
    ]
    for m in range(MERCHANTS):
        out.append(f'[[merchants]]\nmid = "89831004{m:07d}"\nname = "m{m}"\nstatus = "active"\n')
    for tid, mid, tmk in TERMS:
        out.append(f'[[terminals]]\ntid = "{tid}"\nmid = "{mid}"\ntmk = "{tmk.hex().upper()}"\n')
    for c in CARDS:
        out.append(
            f'[[cards]]\npan = "{c.pan}"\nexpiry = "3012"\npin = "123456"\n'
            f'balance = "{c.balance_fen / 100:.2f}"\ndaily_limit = "{c.daily_fen / 100:.2f}"\n'
        )
    return "\n".join(out)


@pytest.fixture
def pg_host(tmp_path: Path) -> Iterator[HostProc]:
    require_pg()
    store = Store("postgresql", workers=WORKERS)
    h = start_host(tmp_path, world_text=world(), store=store)
    try:
        yield h
    finally:
        h.stop()
        store.drop_all()


@dataclass
class Seen:
    approved: list[tuple[str, int]]  # (pan, amount) the terminal saw approved
    reversed: list[tuple[str, int]]  # of those, reversed (00 to the reversal)
    reasons: Counter[str]
    duplicate_pairs: list[tuple[str, str]]


def terminal(h: HostProc, index: int, seen: Seen, lock: threading.Lock) -> None:
    tid, mid, tmk = TERMS[index]
    c = Client(h.host, h.port, tid=tid, mid=mid, tmk=tmk, timeout=30).connect()
    assert c.sign_on().code == "00"
    twin = None
    if index % 5 == 0:  # a second connection with the same keys: sends duplicates
        twin = Client(h.host, h.port, tid=tid, mid=mid, tmk=tmk, timeout=30).connect()
        twin.keys = TerminalKeys(tmk, c.working)
    approved_here = 0
    for k in range(PER_TERMINAL):
        spec = CARDS[(index * 7 + k) % len(CARDS)]
        req = c.request(Kind.PURCHASE, spec.amount_fen, c.card(spec.pan, "3012", pin=None))
        if twin is not None and k % 4 == 1:
            answers = send_twice(c, twin, req)
            with lock:
                seen.duplicate_pairs.append((answers[0].reason, answers[1].reason))
            r = next((a for a in answers if a.reason != "transaction.duplicate"), answers[0])
        else:
            r = c.send(req)
        with lock:
            seen.reasons[r.reason] += 1
            if r.code == "00":
                seen.approved.append((spec.pan, spec.amount_fen))
        if r.code != "00":
            continue
        approved_here += 1
        if approved_here % 3 == 0:  # the terminal never heard the answer: it reverses
            rev = c.send(Reversal.of(req, "98"))
            assert rev.code == "00", rev.reason
            with lock:
                seen.reversed.append((spec.pan, spec.amount_fen))
    c.close()
    if twin is not None:
        twin.close()


def send_twice(a: Client, b: Client, req: FinancialRequest) -> list[object]:
    frame = a.frame(req)
    out: list[object] = [None, None]

    def go(i: int, cl: Client) -> None:
        cl.send_raw(frame)
        out[i] = cl.recv()

    ts = [threading.Thread(target=go, args=(i, cl)) for i, cl in enumerate((a, b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


def test_four_workers_hammer_twenty_cards(pg_host: HostProc) -> None:
    h = pg_host
    seen = Seen([], [], Counter(), [])
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            terminal(h, i, seen, lock)
        except BaseException as exc:
            errors.append(exc)

    if Path("/proc/net/tcp").exists():  # four processes really listen on the one port
        assert listeners(h.port) == WORKERS
    threads = [threading.Thread(target=run, args=(i,)) for i in range(TERMINALS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    h.stop()

    assert "host.error" not in seen.reasons, seen.reasons
    # a duplicate pair: exactly one of the two was processed, the other is 94
    for pair in seen.duplicate_pairs:
        assert sorted(pair).count("transaction.duplicate") == 1, pair

    tok = PanTokenizer(KeyEncryptionKey(bytes.fromhex("5e" * 32)))
    cards = {r["pan_token"]: r for r in h.rows("SELECT * FROM cards")}
    approved = defaultdict(list)
    for pan, amount in seen.approved:
        approved[pan].append(amount)
    reversed_ = defaultdict(list)
    for pan, amount in seen.reversed:
        reversed_[pan].append(amount)
    total_lost = total_kept = 0
    for spec in CARDS:
        row = cards[tok.token(spec.pan)]
        kept = sum(approved[spec.pan]) - sum(reversed_[spec.pan])
        lost = row["opening_fen"] - row["balance_fen"]
        assert lost == kept, (spec, lost, kept)  # every fen: the card lost what terminals kept
        assert row["balance_fen"] >= 0 and row["holds_fen"] == 0
        assert row["daily_used_fen"] == kept <= spec.daily_fen
        journal = h.rows(
            "SELECT COUNT(*) AS n FROM journal WHERE card_id = ? AND kind = 'purchase' "
            "AND code = '00'",
            (row["id"],),
        )[0]
        assert int(journal["n"]) == len(approved[spec.pan])  # what clients saw is what happened
        # velocity counts approved purchases, reversed or not: never more than the rule
        assert len(approved[spec.pan]) <= VELOCITY
        if spec.edge == "velocity":
            assert len(approved[spec.pan]) == VELOCITY  # the edge was reached exactly
        if spec.edge == "daily":
            assert kept <= spec.daily_fen
        if spec.edge == "balance":
            assert kept <= spec.balance_fen
        total_lost += lost
        total_kept += kept
    assert total_lost == total_kept > 0
    assert seen.reasons["risk.card_velocity"] > 0
    assert seen.reasons["card.daily_limit"] > 0
    assert seen.reasons["card.insufficient_funds"] > 0
    assert run_audit(h.url) == []
    assert "Traceback" not in h.log_text()


def listeners(port: int) -> int:
    """Sockets in LISTEN state on ``port`` (Linux /proc/net/tcp)."""
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            n += 1
    return n


def test_sign_on_keys_hold_across_processes(pg_host: HostProc) -> None:
    """Keys live in the store: a sign-on on one process is what every process checks."""
    h = pg_host
    tid, mid, tmk = TERMS[0]
    conns = [Client(h.host, h.port, tid=tid, mid=mid, tmk=tmk).connect() for _ in range(12)]
    assert conns[0].sign_on().code == "00"
    for c in conns[1:]:
        c.keys = TerminalKeys(tmk, conns[0].working)
    pan = CARDS[0].pan
    for c in conns:  # 12 connections over 4 processes: each checks the MAC with the same key
        r = c.send(c.request(Kind.BALANCE, None, c.card(pan, "3012")))
        assert (r.code, r.mac_ok) == ("00", True), r.reason
    assert conns[5].sign_on().code == "00"  # new keys, issued by whichever process
    for i, c in enumerate(conns):
        r = c.send(c.request(Kind.BALANCE, None, c.card(pan, "3012")))
        # The proven keys stay valid beside the new ones until conns[5] proves the new
        # ones with its first MAC (issue 16: a sign-on alone cannot take a terminal
        # down); from then on, in every process, only the new keys verify.
        assert r.reason == ("mac.invalid" if i > 5 else "approved"), i
    for c in conns:
        c.close()


def children(pid: int) -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(d.name))
    return out


def wait_for(check: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to see the workers")
def test_supervisor_restarts_a_dead_worker_and_its_workers_die_with_it(tmp_path: Path) -> None:
    require_pg()
    store = Store("postgresql", workers=2)
    h = start_host(tmp_path, store=store)
    try:
        first = children(h.proc.pid)
        assert len(first) == 2
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(children(h.proc.pid) - {victim}) == 2)
        assert wait_for(lambda: listeners(h.port) == 2)
        for _ in range(4):  # whichever worker answers, it works
            c = Client(h.host, h.port).connect()
            assert c.sign_on().code == "00" and c.purchase(100).code == "00"
            c.close()
        workers = children(h.proc.pid)
        h.kill()  # SIGKILL the supervisor: its workers must not stay behind, serving the port
        assert wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in workers))
        assert listeners(h.port) == 0
    finally:
        h.stop()
        store.drop_all()


def test_several_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "host", "--db", f"sqlite:///{tmp_path}/x.db", "--workers", "2", "--world", str(EXAMPLE_WORLD)],
        capture_output=True, text=True, env=env(), timeout=30, check=False,
    )  # fmt: skip
    assert r.returncode == 1 and "PostgreSQL" in r.stderr and "one writer" in r.stderr
    assert not (tmp_path / "x.db").exists()


class _InProcess(Client):
    """The test client, answered by the engine inside a transaction we control."""

    def __init__(self, engine: Any) -> None:
        super().__init__("in-process", 0)
        self.engine = engine
        self.tx: Any = None
        self._out: bytes | None = None

    def send_raw(self, data: bytes) -> None:
        out = self.engine.handle(self.tx, decode_frame(data), time.perf_counter())
        assert out.reply is not None
        self._out = out.reply

    def recv_frame(self) -> Frame:
        assert self._out is not None
        return decode_frame(self._out)


def test_reversal_waits_for_a_completion_on_another_terminal_and_releases_the_hold_once(
    tmp_path: Path,
) -> None:
    """Terminal 10000001 timed out on a pre-authorisation and reverses it; at the same
    moment terminal 10000007 of the same merchant completes it by RRN (the terminals
    do not share a row lock; only the card row is common). The completion holds the
    card row; the reversal must read the original only once it has the card, so it
    sees 'completed' and answers 12 — the hold is released once and the completed
    amount stays taken. Deterministic: the completion's transaction is held open until
    the reversal is seen waiting on a lock in pg_stat_activity."""
    require_pg()
    import psycopg

    from clearpos.host.cli import build_engine
    from clearpos.host.seed import seed
    from clearpos.store import open_database
    from clearpos.world import load_world

    store = Store("postgresql")
    try:
        url = store.new_url(tmp_path, "race")
        db = open_database(url)
        engine, hsm, tokens = build_engine(KeyEncryptionKey(bytes.fromhex(TEST_KEK)))
        world = load_world(EXAMPLE_WORLD)
        seed(db, world, hsm, tokens, reset=False)
        a, b = _InProcess(engine), _InProcess(engine)
        b.tid = "10000007"
        b.tmk = next(t.tmk for t in world.terminals if t.tid == b.tid)
        b.keys = TerminalKeys(b.tmk)
        for cl in (a, b):
            with db.transaction() as tx:
                cl.tx = tx
                assert cl.sign_on().code == "00"
        with db.reader() as tx:
            before = tx.card_by_token(tokens.token(PAN))
            assert before is not None
        pre = a.request(Kind.PREAUTH, 3000, a.card(PAN))
        with db.transaction() as tx:
            a.tx = tx
            held = a.send(pre)
        assert held.code == "00"
        completion = b.request(
            Kind.COMPLETION,
            2500,
            b.card(PAN),
            rrn=getattr(held.msg, "rrn", None),
            original=OriginalRef(pre.batch, pre.stan, "1123"),
        )
        answer: dict[str, Any] = {}

        def reverse() -> None:
            with db.transaction() as tx2:
                a.tx = tx2
                answer["rev"] = a.send(Reversal.of(pre, "98"))

        with db.transaction() as tx:
            b.tx = tx
            done = b.send(completion)  # the card row stays locked until this commits
            assert done.code == "00", done.reason
            t = threading.Thread(target=reverse)
            t.start()
            with psycopg.connect(url, autocommit=True) as watch:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    row = watch.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    ).fetchone()
                    if row and row[0]:
                        break
                    time.sleep(0.02)
                else:
                    pytest.fail("the reversal never waited for the card row")
        t.join(20)
        got = answer["rev"]
        assert (got.code, got.reason) == ("12", "transaction.already_voided"), got.reason
        with db.reader() as tx:
            after = tx.card_by_token(tokens.token(PAN))
            assert after is not None
            assert (after.balance_fen, after.holds_fen) == (
                before.balance_fen - 2500,
                before.holds_fen,
            )
        assert run_audit(url) == []
    finally:
        store.drop_all()
