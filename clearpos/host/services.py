"""Services that run beside the host, on its event loop and its store.

The host knows them only by this shape; what they are (the web console) is
decided where the program is composed (:mod:`clearpos.app`), so the host never
imports a layer above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ..store import Database

__all__ = ["Service", "Sidecar"]


class Service(Protocol):
    """A started service: where it answers, and how to stop it."""

    @property
    def url(self) -> str: ...

    def close(self) -> None: ...


#: Starts a service inside the host's running event loop, on the host's store;
#: None when it cannot run in this build (its dependencies are not installed).
Sidecar = Callable[[Database], Awaitable[Service | None]]
