"""Host load generator: N terminals over loopback against real host processes.

Run: .venv/bin/python bench/host.py [--db URL] [--workers N] [--terminals 50]
     [--seconds 10] [--rate 2000] [--prefill ROWS] [--settle-batch ROWS]

Starts ``clearpos host`` (``--workers N`` host processes on one port) on a
store with a generated world (N terminals, many cards, no velocity rule):
by default a fresh SQLite file; ``--db postgresql://USER@HOST/DB`` uses that
PostgreSQL database (one named ``clearpos_bench*`` is dropped and created afresh;
any other is created when missing and wiped by the world load). It signs
every terminal on, pre-builds the signed purchase frames (PIN block + MAC) so
the client spends its CPU on I/O only, then measures:

1. closed loop: every terminal sends its next purchase as soon as the answer
   arrives — approved purchases per second, p50/p95/p99 latency;
2. open loop: purchases paced at ``--rate`` per second — p50/p95/p99 latency
   (``--rate 0`` skips it).

Every ``--reverse-every``-th approved purchase of a terminal is reversed at
once (a 0400, as a terminal that lost the answer would). Each purchase takes
the full path: framing, MAC verify, PIN verify, balance debit, durable journal,
MAC'd answer. ``--prefill ROWS`` first puts that many synthetic settled-looking
journal rows in the store (spread over terminals, cards and the past 30 days)
to show how cost grows with journal size. ``--settle-batch ROWS`` afterwards
puts ROWS approved purchases in one terminal's open batch and times its
settlement (0500, then batch-upload end 0320 that closes the batch: field 48
counts stop at 999, so a batch that large never balances on the 0500 alone).

Afterwards the money must add up, three ways: what the cards lost = what the
journal holds as approved and not reversed = what the terminals saw approved
minus what they reversed; and ``clearpos.audit.run_audit`` finds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearpos.audit import run_audit  # noqa: E402
from clearpos.keys import TerminalKeys  # noqa: E402
from clearpos.store import open_database  # noqa: E402
from clearpos.wire import (  # noqa: E402
    TPDU,
    BatchUploadEnd,
    Card,
    FinancialRequest,
    Framer,
    Header,
    Kind,
    Reversal,
    Settlement,
    Settlement48,
    SignOn,
    Totals,
    build,
    decode,
    encode_frame,
    parse,
)

KEK = "7b" * 32
MIDS = ["898310048161234", "898310048162234", "898310048163234", "898310048164234"]
SYNTHETIC = "synthetic"


def luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix + "0"]
    for i in range(len(digits) - 2, -1, -2):
        d = digits[i] * 2
        digits[i] = d - 9 if d > 9 else d
    return prefix + str((10 - sum(digits) % 10) % 10)


def world(
    terminals: int, cards: int, merchants: int
) -> tuple[str, list[tuple[str, str, bytes]], list[str]]:
    lines = ['[acquirer]\ninstitution = "48020000"\nname = "bench"\n']
    mids = MIDS[:merchants]
    for mid in mids:
        lines.append(f'[[merchants]]\nmid = "{mid}"\nname = "bench"\nstatus = "active"\n')
    terms = []
    for i in range(terminals):
        tid = f"2{i:07d}"
        tmk = os.urandom(16)
        mid = mids[i % len(mids)]
        terms.append((tid, mid, tmk))
        lines.append(f'[[terminals]]\ntid = "{tid}"\nmid = "{mid}"\ntmk = "{tmk.hex().upper()}"\n')
    pans = []
    for i in range(cards):
        pan = luhn_complete(f"622588{i:09d}")
        pans.append(pan)
        lines.append(
            f'[[cards]]\npan = "{pan}"\nexpiry = "3012"\npin = "123456"\nbalance = "100000000.00"\n'
        )
    return "\n".join(lines), terms, pans


@dataclass
class Tally:
    ok: int = 0
    declined: int = 0
    failed: int = 0  # no answer (timeout, connection lost)
    approved_fen: int = 0
    reversed_fen: int = 0
    reversals: int = 0
    lat: list[float] = field(default_factory=list)
    #: open loop: seconds from the first due time to the last answer, and the requests offered
    elapsed: float = 0.0
    offered: int = 0

    def achieved(self) -> float:
        """Answers (approved or declined) per second over the time the run really took."""
        return (self.ok + self.declined) / self.elapsed if self.elapsed > 0 else 0.0


#: the open loop kept up when it answered at least this share of the offered rate
KEPT_UP = 0.95


class Terminal:
    def __init__(self, tid: str, mid: str, tmk: bytes) -> None:
        self.tid = tid
        self.mid = mid
        self.keys = TerminalKeys(tmk)
        self.stan = 0
        self.batch = "000001"
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.framer = Framer()
        self.approved = 0

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)

    def next_stan(self) -> str:
        self.stan += 1
        return f"{self.stan:06d}"

    async def roundtrip(self, frame: bytes, timeout: float = 30.0) -> bytes:
        self.writer.write(frame)
        async with asyncio.timeout(timeout):
            while True:
                data = await self.reader.read(4096)
                if not data:
                    raise ConnectionError("host closed")
                frames = self.framer.feed(data)
                if frames:
                    return frames[0].body

    async def sign_on(self) -> None:
        body = build(SignOn(tid=self.tid, mid=self.mid, stan=self.next_stan(), batch=self.batch))
        reply = await self.roundtrip(encode_frame(TPDU(), Header(), body))
        msg, _, _ = parse(reply)
        assert getattr(msg, "code", None) == "00", msg
        keys = getattr(msg, "keys", None)
        assert keys is not None
        self.keys.accept_field62(keys)
        self.batch = getattr(msg, "batch", self.batch)

    def frame(self, msg: Any) -> bytes:
        return encode_frame(TPDU(), Header(), build(msg, mac=self.keys.mac))

    def purchases(self, n: int, pans: list[str], offset: int) -> list[tuple[bytes, bytes, int]]:
        """(purchase frame, its reversal frame, amount) — the reversal is sent only if needed."""
        out = []
        for i in range(n):
            pan = pans[(offset + i) % len(pans)]
            card = Card.swiped(pan, "3012", pin_block=self.keys.pin_block("123456", pan))
            amount = 1 + (offset + i) % 999
            req = FinancialRequest(
                kind=Kind.PURCHASE,
                tid=self.tid,
                mid=self.mid,
                stan=self.next_stan(),
                batch=self.batch,
                amount_fen=amount,
                card=card,
            )
            out.append((self.frame(req), self.frame(Reversal.of(req, "98")), amount))
        return out


def code_of(body: bytes) -> str | None:
    v = decode(body).fields.get(39)
    return v if isinstance(v, str) else None


async def send_one(
    t: Terminal, item: tuple[bytes, bytes, int], tally: Tally, reverse_every: int, t_start: float
) -> bool:
    frame, reversal, amount = item
    try:
        body = await t.roundtrip(frame)
    except (TimeoutError, ConnectionError, OSError):
        tally.failed += 1
        return False
    tally.lat.append(time.perf_counter() - t_start)
    if code_of(body) != "00":
        tally.declined += 1
        return True
    tally.ok += 1
    tally.approved_fen += amount
    t.approved += 1
    if reverse_every and t.approved % reverse_every == 0:
        try:
            rbody = await t.roundtrip(reversal)
        except (TimeoutError, ConnectionError, OSError):
            tally.failed += 1
            return False
        if code_of(rbody) == "00":
            tally.reversals += 1
            tally.reversed_fen += amount
    return True


async def closed_loop(
    terms: list[Terminal],
    frames: dict[str, list[tuple[bytes, bytes, int]]],
    seconds: float,
    reverse_every: int,
) -> tuple[Tally, float]:
    deadline = time.perf_counter() + seconds
    tally = Tally()

    async def run(t: Terminal) -> None:
        for item in frames[t.tid]:
            if time.perf_counter() > deadline:
                return
            if not await send_one(t, item, tally, reverse_every, time.perf_counter()):
                return

    t0 = time.perf_counter()
    await asyncio.gather(*(run(t) for t in terms))
    return tally, time.perf_counter() - t0


async def open_loop(
    terms: list[Terminal],
    frames: dict[str, list[tuple[bytes, bytes, int]]],
    rate: float,
    seconds: float,
    reverse_every: int,
) -> Tally:
    """Paced: request k is due at k/rate; each terminal sends its own in order."""
    n = int(rate * seconds)
    per = max(1, n // len(terms))
    tally = Tally()
    start = time.perf_counter() + 0.2

    async def run(idx: int, t: Terminal) -> None:
        for k in range(per):
            due = start + (k * len(terms) + idx) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # latency from when it was due: includes any queueing behind schedule
            if not await send_one(t, frames[t.tid][k], tally, reverse_every, due):
                return

    await asyncio.gather(*(run(i, t) for i, t in enumerate(terms)))
    tally.elapsed = time.perf_counter() - start
    tally.offered = per * len(terms)
    return tally


def kept_up(t: Tally, rate: float) -> bool:
    """Whether the host answered the offered rate: every request answered, at no less than
    ``KEPT_UP`` of the rate over the time the run took (a host that falls behind stretches
    the run, so the achieved rate drops below the offered one)."""
    return t.failed == 0 and t.ok + t.declined == t.offered and t.achieved() >= KEPT_UP * rate


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


# --------------------------------------------------------------------------- stores


def prepare_pg(url: str) -> None:
    """A fresh database for ``url``: one named ``clearpos_bench*`` is dropped and made
    again (no bloat from earlier runs); any other is created when missing, else reused."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if name.startswith("clearpos_bench"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


