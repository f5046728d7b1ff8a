"""The host engine alone: CPU per purchase without sockets, threads or the event loop.

Run: .venv/bin/python bench/engine.py [--purchases 20000] [--batch 50] [--profile]

A SQLite store (WAL, synchronous=FULL) is loaded with the bench world of
``bench/host.py``; terminals sign on through the engine; purchases are pre-built
(PIN block, MAC) before the clock starts; then the engine handles them in
transactions of ``--batch`` units, as the group-commit writer does, commit
included. Prints µs of CPU per purchase (process time, so another process on the
machine changes it less than wall time), SQL statements per purchase (counted
with SQLite's trace hook in a separate pass) and, with ``--profile``, the top of
a cProfile. Every answer must be approved, and the audit runs at the end.

This is the figure to move when making the host faster: bench/host.py adds the
sockets, the event loop and the load generator on the same cores.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("CLEARPOS_KEK", "7b" * 32)

from host import Terminal, world  # noqa: E402

from clearpos.audit import run_audit  # noqa: E402
from clearpos.host.cli import build_engine  # noqa: E402
from clearpos.host.engine import Outcome, Read  # noqa: E402
from clearpos.host.seed import seed  # noqa: E402
from clearpos.keys import KeyEncryptionKey  # noqa: E402
from clearpos.store import Tx, open_database  # noqa: E402
from clearpos.store.sqlite import GroupCommitWriter, SqliteDatabase  # noqa: E402
from clearpos.wire import SignOn, build, decode, decode_frame, parse  # noqa: E402
from clearpos.wire.framing import TPDU, Header, encode_frame  # noqa: E402
from clearpos.world import load_world  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--purchases", type=int, default=20000)
    p.add_argument("--terminals", type=int, default=50)
    p.add_argument("--cards", type=int, default=500)
    p.add_argument("--batch", type=int, default=50, help="units per commit (the writer's batch)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    p.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    p.add_argument(
        "--metrics",
        action="store_true",
        help="feed the host's --metrics histograms as the host does: an answer, a commit",
    )
    p.add_argument(
        "--opcodes",
        type=int,
        metavar="N",
        help="count Python bytecodes per purchase over N purchases, by function "
        "(sys.settrace opcode events): exact and repeatable, the figure to cut",
    )
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    p.add_argument("--top", type=int, default=25, help="cProfile lines to print")
    p.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="count CPU instructions per purchase under callgrind (N and 2N purchases, "
        "the difference over N): the same figure on a busy machine as on a quiet one",
    )
    p.add_argument(
        "--warm",
        action="store_true",
        help="with --instructions: the cards already in the row cache (a purchase on each "
        "card first, not counted), as in the running host; without it every counted "
        "purchase reads its card from SQLite (the method of the earlier figures)",
    )
    p.add_argument("--under-callgrind", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--instructions-n", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.instructions:
        return count_instructions(args)

    tmp = Path(tempfile.mkdtemp(prefix="clearpos-engine-"))
    text, terms_spec, pans = world(args.terminals, args.cards, 1)
    (tmp / "world.toml").write_text(text, "utf-8")
    url = f"sqlite:///{tmp / 'engine.db'}"
    db = open_database(url)
    assert isinstance(db, SqliteDatabase)
    engine, hsm, tokens = build_engine(KeyEncryptionKey.load())
    seed(db, load_world(tmp / "world.toml"), hsm, tokens, reset=False)
    conn = db.connect()
    writer = GroupCommitWriter(db, batch_max=args.batch)
    tx = writer.tx_for(conn)
    metrics = None
    if args.metrics:
        from clearpos.host.metrics import HostMetrics

        metrics = HostMetrics(0)

    def unit(raw: bytes, read: Read = None) -> Callable[[Tx], Outcome]:
        return lambda tx: engine.handle(tx, decode_frame(raw), time.perf_counter(), read)

    def read_all(frames: list[bytes]) -> list[Read]:
        """What the host does on its event loop before a unit is queued (Engine.read)."""
        return [engine.read(decode_frame(raw)) for raw in frames]

    def run(frames: list[bytes], reads: list[Read] | None = None) -> list[bytes]:
        """The writer's own batch code, without its thread and queue (``reads``: the
        frames were read beforehand, as the host reads them; else each unit parses)."""
        replies: list[bytes] = []
        for i in range(0, len(frames), args.batch):
            jobs: list[Any] = [
                (unit(raw, reads[i + k] if reads is not None else None), None)
                for k, raw in enumerate(frames[i : i + args.batch])
            ]
            started = time.perf_counter()
            done = writer._batch(conn, tx, jobs)
            if metrics is not None:
                metrics.committed(len(jobs), time.perf_counter() - started)
            for _, out, ok in done:
                assert ok and out.reply is not None, out
                if metrics is not None:
                    metrics.answered(out.record["kind"], time.perf_counter() - started)
                replies.append(out.reply)
        return replies

    terms = [Terminal(tid, mid, tmk) for tid, mid, tmk in terms_spec]
    for t in terms:
        body = build(SignOn(tid=t.tid, mid=t.mid, stan=t.next_stan(), batch=t.batch))
        (reply,) = run([encode_frame(TPDU(), Header(), body)])
        msg, _, _ = parse(decode_frame(reply).body)
        t.keys.accept_field62(getattr(msg, "keys", b""))
        t.batch = getattr(msg, "batch", t.batch)

    def frames(n: int, offset: int) -> list[bytes]:
        per = -(-n // len(terms))
        made = [t.purchases(per, pans, offset + k * per) for k, t in enumerate(terms)]
        return [made[k][i][0] for i in range(per) for k in range(len(terms))][:n]

    def check(replies: list[bytes]) -> None:
        bad = [decode(decode_frame(r).body).fields.get(39) for r in replies]
        bad = [c for c in bad if c != "00"]
        assert not bad, f"{len(bad)} not approved, e.g. {bad[:5]}"

    if args.opcodes:
        return count_opcodes(run, frames(args.opcodes, 1000), args.top)

    if args.under_callgrind is not None:
        # the same frames in both runs (2N built), the first N or all handled; no audit,
        # whose cost grows with the journal
        batch = frames(2 * args.instructions_n, 1000)
        if args.warm:  # the same cards and amounts, new STANs: other purchases
            check(run(frames(2 * args.instructions_n, 1000)))
        check(run(batch[: args.under_callgrind]))
        conn.close()
        return 0

    # statements per purchase, in a separate pass (the trace hook costs time)
    counted: list[str] = []
    conn.set_trace_callback(counted.append)
    check(run(frames(200, 0)))
    conn.set_trace_callback(None)
    control = {"BEGIN IMMEDIATE", "COMMIT", "SAVEPOINT unit", "RELEASE unit"}
    stmts = [s for s in counted if s not in control]
    per_purchase = len(stmts) / 200
    kinds: dict[str, int] = {}
    for s in stmts:
        head = " ".join(s.split()[:4])
        kinds[head] = kinds.get(head, 0) + 1

    best = best_unit = float("inf")
    offset = 1000
    for _ in range(args.repeat):
        batch = frames(args.purchases, offset)
        offset += args.purchases
        c0 = time.process_time()
        w0 = time.perf_counter()
        reads = read_all(batch)
        c1 = time.process_time()
        replies = run(batch, reads)
        c2 = time.process_time()
        wall = time.perf_counter() - w0
        check(replies)
        n = len(batch)
        best = min(best, (c2 - c0) / n * 1e6)
        best_unit = min(best_unit, (c2 - c1) / n * 1e6)
        print(
            f"pass: {n:,} purchases, CPU {(c2 - c0) / n * 1e6:.0f} µs each (read "
            f"{(c1 - c0) / n * 1e6:.0f}, unit {(c2 - c1) / n * 1e6:.0f}), "
            f"wall {wall / n * 1e6:.0f} µs each",
            flush=True,
        )
    if args.profile:  # the units only, as the writer thread runs them
        prof = cProfile.Profile()
        batch = frames(args.purchases, offset)
        reads = read_all(batch)
        prof.runcall(run, batch, reads)
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
    conn.close()
    found = run_audit(url)
    print(
        f"# bench/engine.py — {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"engine CPU per approved purchase (best of {args.repeat}): {best:.0f} µs, of which "
        f"the unit in the writer thread {best_unit:.0f} µs (the rest: Engine.read, which "
        "the host runs on its event loop)"
    )
    print(f"SQL statements per purchase: {per_purchase:.2f}")
    for head, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {n / 200:5.2f}  {head} ...")
    print(f"audit: {'OK' if not found else found[:3]}")
    return 0 if not found else 1


def count_opcodes(run: Callable[[list[bytes]], list[bytes]], batch: list[bytes], top: int) -> int:
    """Bytecodes executed per purchase, in total and by function (self, not callees)."""
    run(batch[:50])  # warm: caches, first-use imports
    counts: dict[str, int] = {}

    def where(frame: Any) -> str:
        code = frame.f_code
        name = code.co_name
        if code.co_filename == "<string>":  # a generated __init__ (dataclasses): whose
            self = frame.f_locals.get("self")
            name = f"{type(self).__name__}.{name}" if self is not None else name
        return f"{Path(code.co_filename).name}:{code.co_firstlineno} {name}"

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        frame.f_trace_opcodes = True
        key = where(frame)

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[key] = counts.get(key, 0) + 1
            return local

        return local

    sys.settrace(tracer)
    try:
        run(batch[50:])
    finally:
        sys.settrace(None)
    n = len(batch) - 50
    total = sum(counts.values())
    print(f"bytecodes per purchase: {total / n:,.0f} (over {n:,} purchases)")
    for key, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {c / n:8,.1f}  {100 * c / total:5.1f} %  {key}")
    return 0


def count_instructions(args: argparse.Namespace) -> int:
    """Run this bench twice under ``valgrind --tool=callgrind``, handling N and 2N of
    the same pre-built purchases; instructions per purchase = the difference / N."""
    import re
    import shutil
    import subprocess

    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    n = args.instructions
    totals: list[int] = []
    for count in (n, 2 * n):
        out = Path(tempfile.mkdtemp(prefix="clearpos-callgrind-")) / "callgrind.out"
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--terminals", str(args.terminals),
            "--cards", str(args.cards), "--batch", str(args.batch),
            "--instructions-n", str(n), "--under-callgrind", str(count),
            *(["--metrics"] if args.metrics else []),
            *(["--warm"] if args.warm else []),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        assert m, f"no instruction total in {out}"
        totals.append(int(m.group(1)))
        print(f"callgrind: {count:,} purchases, {int(m.group(1)):,} instructions", flush=True)
    per = (totals[1] - totals[0]) / n
    print(
        f"# bench/engine.py --instructions {n} — Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    with_metrics = " (with --metrics histograms)" if args.metrics else ""
    cards = "cards in the row cache" if args.warm else "each card read from SQLite"
    print(f"engine instructions per approved purchase{with_metrics} ({cards}): {per:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
