"""Host-level fuzzer: mutated frames over TCP while a well-behaved terminal trades.

Run: .venv/bin/python bench/fuzz_host.py [--frames 100000] [--seed 8583]

Three kinds of traffic against one real host process (SQLite store):

- **good**: terminal 10000001 signs on and keeps buying; every answer must be a
  well-formed, MAC-verified approval — the host must keep serving it;
- **mangled**: valid frames with bit flips, random bytes, truncations, length
  lies and inserted bytes, sent on connections that the host may close;
- **hostile but authentic**: terminal 10000007, properly signed on, sends
  random transactions with a valid MAC — random kinds, amounts, STAN reuse,
  wrong batches, bogus originals, reversals of anything — so every decision
  path runs, with money moving.

At the end the host must still be alive, the good terminal must have had every
answer, and ``clearpos audit`` must find nothing. Prints cases run and findings.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fuzz_wire import mutate  # noqa: E402
from host_fixture import HostProc, start_host  # noqa: E402
from hostclient import Client  # noqa: E402

from clearpos.audit import run_audit  # noqa: E402
from clearpos.wire import Kind, OriginalRef, Reversal, Settlement, Settlement48, Totals  # noqa: E402

CARDS = [
    ("6222021234567890123", "2812"),
    ("6225880000001116", "2812"),
    ("6225880000001124", "2812"),
    ("6225880000001017", "2812"),
    ("6225880000001025", "2812"),
    ("4000000000002016", "2812"),
    ("6225880000001066", "2401"),
]

GOOD_CARDS = [
    ("6214830000000001138", "3006"),
    ("5100000000003010", "2812"),
    ("6225880000001090", "2812"),
]


def hostile_message(rnd: random.Random, c: Client, sent: list) -> object:  # type: ignore[type-arg]
    kind = rnd.choice(list(Kind))
    pan, exp = rnd.choice(CARDS)
    card = c.card(pan, exp, pin=rnd.choice(["123456", "000000", None]), keyed=rnd.random() < 0.3)
    amount = (
        None
        if kind is Kind.BALANCE
        else rnd.choice([1, 99, 1234, 50000, 10**9, rnd.randint(1, 100000)])
    )
    kw: dict[str, object] = {}
    if sent and rnd.random() < 0.5:
        o = rnd.choice(sent)
        kw["original"] = OriginalRef(o.batch, o.stan, "1123")
        kw["rrn"] = rnd.choice([None, f"{rnd.randint(1, 5000):012d}"])
        if rnd.random() < 0.5 and o.amount_fen is not None and kind is not Kind.BALANCE:
            amount = o.amount_fen
    if rnd.random() < 0.05:
        kw["batch"] = f"{rnd.randint(1, 999999):06d}"
    if sent and rnd.random() < 0.1:
        kw["stan"] = rnd.choice(sent).stan  # duplicate
    req = c.request(kind, amount, card, **kw)
    r = rnd.random()
    if r < 0.15 and sent:
        o = rnd.choice(sent)
        if o.kind.reversible:
            return Reversal.of(o, rnd.choice(["98", "96", "A0", "06"]))
    if r < 0.17:
        return Settlement(
            tid=c.tid,
            mid=c.mid,
            stan=c.next_stan(),
            batch=c.batch,
            totals=Settlement48(Totals(rnd.randint(0, 10**6), rnd.randint(0, 50))),
        )
    sent.append(req)
    return req


def run(frames: int, seed: int, tmp: Path) -> int:
    rnd = random.Random(seed)
    world = (
        (ROOT / "examples" / "world.toml")
        .read_text("utf-8")
        .replace(
            "card_velocity = { count = 5, window_s = 60, lock_s = 1800 }",
            "card_velocity = { count = 50, window_s = 1, lock_s = 1 }",
        )
    )
    h: HostProc = start_host(
        tmp, world_text=world, extra=("--quiet-transactions", "--frame-timeout", "0.3")
    )
    findings: list[str] = []
    counts = {"good": 0, "mangled": 0, "hostile": 0, "answers": 0, "closed": 0}
    t0 = time.perf_counter()
    try:
        good = Client(h.host, h.port, timeout=10).connect()
        assert good.sign_on().code == "00"
        hostile = Client(
            h.host,
            h.port,
            tid="10000007",
            tmk=bytes.fromhex("5A5A5A5AA5A5A5A53C3C3C3CC3C3C3C3"),
            timeout=10,
        ).connect()
        assert hostile.sign_on().code == "00"
        templates = [
            good.frame(good.request(Kind.PURCHASE, 100)),
            good.frame(good.request(Kind.BALANCE, None)),
        ]
        templates.append(
            hostile.frame(
                hostile.request(Kind.VOID, 100, original=OriginalRef("000001", "000001", "1123"))
            )
        )
        sent: list = []  # type: ignore[type-arg]
        mangler: socket.socket | None = None
        for n in range(frames):
            lane = n % 10
            if lane == 0:  # the good terminal, with cards the hostile lane never touches
                pan, exp = GOOD_CARDS[n % len(GOOD_CARDS)]
                r = good.purchase(1, card=good.card(pan, exp, pin=None))
                counts["good"] += 1
                if r.code != "00" or r.mac_ok is not True:
                    findings.append(f"good terminal not served at frame {n}: {r.code} {r.reason}")
            elif lane < 4:  # authentic but hostile
                msg = hostile_message(rnd, hostile, sent)
                try:
                    rep = hostile.send(msg)  # type: ignore[arg-type]
                    counts["hostile"] += 1
                    if rep.processing == 3:
                        hostile.sign_on()
                except (ConnectionError, OSError) as exc:
                    findings.append(f"hostile-but-valid connection dropped at frame {n}: {exc}")
                    hostile = Client(h.host, h.port, tid="10000007", tmk=hostile.tmk).connect()
                    hostile.sign_on()
            else:  # mangled bytes
                data = mutate(rnd, rnd.choice(templates))
                try:
                    if mangler is None:
                        mangler = socket.create_connection((h.host, h.port), timeout=1)
                    mangler.sendall(data)
                    counts["mangled"] += 1
                    mangler.settimeout(0.02)
                    try:
                        got = mangler.recv(4096)
                        if got == b"":
                            counts["closed"] += 1
                            mangler.close()
                            mangler = None
                        else:
                            counts["answers"] += 1
                    except TimeoutError:
                        pass
                    if rnd.random() < 0.05 and mangler is not None:
                        mangler.close()
                        mangler = None
                except OSError:
                    counts["closed"] += 1
                    if mangler is not None:
                        mangler.close()
                    mangler = None
            if h.proc.poll() is not None:
                findings.append(f"host process died at frame {n} (exit {h.proc.returncode})")
                break
    finally:
        alive = h.proc.poll() is None
        h.stop()
    if not alive:
        findings.append("host was not alive at the end")
    found = run_audit(h.url)
    findings += [f"audit: {d.check}: {d.detail}" for d in found]
    dt = time.perf_counter() - t0
    print(
        f"fuzz_host: {frames} frames in {dt:.0f} s — good {counts['good']}, hostile-authentic {counts['hostile']}, "
        f"mangled {counts['mangled']} ({counts['answers']} answered, {counts['closed']} connections closed by the host); "
        f"{len(findings)} findings"
    )
    for f in findings[:20]:
        print("  FINDING", f)
    return 1 if findings else 0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=8583)
    args = p.parse_args()
    import tempfile

    sys.exit(run(args.frames, args.seed, Path(tempfile.mkdtemp(prefix="clearpos-fuzz-"))))


if __name__ == "__main__":
    main()
