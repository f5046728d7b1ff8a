"""``/metrics``: the host's counters and latency histograms, served by prometheus_client.

Every series carries ``worker="K"``: under ``--workers N`` worker K serves its own
page on ``PORT+K`` (docs/scaling.md), so one scrape job per port sees every
worker, and the label says which one a series came from.

* Counters and gauges the host keeps anyway (answers by reason, connections,
  frames, store commits) are read when a page is rendered: a message pays nothing
  for them.
* Three histograms are observed as the host works: the answer latency by message
  kind (``clearpos_answer_seconds``, from the bytes being read to the answer being
  written), and per store commit the units in it (``clearpos_store_batch_units``)
  and its time in the store (``clearpos_store_batch_seconds``, BEGIN to COMMIT, the
  units' engine work included: the engine runs inside the transaction). What they
  cost per purchase is in docs/performance.md §9.
* ``process_*`` (CPU seconds, memory, open files) and ``python_*``: the CPU per
  purchase is ``rate(process_cpu_seconds_total) / rate(clearpos_answer_seconds_count)``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..store import GroupCommitWriter
from .server import HostServer

#: seconds; a POS answer is due within seconds (terminals time out at 30-60 s, and
#: reverse), a healthy host answers in milliseconds: 0.5 ms ... 5 s, ~2x apart
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
#: units of work per commit: SQLite batches up to 512 (``batch_max``); PostgreSQL is 1
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# The _created series (a timestamp per histogram child) are for OpenMetrics
# scrapers; on the plain text page they only double the lines.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in 0.26


class HostMetrics:
    """The histograms of one host process, and the registry its page is rendered from."""

    def __init__(self, worker: int = 0) -> None:
        self.worker = str(worker)
        self.registry = CollectorRegistry()
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)
        self.answer = Histogram(
            "clearpos_answer_seconds",
            "Seconds from a request's bytes read to its answer written, by message kind.",
            ["kind", "worker"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        batch_units = Histogram(
            "clearpos_store_batch_units",
            "Units of work (one per message) committed together, per commit.",
            ["worker"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        batch_seconds = Histogram(
            "clearpos_store_batch_seconds",
            "Seconds a commit's batch spent in the store, BEGIN to COMMIT, units included.",
            ["worker"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._units = batch_units.labels(self.worker)
        self._seconds = batch_seconds.labels(self.worker)
        #: the child histogram per kind, so an answer skips the label lookup
        self._by_kind: dict[str, Histogram] = {}

    def answered(self, kind: str, seconds: float) -> None:
        """An answer is out (on the event loop): ``seconds`` since its bytes were read."""
        child = self._by_kind.get(kind)
        if child is None:
            child = self._by_kind[kind] = self.answer.labels(kind, self.worker)
        child.observe(seconds)

    def committed(self, units: int, seconds: float) -> None:
        """A store commit (on a writer thread): ``units`` in it, ``seconds`` in the store."""
        self._units.observe(units)
        self._seconds.observe(seconds)

    def watch(self, server: HostServer, writer: GroupCommitWriter) -> None:
        """Render the counters ``server`` and ``writer`` keep on every page."""
        self.registry.register(HostCounters(server, writer, self.worker))


class HostCounters(Collector):
    """The host's own counters, read at each scrape (names and labels as before
    prometheus_client, plus ``worker``: dashboards and docs/security.md use them)."""

    def __init__(self, server: HostServer, writer: GroupCommitWriter, worker: str) -> None:
        self.server = server
        self.writer = writer
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        # Runs on the page's thread while the event loop counts on: each read below
        # is one C-level copy under the GIL (str keys, int values), never torn.
        s, w, worker = self.server, self.writer, [self.worker]
        answered = CounterMetricFamily(
            "clearpos_transactions",
            "Messages answered, by reason key.",
            labels=["reason", "worker"],
        )
        for reason, n in sorted(list(s.answered.items())):
            answered.add_metric([reason, self.worker], n)
        yield answered
        yield _one(
            GaugeMetricFamily, "clearpos_connections", "Lines open now.", s.connections, worker
        )
        yield _one(
            CounterMetricFamily,
            "clearpos_connections_refused",
            "Lines refused: at a limit with every candidate busy with a frame.",
            s.refused,
            worker,
        )
        evicted = CounterMetricFamily(
            "clearpos_connections_evicted",
            "Lines closed to make room for a new one.",
            labels=["limit", "worker"],
        )
        for why in ("capacity", "per_source"):
            evicted.add_metric([why, self.worker], s.evicted[why])
        yield evicted
        timed_out = CounterMetricFamily(
            "clearpos_connections_timed_out",
            "Lines closed on a deadline.",
            labels=["deadline", "worker"],
        )
        for why in ("first_frame", "idle", "slow_frame"):
            timed_out.add_metric([why, self.worker], s.timed_out[why])
        yield timed_out
        yield _one(
            CounterMetricFamily, "clearpos_frames", "Frames handed to the engine.", s.frames, worker
        )
        yield _one(
            CounterMetricFamily,
            "clearpos_store_commits",
            "Store transactions committed.",
            w.commits,
            worker,
        )
        yield _one(
            CounterMetricFamily,
            "clearpos_store_units",
            "Units of work the store ran to the end.",
            w.units,
            worker,
        )
        yield _one(
            CounterMetricFamily,
            "clearpos_store_retries",
            "Units run again after a serialization failure, deadlock or unique violation "
            "(PostgreSQL; SQLite's one writer never needs to).",
            getattr(w, "retries", 0),
            worker,
        )


def _one(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    text: str,
    value: int,
    worker: list[str],
) -> Metric:
    metric = family(name, text, labels=["worker"])
    metric.add_metric(worker, value)
    return metric


class MetricsPage:
    """prometheus_client's HTTP server for one registry, on a thread of its own."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self.httpd = httpd
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()  # serve_forever returns within its 0.5 s poll
        self.httpd.server_close()
        self.thread.join(5)


def start_metrics(metrics: HostMetrics, host: str, port: int) -> MetricsPage:
    """Serve ``metrics`` on ``http://host:port/metrics`` (any path but /favicon.ico)."""
    httpd, thread = start_http_server(port, host, registry=metrics.registry)
    return MetricsPage(httpd, thread)
