"""``clearpos demo``: the whole story of SCENARIOS.md on one machine, in under a minute.

An embedded host on a SQLite store, a virtual terminal behind a fault proxy
(so network cuts are real), and the help desk's explanation of every decline.
The store is left behind so ``clearpos diagnose`` can be tried on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from . import diagnosis
from .app import console_sidecar
from .audit import run_audit
from .clock import show
from .host.embedded import EmbeddedHost
from .keys import KeyEncryptionKey
from .keys.kek import ENV_KEK, ENV_KEK_FILE
from .lab.faultproxy import Action, Fault, FaultProxy
from .money import fen_yuan
from .reasons import Lang, catalog
from .store import SqliteDatabase, Tx
from .store.queries import audit as summary_q
from .terminal.client import HostLink
from .terminal.machine import CardInput, Terminal
from .terminal.screens import Outcome

MAIN = ("10000001", "898310048161234", "0123456789ABCDEFFEDCBA9876543210")
RESTRICTED = ("10000002", "898310048162001", "1F2E3D4C5B6A79880897A6B5C4D3E2F1")
ARREARS = ("10000003", "898310048163002", "A1B2C3D4E5F60718293A4B5C6D7E8F90")
SUSPENDED = ("10000005", "898310048161234", "FEDCBA98765432100123456789ABCDEF")
OLD_SOFTWARE = ("10000006", "898310048161234", "0F1E2D3C4B5A69788796A5B4C3D2E1F0")
SPARE = ("10000007", "898310048161234", "5A5A5A5AA5A5A5A53C3C3C3CC3C3C3C3")
CHIP_TERMINAL = ("10000011", "898310048161234", "7B6A59483726150413243546576879A8")

RICH = CardInput("6222021234567890123", "2812", "123456")
LOW = CardInput("6225880000001017", "2812", "123456")
FROZEN = CardInput("6225880000001025", "2812", "123456")
LOST = CardInput("6225880000001033", "2812", "123456")
STOLEN = CardInput("6225880000001041", "2812", "123456")
EXPIRED = CardInput("6225880000001066", "2401", "123456")
DAILY = CardInput("6225880000001082", "2812", "123456")
VELOCITY = CardInput("6225880000001090", "2812")
WRONG_PIN = CardInput("6225880000001108", "2812", "000000")
SPARE_CARD = CardInput("6225880000001116", "2812", "123456")
VISA = CardInput("4000000000002016", "2812")
MASTER = CardInput("5100000000003010", "2812")
SPARE2 = CardInput("6225880000001124", "2812", "123456")
LONG = CardInput("6214830000000001138", "3006", "8888")
CHIP = "6214830000000002144"  # a chip card (CVN 18); its card file is personalised


class Demo:
    def __init__(self, out: Path, lang: Lang, console: tuple[str, int] | None) -> None:
        self.out = out
        self.lang: Lang = lang
        self.kek = KeyEncryptionKey.load(out / "kek")
        if not os.environ.get(ENV_KEK) and not os.environ.get(ENV_KEK_FILE):
            # the demo's own KEK is this process's: the console (its session secret)
            # loads the KEK too, and without this would look for ~/.clearpos/kek
            os.environ[ENV_KEK_FILE] = str(out / "kek")
        self.db = SqliteDatabase(out / "clearpos.db")
        world = resources.files("clearpos.data").joinpath("world.toml")
        with resources.as_file(world) as path:
            self.host = EmbeddedHost(
                self.db,
                self.kek,
                world=path,
                reset=True,
                sidecars=[console_sidecar(*console)] if console else [],
            ).start()
        self.console_url = self.host.service_urls[0] if self.host.service_urls else None
        self.proxy = FaultProxy((self.host.host, self.host.port)).start()
        self.terminals: dict[str, Terminal] = {}
        self.outcomes: list[tuple[str, Outcome]] = []
        self.scenario = ""

    # ------------------------------------------------------------------ plumbing

    def zh_en(self, zh: str, en: str) -> str:
        return zh if self.lang == "zh" else en

    def terminal(
        self, spec: tuple[str, str, str], *, software: str | None = None, name: str = ""
    ) -> Terminal:
        key = spec[0] + name
        if key not in self.terminals:
            link = HostLink("127.0.0.1", self.proxy.port, timeout=1.0, connect_timeout=1.0)
            self.terminals[key] = Terminal(
                self.out / "pos" / key,
                link=link,
                tid=spec[0],
                mid=spec[1],
                tmk=bytes.fromhex(spec[2]),
                software=software,
                floor_limit_fen=20000,
                lang=self.lang,
                kek=self.kek,
            )
        return self.terminals[key]

    def section(self, sid: str, zh: str, en: str) -> None:
        self.scenario = sid
        print(
            f"\n━━ {sid} {self.zh_en(zh, en)} "
            + "━" * max(4, 60 - len(sid) - len(self.zh_en(zh, en)) * 2)
        )

    def show(self, what: str, outcome: Outcome, *, explain: bool = True) -> Outcome:
        self.outcomes.append((self.scenario, outcome))
        print(f"▸ {what}")
        for line in outcome.render(self.lang).splitlines():
            print(f"  │ {line}")
        if explain and not outcome.approved and outcome.rrn:
            self.explain(outcome.rrn)
        return outcome

    def explain(self, rrn: str) -> None:
        """What the help desk sees for this RRN (the journal, not a guess)."""
        for line in explain_rrn(self.db, rrn, self.lang):
            print(f"  ☎ {line}")

    def tx(self, fn: Callable[[Tx], Any]) -> Any:
        with self.db.transaction() as tx:
            return fn(tx)

    def close(self) -> None:
        for t in self.terminals.values():
            with contextlib.suppress(Exception):
                t.close()
        self.proxy.close()
        self.host.stop()

    # ------------------------------------------------------------------ the story

    def run(self) -> int:
        """The story, scene by scene (each a method below, in SCENARIOS.md's words)."""
        from .ops import users

        # the provider's staff: approvals need a registered supervisor (console users)
        self.tx(lambda tx: users.add_user(tx, "li", "supervisor", "demo-supervisor-pw", by="setup"))
        self.tx(lambda tx: users.add_user(tx, "admin", "admin", "demo-admin-pw", by="setup"))
        t = self.terminal(MAIN)
        self.intro()
        start, end = self.schedule_window()
        self.sign_in(t)
        sale = self.sales(t)
        r = self.user_status(t)
        self.velocity_and_pin(t)
        self.maintenance(t, start, end)
        self.network(t)
        self.keys_replaced(t)
        self.malformed(t)
        self.void_and_preauth(t)
        self.chip_and_quickpass()
        self.arrears()
        self.restrictions(r)
        self.risk(t)
        self.section("B4 · B5", "按参考号查询交易状态", "status of a transaction by its RRN")
        if sale.rrn:
            self.explain(sale.rrn)
        self.section(
            "E", "日终结算（自动对账）", "end of day: settlement (automatic reconciliation)"
        )
        self.show("settle", t.settle(), explain=False)
        print("▸ doctor")
        for line in t.doctor().render(self.lang).splitlines():
            print(f"  │ {line}")
        return self.summary()

    # ------------------------------------------------------------------ the scenes

    def intro(self) -> None:
        print(
            self.zh_en(
                "clearpos 演示：一台收银终端的一天",
                "clearpos demo: a day in the life of a countertop POS",
            )
        )
        print(
            self.zh_en(
                f"主机 {self.host.host}:{self.host.port}，存储 {self.db.url}",
                f"host {self.host.host}:{self.host.port}, store {self.db.url}",
            )
        )
        print(
            self.zh_en(
                f"演示用的主机密钥 (KEK {self.kek.fingerprint()}) 已生成在 {self.out / 'kek'}",
                f"the demo made its own KEK ({self.kek.fingerprint()}) in {self.out / 'kek'}",
            )
            if not os.environ.get(ENV_KEK)
            else self.zh_en(
                f"主机密钥来自 ${ENV_KEK} (KEK {self.kek.fingerprint()})",
                f"KEK {self.kek.fingerprint()} from ${ENV_KEK}",
            )
        )
        if self.console_url:
            print(
                self.zh_en(
                    f"管理台 {self.console_url}（用户 admin / demo-admin-pw；演示结束后用 --stay 保持运行）",
                    f"console {self.console_url} (user admin / demo-admin-pw; --stay keeps it up after the story)",
                )
            )

    def schedule_window(self) -> tuple[datetime, datetime]:
        """A maintenance window a few seconds ahead: announced before it begins (A9)."""
        from .ops import maintenance

        now = datetime.now(UTC)
        start, end = now + timedelta(seconds=6), now + timedelta(seconds=9)
        self.tx(
            lambda tx: maintenance.schedule(
                tx,
                "host",
                start,
                end,
                f"系统维护 {show(start, seconds=True)[11:]}–{show(end, seconds=True)[11:]}，期间暂停交易",
                f"Maintenance {show(start, seconds=True)[11:]}–{show(end, seconds=True)[11:]}, no transactions",
                by="ops-zhang",
                why="demo: database upgrade",
            )
        )
        return start, end

    def sign_in(self, t: Terminal) -> None:
        self.section("C4", "操作员签到（先输错密码）", "operator sign-in (wrong password first)")
        self.show("login 01 / 1234", t.login("01", "1234"))
        self.section(
            "E · A9",
            "早上签到：下载工作密钥，并收到维护公告",
            "morning sign-on: working keys, and the maintenance notice",
        )
        self.show("login 01 / 0000", t.login("01", "0000"))

    def sales(self, t: Terminal) -> Outcome:
        self.section("E", "消费、余额查询", "sales and a balance inquiry")
        sale = self.show("purchase ¥12.34 (swipe + PIN)", t.purchase(1234, RICH))
        self.show(
            "purchase ¥8.00 (keyed, no PIN)",
            t.purchase(800, CardInput(SPARE2.pan, SPARE2.expiry, keyed=True)),
        )
        self.show("balance", t.balance(RICH))
        return sale

    def user_status(self, t: Terminal) -> Terminal:
        """A1–A5; returns the restricted merchant's terminal (signed in)."""
        self.section(
            "A1–A5",
            "用户状态异常：余额、冻结、过期、挂失、限额",
            "user status abnormal: funds, frozen, expired, lost, limits",
        )
        self.show("A1 ¥50.00 on a card holding ¥5.00", t.purchase(5000, LOW))
        self.show("A2 frozen card", t.purchase(1000, FROZEN))
        self.show("A3 card past its expiry", t.purchase(1000, EXPIRED))
        self.show("A4 card reported lost", t.purchase(1000, LOST))
        self.show("A4 card reported stolen", t.purchase(1000, STOLEN))
        self.show("A5 ¥60 then ¥50 on a ¥100/day card", t.purchase(6000, DAILY), explain=False)
        self.show("A5 second purchase", t.purchase(5000, DAILY))
        r = self.terminal(RESTRICTED)
        r.login("01", "0000")
        self.show("A5 ¥600 at a merchant capped at ¥500", r.purchase(60000, MASTER))
        return r

    def velocity_and_pin(self, t: Terminal) -> None:
        self.section(
            "A6",
            "交易频率过高，卡片被暂时锁定",
            "too many transactions: the card is locked for a while",
        )
        for i in range(5):
            t.purchase(100 + i, VELOCITY)
        self.show("6th purchase within a minute", t.purchase(106, VELOCITY))
        self.section("A7", "密码错误三次，密码锁定", "three wrong PINs lock the PIN")
        for i in range(2):
            self.show(f"wrong PIN #{i + 1}", t.purchase(100, WRONG_PIN), explain=False)
        self.show("wrong PIN #3", t.purchase(100, WRONG_PIN))

    def maintenance(self, t: Terminal, start: datetime, end: datetime) -> None:
        self.section("A9", "系统维护窗口内交易", "a transaction inside the maintenance window")
        wait = (start - datetime.now(UTC)).total_seconds() + 0.3
        if wait > 0:
            print(
                self.zh_en(
                    f"  （等待 {wait:.0f} 秒，维护开始）",
                    f"  (waiting {wait:.0f} s for the window to begin)",
                )
            )
            time.sleep(wait)
        self.show("purchase during maintenance", t.purchase(1000, SPARE2))
        wait = (end - datetime.now(UTC)).total_seconds() + 0.3
        if wait > 0:
            time.sleep(wait)
        self.show("after the window", t.purchase(1000, SPARE2))

    def network(self, t: Terminal) -> None:
        self.section(
            "A8 · B3",
            "网络中断：应答丢失，终端自动冲正，顾客未被扣款",
            "network cut: the answer is lost, the terminal reverses, the customer is not charged",
        )
        self.proxy.inject(Fault(Action.DROP_RESPONSE, mti="0200", times=1))
        self.show("purchase ¥88.00, answer lost", t.purchase(8800, SPARE_CARD))
        self.proxy.inject(Fault(Action.CUT_RESPONSE, mti="0200", after_bytes=20, times=1))
        self.show("purchase ¥66.00, connection cut mid-answer", t.purchase(6600, SPARE_CARD))
        self.show("purchase ¥66.00 again (new STAN)", t.purchase(6600, SPARE_CARD))
        self.section(
            "C5",
            "重复报文：主机拒绝重复，顾客只扣一次",
            "a duplicated request: refused by the host, charged once",
        )
        self.proxy.inject(Fault(Action.DUPLICATE, mti="0200", times=1))
        self.show("purchase ¥20.00 sent twice by the network", t.purchase(2000, SPARE_CARD))

    def keys_replaced(self, t: Terminal) -> None:
        self.section(
            "C1 · C3",
            "密钥被更换：提示重新签到，终端自动签到后请重新交易",
            "keys replaced elsewhere: A0, the terminal signs on again, repeat the sale",
        )
        other = self.terminal(MAIN, name="-spare-device")
        other.login("01", "0000")
        # A sign-on alone no longer takes a terminal off the host (the keys it last
        # proved stay valid, docs/security.md); a device that signs on *and trades*
        # with the TID (here a balance inquiry, MAC'd) holds the keys the host now knows.
        other.balance(SPARE_CARD)
        print(
            self.zh_en(
                "  （同一终端号在另一台设备上签到并查询余额，主机现在认的是那台设备的工作密钥）",
                "  (the same TID signed on from another device and used its keys there: the host "
                "now knows that device's keys)",
            )
        )
        self.show("purchase with the old keys", t.purchase(1500, SPARE_CARD))
        self.show("repeat the purchase", t.purchase(1500, SPARE_CARD))

    def malformed(self, t: Terminal) -> None:
        self.section(
            "A10",
            "报文格式错误：主机答30，继续服务",
            "malformed message: the host answers 30 and keeps serving",
        )
        print("  " + send_malformed(self.host.host, self.host.port, MAIN[0], MAIN[1]))
        self.show("echo test after the bad frame", t.echo(), explain=False)

    def void_and_preauth(self, t: Terminal) -> None:
        self.section("B6", "输错金额：当批撤销", "wrong amount keyed: void in the same batch")
        wrong = self.show("purchase ¥123.40 (meant ¥12.34)", t.purchase(12340, LONG))
        if wrong.stan:
            self.show("void it (supervisor 99)", t.void(wrong.stan, "123456"))
        self.section(
            "E", "预授权与完成、离线消费", "pre-authorisation and completion, an offline sale"
        )
        pre = self.show("pre-auth ¥300.00 (hotel deposit)", t.preauth(30000, RICH))
        if pre.stan:
            self.show("completion ¥258.00", t.complete(25800, pre.stan, RICH))
        self.proxy.down()
        self.show("host unreachable: ¥9.90 stored offline (floor ¥200)", t.purchase(990, VISA))
        self.proxy.up()
        self.show("next sale uploads the offline one first", t.purchase(500, RICH))

    def chip_and_quickpass(self) -> None:
        """A personalised chip card at the chip terminal: inserted (the card checks the
        host's ARPC), tapped under the no-PIN limit, tapped over it (55, then with PIN)."""
        from .keys import SecurityModule
        from .keys.tokens import PanTokenizer
        from .ops.chip import personalise

        self.section(
            "E · chip",
            "芯片卡插卡消费与闪付",
            "a chip card: inserted, and tapped (QuickPass)",
        )
        path = self.out / "cards" / "chip-card.toml"
        path.parent.mkdir(exist_ok=True)
        hsm, tokens = SecurityModule(self.kek), PanTokenizer(self.kek)
        card, _ = self.tx(
            lambda tx: personalise(tx, hsm, tokens.token(CHIP), CHIP, path, by="ops-zhang")
        )
        print(
            self.zh_en(
                f"  ✓ 发卡制卡：{card!r} 写入 {path}（clearpos admin cards personalise）",
                f"  ✓ card personalised: {card!r} written to {path} "
                "(clearpos admin cards personalise)",
            )
        )
        c = self.terminal(CHIP_TERMINAL)
        self.show("chip terminal signs on (CA keys, chip parameters)", c.login("01", "0000"))
        sale = self.show(
            "insert the card, ¥45.60 + PIN",
            c.purchase(4560, CardInput.of_chip(path, pin="123456")),
        )
        self.chip_facts(sale)
        tap = self.show(
            "QuickPass tap ¥88.00, no PIN (limit ¥1,000.00)",
            c.purchase(8800, CardInput.of_chip(path, tap=True)),
        )
        self.chip_facts(tap)
        self.show(
            "QuickPass tap ¥1,200.00 without PIN",
            c.purchase(120000, CardInput.of_chip(path, tap=True)),
        )
        self.show(
            "the same tap with the PIN",
            c.purchase(120000, CardInput.of_chip(path, pin="123456", tap=True)),
        )

    def chip_facts(self, out: Outcome) -> None:
        """What the card itself decided (its second GENERATE AC on the host's ARPC), and
        the chip line a receipt carries (application, cryptogram, counter)."""
        chip = out.extra.get("chip")
        if not isinstance(chip, dict):
            return
        verified = chip.get("issuer_auth") == "verified"
        print(
            self.zh_en(
                f"  ◆ 卡片{'已验证主机的 ARPC' if verified else '未能验证主机的 ARPC'}，"
                f"第二次 GENERATE AC 答 {chip.get('cryptogram')}",
                f"  ◆ the card {'verified' if verified else 'could not verify'} the host's ARPC; "
                f"its second GENERATE AC answered {chip.get('cryptogram')}",
            )
        )
        print(
            f"  🧾 {chip.get('label') or 'UnionPay'}  AID {chip.get('aid')}  "
            f"{chip.get('cryptogram')} {chip.get('tc') or '-'}  ATC {int(chip.get('atc') or 0):04X}"
        )

    def arrears(self) -> None:
        from .ops import arrears

        self.section(
            "D1 · D5 · D6",
            "欠费停机，缴费后申请复机并审批",
            "stopped for arrears; pay, apply, approve",
        )
        a = self.terminal(ARREARS)
        a.login("01", "0000")
        self.show("purchase at the stopped merchant", a.purchase(1000, MASTER))
        entry = self.tx(
            lambda tx: arrears.pay(
                tx, ARREARS[1], 5800, "BANK-20261123-0042", by="cashier-wang", note="fees and fine"
            )
        )[0]
        print(
            self.zh_en(
                f"  ✓ 记录缴费 ¥58.00，凭证 {entry.voucher}",
                f"  ✓ payment of ¥58.00 recorded, voucher {entry.voucher}",
            )
        )
        req = self.tx(lambda tx: arrears.request_resumption(tx, ARREARS[1], by="merchant-liu"))[0]
        print(
            self.zh_en(
                f"  ✓ 商户提交复机申请 #{req.id}", f"  ✓ merchant applies for resumption #{req.id}"
            )
        )
        self.tx(
            lambda tx: arrears.approve(tx, req.id, by="li", why="paid in full, voucher checked")
        )
        print(
            self.zh_en(
                "  ✓ 主管审批通过，商户复机",
                "  ✓ supervisor approves: the merchant is active again",
            )
        )
        self.show("purchase after resumption", a.purchase(1000, MASTER))

    def restrictions(self, r: Terminal) -> None:
        self.section(
            "D2 · D3 · D4 · B7",
            "限制交易、终端停机、软件需更新",
            "restricted type, stopped terminal, software update",
        )
        self.show(
            "D2 pre-authorisation at a merchant restricted for pre-auths", r.preauth(100, MASTER)
        )
        self.show("D3 stopped terminal signs on", self.terminal(SUSPENDED).login("01", "0000"))
        self.show(
            "D4 terminal on 0.1.0 where 0.2.0 is required",
            self.terminal(OLD_SOFTWARE).login("01", "0000"),
        )
        self.show(
            "B7 after the update to 0.2.0",
            self.terminal(OLD_SOFTWARE, software="000200", name="-updated").login("01", "0000"),
        )

    def risk(self, t: Terminal) -> None:
        from .ops import merchants

        self.section("D · risk", "风控停机与恢复", "stopped by the risk team, then resumed")
        self.tx(
            lambda tx: merchants.suspend(
                tx, MAIN[1], "risk", by="risk-chen", why="unusual refunds under review"
            )
        )
        self.show("purchase while under review", t.purchase(1000, LONG))
        self.tx(
            lambda tx: merchants.resume(
                tx, MAIN[1], by="risk-chen", why="review closed, nothing found"
            )
        )
        self.show("purchase after resumption", t.purchase(1000, LONG))

    def summary(self) -> int:
        found = run_audit(self.db.url)
        with self.db.reader() as tx:
            rows = summary_q.reason_counts(tx)
            debits, credits = summary_q.money_moved(tx)
        print("\n" + "━" * 64)
        print(self.zh_en("当日小结", "day summary"))
        cat = catalog()
        for key, n in rows:
            text = cat[key].screen_text(self.lang) if key in cat else key
            print(f"  {n:>4}  {key:<34} {text}")
        print(
            self.zh_en(
                f"  持卡人借记 ¥{fen_yuan(debits)}，贷记 ¥{fen_yuan(credits)}",
                f"  cardholders debited ¥{fen_yuan(debits)}, credited ¥{fen_yuan(credits)}",
            )
        )
        print(
            self.zh_en("  对账：" if self.lang == "zh" else "", "  audit: ")
            + ("OK" if not found else f"{len(found)} discrepancies")
        )
        for d in found:
            print(f"    {d.check}: {d.detail}")
        print(
            self.zh_en(
                f"\n试试：clearpos diagnose --db {self.db.url} --tid {MAIN[0]}\n"
                f"或者：clearpos console --db {self.db.url} --listen 127.0.0.1:8080",
                f"\ntry: clearpos diagnose --db {self.db.url} --tid {MAIN[0]} --lang en\n"
                f"or: clearpos console --db {self.db.url} --listen 127.0.0.1:8080",
            )
        )
        return 1 if found else 0


def explain_rrn(db: SqliteDatabase, rrn: str, lang: Lang) -> list[str]:
    """The help desk's view of one transaction, from the journal alone."""
    with db.reader() as tx:
        d = diagnosis.explain_rrn(tx, rrn, lang)
    return d.lines() if d is not None else [f"RRN {rrn}: not in the journal"]


def send_malformed(host: str, port: int, tid: str, mid: str) -> str:
    """A 0200 whose amount holds a letter, as a faulty terminal might send."""
    from .wire import TPDU, Framer, Header, decode, encode, encode_frame

    body = encode("0200", {3: "000000", 4: "000000001234", 11: "999999", 41: tid, 42: mid})
    body = body.replace(bytes.fromhex("001234"), bytes.fromhex("0012A4"), 1)
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(encode_frame(TPDU(), Header(), body))
        framer = Framer()
        while True:
            frames = framer.feed(s.recv(4096))
            if frames:
                f = decode(frames[0].body).fields
                code, text = f.get(39), f.get(63)
                key = text[3:] if isinstance(text, str) else ""
                return f"malformed 0200 (field 4 = 12A4) → {code!s} {key}"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("demo-run"),
        help="where the store, keys and terminal state go (default demo-run). A directory an "
        "earlier demo made is wiped first; any other non-empty directory is refused",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="wipe --dir even though the demo did not make it",
    )
    p.add_argument("--lang", choices=["zh", "en"], default="zh")
    p.add_argument(
        "--console",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="where the web console listens during the demo (default: a free port on 127.0.0.1; 'off' for none)",
    )
    p.add_argument(
        "--stay",
        action="store_true",
        help="keep the host and console running after the story (Ctrl-C ends)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print only a JSON summary on standard output (the story goes to standard error)",
    )
    p.set_defaults(run=run)


