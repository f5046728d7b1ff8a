"""``/metrics`` (issue 18): the histograms and their labels, scraped over HTTP from a
real host process, and the writers' ``on_commit`` hook they are fed from.

Counts only, never timing: a latency's bucket depends on the machine, its count and
its labels do not.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import require_pg
from host_fixture import ROOT, Store, start_host
from hostclient import Client
from support.metrics import Page, scrape

from clearpos.host.metrics import BATCH_BUCKETS, LATENCY_BUCKETS
from clearpos.store import Tx, open_database
from clearpos.wire import NetCode, NetworkRequest

FROZEN = "6225880000001025"
HISTOGRAMS = (
    "clearpos_answer_seconds",
    "clearpos_store_batch_units",
    "clearpos_store_batch_seconds",
)


def _ports(n: int) -> int:
    """A port P with P .. P+n-1 all free (worker K serves metrics on P+K)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65535:
            continue
        try:
            held = []
            for k in range(1, n):
                t = socket.socket()
                held.append(t)
                t.bind(("127.0.0.1", base + k))
        except OSError:
            continue
        finally:
            for t in held:
                t.close()
        return base
    raise RuntimeError(f"no {n} consecutive free ports")


def _check_histogram(page: Page, name: str, bounds: tuple[float, ...], **labels: str) -> int:
    """The buckets of one series: exactly ``bounds`` then +Inf, cumulative, the last
    equal to ``_count``. Returns the count."""
    buckets = page.matching(f"{name}_bucket", **labels)
    les = [float(b.labels["le"]) for b in buckets]
    assert les == [*map(float, bounds), math.inf], (name, labels, les)
    values = [b.value for b in buckets]
    assert values == sorted(values), (name, labels, values)  # cumulative
    count = page.value(f"{name}_count", **labels)
    assert values[-1] == count
    assert page.value(f"{name}_sum", **labels) >= 0
    return int(count)


def test_histograms_after_purchases_on_one_host(tmp_path: Path) -> None:
    """A sign-on, two approved purchases, a declined one and an echo: the latency
    histogram has one series per message kind with those counts, the commit
    histograms agree with the store's counters, and every series says worker 0."""
    port = _ports(1)
    h = start_host(tmp_path, extra=("--metrics", f"127.0.0.1:{port}"))
    try:
        c = Client(h.host, h.port).connect()
        assert c.sign_on().code == "00"
        assert c.purchase(100).code == "00"
        assert c.purchase(250).code == "00"
        assert c.purchase(100, card=c.card(FROZEN)).reason == "card.frozen"
        assert c.send(NetworkRequest(tid=c.tid, mid=c.mid, stan=c.next_stan(),
                                     batch=c.batch, netcode=NetCode.ECHO)).code == "00"  # fmt: skip
        # the answers are counted before they are written: no wait is needed
        page = scrape(port)
        assert page.content_type.startswith("text/plain")

        kinds = {s.labels["kind"] for s in page.matching("clearpos_answer_seconds_count")}
        assert kinds == {"signon", "purchase", "echo"}
        counts = {
            k: _check_histogram(page, "clearpos_answer_seconds", LATENCY_BUCKETS, kind=k)
            for k in kinds
        }
        assert counts == {"signon": 1, "purchase": 3, "echo": 1}
        # every answer is in the latency histogram and in the reason counter once
        assert sum(counts.values()) == page.value("clearpos_transactions_total") == 5
        assert page.value("clearpos_frames_total") == 5

        batches = _check_histogram(page, "clearpos_store_batch_units", BATCH_BUCKETS)
        assert batches == _check_histogram(page, "clearpos_store_batch_seconds", LATENCY_BUCKETS)
        assert batches == page.value("clearpos_store_commits_total") >= 1
        # the units of the batches add up to the units the store ran: one per message
        assert page.value("clearpos_store_batch_units_sum") == page.value(
            "clearpos_store_units_total"
        ) == 5  # fmt: skip

        ours = [s for s in page.samples if s.name.startswith("clearpos_")]
        assert ours and all(s.labels.get("worker") == "0" for s in ours)
        # the standard process series: CPU per purchase without a query of our own
        assert page.value("process_cpu_seconds_total") > 0
        assert not page.matching("clearpos_answer_seconds_created")

        # the Grafana dashboard in docs/ queries only series this page serves
        board = json.loads((ROOT / "docs" / "grafana-clearpos.json").read_text("utf-8"))
        queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        queries += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
        names = set(re.findall(r"\b(?:clearpos|process)_[a-z_]+", " ".join(queries)))
        assert len(names) >= 10 and names <= {s.name for s in page.samples}, names - {
            s.name for s in page.samples
        }
    finally:
        h.stop()