JOURNAL_COLS = (
    "ts", "business_date", "tid", "mid", "batch", "stan", "mti", "kind", "amount_fen", "card_id",
    "pan_masked", "organisation", "code", "reason", "facts", "auth_code", "status", "req_key", "trail",
)  # fmt: skip


def synthetic_rows(
    n: int,
    terms: list[tuple[str, str]],
    cards: list[int],
    *,
    batch: str | None = None,
    start: int = 0,
) -> Any:
    """Approved purchases that moved no money (delta 0): the audit stays clean.

    Without ``batch``: spread over the past 30 days in old batches (100000+),
    each (tid, batch, STAN) unique. With ``batch``: all in that open batch of
    the first terminal, today."""
    now = time.time()
    for i in range(start, start + n):
        tid, mid = terms[0] if batch else terms[i % len(terms)]
        if batch:
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - 60))
            b, stan = batch, f"{i % 1000000:06d}"
        else:
            ts = time.strftime(
                "%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - 86400 * 31 + i % (86400 * 30))
            )
            b, stan = f"{100000 + i // 1000000:06d}", f"{i % 1000000:06d}"
        yield (
            ts, ts[:10].replace("-", ""), tid, mid, b, stan, "0200", "purchase", 100 + i % 900,
            cards[i % len(cards)], "622588******0000", "CUP", "00", "approved", "{}", "SYN001",
            "approved", f"{tid}:{b}:{stan}", SYNTHETIC,  # req_key: its own TID:batch:STAN
        )  # fmt: skip


