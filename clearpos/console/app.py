"""The console application: build it, and serve it inside the host's event loop.

Framework choice -- Starlette 1.10 + Jinja2 3.1, served by uvicorn 0.54:

* The console is server-rendered HTML forms, not a JSON API. Litestar's edge
  over FastAPI in MEASUREMENTS.md (27 vs 74 us for GET 20 rows) comes from
  msgspec validation of JSON, which forms do not use. Bare Starlette measured
  here does the same GET 20 rows in 27 us in-process (104 us with a Jinja2
  table of 20 rows), so the framework costs nothing measurable next to one
  SQLite read (~100 us) -- and neither matters for a staff console.
* Starlette is small (anyio and typing-extensions are all it needs), typed
  (mypy --strict clean without overrides), and is a plain ASGI app, so the same app
  runs inside the host's own asyncio loop (``start_console``), stand-alone
  (``clearpos console``) and in tests without a socket.
* Jinja2 autoescapes every page. Progressive enhancement is one small script
  (the dashboard refreshes itself; a typed full card number is cut to first 6 /
  last 4 before it leaves the browser); every page and form works with
  JavaScript off, so there is no front-end build at all.

Database calls are synchronous store calls run on a small thread pool of the
console's own (:meth:`Console.read` / :meth:`Console.write`), so the host's
event loop never waits for the console's queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope, Send

from ..clock import Clock
from ..reasons import catalog
from ..store import Database
from .gate import Gate
from .pages import PACKAGE_DIR, Pages
from .security import LoginGuard, LoginThrottle, Sessions

__all__ = ["Console", "ConsoleServer", "create_app", "session_secret", "start_console"]

T = TypeVar("T")


def session_secret() -> bytes:
    """The key that signs session cookies: derived from the KEK, never the KEK itself."""
    from ..keys import KeyEncryptionKey

    return KeyEncryptionKey.load().derive(b"clearpos console session", 32)


class Console:
    """What every route needs: the store, sessions, throttle, templates and a thread pool."""

    def __init__(
        self,
        db: Database,
        *,
        secret: bytes,
        secure: bool = False,
        hsts_s: int = 0,
        guard: LoginGuard | None = None,
        clock: Clock | None = None,
        workers: int = 4,
    ) -> None:
        self.db = db
        self.secure = secure
        #: Strict-Transport-Security max-age sent on https responses (0: none)
        self.hsts_s = hsts_s
        self.sessions = Sessions(secret)
        self.guard = guard or LoginGuard()
        self.clock = clock or Clock()
        self.catalog = catalog()
        self.pages = Pages(self)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clearpos-console")

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(tx, *args)`` in a read-only snapshot, on the console's thread pool."""

        def unit() -> T:
            with self.db.reader() as tx:
                return fn(tx, *args)

        return await asyncio.get_running_loop().run_in_executor(self._pool, unit)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(tx, *args, **kwargs)`` in one committed transaction, on the thread pool."""

        def unit() -> T:
            with self.db.transaction() as tx:
                return fn(tx, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, unit)

    async def refuse_csrf(self, scope: Scope, send: Send) -> None:
        """Answer 403 with the "form expired" page (called by the gate)."""
        request = Request(scope)
        response = self.pages.message(request, "csrf.title", "csrf.body", status=403)
        await response(scope, _no_receive, send)

    def close(self) -> None:
        """Release the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def create_app(
    db: Database,
    *,
    secret: bytes | None = None,
    secure: bool = False,
    hsts_s: int = 0,
    throttle: LoginThrottle | None = None,
    guard: LoginGuard | None = None,
) -> Starlette:
    """The console as an ASGI app over ``db``; ``app.state.console`` is its :class:`Console`.

    ``secret`` signs session cookies (default: derived from the KEK); ``secure``
    marks cookies ``Secure`` -- set it whenever the console is served over https
    (requests that arrive over https get ``Secure`` cookies anyway); ``hsts_s``
    sends ``Strict-Transport-Security`` with that max-age on secure responses.
    ``guard`` decides who may try a password (:class:`LoginGuard`); ``throttle``
    replaces just its per (user name, address) counter.
    """
    from . import actions, views

    console = Console(
        db,
        secret=secret if secret is not None else session_secret(),
        secure=secure,
        hsts_s=hsts_s,
        guard=guard or LoginGuard(per_pair=throttle),
    )
    routes: list[Route | Mount] = [
        *views.routes(console),
        *actions.routes(console),
        Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            404: console.pages.not_found,
            405: console.pages.not_found,
            500: console.pages.server_error,
        },
    )
    app.state.console = console
    app.add_middleware(Gate, console=console)
    return app


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever owns the event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ConsoleServer:
    """A running console: ``close()`` stops it (what ``clearpos host`` calls at shutdown)."""

    def __init__(
        self,
        server: uvicorn.Server,
        task: asyncio.Task[None],
        host: str,
        port: int,
        console: Console,
    ) -> None:
        self._server = server
        self._task = task
        self.host = host
        self.port = port
        self.console = console

    @property
    def url(self) -> str:
        """Where the console answers, e.g. ``http://127.0.0.1:5880``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Ask the server to stop: it finishes requests in flight, then exits."""
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        """Wait until the server has stopped (after :meth:`close`)."""
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.console.close()


async def start_console(
    db: Database,
    host: str = "127.0.0.1",
    port: int = 5880,
    *,
    secret: bytes | None = None,
    secure: bool = False,
    hsts_s: int = 0,
    trusted_proxies: tuple[str, ...] = (),
    announce: bool = True,
) -> ConsoleServer:
    """Serve the console on ``host:port`` inside the running event loop (port 0: any).

    Binds before returning, so a busy port raises ``OSError`` here; prints
    ``clearpos console on http://HOST:PORT`` when ``announce`` is set.
    ``X-Forwarded-For``/``-Proto`` are believed only from ``trusted_proxies``
    (addresses or networks); by default from nobody, not even 127.0.0.1, so the
    sign-in throttle and the audit trail see the real peer.
    """
    app = create_app(db, secret=secret, secure=secure, hsts_s=hsts_s)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        loop="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or "",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="clearpos-console")
    console: Console = app.state.console
    running = ConsoleServer(server, task, host, bound_port, console)
    if announce:
        print(f"clearpos console on {running.url}", flush=True)
    return running
