"""Fuzz the framer and decoder: random and mutated bytes may only raise WireError.

Run: .venv/bin/python bench/fuzz_wire.py [CASES] [SEED]   (default 100000 cases)
Prints cases run, how many decoded, how many were refused with WireError, and
any other exception (a finding) with the seed that reproduces it.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from spec_examples import ALL

from clearpos.wire import Framer, WireError, build, decode_frame, parse

SEEDS = [bytes.fromhex(h) for h in ALL.values()]


def mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.randrange(6)
        if op == 0 and b:  # bit flip
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:  # random byte
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 2 and b:  # truncate
            del b[rnd.randrange(len(b)) :]
        elif op == 3:  # insert
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif op == 4 and len(b) > 4:  # swap two slices
            i, j = sorted(rnd.sample(range(len(b)), 2))
            b[i], b[j] = b[j], b[i]
        else:  # length lie
            if len(b) >= 2:
                b[0:2] = rnd.randrange(65536).to_bytes(2, "big")
    return bytes(b)


def run(cases: int, seed: int) -> int:
    rnd = random.Random(seed)
    ok = refused = 0
    findings: list[str] = []
    t0 = time.perf_counter()
    for n in range(cases):
        if n % 4 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 200)))
        elif n % 4 == 1:
            data = mutate(rnd, rnd.choice(SEEDS))  # length prefix may lie
        else:
            # mutate the message only and frame it honestly, so the decoder is exercised
            seed_frame = rnd.choice(SEEDS)
            body = mutate(rnd, seed_frame[13:])
            data = (len(body) + 11).to_bytes(2, "big") + seed_frame[2:13] + body
        try:
            framer = Framer()
            frames = []
            step = rnd.randint(1, 40)
            for i in range(0, len(data), step):
                frames += framer.feed_tolerant(data[i : i + step])
            for f in frames:
                if isinstance(f, WireError):
                    refused += 1
                    continue
                msg, _, _ = parse(f.body)
                build(msg)
                ok += 1
            body = data[13:]
            if body:
                parse(body)
        except WireError:
            refused += 1
        except Exception as exc:  # a finding
            findings.append(f"case {n} (seed {seed}): {type(exc).__name__}: {exc}")
    dt = time.perf_counter() - t0
    print(
        f"fuzz_wire: {cases} cases in {dt:.1f} s, {ok} frames decoded and re-encoded, {refused} refused with WireError, {len(findings)} findings"
    )
    for f in findings[:20]:
        print("  FINDING", f)
    _ = decode_frame
    return 1 if findings else 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("cases", nargs="?", type=int, default=100_000, help="default 100000")
    parser.add_argument("seed", nargs="?", type=int, default=8583, help="default 8583")
    args = parser.parse_args()
    sys.exit(run(args.cases, args.seed))
