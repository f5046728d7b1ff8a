"""What ``--metrics`` costs a purchase: the histogram observations, counted alone.

Run: .venv/bin/python bench/metrics.py [--n 200000] [--instructions N]

A host with ``--metrics`` does, per answer, one ``HostMetrics.answered(kind, s)``
(a child histogram per kind, found in a dict) on the event loop, and per store
commit one ``HostMetrics.committed(units, s)`` (two histograms) on the writer
thread; the counters are read only when a page is rendered. This bench times
each call in a loop (process CPU, best of ``--repeat``), an empty loop to
subtract, and one page render; ``--instructions N`` counts CPU instructions per
call under callgrind instead (N and 2N calls, the difference over N: the same
figure on a busy machine as on a quiet one), comparable with
``bench/engine.py --instructions``.

Per purchase on SQLite: answered + committed / (units per commit); on
PostgreSQL (one transaction per message): answered + committed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import generate_latest  # noqa: E402

from clearpos.host.metrics import HostMetrics  # noqa: E402

#: a purchase answered in 12 ms (the 20 ms bucket, six bounds tried); one answered
#: after 5 s (past every bound: the longest scan); a commit of 8 units in 20 ms
CASES: dict[str, str] = {
    "loop": "the loop alone (subtracted from the others)",
    "answered": "answered('purchase', 0.012)",
    "answered-slow": "answered('purchase', 7.5), past the last bucket",
    "committed": "committed(8, 0.020)",
}


def workload(case: str, metrics: HostMetrics) -> Callable[[int], None]:
    answered, committed = metrics.answered, metrics.committed

    def loop(n: int) -> None:
        for _ in range(n):
            pass

    def fast(n: int) -> None:
        for _ in range(n):
            answered("purchase", 0.012)

    def slow(n: int) -> None:
        for _ in range(n):
            answered("purchase", 7.5)

    def commit(n: int) -> None:
        for _ in range(n):
            committed(8, 0.020)

    return {"loop": loop, "answered": fast, "answered-slow": slow, "committed": commit}[case]


def fresh() -> HostMetrics:
    m = HostMetrics(0)
    for kind in ("signon", "purchase", "reversal", "refund", "void", "echo", "settlement"):
        m.answered(kind, 0.003)  # the children exist, as in a host that has run a while
    m.committed(1, 0.001)
    return m


def timed(args: argparse.Namespace) -> int:
    print(
        f"# bench/metrics.py — Python {platform.python_version()}, "
        f"{platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}, n={args.n:,}"
    )
    best: dict[str, float] = {}
    for case in CASES:
        run = workload(case, fresh())
        runs = []
        for _ in range(args.repeat):
            t0 = time.process_time()
            run(args.n)
            runs.append((time.process_time() - t0) / args.n * 1e6)
        best[case] = min(runs)
    for case, text in CASES.items():
        net = best[case] - (best["loop"] if case != "loop" else 0)
        print(f"{case:14} {net:7.3f} µs per call   {text}")
    m = fresh()
    t0 = time.process_time()
    for _ in range(200):
        body = generate_latest(m.registry)
    render = (time.process_time() - t0) / 200 * 1e6
    print(
        f"page render    {render:7.1f} µs ({len(body):,} bytes, 7 kinds, with process, platform and GC series)"
    )
    return 0


def count_instructions(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    n = args.instructions
    per: dict[str, float] = {}
    for case in CASES:
        totals = []
        for count in (n, 2 * n):
            out = Path(tempfile.mkdtemp(prefix="clearpos-callgrind-")) / "callgrind.out"
            cmd = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, __file__, "--under-callgrind", case, "--n", str(count),
            ]  # fmt: skip
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            subprocess.run(
                cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
            assert m, f"no instruction total in {out}"
            totals.append(int(m.group(1)))
        per[case] = (totals[1] - totals[0]) / n
        print(f"callgrind {case}: {n:,} and {2 * n:,} calls, {totals}", flush=True)
    print(
        f"# bench/metrics.py --instructions {n} — Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    for case, text in CASES.items():
        net = per[case] - (per["loop"] if case != "loop" else 0)
        print(f"{case:14} {net:9,.0f} instructions per call   {text}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=200_000, help="calls per timed pass")
    p.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported")
    p.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="count instructions per call under callgrind (N and 2N calls, the difference / N)",
    )
    p.add_argument("--under-callgrind", choices=list(CASES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.under_callgrind:
        workload(args.under_callgrind, fresh())(args.n)
        return 0
    if args.instructions:
        return count_instructions(args)
    return timed(args)


if __name__ == "__main__":
    sys.exit(main())
