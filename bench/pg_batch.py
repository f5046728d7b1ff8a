"""PostgreSQL's CPU per purchase against the writer's batch size, without sockets to terminals.

Run: .venv/bin/python bench/pg_batch.py --db postgresql://postgres@127.0.0.1/clearpos_bench_pg
     [--purchases 5000] [--batches 1,50] [--repeat 3]

The bench world of ``bench/host.py`` (50 terminals, 500 cards) is loaded into a
fresh database (one named ``clearpos_bench*`` is dropped and made again); the
terminals sign on through the engine; purchases are pre-built (PIN block, MAC);
then the engine handles them through the PostgreSQL writer's own batch code
(``PgWriter._batch``: the same transactions, locks and cuts as in the host) on one
connection, ``--batches`` units per transaction. It prints, per approved purchase:
CPU of that connection's PostgreSQL backend (from ``/proc/PID/stat``), CPU of
every other PostgreSQL process (WAL writer, checkpointer, ...), CPU of this
process (the engine and psycopg), round trips (statements sent, BEGIN and COMMIT
included) and wall time. CPU is counted per process, so other work on the machine
changes it less than wall time. Every answer must be approved; the audit runs at
the end.
"""

from __future__ import annotations

import argparse
import os
import platform
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

from host import Terminal, prepare_pg, world  # noqa: E402

from clearpos.audit import run_audit  # noqa: E402
from clearpos.host.cli import build_engine  # noqa: E402
from clearpos.host.engine import Outcome  # noqa: E402
from clearpos.host.seed import seed  # noqa: E402
from clearpos.keys import KeyEncryptionKey  # noqa: E402
from clearpos.store import PgDatabase, Tx, open_database  # noqa: E402
from clearpos.store.pg import PgConn  # noqa: E402
from clearpos.wire import SignOn, build, decode, decode_frame, parse  # noqa: E402
from clearpos.wire.framing import TPDU, Header, encode_frame  # noqa: E402
from clearpos.world import load_world  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def postgres_cpu(exclude: int) -> float:
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != exclude:
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
                total += cpu_of(int(d.name))
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--db", required=True, help="postgresql://USER@HOST/clearpos_bench...")
    p.add_argument("--purchases", type=int, default=5000)
    p.add_argument("--batches", default="1,50", help="units per transaction, comma-separated")
    p.add_argument("--repeat", type=int, default=3, help="passes per batch size (interleaved)")
    p.add_argument("--terminals", type=int, default=50)
    p.add_argument("--cards", type=int, default=500)
    args = p.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="clearpos-pgbatch-"))
    text, terms_spec, pans = world(args.terminals, args.cards, 1)
    (tmp / "world.toml").write_text(text, "utf-8")
    prepare_pg(args.db)
    db = open_database(args.db)
    assert isinstance(db, PgDatabase)
    engine, hsm, tokens = build_engine(KeyEncryptionKey.load())
    seed(db, load_world(tmp / "world.toml"), hsm, tokens, reset=False)
    writer = db.writer(threads=1, batch_max=max(sizes))
    raw, tx = writer.backend.open()
    backend_pid = int(raw.execute("SELECT pg_backend_pid() AS p").fetchone()["p"])  # type: ignore[index]
    raw.commit()
    sent = [0]
    send, flush = PgConn._send, PgConn.flush

    def counting(self: PgConn, run: Any, sql: str, params: Any = (), **kw: Any) -> Any:
        sent[0] += 1  # every statement goes through _send, or is a deferred write:
        return send(self, run, sql, params, **kw)

    def counting_flush(self: PgConn) -> None:
        sent[0] += 1 if self._pending else 0  # deferred writes, sent as one statement
        flush(self)

    PgConn._send = counting  # type: ignore[method-assign]
    PgConn.flush = counting_flush  # type: ignore[method-assign]
    commit = raw.commit

    def counted_commit() -> None:
        sent[0] += 2  # BEGIN (sent by psycopg before the first statement) and COMMIT
        commit()

    raw.commit = counted_commit  # type: ignore[method-assign]

    def unit(frame: bytes) -> Callable[[Tx], Outcome]:
        return lambda tx: engine.handle(tx, decode_frame(frame), time.perf_counter())

    def run(frames: list[bytes], size: int) -> list[bytes]:
        replies: list[bytes] = []
        for i in range(0, len(frames), size):
            jobs: list[Any] = [(unit(f), None) for f in frames[i : i + size]]
            for _, out, ok in writer._batch(raw, tx, jobs):
                assert ok and out.reply is not None, out
                replies.append(out.reply)
        return replies

    terms = [Terminal(tid, mid, tmk) for tid, mid, tmk in terms_spec]
    for t in terms:
        body = build(SignOn(tid=t.tid, mid=t.mid, stan=t.next_stan(), batch=t.batch))
        (reply,) = run([encode_frame(TPDU(), Header(), body)], 1)
        msg, _, _ = parse(decode_frame(reply).body)
        t.keys.accept_field62(getattr(msg, "keys", b""))
        t.batch = getattr(msg, "batch", t.batch)

    offset = [0]

    def frames(n: int) -> list[bytes]:
        per = -(-n // len(terms))
        made = [t.purchases(per, pans, offset[0] + k * per) for k, t in enumerate(terms)]
        offset[0] += n
        return [made[k][i][0] for i in range(per) for k in range(len(terms))][:n]

    print(
        f"# bench/pg_batch.py — {platform.node()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; {args.purchases:,} "
        "purchases per pass"
    )
    print("| units per transaction | PostgreSQL backend µs | other PostgreSQL µs | this process µs "
          "| round trips | wall µs | commits |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for _ in range(args.repeat):
        for size in sizes:
            batch = frames(args.purchases)
            c_before = writer.commits
            b0, o0, s0, n0 = (
                cpu_of(backend_pid),
                postgres_cpu(backend_pid),
                time.process_time(),
                sent[0],
            )
            w0 = time.perf_counter()
            replies = run(batch, size)
            wall = time.perf_counter() - w0
            b1, o1, s1, n1 = (
                cpu_of(backend_pid),
                postgres_cpu(backend_pid),
                time.process_time(),
                sent[0],
            )
            codes = [decode(decode_frame(r).body).fields.get(39) for r in replies]
            assert codes.count("00") == len(batch), "every purchase must be approved"
            n = len(batch)
            print(
                f"| {size} | {(b1 - b0) / n * 1e6:.0f} | {(o1 - o0) / n * 1e6:.0f} | "
                f"{(s1 - s0) / n * 1e6:.0f} | {(n1 - n0) / n:.2f} | {wall / n * 1e6:.0f} | "
                f"{writer.commits - c_before} |",
                flush=True,
            )
    raw.close()
    found = run_audit(args.db)
    print(f"audit: {'OK' if not found else found[:3]}")
    return 0 if not found else 1


if __name__ == "__main__":
    raise SystemExit(main())
