"""``clearpos console``: serve the web console on its own, over an existing store.

The host serves the same console with ``clearpos host --console HOST:PORT``;
this command is for running it apart from the host (another machine, another
process). Sign-in needs a user: ``clearpos admin user add``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from dataclasses import dataclass

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
    add_web_options(p)
    p.set_defaults(run=run)


def _proxy(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24), got {text!r}"
        ) from None


def add_web_options(p: argparse.ArgumentParser) -> None:
    """The options of the console's web front: ``clearpos console`` and
    ``clearpos host --console`` take the same ones (docs/security.md)."""
    p.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark cookies Secure (set this whenever the console is reached over https)",
    )
    p.add_argument(
        "--hsts",
        type=int,
        default=0,
        metavar="SECONDS",
        help="send Strict-Transport-Security: max-age=SECONDS on https responses "
        "(e.g. 31536000 once https works; default 0: not sent)",
    )
    p.add_argument(
        "--trusted-proxy",
        type=_proxy,
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or network, repeatable) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; default none, not even 127.0.0.1: otherwise anyone "
        "who can reach the port chooses the address the sign-in lock and the audit see",
    )


@dataclass(frozen=True, slots=True)
class WebOptions:
    """What :func:`add_web_options` asked for, as ``start_console`` takes it."""

    secure: bool
    hsts_s: int
    trusted_proxies: tuple[str, ...]


def web_options(args: argparse.Namespace) -> WebOptions:
    return WebOptions(bool(args.secure_cookies), max(0, int(args.hsts)), tuple(args.trusted_proxy))


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
        from ..host.kekcheck import check_store_kek
        from ..keys import KeyEncryptionKey

        # card look-ups go through PAN tokens keyed from the KEK: another KEK finds nothing
        check_store_kek(db, KeyEncryptionKey.load())
        with db.reader() as tx:
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
        w = web_options(args)
        server = await start_console(
            db,
            *args.listen,
            secret=secret,
            secure=w.secure,
            hsts_s=w.hsts_s,
            trusted_proxies=w.trusted_proxies,
        )
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
