"""Soak: the host at a steady rate for a long time — throughput, p99 and memory over time.

Run: .venv/bin/python bench/soak.py [--rate 500] [--minutes 10] [--interval 30]
         [--db postgresql://USER@HOST/DB --workers N]

The rate must be about half the closed-loop maximum that bench/host.py measures on
the same machine the same day (the default, 500/s, is half of the session-2
machine's, docs/performance.md section 4). Purchases are built just in time
(PIN block, MAC), paced open-loop across the terminals. Every interval prints
approved/s, p50/p99 latency and the host's resident memory (VmRSS of the host
process and, with --workers, of its worker processes);
at the end it says whether memory growth flattened (second half grows less than
5% of the first reading) and runs the audit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from host import Terminal, code_of, pct, start_host, world  # noqa: E402

from clearpos.audit import run_audit  # noqa: E402
from clearpos.wire import Card, FinancialRequest, Kind  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of the host: the process and its children (a supervisor's
    workers), in MB."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue  # a worker just restarted
    return total


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


async def soak(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="clearpos-soak-"))
    text, terms_spec, pans = world(args.terminals, 2000, 1)
    (tmp / "world.toml").write_text(text, "utf-8")
    url = args.db or f"sqlite:///{tmp / 'soak.db'}"
    proc, host, port = start_host(argparse.Namespace(workers=args.workers), tmp / "world.toml", url)
    rows: list[tuple[float, int, int, float, float, float]] = []
    try:
        terms = [Terminal(tid, mid, tmk) for tid, mid, tmk in terms_spec]
        for t in terms:
            await t.connect(host, port)
            await t.sign_on()
        per_term = args.rate / len(terms)
        deadline = time.perf_counter() + args.minutes * 60
        window: list[float] = []
        counts = {"ok": 0, "bad": 0}

        async def run(idx: int, t: Terminal) -> None:
            k = 0
            start = time.perf_counter() + idx / args.rate
            while True:
                due = start + k / per_term
                now = time.perf_counter()
                if due > deadline:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                pan = pans[(idx * 7919 + k) % len(pans)]
                req = FinancialRequest(
                    kind=Kind.PURCHASE, tid=t.tid, mid=t.mid, stan=t.next_stan(), batch=t.batch,
                    amount_fen=1 + k % 99, card=Card.swiped(pan, "3012", pin_block=t.keys.pin_block("123456", pan)),
                )  # fmt: skip
                body = await t.roundtrip(t.frame(req))
                window.append(time.perf_counter() - due)
                counts["ok" if code_of(body) == "00" else "bad"] += 1
                k += 1
                if t.stan >= 999_990:  # keep STANs in range on very long soaks
                    t.stan = 0

        async def report() -> None:
            t0 = time.perf_counter()
            last = t0
            last_ok = 0
            while time.perf_counter() < deadline:
                await asyncio.sleep(args.interval)
                now = time.perf_counter()
                lat = window[:]
                window.clear()
                ok = counts["ok"]
                row = (
                    now - t0,
                    ok - last_ok,
                    counts["bad"],
                    pct(lat, 0.5),
                    pct(lat, 0.99),
                    rss_mb(proc.pid),
                )
                rows.append(row)
                print(
                    f"t={row[0]:6.0f}s approved/s {row[1] / (now - last):7.0f}  declined {row[2]}  "
                    f"p50 {row[3]:6.2f} ms  p99 {row[4]:6.2f} ms  host RSS {row[5]:6.1f} MB",
                    flush=True,
                )
                last, last_ok = now, ok

        await asyncio.gather(report(), *(run(i, t) for i, t in enumerate(terms)))
        for t in terms:
            t.writer.close()
    finally:
        proc.terminate()
        proc.wait(60)
    found = run_audit(url)
    print(f"# bench/soak.py — {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}, rate {args.rate:.0f}/s, "
          f"{args.minutes} min, {args.terminals} terminals, "
          f"{'PostgreSQL' if args.db else 'SQLite'}, {args.workers} host process(es)")  # fmt: skip
    if len(rows) >= 4:
        first, mid, end = rows[0][5], rows[len(rows) // 2][5], rows[-1][5]
        flat = (end - mid) < 0.05 * first
        print(f"memory: first {first:.1f} MB, half-way {mid:.1f} MB, end {end:.1f} MB — "
              f"{'flattened' if flat else 'STILL GROWING'} (second half +{end - mid:.1f} MB)")  # fmt: skip
    print(f"audit: {'OK' if not found else found[:3]}")
    return 0 if not found else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--rate",
        type=float,
        default=500,
        help="purchases/s: half of what bench/host.py measured on this machine the same day",
    )
    p.add_argument("--db", help="postgresql://... (default: a fresh SQLite file)")
    p.add_argument("--workers", type=int, default=1, help="host processes (PostgreSQL only)")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--interval", type=float, default=30)
    p.add_argument("--terminals", type=int, default=20)
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
