"""A host running in a background thread of the current process.

For ``clearpos demo`` and the fault lab: the same engine, store, writer and
server as ``clearpos host``, on its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

from ..keys import KeyEncryptionKey
from ..store import Database
from ..world import load_world
from .cli import build_engine
from .engine import Engine
from .seed import seed
from .server import HostServer, Limits
from .services import Service, Sidecar


class EmbeddedHost:
    """``start()`` loads the world (when given) and serves on 127.0.0.1:<free port>."""

    def __init__(
        self,
        db: Database,
        kek: KeyEncryptionKey,
        *,
        world: Path | None = None,
        reset: bool = False,
        limits: Limits | None = None,
        sidecars: Sequence[Sidecar] = (),
    ) -> None:
        self.db = db
        self.engine: Engine
        self.engine, self.hsm, self.tokens = build_engine(kek)
        if world is not None:
            seed(self.db, load_world(world), self.hsm, self.tokens, reset=reset)
        self.limits = limits or Limits()
        self.sidecars = tuple(sidecars)
        #: where each started sidecar answers, in the order given
        self.service_urls: list[str] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> EmbeddedHost:
        self._thread = threading.Thread(
            target=self._run, name="clearpos-embedded-host", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        writer = self.db.writer()
        await writer.start()
        server = HostServer(self.engine, writer, self.limits)
        self.host, self.port = await server.start("127.0.0.1", 0)
        services: list[Service] = []
        for start in self.sidecars:
            service = await start(self.db)
            if service is not None:
                services.append(service)
                self.service_urls.append(str(service.url))
        self._ready.set()
        serving = asyncio.create_task(server.serve_forever())
        await self._stop.wait()
        serving.cancel()
        for service in services:
            service.close()
        await server.close()
        await writer.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def __enter__(self) -> EmbeddedHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
