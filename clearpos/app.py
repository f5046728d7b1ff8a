"""``clearpos host``: the acquiring host composed with the web console.

The host (:mod:`clearpos.host`) knows nothing of the console: it runs whatever
:data:`~clearpos.host.services.Sidecar` it is given beside itself, on its event
loop and store. This module, at the top with the command line, gives it the
console when ``--console HOST:PORT`` asks for one; the demo does the same
through :func:`console_sidecar`.
"""

from __future__ import annotations

import argparse
import logging

from .console.cli import WebOptions, add_web_options, web_options
from .host import cli as host_cli
from .host.cli import hostport
from .host.services import Service, Sidecar
from .store import Database

__all__ = ["console_sidecar", "register", "run"]

log = logging.getLogger("clearpos.host")


def console_sidecar(
    host: str, port: int, *, announce: bool = True, web: WebOptions | None = None
) -> Sidecar:
    """The web console on ``host:port`` (port 0: any), started beside the host, with
    the same web options (secure cookies, HSTS, trusted proxies) as ``clearpos console``."""

    async def start(db: Database) -> Service | None:
        try:
            from .console.app import start_console
        except ImportError:
            log.warning("the web console is not part of this build; --console ignored")
            return None
        w = web or WebOptions(False, 0, ())
        return await start_console(
            db,
            host,
            port,
            announce=announce,
            secure=w.secure,
            hsts_s=w.hsts_s,
            trusted_proxies=w.trusted_proxies,
        )

    return start


def register(p: argparse.ArgumentParser) -> None:
    """The host's options, and ``--console``."""
    host_cli.register(p)
    p.add_argument("--console", type=hostport, help="also serve the web console on HOST:PORT")
    add_web_options(p)  # the console's own options, for --console
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sidecars = [console_sidecar(*args.console, web=web_options(args))] if args.console else []
    return host_cli.run(args, sidecars)
