"""Screens say what happened: one vocabulary per outcome kind (issue 17, item 8).

A table of real terminals against a real host on loopback (an embedded host on a
SQLite file), each row a case the issue found, in both languages; then a table of
:func:`finish` on outcomes as the terminal builds them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from host_fixture import EXAMPLE_WORLD

from clearpos.clock import CST
from clearpos.host.embedded import EmbeddedHost
from clearpos.keys import KeyEncryptionKey
from clearpos.ops import maintenance
from clearpos.store import SqliteDatabase
from clearpos.terminal.client import HostLink
from clearpos.terminal.machine import CardInput, Terminal
from clearpos.terminal.screens import Outcome, finish, kind_of

KEK = KeyEncryptionKey(bytes(range(32)))
TID, MID, TMK = "10000001", "898310048161234", "0123456789ABCDEFFEDCBA9876543210"
WRONG_TMK = "00112233445566778899AABBCCDDEEFF"
RICH = CardInput("6222021234567890123", "2812", "123456")
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[EmbeddedHost, Path]]:
    """A fresh host per case: every case's terminal starts its STANs at 1."""
    tmp = tmp_path
    db = SqliteDatabase(tmp / "screens.db")
    h = EmbeddedHost(db, KEK, world=EXAMPLE_WORLD, reset=True).start()
    with db.transaction() as tx:
        maintenance.schedule(
            tx, "host", START, START + timedelta(hours=2),
            "系统维护 02:00–04:00，期间暂停交易", "Maintenance 02:00–04:00, no transactions",
            by="ops", why="upgrade",
        )  # fmt: skip
    try:
        yield h, tmp
    finally:
        h.stop()


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminal(host: tuple[EmbeddedHost, Path], name: str, lang: str, **kw: Any) -> Terminal:
    h, tmp = host
    port = kw.pop("port", h.port)
    return Terminal(
        tmp / f"{name}-{lang}",
        link=HostLink("127.0.0.1", port, timeout=2.0, connect_timeout=1.0),
        tid=kw.pop("tid", TID),
        mid=MID,
        tmk=bytes.fromhex(kw.pop("tmk", TMK)),
        lang=lang,  # type: ignore[arg-type]
        kek=KEK,
    )


# name, how to provoke it, (zh screen, en screen), words that must NOT be shown, must be shown
CASES = [
    (
        "login",
        lambda h, lang: terminal(h, "ok", lang).login("01", "0000"),
        ("操作员签到成功", "Operator signed in"),
        ("交易成功", "Approved", "receipt", "签购单"),
        (),
    ),
    (
        "balance",
        lambda h, lang: (t := terminal(h, "bal", lang), t.login("01", "0000"), t.balance(RICH))[2],
        ("查询成功", "Inquiry answered"),
        ("void", "refund", "撤销", "退货", "Print the receipt", "打印签购单"),
        (),
    ),
    (
        "login, host unreachable",
        lambda h, lang: terminal(h, "dead", lang, port=dead_port()).login("01", "0000"),
        ("无法连接主机", "Cannot reach the host"),
        ("未扣款", "not charged", "NOT charged", "离线消费", "offline sale"),
        (),
    ),
    (
        "key check failure",
        lambda h, lang: terminal(h, "kcv", lang, tmk=WRONG_TMK).login("01", "0000"),
        ("密钥校验错，请联系服务商", "Key check failed - call provider"),
        ("应答码: 00", "Code: 00", "操作员01已签到", "Operator 01 signed in"),
        (),
    ),
    (
        "terminal not registered",
        lambda h, lang: terminal(h, "unk", lang, tid="99999999").login("01", "0000"),
        ("终端未登记，请联系服务商", "Terminal not registered"),
        ("操作员01已签到", "Operator 01 signed in"),
        ("未能签到", "did not sign on"),
    ),
    (
        "maintenance notice",
        lambda h, lang: terminal(h, "notice", lang).login("01", "0000"),
        ("操作员签到成功", "Operator signed in"),
        (),
        (f"{START.astimezone(CST):%Y-%m-%d %H:%M}", "+08:00"),
    ),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    ("name", "provoke", "screens", "absent", "present"), CASES, ids=[c[0] for c in CASES]
)
def test_screen_table(
    host: tuple[EmbeddedHost, Path], lang: str, name: str, provoke: Any,
    screens: tuple[str, str], absent: tuple[str, ...], present: tuple[str, ...],
) -> None:  # fmt: skip
    out: Outcome = provoke(host, lang)
    text = out.render(lang)  # type: ignore[arg-type]
    assert out.screen == screens[0 if lang == "zh" else 1], text
    assert text.splitlines()[0].endswith(out.screen)
    for word in absent:
        assert word not in text, (word, text)
    for word in present:  # language-neutral words (dates) in both, the others in theirs
        neutral = not any(c.isalpha() for c in word)
        if neutral or word.isascii() == (lang == "en"):
            assert word in text, (word, text)
    doc = out.to_json()
    assert doc["screen"] == out.screen and doc["outcome_kind"] == kind_of(out.command, out.reason)


def test_purchase_keeps_the_transaction_words(host: tuple[EmbeddedHost, Path]) -> None:
    t = terminal(host, "sale", "zh")
    t.login("01", "0000")
    out = t.purchase(100, RICH)
    assert out.screen == "交易成功" and out.charged and out.extra["outcome_kind"] == "financial"
    assert any("签购单" in step for step in out.remedy)


def _outcome(command: str, reason: str, code: str | None, approved: bool, **kw: Any) -> Outcome:
    return Outcome(command, reason, code, approved, "catalog words", **kw)


@pytest.mark.parametrize(
    ("command", "reason", "code", "approved", "kind", "screen", "shown_code"),
    [
        ("purchase", "approved", "00", True, "financial", "catalog words", "00"),
        ("refund", "card.frozen", "62", False, "financial", "catalog words", "62"),
        ("purchase", "network.unreachable", None, False, "financial", "catalog words", None),
        ("balance", "approved", "00", True, "inquiry", "Inquiry answered", "00"),
        ("balance", "network.timeout", None, False, "local", "No answer from the host", None),
        ("signon", "approved", "00", True, "management", "Signed on", "00"),
        ("signoff", "approved", "00", True, "management", "Signed off", "00"),
        ("echo", "approved", "00", True, "management", "Host reachable", "00"),
        ("logout", "approved", None, True, "management", "Operator signed out", None),
        ("signon", "terminal.key_check_failed", "00", False, "local", "catalog words", None),
        ("echo", "network.unreachable", None, False, "local", "Cannot reach the host", None),
        ("signon", "terminal.unknown", "97", False, "management", "catalog words", "97"),
    ],
)
def test_finish_table(
    command: str, reason: str, code: str | None, approved: bool, kind: str, screen: str,
    shown_code: str | None,
) -> None:  # fmt: skip
    out = finish(_outcome(command, reason, code, approved), "en")
    assert (out.extra["outcome_kind"], out.screen, out.code) == (kind, screen, shown_code)
    again = finish(out, "en")  # idempotent: a second pass changes nothing
    assert (again.screen, again.code, again.remedy) == (screen, shown_code, out.remedy)
    if code == "00" and shown_code is None:
        assert out.extra["host_code"] == "00"