def insert_synthetic(url: str, rows: Any) -> None:
    cols = ", ".join(JOURNAL_COLS)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :], timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO journal ({cols}) VALUES ({', '.join('?' for _ in JOURNAL_COLS)})",
                rows,
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY journal ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE journal")


def store_facts(url: str) -> tuple[list[int], int]:
    db = open_database(url)
    with db.reader() as tx:
        cards = [c.id for c in tx.cards()]
        n = int(tx.conn.execute("SELECT COUNT(*) AS n FROM journal").fetchone()["n"])
    return cards, n


def money_check(url: str) -> tuple[int, int]:
    """(what the cards lost, what the journal holds as approved and not reversed)."""
    db = open_database(url)
    with db.reader() as tx:
        lost = sum(c.opening_fen - c.balance_fen for c in tx.cards())
        row = tx.conn.execute(
            "SELECT COALESCE(SUM(amount_fen), 0) AS s FROM journal WHERE kind = 'purchase' AND code = '00' "
            "AND status <> 'reversed' AND trail <> ?",
            (SYNTHETIC,),
        ).fetchone()
    return lost, int(row["s"])


def store_size(url: str, tmp: Path) -> str:
    if url.startswith("sqlite"):
        path = Path(url[len("sqlite:///") :])
        return f"{sum(p.stat().st_size for p in path.parent.glob(path.name + '*')) / 1e6:.1f} MB"
    db = open_database(url)
    with db.reader() as tx:
        row = tx.conn.execute("SELECT pg_database_size(current_database()) AS s").fetchone()
    return f"{int(row['s']) / 1e6:.1f} MB"


