"""``clearpos console``: serve the web console on its own, over an existing store.

The host serves the same console with ``clearpos host --console HOST:PORT``;
this command is for running it apart from the host (another machine, another
process). Sign-in needs a user: ``clearpos admin user add``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ..store import DEFAULT_URL


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:5880), got {text!r}")
    return host or "127.0.0.1", int(port)


def register(p: argparse.ArgumentParser) -> None:
    """Add the ``console`` options to its subparser."""
    p.add_argument("--db", default=DEFAULT_URL, help=f"store URL (default {DEFAULT_URL})")
    p.add_argument(
        "--listen",
        type=_hostport,
        default=("127.0.0.1", 5880),
        help="HOST:PORT (default 127.0.0.1:5880; port 0 = any)",
    )
    p.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark cookies Secure (set this whenever the console is reached over https)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT / SIGTERM; 1 when the store, the KEK or the port is unusable."""
    from ..keys import KekError
    from ..ops.users import list_users
    from ..store import StoreError, open_database
    from .app import session_secret, start_console

    try:
        db = open_database(args.db, create=False)
        with db.reader() as tx:
            if tx.is_empty():
                print(
                    f"clearpos console: store {db.url} is empty: load a world with clearpos host --world FILE",
                    file=sys.stderr,
                )
                return 1
            if not list_users(tx):
                print(
                    f"clearpos console: no console user yet, so nobody can sign in; create the "
                    f"first one with: clearpos admin --db {db.url} user add --username NAME "
                    "--role admin --by NAME",
                    file=sys.stderr,
                )
        secret = session_secret()
    except (StoreError, KekError, OSError) as exc:
        print(f"clearpos console: {exc}", file=sys.stderr)
        return 1

    async def serve() -> None:
        server = await start_console(db, *args.listen, secret=secret, secure=args.secure_cookies)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()

    try:
        asyncio.run(serve())
    except OSError as exc:
        host, port = args.listen
        print(f"clearpos console: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0
