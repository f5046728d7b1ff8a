"""Prometheus-style counters over plain HTTP (``/metrics``)."""

from __future__ import annotations

import asyncio

from ..store import GroupCommitWriter
from .server import HostServer


def render_metrics(server: HostServer, writer: GroupCommitWriter) -> str:
    lines = [
        "# HELP clearpos_transactions_total Messages answered, by reason key.",
        "# TYPE clearpos_transactions_total counter",
    ]
    for reason, n in sorted(server.answered.items()):
        lines.append(f'clearpos_transactions_total{{reason="{reason}"}} {n}')
    lines += [
        "# TYPE clearpos_connections gauge",
        f"clearpos_connections {server.connections}",
        "# TYPE clearpos_connections_refused_total counter",
        f"clearpos_connections_refused_total {server.refused}",
        "# HELP clearpos_connections_evicted_total Lines closed to make room for a new one.",
        "# TYPE clearpos_connections_evicted_total counter",
        *(
            f'clearpos_connections_evicted_total{{limit="{why}"}} {server.evicted[why]}'
            for why in ("capacity", "per_source")
        ),
        "# HELP clearpos_connections_timed_out_total Lines closed on a deadline.",
        "# TYPE clearpos_connections_timed_out_total counter",
        *(
            f'clearpos_connections_timed_out_total{{deadline="{why}"}} {server.timed_out[why]}'
            for why in ("first_frame", "idle", "slow_frame")
        ),
        "# TYPE clearpos_frames_total counter",
        f"clearpos_frames_total {server.frames}",
        "# TYPE clearpos_store_commits_total counter",
        f"clearpos_store_commits_total {writer.commits}",
        "# TYPE clearpos_store_units_total counter",
        f"clearpos_store_units_total {writer.units}",
    ]
    return "\n".join(lines) + "\n"


async def start_metrics(
    server: HostServer, writer: GroupCommitWriter, host: str, port: int
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            ok = line.split(b" ")[1:2] == [b"/metrics"]
            body = render_metrics(server, writer).encode() if ok else b"not found\n"
            status = b"200 OK" if ok else b"404 Not Found"
            w.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await w.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            w.close()

    return await asyncio.start_server(handle, host, port)
