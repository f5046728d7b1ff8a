"""Wire benchmark: µs per operation on the §10 purchase, ours vs raw pyiso8583.

Run: .venv/bin/python bench/wire.py   (prints a table; copy it to docs/performance.md)

Target (issue 2): our full decode + MAC verify + encode + MAC generate of a
0200/0210 pair costs less than 2x raw pyiso8583 decode + encode alone.
"""

from __future__ import annotations

import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import iso8583
from _pyiso import pyiso_spec

from clearpos.keys import MacEngine, PinEngine
from clearpos.wire import build, decode, decode_frame, encode, parse

PURCHASE = bytes.fromhex(
    "007560000300006031000001000200302404C020C09811000000000000001234000017281202100006376222021234"
    "567890123D2812201000000000003130303030303031383938333130303438313631323334313536"
    "3D8CF07ABF66B432260000000000000000112200000100004232343343373530"
)
APPROVED = bytes.fromhex(
    "007B60000300006031000001000210303E00810EC08013000000000000001234000017083120112328121123000848"
    "0200003030303030303030303030324131423243333030313030303030303138393833313030343831363132333431"
    "353600112200000100000011435550617070726F7665643644443734453430"
)
MAK = bytes.fromhex("1A2B3C4D5E6F7081")
PIK = bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718")


def best_us(fn: object, number: int = 20000, repeat: int = 7) -> float:
    t = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(t.repeat(repeat=repeat, number=number)) / number * 1e6


def measure() -> dict[str, float]:
    body = decode_frame(PURCHASE).body
    resp = decode_frame(APPROVED).body
    spec = pyiso_spec()
    mac = MacEngine(MAK)
    pin = PinEngine(PIK)
    d = decode(body)
    rd = decode(resp)
    resp_msg, _, _ = parse(resp)
    theirs_req, _ = iso8583.decode(body, spec)
    theirs_resp, _ = iso8583.decode(resp, spec)

    def ours_pair() -> None:
        # what the host does per purchase on the wire: decode + verify, encode + sign
        _msg, block, m = parse(body)
        assert block is not None and m is not None
        mac.verify(block, m)
        build(resp_msg, mac=mac.mac)

    def theirs_pair() -> None:
        iso8583.decode(body, spec)
        iso8583.encode(dict(theirs_resp), spec)

    r = {
        "ours decode 0200 (fields)": best_us(lambda: decode(body)),
        "ours encode 0210 (fields)": best_us(lambda: encode(rd.mti, rd.fields)),
        "ours parse 0200 (typed message)": best_us(lambda: parse(body)),
        "ours build 0210 (typed message)": best_us(lambda: build(resp_msg)),
        "pyiso8583 decode 0200": best_us(lambda: iso8583.decode(body, spec)),
        "pyiso8583 encode 0210": best_us(lambda: iso8583.encode(dict(theirs_resp), spec)),
        "MAC generate (UnionPay ECB, cached key)": best_us(lambda: mac.mac(body[:-8])),
        "PIN block encrypt (format 0, cached key)": best_us(
            lambda: pin.encrypt("123456", "6222021234567890123")
        ),
        "ours full pair: parse+MAC verify+build+MAC": best_us(ours_pair, number=10000),
        "pyiso8583 pair: decode+encode (no MAC)": best_us(theirs_pair, number=10000),
    }
    _ = (d, theirs_req)
    return r


def main() -> None:
    import argparse

    argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        epilog="Prints a Markdown table of µs per operation; takes no options.",
    ).parse_args()
    r = measure()
    print(
        f"# bench/wire.py — {platform.node()} {platform.machine()} Python {platform.python_version()}"
    )
    print("| operation | µs |")
    print("|---|---|")
    for k, v in r.items():
        print(f"| {k} | {v:.1f} |")
    ratio = (
        r["ours full pair: parse+MAC verify+build+MAC"]
        / r["pyiso8583 pair: decode+encode (no MAC)"]
    )
    print(f"\nfull pair / pyiso8583 pair = {ratio:.2f}x (target < 2x)")


if __name__ == "__main__":
    main()
