"""``clearpos host``: run the acquiring host.

The options and the serving loop of the host alone; :mod:`clearpos.app` adds the
services that run beside it (``--console``) and is what ``clearpos host`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..clock import Clock
from ..keys import KekError, KeyEncryptionKey, SecurityModule
from ..keys.tokens import PanTokenizer
from ..reasons import catalog
from ..store import DEFAULT_URL, Database, StoreError, open_database
from ..store.pg import DEFAULT_WRITERS
from ..wire.codec import extend
from ..wire.dialect import DialectError, declaration, load_dialect_file, private_fields
from ..world import WorldError, load_world
from .engine import Engine
from .kekcheck import check_store_kek
from .seed import SeedRefused, seed
from .server import HostServer, Limits
from .services import Sidecar

log = logging.getLogger("clearpos.host")


def hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:5800), got {text!r}")
    return host or "127.0.0.1", int(port)


_DEFAULTS = Limits()


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", type=Path, help="world file (TOML) to load into an empty store")
    p.add_argument(
        "--db",
        default=DEFAULT_URL,
        help=f"store URL (default {DEFAULT_URL}); or postgresql://USER@HOST[:PORT]/DB[?writers=N]"
        f" (N writer connections per process, default {DEFAULT_WRITERS})",
    )
    p.add_argument(
        "--listen",
        type=hostport,
        default=("127.0.0.1", 5800),
        help="HOST:PORT (default 127.0.0.1:5800; port 0 = any)",
    )
    p.add_argument("--reset", action="store_true", help="wipe the store before loading --world")
    p.add_argument(
        "--dialect",
        type=Path,
        metavar="FILE",
        help="TOML declaring an acquirer's private fields ([[dialect.fields]] number, format, "
        "length_type, length, meaning, card_data); kept in the store for every worker",
    )
    p.add_argument(
        "--metrics", type=hostport, help="serve Prometheus counters on HOST:PORT /metrics"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=_DEFAULTS.max_connections,
        help="open lines in all; at the cap a new line replaces the one idle longest "
        f"(default {_DEFAULTS.max_connections})",
    )
    p.add_argument(
        "--max-per-source",
        type=int,
        default=_DEFAULTS.max_per_source,
        help="open lines per source address, 0 = no cap; behind a TLS gateway or APN NAT "
        f"raise it to the terminal count (default {_DEFAULTS.max_per_source})",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=_DEFAULTS.idle_timeout_s,
        help=f"seconds a line may wait between frames (default {_DEFAULTS.idle_timeout_s:g}: "
        "longer than a kept line's echo-test interval)",
    )
    p.add_argument(
        "--first-frame-timeout",
        type=float,
        default=_DEFAULTS.first_frame_s,
        help="seconds from connecting to the first whole frame "
        f"(default {_DEFAULTS.first_frame_s:g})",
    )
    p.add_argument(
        "--frame-timeout",
        type=float,
        default=_DEFAULTS.frame_timeout_s,
        help="seconds to complete a frame from its first byte, however slowly it trickles in "
        f"(default {_DEFAULTS.frame_timeout_s:g})",
    )
    p.add_argument("--max-frame", type=int, default=_DEFAULTS.max_frame, help="bytes")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--quiet-transactions", action="store_true", help="no per-transaction log lines")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="host processes sharing the port (SO_REUSEPORT) and the store; PostgreSQL only "
        "(default 1). With --metrics HOST:PORT, worker K serves metrics on PORT+K",
    )
    # set by the supervisor for its workers
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--supervised-by", type=int, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def build_engine(kek: KeyEncryptionKey) -> tuple[Engine, SecurityModule, PanTokenizer]:
    hsm = SecurityModule(kek)
    tokens = PanTokenizer(kek)
    return Engine(hsm, tokens, catalog(), Clock()), hsm, tokens


def run(args: argparse.Namespace, sidecars: Sequence[Sidecar] = ()) -> int:
    """Load the store, then serve until SIGTERM/SIGINT, with ``sidecars`` beside the host."""
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.quiet_transactions:
        logging.getLogger("clearpos.host.txn").setLevel(logging.WARNING)
    if args.supervised_by is not None:
        from .supervisor import die_with_parent

        die_with_parent(args.supervised_by)
    if args.workers < 1:
        print("clearpos host: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not args.db.startswith(("postgresql://", "postgres://")):
        print(
            f"clearpos host: --workers {args.workers} needs a PostgreSQL store: SQLite has one "
            "writer, so a second host process cannot share it. Use --db postgresql://... "
            "or run one worker.",
            file=sys.stderr,
        )
        return 1
    try:
        kek = KeyEncryptionKey.load()
        if args.supervised_by is None:  # every machine must show the same (docs/scaling.md)
            log.info("KEK fingerprint %s", kek.fingerprint())
        db = open_database(args.db)
        engine, hsm, tokens = build_engine(kek)
        if not args.reset and args.supervised_by is None:
            check_store_kek(db, kek)  # before anything else is said about the store
        if args.world is not None:
            world = load_world(args.world)
            with db.reader() as tx:
                same = not tx.is_empty() and tx.meta("world.source") == world.source
            if same and not args.reset:
                log.info(
                    "store %s already loaded from %s; keeping it (use --reset to start over)",
                    db.url,
                    world.source,
                )
            else:
                counts = seed(db, world, hsm, tokens, reset=args.reset)
                log.info("loaded %s into %s: %s", world.source, db.url, counts)
        else:
            with db.reader() as tx:
                if tx.is_empty():
                    print(
                        f"clearpos host: store {db.url} is empty: give --world FILE to load one",
                        file=sys.stderr,
                    )
                    return 1
        load_private_fields(db, args.dialect)
        if args.supervised_by is None:  # the supervisor checked before starting workers
            check_store_kek(db, kek)  # a store loaded just now gets its canary
    except WorldError as exc:
        print(f"clearpos host: world file refused, nothing was loaded:\n{exc}", file=sys.stderr)
        return 1
    except DialectError as exc:
        print(f"clearpos host: dialect refused:\n{exc}", file=sys.stderr)
        return 1
    except (SeedRefused, StoreError, KekError, OSError) as exc:
        print(f"clearpos host: {exc}", file=sys.stderr)
        return 1
    if args.workers > 1:
        from .supervisor import supervise

        return supervise(args, db.url)
    limits = Limits(
        args.max_connections,
        args.max_frame,
        args.idle_timeout,
        args.frame_timeout,
        args.max_per_source,
        args.first_frame_timeout,
    )
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(_serve(args, db, engine, limits, sidecars))
    except OSError as exc:
        print(
            f"clearpos host: cannot listen on {args.listen[0]}:{args.listen[1]}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


def load_private_fields(db: Database, path: Path | None) -> None:
    """An acquirer's private fields (43, 46, 56, 57 …): from ``--dialect FILE``
    (kept in the store, so every worker and a restart read the same), else as the
    world file declared them ([dialect]); the codec of this process then reads,
    keeps and masks them."""
    if path is not None:
        specs = load_dialect_file(str(path))
        with db.transaction() as tx:
            tx.set_meta("dialect.fields", json.dumps([declaration(f) for f in specs]))
    else:
        with db.reader() as tx:
            raw = tx.meta("dialect.fields")
        specs = private_fields(json.loads(raw), f"{db.url} (meta dialect.fields)") if raw else ()
    if specs:
        extend(specs)
        log.info("private fields: %s", ", ".join(f"{f.number} {f.label}" for f in specs))


class _Closable(Protocol):
    def close(self) -> None: ...


async def _serve(
    args: argparse.Namespace,
    db: Database,
    engine: Engine,
    limits: Limits,
    sidecars: Sequence[Sidecar],
) -> None:
    writer = db.writer()
    await writer.start()
    server = HostServer(engine, writer, limits)
    host, port = await server.start(*args.listen, reuse_port=args.reuse_port)
    print(f"clearpos host listening on {host}:{port} store {db.url}", flush=True)
    extra: list[_Closable] = []
    if args.metrics:
        from .metrics import start_metrics

        extra.append(await start_metrics(server, writer, *args.metrics))
    for start in sidecars:
        service = await start(db)
        if service is not None:
            extra.append(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    serving.cancel()
    for s in extra:
        s.close()
    await server.close()
    await writer.close()
    log.info("host stopped")
