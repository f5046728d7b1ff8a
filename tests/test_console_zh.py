"""The console's merchant and terminal pages open with the diagnosis, and zh pages show
no stored value untranslated (issue 17, item 6).

Real host, real SQLite store, the whole ASGI app (tests/test_console.py's Browser).
The pages are parsed as HTML: their visible text, minus identifiers shown on purpose
(``class="key"``: reason keys, MTIs), must hold none of the store's enum values
(journal kinds, audited actions, ledger events, states, causes) as a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from host_fixture import start_host
from hostclient import Client
from test_console import PASSWORDS, SECRET, Browser

from clearpos.console.app import create_app
from clearpos.diagnosis.sentences import KIND
from clearpos.ops import arrears, merchants, terminals
from clearpos.ops.users import add_user
from clearpos.store import open_database

ARREARS_MID, ARREARS_TID = "898310048163002", "10000003"
ARREARS_TMK = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
SPARE = "6225880000001116"

STATES = ("active", "restricted", "suspended", "closed", "replaced", "pending", "approved",
          "rejected", "declined", "reversed", "voided", "completed")  # fmt: skip
ENUMS = sorted(
    {
        *KIND,
        *{a for lc in (merchants.MERCHANT, terminals.TERMINAL) for a, *_ in lc.table()},
        "arrears.payment",
        "arrears.fee",
        "arrears.fine",
        "resumption.request",
        "resumption.approve",
        "resumption.reject",
        "fee",
        "fine",
        "payment",
        "arrears",
        "risk",
        "manual",
        *STATES,
    }
)


class Visible(HTMLParser):
    """The text a reader sees, leaving out <script>, <style>, identifiers and commands
    (``class="key"``) and what a person recorded, shown as they wrote it (``"said"``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: hidden?
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "input", "img", "meta", "link", "hr"):
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = tag in ("script", "style") or "key" in classes or "said" in classes
        self.stack.append(hidden or any(self.stack))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "input", "img", "meta", "link", "hr") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not any(self.stack):
            self.text.append(data)


def visible(html: str) -> str:
    p = Visible()
    p.feed(html)
    return " ".join(p.text)


def _around(text: str, word: str) -> str:
    m = re.search(rf"(?<![\w.\-/]){re.escape(word)}(?![\w.\-/])", text)
    return " ".join(text[max(0, m.start() - 60) : m.end() + 30].split()) if m else ""


def untranslated(text: str) -> list[str]:
    return [e for e in ENUMS if re.search(rf"(?<![\w.\-/]){re.escape(e)}(?![\w.\-/])", text)]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("console-zh")
    host = start_host(tmp)
    rrns: dict[str, str] = {}
    try:
        c = Client(host.host, host.port, tid=ARREARS_TID, mid=ARREARS_MID, tmk=ARREARS_TMK)
        c.connect()
        assert c.sign_on().code == "00"
        r = c.purchase(100, card=c.card(pan=SPARE))
        assert r.reason == "merchant.suspended.arrears"
        rrns["declined"] = r.msg.rrn  # type: ignore[attr-defined]
        db = open_database(host.url)
        with db.transaction() as tx:
            add_user(tx, "sam", "supervisor", PASSWORDS["sam"], by="test")
            arrears.charge(tx, ARREARS_MID, "fee", 1000, by="wang", why="monthly fee")
            arrears.pay(tx, ARREARS_MID, 6800, "PAY-1", by="wang")
            req, _ = arrears.request_resumption(tx, ARREARS_MID, by="wang")
            arrears.approve(tx, req.id, by="sam")
        r = c.purchase(100, card=c.card(pan=SPARE))
        assert r.code == "00", r.reason
        rrns["approved"] = r.msg.rrn  # type: ignore[attr-defined]
        c.close()
    finally:
        host.stop()
    b = Browser(create_app(open_database(host.url), secret=SECRET))
    assert b.login("sam").status == 303
    yield b, rrns


@pytest.mark.parametrize("path", [f"/merchants/{ARREARS_MID}", f"/terminals/{ARREARS_TID}"])
def test_subject_pages_open_with_the_current_headline_and_a_chart(
    browser: tuple[Browser, dict[str, str]], path: str
) -> None:
    b, _ = browser
    page = b.get(path + "?lang=en")
    assert page.status == 200, page.body[:300]
    body = page.body
    head = re.search(r'id="dx-headline">(.*?)</p>', body, re.S)
    assert head and "arrears" not in head.group(1).lower(), head
    assert 'id="dx-resolved"' in body and "merchant.suspended.arrears" in body
    assert "now resolved at" in body and "by supervisor sam" in body
    assert '<figure class="chart-box" id="dx-chart"><svg' in body
    # the evidence first, the forms after it
    first_form = body.find("<form", body.find('id="diagnosis"'))
    assert body.find('id="diagnosis"') < body.find("<table") < first_form


@pytest.mark.parametrize(
    "which", ["merchant", "terminal", "declined", "approved", "merchants", "terminals"]
)
def test_zh_pages_translate_every_stored_value(
    browser: tuple[Browser, dict[str, str]], which: str
) -> None:
    b, rrns = browser
    path = {
        "merchant": f"/merchants/{ARREARS_MID}",
        "terminal": f"/terminals/{ARREARS_TID}",
        "declined": f"/transactions/{rrns['declined']}",
        "approved": f"/transactions/{rrns['approved']}",
        "merchants": "/merchants",
        "terminals": "/terminals",
    }[which]
    page = b.get(path + "?lang=zh")
    assert page.status == 200
    text = visible(page.body)
    where = {e: _around(text, e) for e in untranslated(text)}
    assert not where, (path, where)
    if which in ("declined", "approved"):
        assert "刷卡" in text or "手输" in text
    if which == "merchant":
        assert "服务费" in text and "缴费" in text and "批准复机" in text
        assert "loaded from" not in text


def test_the_check_catches_an_untranslated_value() -> None:
    """The check itself can fail: English enum words in visible text are found."""
    assert untranslated(visible("<td>purchase</td><td>resumption.approve</td>")) == [
        "purchase",
        "resumption.approve",
    ]
    assert untranslated(visible('<span class="key">card.frozen purchase</span>')) == []
