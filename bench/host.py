"""Host benchmark: N terminals over loopback against a real host process.

Run: .venv/bin/python bench/host.py [--terminals 50] [--seconds 10] [--rate 2000]

Starts ``clearpos host`` on a fresh SQLite file with a generated world (N
terminals, many cards, no velocity rule), signs every terminal on, pre-builds
the signed purchase frames (PIN block + MAC) so the client spends its CPU on
I/O only, then measures:

1. closed loop: every terminal sends its next purchase as soon as the answer
   arrives — approved purchases per second;
2. open loop: purchases paced at ``--rate`` per second — p50/p99 latency.

Each purchase takes the full path: framing, MAC verify, PIN verify, balance
debit, durable journal (group commit, synchronous=FULL), MAC'd answer.
Afterwards the audit runs and the database size is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearpos.audit import run_audit  # noqa: E402
from clearpos.keys import TerminalKeys  # noqa: E402
from clearpos.wire import (  # noqa: E402
    TPDU,
    Card,
    FinancialRequest,
    Framer,
    Header,
    Kind,
    SignOn,
    build,
    decode,
    encode_frame,
    parse,
)

KEK = "7b" * 32
MID = "898310048161234"


def luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix + "0"]
    for i in range(len(digits) - 2, -1, -2):
        d = digits[i] * 2
        digits[i] = d - 9 if d > 9 else d
    return prefix + str((10 - sum(digits) % 10) % 10)


def world(terminals: int, cards: int) -> tuple[str, list[tuple[str, bytes]], list[str]]:
    lines = ['[acquirer]\ninstitution = "48020000"\nname = "bench"\n']
    lines.append(f'[[merchants]]\nmid = "{MID}"\nname = "bench"\nstatus = "active"\n')
    terms = []
    for i in range(terminals):
        tid = f"2{i:07d}"
        tmk = os.urandom(16)
        terms.append((tid, tmk))
        lines.append(f'[[terminals]]\ntid = "{tid}"\nmid = "{MID}"\ntmk = "{tmk.hex().upper()}"\n')
    pans = []
    for i in range(cards):
        pan = luhn_complete(f"622588{i:09d}")
        pans.append(pan)
        lines.append(f'[[cards]]\npan = "{pan}"\nexpiry = "3012"\npin = "123456"\nbalance = "100000000.00"\n')
    return "\n".join(lines), terms, pans


class Terminal:
    def __init__(self, tid: str, tmk: bytes) -> None:
        self.tid = tid
        self.keys = TerminalKeys(tmk)
        self.stan = 0
        self.batch = "000001"
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.framer = Framer()

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)

    def next_stan(self) -> str:
        self.stan += 1
        return f"{self.stan:06d}"

    async def roundtrip(self, frame: bytes) -> bytes:
        self.writer.write(frame)
        while True:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("host closed")
            frames = self.framer.feed(data)
            if frames:
                return frames[0].body

    async def sign_on(self) -> None:
        body = build(SignOn(tid=self.tid, mid=MID, stan=self.next_stan(), batch=self.batch))
        reply = await self.roundtrip(encode_frame(TPDU(), Header(), body))
        msg, _, _ = parse(reply)
        assert getattr(msg, "code", None) == "00", msg
        keys = getattr(msg, "keys", None)
        assert keys is not None
        self.keys.accept_field62(keys)
        self.batch = getattr(msg, "batch", self.batch)

    def purchases(self, n: int, pans: list[str], offset: int) -> list[bytes]:
        out = []
        for i in range(n):
            pan = pans[(offset + i) % len(pans)]
            card = Card.swiped(pan, "3012", pin_block=self.keys.pin_block("123456", pan))
            req = FinancialRequest(
                kind=Kind.PURCHASE, tid=self.tid, mid=MID, stan=self.next_stan(), batch=self.batch, amount_fen=1 + i % 999, card=card
            )
            out.append(encode_frame(TPDU(), Header(), build(req, mac=self.keys.mac)))
        return out


def approved(body: bytes) -> bool:
    return decode(body).fields.get(39) == "00"


async def closed_loop(terms: list[Terminal], frames: dict[str, list[bytes]], seconds: float) -> tuple[int, int, list[float]]:
    deadline = time.perf_counter() + seconds
    ok = bad = 0
    lat: list[float] = []

    async def run(t: Terminal) -> None:
        nonlocal ok, bad
        for f in frames[t.tid]:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            body = await t.roundtrip(f)
            lat.append(time.perf_counter() - t0)
            if approved(body):
                ok += 1
            else:
                bad += 1

    await asyncio.gather(*(run(t) for t in terms))
    return ok, bad, lat


async def open_loop(terms: list[Terminal], frames: dict[str, list[bytes]], rate: float, seconds: float) -> tuple[int, int, list[float]]:
    """Paced: request k is due at k/rate; each terminal sends its own in order."""
    n = int(rate * seconds)
    per = max(1, n // len(terms))
    ok = bad = 0
    lat: list[float] = []
    start = time.perf_counter() + 0.2

    async def run(idx: int, t: Terminal) -> None:
        nonlocal ok, bad
        for k in range(per):
            due = start + (k * len(terms) + idx) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = await t.roundtrip(frames[t.tid][k])
            lat.append(time.perf_counter() - due)  # includes any queueing behind schedule
            if approved(body):
                ok += 1
            else:
                bad += 1

    await asyncio.gather(*(run(i, t) for i, t in enumerate(terms)))
    return ok, bad, lat


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="clearpos-bench-"))
    text, terms_spec, pans = world(args.terminals, args.cards)
    (tmp / "world.toml").write_text(text, "utf-8")
    db = tmp / "bench.db"
    env = dict(os.environ, CLEARPOS_KEK=KEK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearpos.cli", "host", "--world", str(tmp / "world.toml"), "--db", f"sqlite:///{db}",
         "--listen", "127.0.0.1:0", "--reset", "--quiet-transactions", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    m = None
    while m is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("host did not start")
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
    host, port = m.group(1), int(m.group(2))
    try:
        terms = [Terminal(tid, tmk) for tid, tmk in terms_spec]
        for t in terms:
            await t.connect(host, port)
            await t.sign_on()
        per_closed = int(args.seconds * 9000 / len(terms)) + 10
        per_open = int(args.rate * args.seconds / len(terms)) + 10
        t0 = time.perf_counter()
        frames = {t.tid: t.purchases(per_closed, pans, i * 7) for i, t in enumerate(terms)}
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ok, bad, lat = await closed_loop(terms, frames, args.seconds)
        dt = time.perf_counter() - t0
        frames2 = {t.tid: t.purchases(per_open, pans, i * 11) for i, t in enumerate(terms)}
        ok2, bad2, lat2 = await open_loop(terms, frames2, args.rate, args.seconds)
        for t in terms:
            t.writer.close()
    finally:
        proc.terminate()
        proc.wait(30)
    size = sum(p.stat().st_size for p in tmp.glob("bench.db*"))
    found = run_audit(f"sqlite:///{db}")
    print(f"# bench/host.py — {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"terminals {len(terms)}, cards {len(pans)}, SQLite WAL synchronous=FULL, group commit")
    print(f"(pre-built {sum(len(v) for v in frames.values())} signed frames in {build_s:.1f} s, not timed)")
    print("| run | approved | declined | approved/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    print(f"| closed loop, {len(terms)} terminals, {args.seconds:.0f} s | {ok} | {bad} | {ok / dt:,.0f} | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} |")
    print(f"| open loop at {args.rate:.0f}/s | {ok2} | {bad2} | {ok2 / args.seconds:,.0f} | {pct(lat2, 0.5):.2f} | {pct(lat2, 0.99):.2f} |")
    print(f"database size after {ok + bad + ok2 + bad2 + len(terms):,} messages: {size / 1e6:.1f} MB; audit: {'OK' if not found else found[:3]}")
    if statistics and bad + bad2:
        print("declines present: check the world (limits) — every purchase should be approved")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--terminals", type=int, default=50)
    p.add_argument("--cards", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=2000)
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
