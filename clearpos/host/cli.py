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
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..clock import Clock, log_to_stderr
from ..keys import KekError, KeyEncryptionKey, SecurityModule
from ..keys.tokens import PanTokenizer
from ..reasons import catalog
from ..store import DEFAULT_URL, Database, StoreError, open_database, sqlite_path
from ..store.lock import StoreLock, lock_store
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
    p.add_argument(
        "--reset",
        action="store_true",
        help="wipe the store before loading --world (asks first; off a terminal needs --yes)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask before --reset wipes a store")
    p.add_argument(
        "--dialect",
        type=Path,
        metavar="FILE",
        help="TOML declaring an acquirer's private fields ([[dialect.fields]] number, format, "
        "length_type, length, meaning, card_data); kept in the store for every worker",
    )
    p.add_argument(
        "--metrics",
        type=hostport,
        help="serve Prometheus counters and latency histograms on HOST:PORT /metrics",
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
    #: the worker's number K: its metrics carry worker="K" (and it serves them on PORT+K)
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def build_engine(kek: KeyEncryptionKey) -> tuple[Engine, SecurityModule, PanTokenizer]:
    hsm = SecurityModule(kek)
    tokens = PanTokenizer(kek)
    return Engine(hsm, tokens, catalog(), Clock()), hsm, tokens


def run(args: argparse.Namespace, sidecars: Sequence[Sidecar] = ()) -> int:
    """Load the store, then serve until SIGTERM/SIGINT, with ``sidecars`` beside the host."""
    log_to_stderr(args.log_level)
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
    held = _Held()
    try:
        return _start(args, held, sidecars)
    finally:
        held.release()


class _Held:
    """What a running host holds until it exits: the store's lock and the bound port."""

    def __init__(self) -> None:
        self.lock: StoreLock | None = None
        self.sock: socket.socket | None = None

    def release(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.lock is not None:
            self.lock.release()


def _start(args: argparse.Namespace, held: _Held, sidecars: Sequence[Sidecar]) -> int:
    try:
        # Nothing is touched before the store is ours and the port is bound: a second host
        # pointed at a served store, or at a taken port, leaves the store as it found it.
        path = sqlite_path(args.db)
        if path is not None:
            held.lock = lock_store(path)
        if args.workers == 1:
            held.sock = _bind(*args.listen, reuse_port=args.reuse_port)
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
                empty = tx.is_empty()
                same = not empty and tx.meta("world.source") == world.source
            if same and not args.reset:
                log.info(
                    "store %s already loaded from %s; keeping it (use --reset to start over)",
                    db.url,
                    world.source,
                )
            else:
                if args.reset and not empty and not _confirm_reset(args, db.url):
                    return _refuse_reset(args, db.url)
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
    except _PortTaken as exc:
        print(f"clearpos host: {exc}; the store was not touched", file=sys.stderr)
        return 1
    except (SeedRefused, StoreError, KekError, OSError) as exc:
        print(f"clearpos host: {exc}", file=sys.stderr)
        return 1
    return _run_host(args, db, engine, held.sock, sidecars)


class _PortTaken(OSError):
    """The listen address cannot be bound."""


def _bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """The listening socket, bound before the store is opened."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise _PortTaken(f"cannot listen on {host}:{port}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise _PortTaken(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


#: the listen backlog asyncio.start_server uses by default
_BACKLOG = 100


def _confirm_reset(args: argparse.Namespace, url: str) -> bool:
    """--yes, or a "yes" typed on the terminal; never a guess off a terminal."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    print(
        f"--reset wipes every merchant, terminal, card, transaction and ticket in {url}.",
        file=sys.stderr,
    )
    print("Type yes to wipe it: ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def _refuse_reset(args: argparse.Namespace, url: str) -> int:
    if args.yes or sys.stdin.isatty():
        print(f"clearpos host: not confirmed; {url} was left as it was", file=sys.stderr)
        return 1
    print(
        f"clearpos host: --reset would wipe {url}, which holds data, and there is no terminal "
        "to ask on: add --yes to wipe it; nothing was changed",
        file=sys.stderr,
    )
    return 2


def _run_host(
    args: argparse.Namespace,
    db: Database,
    engine: Engine,
    listening: socket.socket | None,
    sidecars: Sequence[Sidecar],
) -> int:
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
        asyncio.run(_serve(args, db, engine, limits, sidecars, listening))
    except _PortTaken as exc:
        print(f"clearpos host: {exc}", file=sys.stderr)
        return 1
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
    listening: socket.socket | None,
) -> None:
    # the stop signals are ours before anyone is told we listen: a SIGTERM sent on
    # "listening on" stops the host cleanly instead of killing it mid-start
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    extra: list[_Closable] = []
    if args.metrics:
        from .metrics import HostMetrics, start_metrics

        metrics = HostMetrics(args.worker_index)
        writer = db.writer(on_commit=metrics.committed)
        server = HostServer(engine, writer, limits, on_answer=metrics.answered)
        metrics.watch(server, writer)
        # before "listening on": a host that cannot serve its page does not start
        try:
            extra.append(start_metrics(metrics, *args.metrics))
        except OSError as exc:
            mhost, mport = args.metrics
            raise _PortTaken(
                f"cannot serve --metrics on {mhost}:{mport}: {exc.strerror or exc}"
            ) from None
    else:
        writer = db.writer()
        server = HostServer(engine, writer, limits)
    await writer.start()
    host, port = await server.start(*args.listen, reuse_port=args.reuse_port, sock=listening)
    print(f"clearpos host listening on {host}:{port} store {db.url}", flush=True)
    for start in sidecars:
        service = await start(db)
        if service is not None:
            extra.append(service)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    serving.cancel()
    for s in extra:
        s.close()
    await server.close()
    await writer.close()
    log.info("host stopped")