#: the file that marks a directory as the demo's own, so a later run may wipe it
MARKER = ".clearpos-demo"


class DirRefused(Exception):
    """``--dir`` names something the demo must not wipe."""


def prepare_dir(out: Path, *, force: bool) -> None:
    """Make ``out`` an empty directory the demo owns, wiping only what the demo made.

    A missing or empty directory is taken; one holding the marker of an earlier
    demo is wiped; anything else is refused unless ``force``.
    """
    if out.exists() and not out.is_dir():
        raise DirRefused(f"--dir {out} is a file, not a directory; nothing was changed")
    from .store.lock import holder

    running = holder(out / "clearpos.db") if out.is_dir() else None
    if running is not None:
        raise DirRefused(
            f"--dir {out.absolute()} is in use by a running demo or host (PID {running}); "
            "stop it first or give another --dir; nothing was changed"
        )
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file() and not force:
            raise DirRefused(
                f"--dir {out.absolute()} is not empty and was not made by clearpos demo: "
                "give an empty or new directory, or add --force to wipe it; nothing was changed"
            )
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(
        "made by `clearpos demo`; the next demo run with this --dir wipes this directory\n",
        encoding="utf-8",
    )


def run(args: argparse.Namespace) -> int:
    out: Path = args.dir
    try:
        prepare_dir(out, force=args.force)
    except DirRefused as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        else:
            print(f"clearpos demo: {exc}", file=sys.stderr)
        return 1
    if args.json:  # stdout carries the JSON document alone
        with contextlib.redirect_stdout(sys.stderr):
            rc, demo, elapsed = _story(args, out)
    else:
        rc, demo, elapsed = _story(args, out)
        print(f"\n({elapsed:.1f} s)")
    if args.json:
        counts = Counter(o.reason for _, o in demo.outcomes)
        print(
            json.dumps(
                {
                    "ok": rc == 0,
                    "seconds": round(elapsed, 1),
                    "outcomes": dict(counts),
                    "db": demo.db.url,
                }
            )
        )
    return rc


def _story(args: argparse.Namespace, out: Path) -> tuple[int, Demo, float]:
    from .store.lock import lock_store

    lock = lock_store(out / "clearpos.db")  # a second demo or host on this store is refused
    try:
        return _told(args, out)
    finally:
        lock.release()


def _told(args: argparse.Namespace, out: Path) -> tuple[int, Demo, float]:
    console = None
    if args.console and args.console != "off":
        from .host.cli import hostport

        console = hostport(args.console)
    started = time.monotonic()
    demo = Demo(out, args.lang, console)
    try:
        rc = demo.run()
        if args.stay:
            print(
                demo.zh_en(
                    f"\n主机 {demo.host.host}:{demo.host.port} 和管理台 {demo.console_url} 继续运行（管理员 admin / demo-admin-pw），按 Ctrl-C 结束",
                    f"\nhost {demo.host.host}:{demo.host.port} and console {demo.console_url} keep running (admin / demo-admin-pw); Ctrl-C ends",
                )
            )
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    finally:
        demo.close()
    return rc, demo, time.monotonic() - started


if __name__ == "__main__":
    sys.exit(
        run(
            argparse.Namespace(
                dir=Path("demo-run"), lang="zh", console=None, json=False, force=False, stay=False
            )
        )
    )