def pg_settings(url: str) -> str:
    db = open_database(url)
    with db.reader() as tx:
        v = tx.conn.execute("SHOW server_version").fetchone()["server_version"]
        sc = tx.conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]
        fs = tx.conn.execute("SHOW fsync").fetchone()["fsync"]
    return f"PostgreSQL {v}, fsync={fs}, synchronous_commit={sc}"


def thread_seconds(host_pid: int) -> dict[str, float]:
    """CPU seconds of the host process's threads (Linux): the event loop (the
    process's main thread, or each worker's) and the rest (the store writer
    threads, executor threads), and how much of all that ran in the kernel."""
    out = {"loop": 0.0, "other threads": 0.0, "of which system (kernel)": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    pids = [host_pid]
    children = Path(f"/proc/{host_pid}/task/{host_pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(rest[11]) + int(rest[12])) / tick
            out["loop" if int(task.name) == pid else "other threads"] += cpu
            out["of which system (kernel)"] += int(rest[12]) / tick
    return out


def pg_pids(url: str) -> set[int]:
    """The PostgreSQL processes that work for this bench: the backends connected to its
    database and the server's WAL writer, checkpointer and background writer (other
    databases on the same server — other users' tests — are left out); none for SQLite."""
    if not url.startswith(("postgresql://", "postgres://")):
        return set()
    db = open_database(url)
    with db.reader() as tx:
        rows = tx.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE (datname = current_database() "
            "AND pid <> pg_backend_pid()) OR backend_type IN "
            "('walwriter', 'checkpointer', 'background writer')"
        ).fetchall()
    return {int(r["pid"]) for r in rows}


def cpu_seconds(host_pid: int, postgres: set[int] | None = None) -> dict[str, float]:
    """CPU seconds used so far by the host processes, PostgreSQL (``postgres``: only these
    of its processes) and this process (Linux)."""
    out = {"host": 0.0, "postgres": 0.0, "client": 0.0}
    if not Path("/proc/self/stat").exists():
        return out
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        ppid, cpu = int(rest[1]), (int(rest[11]) + int(rest[12])) / tick
        pid = int(d.name)
        if pid == host_pid or ppid == host_pid:
            out["host"] += cpu
        elif comm == "postgres" and (postgres is None or pid in postgres):
            out["postgres"] += cpu
        elif pid == os.getpid():
            out["client"] += cpu
    return out


# --------------------------------------------------------------------------- the run


def start_host(
    args: argparse.Namespace, world_file: Path, url: str
) -> tuple[subprocess.Popen[str], str, int]:
    env = dict(os.environ, CLEARPOS_KEK=KEK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(world_file), "--db", url,
         "--listen", "127.0.0.1:0", "--reset", "--yes", "--quiet-transactions", "--log-level", "WARNING",
         "--workers", str(args.workers),
         # every bench terminal connects from loopback: one source, not a flood
         "--max-per-source", "0",
         *(["--metrics", "127.0.0.1:0"] if args.metrics else [])],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    m = None
    while m is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("host did not start")
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
    return proc, m.group(1), int(m.group(2))


async def settle_batch(
    t: Terminal, url: str, rows: int, cards: list[int]
) -> tuple[float, float, str, int]:
    """Put ``rows`` approved purchases in ``t``'s open batch and time its settlement."""
    insert_synthetic(
        url, synthetic_rows(rows, [(t.tid, t.mid)], cards, batch=t.batch, start=500000)
    )
    db = open_database(url)
    with db.reader() as tx:
        dom, fgn = tx.batch_totals(t.tid, t.batch)

    def wire(s: tuple[int, int, int, int]) -> Totals:  # field 48 counts stop at 999
        return Totals(s[0] % 10**12, s[1] % 1000, s[2] % 10**12, s[3] % 1000)

    totals = Settlement48(wire(dom), wire(fgn))
    count = dom[1] + dom[3] + fgn[1] + fgn[3]
    t0 = time.perf_counter()
    body = await t.roundtrip(
        t.frame(Settlement(tid=t.tid, mid=t.mid, stan=t.next_stan(), batch=t.batch, totals=totals)),
        600,
    )
    t_settle = time.perf_counter() - t0
    msg, _, _ = parse(body)
    reason = str(getattr(msg, "reason", ""))
    t_close = 0.0
    if reason == "settlement.unbalanced":
        t0 = time.perf_counter()
        end = BatchUploadEnd(
            tid=t.tid, mid=t.mid, stan=t.next_stan(), batch=t.batch, count=count % 10000
        )
        body = await t.roundtrip(t.frame(end), 600)
        t_close = time.perf_counter() - t0
        assert code_of(body) == "00", decode(body).fields
    with db.reader() as tx:
        closed = int(
            tx.conn.execute(
                "SELECT COUNT(*) AS n FROM journal WHERE tid = ? AND batch = ? AND settlement_id IS NOT NULL",
                (t.tid, t.batch),
            ).fetchone()["n"]
        )
    return t_settle, t_close, reason, closed


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="clearpos-bench-"))
    text, terms_spec, pans = world(args.terminals, args.cards, args.merchants)
    (tmp / "world.toml").write_text(text, "utf-8")
    url = args.db or f"sqlite:///{tmp / 'bench.db'}"
    pg = url.startswith(("postgresql://", "postgres://"))
    if pg:
        prepare_pg(url)
    proc, host, port = start_host(args, tmp / "world.toml", url)
    settle: tuple[float, float, str, int] | None = None
    try:
        cards, _ = store_facts(url)
        prefill_s = 0.0
        if args.prefill:
            t0 = time.perf_counter()
            insert_synthetic(
                url, synthetic_rows(args.prefill, [(tid, mid) for tid, mid, _ in terms_spec], cards)
            )
            prefill_s = time.perf_counter() - t0
        _, journal_before = store_facts(url)
        terms = [Terminal(tid, mid, tmk) for tid, mid, tmk in terms_spec]
        for t in terms:
            await t.connect(host, port)
            await t.sign_on()
        per_closed = int(args.seconds * 4000 / len(terms)) + 10
        per_open = int(args.rate * args.seconds / len(terms)) + 10 if args.rate else 0
        t0 = time.perf_counter()
        frames = {t.tid: t.purchases(per_closed, pans, i * 7) for i, t in enumerate(terms)}
        frames2 = {t.tid: t.purchases(per_open, pans, i * 11) for i, t in enumerate(terms)}
        build_s = time.perf_counter() - t0
        pids = pg_pids(url)
        cpu0, th0 = cpu_seconds(proc.pid, pids), thread_seconds(proc.pid)
        closed, dt = await closed_loop(terms, frames, args.seconds, args.reverse_every)
        cpu1, th1 = cpu_seconds(proc.pid, pids), thread_seconds(proc.pid)
        threads = {k: th1[k] - th0[k] for k in th0}
        opened = (
            await open_loop(terms, frames2, args.rate, args.seconds, args.reverse_every)
            if args.rate
            else Tally()
        )
        if args.settle_batch:
            settle = await settle_batch(terms[0], url, args.settle_batch, cards)
        for t in terms:
            t.writer.close()
        await asyncio.sleep(0.5)  # let the host see the connections end before it stops
    finally:
        proc.terminate()
        proc.wait(60)
    lost, journal_kept = money_check(url)
    seen = closed.approved_fen + opened.approved_fen - closed.reversed_fen - opened.reversed_fen
    t0 = time.perf_counter()
    found = run_audit(url)
    audit_s = time.perf_counter() - t0
    money_ok = lost == journal_kept == seen
    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.machine(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.machine()
    )
    store = pg_settings(url) if pg else "SQLite WAL synchronous=FULL, group commit"
    print(
        f"# bench/host.py — {platform.node()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"store: {store}; host workers: {args.workers}; terminals {len(terms)}, merchants {args.merchants}, cards {len(pans)}"
    )
    print(
        f"journal rows before the run: {journal_before:,}"
        + (f" ({args.prefill:,} synthetic, inserted in {prefill_s:.1f} s)" if args.prefill else "")
    )
    print(
        f"(pre-built {sum(len(v) for v in frames.values()) + sum(len(v) for v in frames2.values()):,} signed frames in {build_s:.1f} s, not timed)"
    )
    print(
        "| run | approved | declined | no answer | reversed | approved/s | p50 ms | p95 ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| closed loop, {len(terms)} terminals, {args.seconds:.0f} s | {closed.ok} | {closed.declined} | {closed.failed} | {closed.reversals} | {closed.ok / dt:,.0f} | {pct(closed.lat, 0.5):.2f} | {pct(closed.lat, 0.95):.2f} | {pct(closed.lat, 0.99):.2f} |"
    )
    if args.rate:
        approved_rate = opened.ok / opened.elapsed if opened.elapsed > 0 else 0.0
        print(
            f"| open loop, offered {args.rate:.0f}/s | {opened.ok} | {opened.declined} | {opened.failed} | {opened.reversals} | {approved_rate:,.0f} | {pct(opened.lat, 0.5):.2f} | {pct(opened.lat, 0.95):.2f} | {pct(opened.lat, 0.99):.2f} |"
        )
        verdict = (
            "kept up"
            if kept_up(opened, args.rate)
            else "FELL BEHIND: the latencies above include the queue behind the schedule"
        )
        print(
            f"open loop: offered {args.rate:,.0f}/s for {args.seconds:.0f} s, achieved "
            f"{opened.achieved():,.0f}/s answered over {opened.elapsed:.1f} s — {verdict}"
        )
    if closed.ok:
        used = {k: (cpu1[k] - cpu0[k]) / closed.ok * 1e6 for k in cpu0}
        print(
            f"CPU per approved purchase in the closed loop: host {used['host']:.0f} µs, "
            f"PostgreSQL {used['postgres']:.0f} µs, load generator {used['client']:.0f} µs; "
            f"cores busy {sum(cpu1[k] - cpu0[k] for k in cpu0) / dt:.2f} of {os.cpu_count()}"
        )
        print(
            "host CPU per approved purchase by thread: "
            + ", ".join(f"{k} {v / closed.ok * 1e6:.0f} µs" for k, v in threads.items())
        )
    if settle:
        t_settle, t_close, reason, closed_rows = settle
        print(
            f"settlement of a batch of {closed_rows:,} rows: 0500 answered in {t_settle * 1000:,.0f} ms ({reason}), 0320 end (closes the batch) in {t_close * 1000:,.0f} ms; total {(t_settle + t_close) * 1000:,.0f} ms"
        )
    print(
        f"money: cards lost {lost:,} fen; journal approved and not reversed {journal_kept:,} fen; terminals saw approved minus reversed {seen:,} fen — {'OK' if money_ok else 'MISMATCH'}"
    )
    print(
        f"audit ({audit_s:.1f} s): {'OK — every fen accounted for' if not found else found[:3]}; store size {store_size(url, tmp)}"
    )
    if closed.declined + opened.declined + closed.failed + opened.failed:
        print("errors present: declines or unanswered requests — every purchase should be approved")
    return 0 if money_ok and not found and not (closed.failed + opened.failed) else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--db",
        help="store URL (default: a fresh SQLite file); postgresql://.../clearpos_bench* is "
        "dropped and created afresh, any other database created if missing and wiped",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="host processes (PostgreSQL only for > 1)"
    )
    p.add_argument(
        "--metrics",
        action="store_true",
        help="host with --metrics (histograms observed, page on a free port): A/B its cost",
    )
    p.add_argument("--terminals", type=int, default=50)
    p.add_argument("--merchants", type=int, default=1, choices=range(1, len(MIDS) + 1))
    p.add_argument("--cards", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=2000, help="open-loop rate per second (0: skip)")
    p.add_argument(
        "--reverse-every",
        type=int,
        default=50,
        help="reverse every K-th approved purchase of a terminal (0: never)",
    )
    p.add_argument(
        "--prefill", type=int, default=0, help="synthetic journal rows put in before the run"
    )
    p.add_argument(
        "--settle-batch",
        type=int,
        default=0,
        help="afterwards, time the settlement of a batch of this many rows",
    )
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
