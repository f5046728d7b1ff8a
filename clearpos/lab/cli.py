"""``clearpos lab`` -- the fault lab and the leak scan.

``clearpos lab run``: a seeded campaign of network faults, host and terminal
crashes (:mod:`clearpos.lab.campaign`); prints the report and exits 1 on any
discrepancy. ``clearpos lab scan PATH...``: look for the test data's secrets
in files (:mod:`clearpos.lab.leakscan`); exits 1 on any hit.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .faultproxy import Action

__all__ = ["register"]

_RATE_NAMES = {a.value: a for a in Action if a is not Action.PASS}


def _rate(text: str) -> tuple[Action, float]:
    name, sep, value = text.partition("=")
    action = _RATE_NAMES.get(name.strip())
    if not sep or action is None:
        raise argparse.ArgumentTypeError(
            f"--rate must be ACTION=P with ACTION one of {', '.join(sorted(_RATE_NAMES))}"
        )
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate {name}: {value!r} is not a number") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"--rate {name}: {p} is not between 0 and 1")
    return action, p


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def register(p: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``scan`` to ``p``."""
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION")
    sub.required = True
    r = sub.add_parser(
        "run",
        help="a seeded fault campaign; exit 1 on any discrepancy",
        description="N terminals trade through a fault proxy while the host and terminals are "
        "SIGKILLed; at the end every terminal settles and journals, money and the audit are "
        "compared. Same seed, same fault schedule.",
    )
    _traffic_options(r)
    _crash_options(r)
    r.add_argument("--no-leak-scan", action="store_true", help="skip the leak scan of --out")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    r.set_defaults(run=_run)
    s = sub.add_parser(
        "scan",
        help="look for the test data's PANs, track 2, PIN blocks, PINs and keys in files",
        description="Exit 1 when any secret is found; each hit names file, offset and the "
        "secret, masked.",
    )
    from .leakscan import register as register_scan

    register_scan(s)


def _traffic_options(r: argparse.ArgumentParser) -> None:
    """The world, the terminals and the network: what is traded and how it is disturbed."""
    r.add_argument("--seed", type=int, default=1, help="the campaign's seed (default 1)")
    r.add_argument("--terminals", type=_positive, default=4, help="virtual terminals (default 4)")
    r.add_argument(
        "--transactions",
        type=_positive,
        default=1000,
        help="financial operations to run, settlements not counted (default 1000)",
    )
    r.add_argument("--cards", type=int, default=24, help="generated cards (default 24)")
    r.add_argument("--out", type=Path, default=Path("lab-run"), help="output directory")
    r.add_argument(
        "--port", type=int, default=0, help="the host's fixed port (default: a free one)"
    )
    r.add_argument(
        "--timeout", type=float, default=0.3, help="terminal answer timeout, s (default 0.3)"
    )
    r.add_argument("--delay", type=float, default=0.45, help="how long a delayed answer is held, s")
    r.add_argument(
        "--rate",
        type=_rate,
        action="append",
        default=[],
        metavar="ACTION=P",
        help="per-frame probability of a network fault, e.g. drop_response=0.02 (repeatable; "
        "unnamed actions keep their defaults)",
    )
    r.add_argument(
        "--no-faults", action="store_true", help="no network faults (crashes still happen)"
    )


def _crash_options(r: argparse.ArgumentParser) -> None:
    """Crashes (host and terminal SIGKILLs), chip sales, and where the host's store is."""
    r.add_argument(
        "--host-kill-rate",
        type=float,
        default=0.002,
        help="per request frame: SIGKILL the host with the request in flight (default 0.002)",
    )
    r.add_argument(
        "--host-kill-between",
        type=float,
        default=0.001,
        help="per operation: SIGKILL the host between operations (default 0.001)",
    )
    r.add_argument(
        "--host-down-share",
        type=float,
        default=0.3,
        help="share of host kills after which the host stays down (the proxy refusing "
        "connections, so terminals go offline) for 1-6 operations (default 0.3)",
    )
    r.add_argument(
        "--cli-rate",
        type=float,
        default=0.01,
        help="share of operations run as a `clearpos pos` subprocess (default 0.01)",
    )
    r.add_argument(
        "--cli-kill-share",
        type=float,
        default=0.6,
        help="share of those SIGKILLed midway (default 0.6)",
    )
    r.add_argument(
        "--chip-share",
        type=float,
        default=0.3,
        help="share of operations that are chip sales, contact (--chip) or QuickPass (--tap), "
        "on the chip terminals (default 0.3; at most 0.8 of a chip terminal's operations)",
    )
    r.add_argument(
        "--db",
        help="the host's store: postgresql://USER@HOST/DB (wiped at the start; default: a "
        "SQLite file in --out)",
    )
    r.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="host processes sharing the port (PostgreSQL only; a host SIGKILL takes the "
        "supervisor and all its workers down)",
    )


def _run(args: argparse.Namespace) -> int:
    from .campaign import DEFAULT_RATES

    rates = {} if args.no_faults else dict(DEFAULT_RATES)
    rates.update(dict(args.rate))
    if sum(rates.values()) > 1:
        print("clearpos lab run: the --rate values add up to more than 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not (args.db or "").startswith(("postgresql://", "postgres://")):
        print(
            "clearpos lab run: --workers needs --db postgresql://... (SQLite has one writer)",
            file=sys.stderr,
        )
        return 2
    from ..progress import shown, work

    bar = shown(quiet=args.json or args.quiet)
    say = None if args.quiet or bar else lambda text: print(text, file=sys.stderr, flush=True)
    with work("lab run", quiet=not bar) as w:
        w.step("transactions", args.transactions)
        return _campaign(args, rates, say, w.at if bar else None)


def _campaign(
    args: argparse.Namespace,
    rates: dict[Any, float],
    say: Callable[[str], None] | None,
    tick: Callable[[int, int | None], None] | None,
) -> int:
    import json

    from .campaign import LabConfig, run_campaign

    cfg = LabConfig(
        out=args.out.absolute(),
        seed=args.seed,
        terminals=args.terminals,
        transactions=args.transactions,
        extra_cards=args.cards,
        port=args.port,
        timeout=args.timeout,
        delay=args.delay,
        rates=rates,
        host_kill_rate=args.host_kill_rate,
        host_kill_between=args.host_kill_between,
        host_down_share=args.host_down_share,
        cli_rate=args.cli_rate,
        cli_kill_share=args.cli_kill_share,
        chip_share=args.chip_share,
        leak_scan=not args.no_leak_scan,
        db=args.db,
        workers=args.workers,
        progress=say,
        tick=tick,
    )

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds the campaign: its host process is stopped

    signal.signal(signal.SIGTERM, stop)
    report = run_campaign(cfg)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report.text())
    return 0 if report.ok else 1
