"""The pipeline in process: rows of (world change, message, expected reason, trail).

No server and no sockets: the engine handles frames inside the SQLite writer's
own batch code, on a real store seeded from the example world, exactly as the
host's writer thread runs it (commit included). Each row reads like the design:
what the world holds, what the terminal sends, which participant decides, and
the trail the journal keeps. The messages are the plain test client's
(``tests/hostclient.py``), so they are the bytes a terminal would send.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from host_fixture import EXAMPLE_WORLD, TEST_KEK
from hostclient import Client, Reply

from clearpos.audit import run_audit
from clearpos.clock import utc_iso
from clearpos.host.cli import build_engine
from clearpos.host.engine import Engine
from clearpos.host.seed import seed
from clearpos.keys import KeyEncryptionKey
from clearpos.keys.crypto import KeyScheme
from clearpos.store import Tx
from clearpos.store.sqlite import GroupCommitWriter, SqliteDatabase
from clearpos.wire import (
    FinancialRequest,
    Kind,
    OriginalRef,
    ParameterDownload,
    Reversal,
    WireError,
    parse,
)
from clearpos.wire.framing import decode_frame
from clearpos.world import load_world

FROZEN = "6225880000001025"
LOW = "6225880000001017"


@dataclass
class InProcess(Client):
    """The test client, its frames handed to the engine instead of a socket."""

    engine: Engine | None = None
    writer: GroupCommitWriter | None = None
    conn: Any = None
    tx: Tx | None = None
    #: read each frame first (Engine.read), as the host does on its event loop;
    #: else the unit parses it
    read_first: bool = False

    def send(self, msg: Any, **kw: bool) -> Reply:
        return self.send_frame(self.frame(msg, **kw))

    def send_frame(self, raw: bytes) -> Reply:
        assert self.engine is not None and self.writer is not None and self.tx is not None
        engine = self.engine
        frame = decode_frame(raw)
        read = engine.read(frame) if self.read_first else None

        def unit(tx: Tx) -> Any:
            return engine.handle(tx, frame, time.perf_counter(), read)

        ((_, out, ok),) = self.writer._batch(self.conn, self.tx, [(unit, None)])
        assert ok, out
        f = decode_frame(out.reply)
        answer, block, mac = parse(f.body)
        mac_ok = None
        if mac is not None and block is not None and self.keys.signed_on:
            mac_ok = self.keys.verify_mac(block, mac)
        return Reply(f, answer, mac_ok)


@pytest.fixture(params=["parsed in the unit", "read first"])
def site(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[InProcess, SqliteDatabase]]:
    """Every row twice: the frame parsed inside the unit (the engine alone), and read
    before it as the host reads it (Engine.read on the event loop)."""
    db = SqliteDatabase(tmp_path / "pipeline.db")
    engine, hsm, tokens = build_engine(KeyEncryptionKey(bytes.fromhex(TEST_KEK)))
    world = load_world(EXAMPLE_WORLD)
    seed(db, world, hsm, tokens, reset=False)
    with db.transaction() as tx:  # one rule at a time: the velocity rule counts every sale
        tx.set_meta("risk.card_velocity", "")
    writer = GroupCommitWriter(db)
    conn = db.connect()
    client = InProcess(
        "in-process",
        0,
        engine=engine,
        writer=writer,
        conn=conn,
        read_first=request.param == "read first",
    )
    client.tx = writer.tx_for(conn)
    try:
        yield client, db
    finally:
        conn.close()
    assert run_audit(db.url) == []


def _trail(db: SqliteDatabase) -> tuple[str, str, str]:
    with db.reader() as tx:
        row = tx.conn.execute(
            "SELECT reason, status, trail FROM journal ORDER BY id DESC"
        ).fetchone()
    return row["reason"], row["status"], row["trail"]


FINANCIAL_OK = (
    "CheckTerminal:ok CheckMerchant:ok CheckMaintenance:ok CheckSignedOn:ok VerifyMac:ok "
    "CheckBatch:ok CheckDuplicate:ok CheckAmount:ok CheckFallback:ok CheckQuickPassPin:ok "
    "LoadCard:ok VerifyCryptogram:ok AssessRisk:ok"
)

Row = tuple[str, Callable[[SqliteDatabase], None] | None, Callable[[InProcess], Reply], str, str]


def _nothing(_db: SqliteDatabase) -> None:
    return None


def _suspend_terminal(db: SqliteDatabase) -> None:
    with db.transaction() as tx:
        tx.update_terminal("10000001", status="suspended", status_why="test")


ROWS: list[Row] = [
    ("approved purchase", None, lambda c: c.purchase(1234), "approved", FINANCIAL_OK + " Authorize:ok"),
    ("amount 0", None, lambda c: c.purchase(0), "transaction.invalid_amount",
     "CheckTerminal:ok CheckMerchant:ok CheckMaintenance:ok CheckSignedOn:ok VerifyMac:ok "
     "CheckBatch:ok CheckDuplicate:ok CheckAmount:transaction.invalid_amount"),
    ("frozen card", None, lambda c: c.purchase(100, card=c.card(FROZEN)), "card.frozen",
     FINANCIAL_OK + " Authorize:card.frozen"),
    ("not enough money", None, lambda c: c.purchase(100_000, card=c.card(LOW)),
     "card.insufficient_funds", FINANCIAL_OK + " Authorize:card.insufficient_funds"),
    ("wrong PIN", None, lambda c: c.purchase(100, card=c.card(pin="654321")), "card.wrong_pin",
     FINANCIAL_OK + " Authorize:card.wrong_pin"),
    ("unknown card", None, lambda c: c.purchase(100, card=c.card("6222020000000000018")),
     "card.unknown", FINANCIAL_OK.split(" LoadCard")[0] + " LoadCard:card.unknown"),
    ("wrong MAC", None, lambda c: c.send(c.request(Kind.PURCHASE, 100), corrupt_mac=True),
     "mac.invalid",
     "CheckTerminal:ok CheckMerchant:ok CheckMaintenance:ok CheckSignedOn:ok "
     "VerifyMac:mac.invalid"),
    ("suspended terminal", _suspend_terminal, lambda c: c.purchase(100), "terminal.suspended",
     "CheckTerminal:terminal.suspended"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "send", "reason", "trail"),
    [r[1:] for r in ROWS],
    ids=[r[0] for r in ROWS],
)
def test_pipeline_rows(
    site: tuple[InProcess, SqliteDatabase],
    change: Callable[[SqliteDatabase], None] | None,
    send: Callable[[InProcess], Reply],
    reason: str,
    trail: str,
) -> None:
    client, db = site
    assert client.sign_on().code == "00"
    (change or _nothing)(db)  # another connection, as the admin CLI: the writer must see it
    reply = send(client)
    assert reply.reason == reason
    got_reason, _status, got_trail = _trail(db)
    assert (got_reason, got_trail) == (reason, trail)
    if reason == "approved":
        assert reply.code == "00" and reply.mac_ok is True


def test_journal_status_moves_by_its_table(site: tuple[InProcess, SqliteDatabase]) -> None:
    """void, then the void reversed: the sale is approved again, the void reversed;
    a second void of a voided sale is declined before any status moves."""
    client, db = site
    assert client.sign_on().code == "00"
    sale_req = client.request(Kind.PURCHASE, 500)
    sale = client.send(sale_req)
    assert sale.code == "00"

    def void() -> FinancialRequest:
        return client.request(
            Kind.VOID,
            500,
            rrn=sale.msg.rrn,  # type: ignore[attr-defined]
            auth_code=sale.msg.auth_code,  # type: ignore[attr-defined]
            original=OriginalRef(sale_req.batch, sale_req.stan),
        )

    void_req = void()
    assert client.send(void_req).code == "00"
    assert _statuses(db) == {"purchase": "voided", "void": "approved"}
    assert client.send(void()).reason == "transaction.already_voided"
    undo = client.send(Reversal.of(void_req, "98"))
    assert undo.code == "00"
    assert _statuses(db) == {"purchase": "approved", "void": "reversed"}


def _statuses(db: SqliteDatabase) -> dict[str, str]:
    with db.reader() as tx:
        rows = tx.conn.execute(
            "SELECT kind, status FROM journal WHERE kind IN ('purchase', 'void') "
            "AND code = '00' ORDER BY id"
        ).fetchall()
    return {r["kind"]: r["status"] for r in rows}


def test_parameter_answer_fits_field_62_with_many_notices(
    site: tuple[InProcess, SqliteDatabase],
) -> None:
    """Windows whose notices together pass field 62's 512 bytes (scheduled before the
    standard records were counted): the soonest that fit are sent, the others counted
    in the journal — not a host.error (the demo's 0810s failed so, 515 bytes)."""
    client, db = site
    assert client.sign_on().code == "00"
    now = datetime.now(UTC)
    with db.transaction() as tx:
        for day in range(1, 6):
            tx.insert_row(
                "maintenance",
                {
                    "who": "all",
                    "start_at": utc_iso(now + timedelta(days=day)),
                    "end_at": utc_iso(now + timedelta(days=day, hours=2)),
                    "notice_zh": f"第{day}次系统升级维护,期间暂停交易,请提前安排收银" * 2,
                    "notice_en": f"Upgrade {day}: card payments pause for two hours" * 2,
                    "created_by": "test",
                    "created_at": utc_iso(now),
                    "cancelled": 0,
                },
            )
        tx.touch_config()
    reply = client.send(
        ParameterDownload(
            tid=client.tid, mid=client.mid, stan=client.next_stan(), batch=client.batch
        )
    )
    assert reply.code == "00"
    records = reply.msg.records  # type: ignore[attr-defined]
    zh = [r for r in records if r.tag == "91"]
    assert 1 <= len(zh) < 5 and any("第1次" in r.value for r in zh)
    with db.reader() as tx:
        facts = tx.journal(int(reply.msg.rrn)).facts  # type: ignore[attr-defined]
        upcoming = len(tx.maintenance_upcoming(utc_iso(now)))  # the world's own, and ours
    assert upcoming >= 5
    assert facts["notices"] == len(zh) and facts["notices_left_out"] == upcoming - len(zh)


def test_the_context_times_are_the_clock_s_own_text_across_seconds_and_days() -> None:
    """The engine formats a second's texts once and reuses them for the messages of
    that second: each message's ISO time and CST stamp are still exactly its own
    (microseconds 0 and 999999, a new second, midnight in China at 16:00 UTC)."""
    from clearpos.clock import CST, Clock

    engine, _, _ = build_engine(KeyEncryptionKey(bytes.fromhex(TEST_KEK)))
    times = [
        datetime(2026, 12, 3, 15, 59, 58, 999999, tzinfo=UTC),
        datetime(2026, 12, 3, 15, 59, 59, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 15, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 3, 16, 0, 0, 7, tzinfo=UTC),
        datetime(2026, 12, 3, 16, 0, 0, 120000, tzinfo=UTC),
        datetime(2026, 12, 4, 0, 0, 0, 0, tzinfo=CST),  # the same instant, as CST
    ]
    queue = list(times)

    class Fixed(Clock):
        def now(self) -> datetime:
            return queue.pop(0)

    engine.clock = Fixed()
    for t in times:
        ctx = engine._ctx(None, None, None, None, None)  # type: ignore[arg-type]
        assert ctx.now == t
        assert ctx.now_iso == utc_iso(t)
        assert ctx.stamp == t.astimezone(CST).strftime("%Y%m%d%H%M%S")


def test_read_leaves_only_what_needs_the_store_to_the_unit(
    site: tuple[InProcess, SqliteDatabase],
) -> None:
    """Engine.read types a message without the store; a frame whose tracks are
    TDK-encrypted needs its terminal's track key, so the unit reads it (None); a
    frame that does not decode comes back as the format error it is answered with,
    and both ways journal the same."""
    client, db = site
    engine = client.engine
    assert engine is not None
    # a plain purchase: typed, with its MAC block
    assert client.sign_on().code == "00"
    read = engine.read(decode_frame(client.frame(client.request(Kind.PURCHASE, 100))))
    assert isinstance(read, tuple)
    msg, block, mac, private = read
    assert isinstance(msg, FinancialRequest) and msg.amount_fen == 100
    assert block is not None and mac is not None and private == {}
    # field 4 not digits: the format error, found without the store
    bad = bytearray(client.frame(client.request(Kind.PURCHASE, 100)))
    at = bad.index(bytes.fromhex("000000000100"))  # the BCD amount, n12
    bad[at : at + 6] = bytes.fromhex("0000000001AF")
    err = engine.read(decode_frame(bytes(bad)))
    assert isinstance(err, WireError) and err.field == 4
    assert client.send_frame(bytes(bad)).reason == "message.format_error"
    assert _trail(db)[0] == "message.format_error"
    # a stock terminal with a track key: its encrypted tracks wait for the unit
    stock = InProcess(
        "in-process",
        0,
        tid="20000001",
        mid="898310048161234",
        tmk=bytes.fromhex("1A2B3C4D5E6F70811A2B3C4D5E6F7081"),
        engine=engine,
        writer=client.writer,
        conn=client.conn,
        tx=client.tx,
        read_first=client.read_first,
    )
    assert stock.sign_on(scheme=KeyScheme.WITH_TDK).code == "00" and stock.keys.has_tdk
    card = dataclasses.replace(stock.card("6225880000001116"), tracks_encrypted=True)
    sale = stock.frame(stock.request(Kind.PURCHASE, 250, card))
    assert engine.read(decode_frame(sale)) is None
    r = stock.send_frame(sale)
    assert r.code == "00" and r.mac_ok, r.reason


def test_a_fault_in_the_read_leaves_the_frame_to_the_unit(
    site: tuple[InProcess, SqliteDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine.read runs on the event loop, outside any unit: an exception other than
    a format error must not escape it (the line would close unanswered), so the
    frame goes to the unit, which parses it again."""
    client, _db = site
    engine = client.engine
    assert engine is not None and client.sign_on().code == "00"
    raw = client.frame(client.request(Kind.PURCHASE, 100))

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("a fault in the parser")

    with monkeypatch.context() as m:
        m.setattr("clearpos.host.engine.parse", broken)
        assert engine.read(decode_frame(raw)) is None
    r = client.send_frame(raw)
    assert r.code == "00" and r.mac_ok


def test_authorization_codes_are_random_hex_one_buffer_per_thread() -> None:
    """Field 38 codes come from the OS's CSPRNG in bulk (one system call per 512):
    6 upper-case hex digits, across buffer refills, and each writer thread draws
    from its own buffer (PostgreSQL runs several): no code is handed out twice."""
    import threading

    from clearpos.host.engine import _AuthCodes

    codes = _AuthCodes()
    drawn = [codes.next() for _ in range(2000)]  # four refills
    assert all(len(c) == 6 and c == c.upper() and int(c, 16) >= 0 for c in drawn)
    assert len(set(drawn)) > 1900  # 2,000 draws of 24 bits: a few repeats at most
    other: list[str] = []
    t = threading.Thread(target=lambda: other.extend(codes.next() for _ in range(600)))
    t.start()
    t.join()
    assert codes.at == 2000 * 6 % (6 * 512)  # the other thread did not move this one's
    assert other[:512] != drawn[:512]
