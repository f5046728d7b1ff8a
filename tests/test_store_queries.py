"""The store's queries for the layers above the host, on SQLite and on PostgreSQL.

A real host (``store`` fixture: SQLite, then PostgreSQL with two workers) takes
approved and declined purchases, a balanced settlement and an unbalanced one
from a plain test client. Then every query module of ``clearpos.store.queries``
and the typed settlement reads answer from that store, and must say the same
on both backends (the results are compared with what the journal holds).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from host_fixture import HostProc, Store, start_host
from hostclient import Client

from clearpos.audit import FINANCIAL, audit_tx
from clearpos.clock import utc_iso
from clearpos.store import SettlementRec, open_database
from clearpos.store.queries import audit as qa
from clearpos.store.queries import console as qc
from clearpos.store.queries import diagnosis as qd
from clearpos.store.queries import lab as ql
from clearpos.store.queries import ops as qo
from clearpos.store.queries import read
from clearpos.wire import Settlement, Settlement48, Totals

LOW = "6225880000001017"  # the example world's card with little money on it
SPARE = "6225880000001116"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    h = start_host(tmp_path_factory.mktemp("queries"), store=store)
    c = Client(h.host, h.port).connect()
    try:
        assert c.sign_on().code == "00"
        assert c.purchase(1234).code == "00"
        assert c.purchase(1000, card=c.card(LOW)).code == "51"  # ¥10 on a ¥5 card
        assert c.purchase(100, card=c.card(SPARE)).code == "00"
        settle = Settlement(
            tid=c.tid,
            mid=c.mid,
            stan=c.next_stan(),
            batch=c.batch,
            totals=Settlement48(Totals(1334, 2)),
        )
        assert c.send(settle).reason == "settlement.balanced"
        assert c.sign_on().code == "00"
        assert c.purchase(200).code == "00"
        wrong = Settlement(
            tid=c.tid,
            mid=c.mid,
            stan=c.next_stan(),
            batch=c.batch,
            totals=Settlement48(Totals(999, 2)),
        )
        assert c.send(wrong).reason == "settlement.unbalanced"
    finally:
        c.close()
    try:
        yield h
    finally:
        h.stop()


def test_settlements_are_typed(host: HostProc) -> None:
    db = open_database(host.url)
    with read(db) as tx:
        closed = tx.settlements(status="closed")
        assert [type(s) for s in closed] == [SettlementRec]
        s = closed[0]
        assert (s.tid, s.batch, s.status) == ("10000001", "000001", "closed")
        assert s.term_sums == s.host_sums == (1334, 2, 0, 0)
        assert s.closed_at is not None and tx.settlement(s.id) == s
        assert tx.closed_settlement("10000001", "000001") == s
        still = tx.open_settlement("10000001", "000002")
        assert still is not None and still.status == "unbalanced"
        assert still.term_sums == (999, 2, 0, 0) and still.host_sums == (200, 1, 0, 0)
        assert still["uploaded"] == still.uploaded == 0  # read by column name too
        with pytest.raises(KeyError):
            still["no_such_column"]
        assert tx.settlements(mid="898310048161234", since=s.ts) == [s, still]
        assert tx.settlements(mid="898310048169999") == []


def test_audit_queries(host: HostProc) -> None:
    db = open_database(host.url)
    with read(db) as tx:
        rows = qo.journal_rows(tx)
        assert audit_tx(tx) == []
        sums = qa.card_journal_sums(tx)
        for card in tx.cards():
            assert card.balance_fen == card.opening_fen + sums.get(card.id, (0, 0))[0]
        assert qa.duplicate_requests(tx) == []
        approved = {r.id for r in rows if r.code == "00" and r.req_key and r.kind in FINANCIAL}
        assert {int(r["id"]) for r in qa.approved_states(tx, FINANCIAL)} == approved
        assert qa.reversed_after_settlement(tx) == []
        [closed] = tx.settlements(status="closed")
        assert qa.settlement_kind_sums(tx, closed.id) == {"purchase": (2, 1334)}
        assert qa.declines(tx) == [(r.id, r.reason) for r in rows if r.code != "00"]
        assert qa.reason_counts(tx) == [  # commonest first, then by key
            ("approved", 5),  # two sign-ons, three purchases
            ("card.insufficient_funds", 1),
            ("settlement.balanced", 1),
            ("settlement.unbalanced", 1),
        ]
        assert qa.money_moved(tx) == (1534, 0)


def test_console_queries(host: HostProc) -> None:
    db = open_database(host.url)
    with read(db) as tx:
        rows = qo.journal_rows(tx)
        purchases = [r for r in rows if r.kind == "purchase"]
        newest_first = sorted(purchases, key=lambda r: (r.ts, r.id), reverse=True)
        found = qc.search(tx, equal=[("kind", "purchase")], limit=10)
        assert [r.id for r in found] == [r.id for r in newest_first]
        assert [r.id for r in qc.search(tx, approved=False, limit=10)] == [
            r.id for r in sorted(rows, key=lambda r: (r.ts, r.id), reverse=True) if r.code != "00"
        ]
        assert qc.search(tx, pan_like="622588%1017", limit=10)[0].pan_masked.endswith("1017")
        assert [r.id for r in qc.search(tx, journal_id=purchases[0].id, limit=5)] == [
            purchases[0].id
        ]
        with pytest.raises(ValueError, match="not a searchable journal column"):
            qc.search(tx, equal=[("pan_token", "x")], limit=1)
        assert qc.children(tx, purchases[0].id) == []
        assert [r.id for r in qc.recent(tx, "tid", "10000001", limit=3)] == [
            r.id for r in sorted(rows, key=lambda r: (r.ts, r.id), reverse=True)[:3]
        ]
        since = utc_iso(datetime.now(UTC) - timedelta(hours=1))
        n, ok = qc.counts_since(tx, since, FINANCIAL)
        assert (n, ok) == (len(purchases), len([r for r in purchases if r.code == "00"]))
        assert sum(all_ for _, all_ in qc.per_minute(tx, since, FINANCIAL).values()) == n
        assert qc.top_declines(tx, since, FINANCIAL) == [("card.insufficient_funds", 1)]
        assert qc.open_ticket_count(tx) == 0
        assert qc.terminal_counts(tx)["898310048161234"] >= 1
        assert [c.pan_masked for c in qc.cards_like(tx, "%1116")] == ["622588******1116"]


def test_ops_diagnosis_and_lab_queries(host: HostProc) -> None:
    db = open_database(host.url)
    with read(db) as tx:
        rows = qo.journal_rows(tx)
        first = rows[0]
        assert [r.id for r in qo.journal_between(tx, first.ts)] == [r.id for r in rows]
        assert qo.journal_between(tx, first.ts, first.ts) == []
        last = qo.last_journal(tx, "10000001", ("purchase",), before_id=rows[-1].id + 1)
        assert last is not None and last.id == max(r.id for r in rows if r.kind == "purchase")
        assert qo.role_of(tx, "nobody") is None and qo.user_row(tx, "nobody") is None
        probe = qo.sealing_probe(tx, "10000001")
        assert probe is not None and probe["tid"] == "10000001"
        assert qo.ticket_rows(tx) == [] and qo.ledger_rows(tx, "898310048161234") == []
        assert qo.maintenance_window(tx, 999_999) is None
        assert qd.replaced_terminal(tx, "10000001") is None
        exported = ql.journal_dicts(tx)
        assert [d["id"] for d in exported] == [r.id for r in rows]
        assert all(isinstance(d["facts"], str) for d in exported)


def test_backup_files_read_the_copy(host: HostProc, tmp_path: Path) -> None:
    """store.files on a SQLite copy (a PostgreSQL store is backed up with pg_dump)."""
    from clearpos.store import files
    from clearpos.store.schema import LATEST

    if not host.url.startswith("sqlite:///"):
        pytest.skip("SQLite files only: a PostgreSQL store is backed up with pg_dump")
    copy = tmp_path / "copy.db"
    files.copy(host.url[len("sqlite:///") :], copy, self_contained=True)
    with files.read_only(copy) as tx:
        assert files.integrity(tx) == "ok"
        assert files.schema_version(tx) == LATEST
        counts = files.row_counts(tx, ("journal", "settlements"))
        assert counts["settlements"] == 2 and counts["journal"] >= 7
    assert files.has_rows(copy, ("journal",))
    assert not files.has_rows(tmp_path / "absent.db", ("journal",))
    assert {name for name, _, _ in files.sealed_keys(copy)} >= {"tmk", "pik", "mak"}
