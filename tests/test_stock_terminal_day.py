"""A full day of a ``--dialect cup`` virtual terminal against a real host (issue 15).

Sign-on 004 (keys with a TDK), purchases with TDK-encrypted tracks, a void naming
its original by batch + STAN (12-digit 61), a refund, a timed-out sale reversed,
parameter download, status upload and settlement — over loopback, through a
recording proxy so the test reads what went on the wire, on SQLite and on
PostgreSQL, ending with a clean audit. The terminal is ``20000001`` of the example
world, a stock terminal (``dialect = "cup"``): it never receives [ext] records.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_fixture import ROOT, HostProc, Store, env, start_host

from clearpos.audit import run_audit
from clearpos.keys import KeyEncryptionKey
from clearpos.lab.faultproxy import Action, Fault, FaultProxy, Seen
from clearpos.terminal import CardInput, HostLink, Terminal
from clearpos.terminal.client import parse_address
from clearpos.wire import decode, decode_frame
from clearpos.wire.codec import RawTrack
from clearpos.wire.terminfo import TerminalInfo

TID, MID = "20000001", "898310048161234"
TMK = bytes.fromhex("1A2B3C4D5E6F70811A2B3C4D5E6F7081")
KEK = KeyEncryptionKey(bytes.fromhex("7c" * 32))
SPARE = CardInput("6225880000001116", "2812", "123456")
SPARE2 = CardInput("6225880000001124", "2812", "123456")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    h = start_host(tmp_path_factory.mktemp("cupday"), store=store)
    yield h
    h.stop()
    assert run_audit(h.url) == []


def fields(seen: Seen) -> dict[int, object]:
    return dict(decode(decode_frame(seen.raw).body).fields)


def test_a_stock_terminals_day(host: HostProc, tmp_path: Path) -> None:
    proxy = FaultProxy(("127.0.0.1", host.port)).start()
    try:
        h, port = parse_address(proxy.address)
        t = Terminal(
            tmp_path / "pos",
            link=HostLink(h, port, timeout=1.0),
            tid=TID,
            mid=MID,
            tmk=TMK,
            kek=KEK,
            lang="en",
            dialect="cup",
        )
        with t:
            day(t, proxy, host)
    finally:
        proxy.close()


def day(t: Terminal, proxy: FaultProxy, host: HostProc) -> None:
    out = t.login("01", "0000")
    assert out.approved, out.to_json()
    # sign-on 004, header reserved 000000, field 59 with the application version
    (signon,) = [s for s in proxy.requests("0800") if str(fields(s)[60])[8:11] != "360"]
    f = fields(signon)
    assert str(f[60]).endswith("004")
    frame = decode_frame(signon.raw)
    assert frame.header.reserved == "000000"
    info = TerminalInfo.decode(str(f[59]))
    assert info.app_version == "0.1.0"
    assert "tdk" in t.keys.check_values()

    # purchase with the track encrypted under the TDK
    sale = t.purchase(1234, SPARE)
    assert sale.approved, sale.to_json()
    f = fields(proxy.requests("0200")[-1])
    assert f[53] == "2610000000000000"
    assert isinstance(f[35], RawTrack | str) and f[35] != f"{SPARE.pan}=2812201" + "0" * 10
    (row,) = host.rows(
        "SELECT entry_mode, software FROM journal WHERE id = ?", (int(sale.rrn or 0),)
    )
    assert row["software"] == "0.1.0"

    # a void of it: 61 is batch + STAN, 12 digits
    void = t.void(str(sale.stan), "123456")
    assert void.approved, void.to_json()
    f = fields(proxy.requests("0200")[-1])
    assert f[61] == t.batch + str(sale.stan) and len(str(f[61])) == 12

    # a second sale, refunded
    sale2 = t.purchase(800, SPARE2)
    assert sale2.approved, sale2.to_json()
    refund = t.refund(300, str(sale2.rrn), supervisor_password="123456")
    assert refund.approved, refund.to_json()

    # a sale whose answer is lost: the reversal carries the encrypted track too
    proxy.inject(Fault(Action.DROP_RESPONSE, mti="0200"))
    lost = t.purchase(500, SPARE)
    assert not lost.approved and lost.reason == "network.timeout", lost.to_json()
    proxy.clear()
    echo = t.echo()
    assert echo.approved, echo.to_json()
    rev = fields(proxy.requests("0400")[-1])
    assert rev[39] == "98" and str(rev[53])[2] == "1"

    # parameter download: the standard records only (a stock terminal)
    params = t.parameters()
    assert params.approved, params.to_json()
    got = params.extra["parameters"]
    assert isinstance(got, dict) and got["22"] == "老王面馆 Wang's Noodles"
    answer = [s for s in proxy.seen if s.mti == "0810"][-1]
    raw62 = fields(answer)[62]
    assert isinstance(raw62, bytes) and b"95" not in raw62[-60:]  # no [ext] host name

    # status upload, kept with the terminal at the host
    status = t.status_upload()
    assert status.approved, status.to_json()
    (term,) = host.rows("SELECT status_records FROM terminals WHERE tid = ?", (TID,))
    assert bytes.fromhex(term["status_records"]).startswith(b"011021031041051")

    # settlement balances: purchase + void + purchase + refund (+ the reversed sale)
    settle = t.settle()
    assert settle.approved and settle.reason == "settlement.balanced", settle.to_json()


def test_cli_dialect_cup_is_remembered(host: HostProc, tmp_path: Path) -> None:
    state = tmp_path / "state"
    base = [
        sys.executable, "-m", "clearpos.cli", "pos", "--host", f"{host.host}:{host.port}",
        "--state", str(state), "--json",
    ]  # fmt: skip
    first = [*base, "--tid", TID, "--mid", MID, "--tmk", TMK.hex().upper(), "--dialect", "cup"]
    e = env()
    r = subprocess.run(
        [*first, "login", "--operator", "01", "--password", "0000"],
        capture_output=True, text=True, env=e, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*base, "purchase", "2.00", "--card", SPARE.pan, "--expiry", "2812", "--pin", "123456"],
        capture_output=True, text=True, env=e, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"approved": true' in r.stdout
    row = host.rows(
        "SELECT facts FROM journal WHERE tid = ? AND kind = 'signon' ORDER BY id DESC", (TID,)
    )[0]
    assert '"scheme": "004"' in row["facts"]