def test_metrics_port_taken_refuses_to_start(tmp_path: Path) -> None:
    """A host that cannot serve its page says so and does not say it listens."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="did not start"):
            start_host(tmp_path, extra=("--metrics", f"127.0.0.1:{port}"))
        assert f"cannot serve --metrics on 127.0.0.1:{port}" in (tmp_path / "host.log").read_text()


def test_each_worker_serves_its_own_page_with_its_label(tmp_path: Path) -> None:
    """--workers 2 on PostgreSQL: worker K on PORT+K, every series labelled K; the
    two pages together count every answer once."""
    require_pg()
    store = Store("postgresql", workers=2)
    port = _ports(2)
    h = start_host(tmp_path, store=store, extra=("--metrics", f"127.0.0.1:{port}"))
    try:
        clients = [Client(h.host, h.port).connect() for _ in range(6)]
        # six lines of one terminal: the kernel spreads them over the workers. Each
        # sign-on gives the terminal new keys, so each line buys before the next signs
        # on; four purchases, as the card's velocity rule allows five in a minute.
        for i, c in enumerate(clients):
            assert c.sign_on().code == "00"
            if i < 4:
                assert c.purchase(100).code == "00"
        pages = [scrape(port), scrape(port + 1)]
        for k, page in enumerate(pages):
            ours = [s for s in page.samples if s.name.startswith("clearpos_")]
            assert ours and all(s.labels.get("worker") == str(k) for s in ours)
            commits = int(page.value("clearpos_store_commits_total"))
            if commits:
                assert (
                    _check_histogram(page, "clearpos_store_batch_units", BATCH_BUCKETS) == commits
                )
                # the units of the batches add up to the units the store committed
                assert page.value("clearpos_store_batch_units_sum") <= page.value(
                    "clearpos_store_units_total"
                )
        answered = {
            kind: sum(
                p.value("clearpos_answer_seconds_count", kind=kind)
                for p in pages
                if p.matching("clearpos_answer_seconds_count", kind=kind)
            )
            for kind in ("signon", "purchase")
        }
        assert answered == {"signon": 6, "purchase": 4}
        for c in clients:
            c.close()
    finally:
        h.stop()
        store.drop_all()


# -- the writers' on_commit hook -------------------------------------------------


def _note(key: str, fail: bool = False) -> Callable[[Tx], str]:
    def unit(tx: Tx) -> str:
        tx.set_meta(f"note.{key}", key)
        if fail:
            raise ValueError(f"unit {key} fails after writing")
        return key

    return unit


async def _drive(writer: Any, seen: list[tuple[int, float]]) -> None:
    """Twenty units at once, one of them failing; then one alone, whose commit must
    have been told before its future resolves."""
    await writer.start()
    try:
        units = [writer.run(_note(f"u{i}", fail=i == 7)) for i in range(20)]
        results = await asyncio.gather(*units, return_exceptions=True)
        assert [isinstance(r, ValueError) for r in results] == [i == 7 for i in range(20)]
        before = len(seen)
        assert await writer.run(_note("last")) == "last"
        assert len(seen) == before + 1 and seen[-1][0] == 1
    finally:
        await writer.close()


def test_sqlite_writer_tells_each_commit(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    seen: list[tuple[int, float]] = []
    writer = db.writer(on_commit=lambda units, seconds: seen.append((units, seconds)))
    asyncio.run(_drive(writer, seen))
    _told_every_commit(writer, seen)


def _told_every_commit(writer: Any, seen: list[tuple[int, float]]) -> None:
    """Both stores share one writer (store/writer.py): the batch is cut before the
    failing unit, which then fails alone; every commit is told with its units, and
    the 20 units committed are all told (the writer counts 21 answered)."""
    assert len(seen) == writer.commits
    assert sum(u for u, _ in seen) == 20 and writer.units == 21
    assert all(s >= 0 for _, s in seen)


def test_postgresql_writer_tells_each_commit(tmp_path: Path) -> None:
    require_pg()
    store = Store("postgresql")
    try:
        db = open_database(store.new_url(tmp_path, "w"))
        seen: list[tuple[int, float]] = []
        writer = db.writer(on_commit=lambda units, seconds: seen.append((units, seconds)))
        asyncio.run(_drive(writer, seen))
        _told_every_commit(writer, seen)
    finally:
        store.drop_all()
