"""Mutation campaign over the real frames of shared/vectors/real-frames.md (issue 15).

Run: .venv/bin/python bench/fuzz_real_frames.py [--frames 100000] [--seed 59] [--db URL]

Every request among the real frames (sign-ons 003/004, QuickPass purchases with
field 59, 60.4-60.7, 55) and the frames of a stock (``dialect = "cup"``) terminal
of our own (TDK-encrypted tracks, 12-digit 61, status upload, script result) are
mutated — bit flips, random bytes, truncations, insertions, swaps — inside an
honest frame (length prefix, TPDU and header intact, so the stream stays
aligned) and sent to a running host, many per connection.

The rule checked, from spec §9: **the host never closes a connection, and never
stays silent, while the MTI and TID of a frame can be read** — it answers every
such frame (30 with the field named when it cannot parse it). A frame whose MTI
or TID cannot be read may be answered or may close the connection. At the end the
host must still be alive and ``clearpos audit`` must find nothing.

Prints frames sent, answered, closed-when-allowed, and findings (0 is the goal).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from host_fixture import SQLITE, Store, start_host, world_with  # noqa: E402
from hostclient import Client  # noqa: E402
from real_frames import REAL_FRAMES  # noqa: E402

from clearpos.audit import run_audit  # noqa: E402
from clearpos.wire import (  # noqa: E402
    TPDU,
    Card,
    Framer,
    Header,
    Kind,
    NetworkRequest,
    OriginalRef,
    ScriptResult,
    decode_frame,
    encode_frame,
    salvage,
)

STOCK_TID, STOCK_MID = "20000001", "898310048161234"
STOCK_TMK = bytes.fromhex("1A2B3C4D5E6F70811A2B3C4D5E6F7081")
REQUESTS = ("F1_easy8583_signon", "F3_codetd_purchase_ic", "R6_whty_0800_004_body",
            "R6c_whty_0200_qpboc_body")  # fmt: skip
# the real frames' terminals, registered so their requests reach the pipeline
REAL_TERMINALS = {
    "70782214": "808411341310014",
    "10000019": "850100082410002",
    "90361748": "923011753991695",
    "92336787": "847100053990002",
}
EXTRA = "".join(
    f'[[merchants]]\nmid = "{mid}"\nname = "real frame {tid}"\n'
    f'[[terminals]]\ntid = "{tid}"\nmid = "{mid}"\ntmk = "{"%032X" % (int(tid) * 7919)}"\n'
    for tid, mid in REAL_TERMINALS.items()
)


def seeds(host: str, port: int) -> list[bytes]:
    """The real request frames plus a stock terminal's own, signed on for real."""
    out = []
    for name in REQUESTS:
        raw = bytes.fromhex(REAL_FRAMES[name])
        out.append(encode_frame(TPDU(), Header(), raw) if name.endswith("_body") else raw)
    c = Client(host, port, tid=STOCK_TID, mid=STOCK_MID, tmk=STOCK_TMK).connect()
    assert c.sign_on(scheme="004").code == "00"
    card = dataclasses.replace(
        Card.swiped(
            "6225880000001116", "2812", pin_block=c.keys.pin_block("123456", "6225880000001116")
        ),
        tracks_encrypted=True,
    )
    sale = c.request(Kind.PURCHASE, 100, card)
    out.append(c.frame(sale))
    out.append(
        c.frame(c.request(Kind.VOID, 100, card, original=OriginalRef(sale.batch, sale.stan)))
    )
    out.append(
        c.frame(
            NetworkRequest(
                tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="362",
                data=b"011021031041051",
            )
        )
    )  # fmt: skip
    out.append(
        c.frame(
            ScriptResult(
                tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch,
                original=OriginalRef(sale.batch, sale.stan, "1202"), chip=bytes.fromhex("DF310100"),
            )
        )
    )  # fmt: skip
    c.close()
    return out


def readable(body: bytes) -> bool:
    """MTI (4 BCD digits) and TID (8 characters in field 41) can be read."""
    mti, fields = salvage(body)
    tid = fields.get(41)
    return bool(mti) and isinstance(tid, str) and len(tid) == 8


def run(frames: int, seed: int, store: Store, url: str | None) -> int:
    tmp = Path(__import__("tempfile").mkdtemp(prefix="fuzz-real-"))
    host = start_host(tmp, world_text=world_with(EXTRA), store=store, url=url)
    rnd = random.Random(seed)
    findings: list[str] = []
    answered = allowed_close = must_answer = 0
    t0 = time.perf_counter()
    try:
        pool = seeds(host.host, host.port)
        sock: socket.socket | None = None
        framer = Framer()
        for n in range(frames):
            if sock is None:
                sock = socket.create_connection((host.host, host.port), timeout=5)
                framer = Framer()
            seed_frame = rnd.choice(pool)
            body = mutate(rnd, decode_frame(seed_frame).body)
            data = (len(body) + 11).to_bytes(2, "big") + seed_frame[2:13] + body
            want = readable(body) and len(body) + 11 >= 21
            must_answer += want
            try:
                sock.sendall(data)
                got = None
                while got is None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    out = framer.feed(chunk)
                    got = out[0] if out else None
            except (TimeoutError, OSError) as exc:
                got = None
                if want:
                    findings.append(f"frame {n}: {type(exc).__name__} on a readable frame")
            if got is not None:
                answered += 1
                continue
            sock.close()
            sock = None
            if want:
                findings.append(
                    f"frame {n}: connection closed on a readable frame {body[:12].hex()}"
                )
            else:
                allowed_close += 1
            if n % 10000 == 0:
                print(f"  {n:,} frames, {len(findings)} findings", file=sys.stderr)
        if sock is not None:
            sock.close()
        alive = host.proc.poll() is None
        problems = run_audit(host.url)
    finally:
        host.stop()
    dt = time.perf_counter() - t0
    print(
        f"{frames:,} mutated frames in {dt:.1f} s ({frames / dt:,.0f}/s): "
        f"{must_answer:,} had a readable MTI and TID, {answered:,} answered, "
        f"{allowed_close:,} connections closed on unreadable frames; "
        f"host alive: {alive}; audit problems: {len(problems)}; findings: {len(findings)}"
    )
    for f in findings[:20]:
        print("  finding:", f)
    return 0 if not findings and alive and not problems else 1


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--frames", type=int, default=100_000, help="mutated frames to send (default 100000)"
    )
    p.add_argument("--seed", type=int, default=59, help="random seed (default 59)")
    p.add_argument("--db", help="postgresql://... to run against PostgreSQL (default: SQLite)")
    a = p.parse_args()
    store = SQLITE if not a.db else Store("postgresql", workers=1)
    return run(a.frames, a.seed, store, a.db)


if __name__ == "__main__":
    sys.exit(main())
