"""``clearpos diagnose`` on every reason key of spec/reasons.md, produced by a real host.

One host process on loopback; a plain test client provokes each outcome for
real (admin commands set up what the provider controls: maintenance windows,
suspensions). Then ``diagnose --rrn`` must give, for each key: the reason,
the catalog's actor and remedy steps (with the real MID/TID/RRN filled in),
and a cause that states this case's facts from the journal, the current state
and the audit trail. Keys the terminal decides alone (``operator.*``) and the
host never produces (``host.cutover``) are explained from the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from host_fixture import HostProc, Store, start_host
from hostclient import PAN, Client
from test_diagnose_chip import PRODUCED as CHIP_PRODUCED
from test_ops_support import ARREARS_MID, MAIN_MID, run, run_json

from clearpos.audit import run_audit
from clearpos.clock import CST
from clearpos.reasons import REQUIRED_KEYS, catalog
from clearpos.wire import (
    TPDU,
    Card,
    Header,
    Kind,
    NetworkRequest,
    OriginalRef,
    Reversal,
    Settlement,
    Settlement48,
    SignOn,
    Totals,
    decode,
    encode,
    encode_frame,
)

LOW = "6225880000001017"
FROZEN = "6225880000001025"
LOST = "6225880000001033"
STOLEN = "6225880000001041"
EXPIRED_DATE = "6225880000001066"
CLOSED = "6225880000001074"
DAILY = "6225880000001082"
VELOCITY = "6225880000001090"
WRONG_PIN = "6225880000001108"
SPARE = "6225880000001116"
SPARE2 = "6225880000001124"
UNKNOWN = "6222020000000000009"
ALL_PANS = (
    PAN,
    LOW,
    FROZEN,
    LOST,
    STOLEN,
    EXPIRED_DATE,
    CLOSED,
    DAILY,
    VELOCITY,
    WRONG_PIN,
    SPARE,
    SPARE2,
    UNKNOWN,
)

NEW_MID = "898310048165004"
NEW_TMK = "00112233445566778899AABBCCDDEE11"
TMKS = {
    "10000002": "1F2E3D4C5B6A79880897A6B5C4D3E2F1",
    "10000003": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
    "10000004": "00112233445566778899AABBCCDDEEFF",
    "10000005": "FEDCBA98765432100123456789ABCDEF",
    "10000006": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "10000007": "5A5A5A5AA5A5A5A53C3C3C3CC3C3C3C3",
    "10000008": NEW_TMK,
}
MIDS = {
    "10000002": "898310048162001",
    "10000003": ARREARS_MID,
    "10000004": "898310048164003",
    "10000005": MAIN_MID,
    "10000006": MAIN_MID,
    "10000007": MAIN_MID,
    "10000008": NEW_MID,
    "10000009": MAIN_MID,
}

#: the facts each explained cause must state (English); every key of the spec is here
EXPECT: dict[str, list[str]] = {
    "approved": ["approved (auth code", "now approved"],
    "card.unknown": ["the issuer has no account for card 622202*********0009"],
    "card.insufficient_funds": [
        "card 622588******1017 had ¥5.00 available for an amount of ¥10.00"
    ],
    "card.frozen": ["card 622588******1025 is frozen since", "the world file"],
    "card.closed": ["card 622588******1074 is closed since"],
    "card.expired": ["card 622588******1066 expired at the end of 01/2024"],
    "card.lost": ["card 622588******1033 is lost since"],
    "card.stolen": ["card 622588******1041 is stolen since"],
    "card.wrong_pin": ["wrong PIN for card 622588******1108; 2 tries left"],
    "card.pin_tries_exceeded": ["the PIN of card 622588******1108 is locked"],
    "card.daily_limit": ["daily limit ¥100.00, already used today ¥60.00, this amount ¥50.00"],
    "risk.card_velocity": ["made 5 purchases within 60 s", "locked until"],
    "issuer.unavailable": ["issuer maintenance window #", "announced by ops", "cancelled"],
    "host.maintenance": ["host maintenance window #", "announced by ops"],
    "merchant.suspended.arrears": [
        "merchant 898310048163002 (张记水果 Zhang's Fruit) suspended for arrears since",
        "owes ¥58.00",
    ],
    "merchant.suspended.risk": [
        "at the time merchant 898310048165004 (测试商户 Test Shop) was suspended for risk",
        "by risk-team",
        "now: merchant 898310048165004",
        "suspended for manual",
    ],
    "merchant.suspended.manual": ["suspended for manual since", "by ops: owner's request"],
    "merchant.closed": ["merchant 898310048164003 (旧时光咖啡 Old Times Café) closed since"],
    "merchant.restricted": ["restricted (refund, preauth)", "this was a preauth"],
    "merchant.single_limit": [
        "the amount ¥500.01 is above merchant 898310048162001's single-transaction cap ¥500.00"
    ],
    "terminal.unknown": ["no terminal 99999999 was registered"],
    "terminal.suspended": ["terminal 10000005 suspended since", "the world file"],
    "terminal.update_required": [
        "terminal 10000006 reports software 0.1.0; the provider requires 0.2.0"
    ],
    "terminal.not_signed_on": ["terminal 10000007 signed off at", "had not signed on again"],
    "terminal.batch_mismatch": [
        "terminal 10000001 sent batch 000042; the host's open batch was 000001"
    ],
    "mac.invalid": ["MAC did not verify under the keys the host issued at the sign-on of"],
    "pin.format_error": ["the PIN block did not verify under the keys the host issued"],
    "message.format_error": ["field 4", "MTI 0200"],
    "transaction.duplicate": ["trace number", "was already processed as RRN", "answered approved"],
    "transaction.original_not_found": ["the void names an original", "original trace 999998"],
    "transaction.original_amount_mismatch": [
        "the original amount is ¥15.00; this request asked for ¥1.00"
    ],
    "transaction.already_voided": ["is already voided"],
    "transaction.not_supported": ["60.3 = 009"],
    "terminal.single_des_refused": ["60.3 = 001"],
    "host.error": ["internal host fault SealedKeyError", "nothing was committed"],
    "network.timeout": ["automatic reversal (reason 98", "the host undid the original"],
    "settlement.balanced": ["batch 000001: host debit total ¥1.00, credit total ¥0.00"],
    "settlement.unbalanced": ["host debit total ¥2.00"],
}
CATALOG_ONLY = (
    "host.cutover",
    "operator.wrong_password",
    "operator.not_signed_in",
)


def client(h: HostProc, tid: str = "10000001", **kw: Any) -> Client:
    if tid in MIDS:
        kw.setdefault("mid", MIDS[tid])
    if tid in TMKS:
        kw.setdefault("tmk", bytes.fromhex(TMKS[tid]))
    return Client(h.host, h.port, tid=tid, **kw).connect()


def rrn(r: Any) -> str:
    value = getattr(r.msg, "rrn", None)
    assert value, r
    return str(value)


def admin(h: HostProc, *argv: str) -> None:
    rc, out, err = run("admin", "--db", h.url, *argv)
    assert rc == 0, (argv, out, err)


def window(h: HostProc, who: str) -> str:
    now = datetime.now(UTC)
    rc, docs = run_json(
        "admin", "--db", h.url, "maintenance", "add", "--who", who,
        "--start", (now - timedelta(minutes=1)).astimezone(CST).isoformat(timespec="seconds"),
        "--end", (now + timedelta(hours=1)).astimezone(CST).isoformat(timespec="seconds"),
        "--notice-zh", "维护中", "--notice-en", "Maintenance", "--by", "ops",
    )  # fmt: skip
    assert rc == 0, docs
    return str(docs[0]["id"])


def provoke(h: HostProc) -> dict[str, str]:
    """Each reason key once, for real: key -> RRN of its journal row."""
    got: dict[str, str] = {}

    def want(key: str, r: Any) -> None:
        assert r.reason == key or (key == "network.timeout" and r.reason == "approved"), (key, r)
        got[key] = rrn(r)

    c = client(h)
    so = c.sign_on()
    assert so.code == "00"
    want("approved", c.purchase(1234, card=c.card(PAN)))
    for key, pan, expiry, amount in (
        ("card.unknown", UNKNOWN, "2812", 1000),
        ("card.insufficient_funds", LOW, "2812", 1000),
        ("card.frozen", FROZEN, "2812", 1000),
        ("card.closed", CLOSED, "2812", 1000),
        ("card.expired", EXPIRED_DATE, "2401", 1000),
        ("card.lost", LOST, "2812", 1000),
        ("card.stolen", STOLEN, "2812", 1000),
    ):
        want(key, c.purchase(amount, card=c.card(pan, expiry)))
    want("card.wrong_pin", c.purchase(100, card=c.card(WRONG_PIN, pin="000000")))
    c.purchase(100, card=c.card(WRONG_PIN, pin="000000"))
    want("card.pin_tries_exceeded", c.purchase(100, card=c.card(WRONG_PIN, pin="000000")))
    assert c.purchase(6000, card=c.card(DAILY)).code == "00"
    want("card.daily_limit", c.purchase(5000, card=c.card(DAILY)))
    for _ in range(5):
        assert c.purchase(1, card=c.card(VELOCITY)).code == "00"
    want("risk.card_velocity", c.purchase(1, card=c.card(VELOCITY)))
    want("terminal.batch_mismatch", c.purchase(100, card=c.card(SPARE), batch="000042"))
    want("mac.invalid", c.send(c.request(Kind.PURCHASE, 100, c.card(SPARE)), corrupt_mac=True))
    want(
        "pin.format_error", c.purchase(100, card=Card.swiped(SPARE2, "2812", pin_block=b"\x00" * 8))
    )
    dup = c.request(Kind.PURCHASE, 300, c.card(SPARE2))
    assert c.send(dup).code == "00"
    want("transaction.duplicate", c.send(dup))
    sale = c.request(Kind.PURCHASE, 1500, c.card(SPARE))
    s = c.send(sale)
    ref = OriginalRef(sale.batch, sale.stan, "1123")
    want(
        "transaction.original_amount_mismatch",
        c.send(c.request(Kind.VOID, 100, c.card(SPARE), rrn=s.msg.rrn, original=ref)),
    )
    assert (
        c.send(c.request(Kind.VOID, 1500, c.card(SPARE), rrn=s.msg.rrn, original=ref)).code == "00"
    )
    want(
        "transaction.already_voided",
        c.send(c.request(Kind.VOID, 1500, c.card(SPARE), rrn=s.msg.rrn, original=ref)),
    )
    want(
        "transaction.original_not_found",
        c.send(
            c.request(
                Kind.VOID, 1, c.card(SPARE), original=OriginalRef(sale.batch, "999998", "1123")
            )
        ),
    )
    timed_out = c.request(Kind.PURCHASE, 2500, c.card(SPARE2))
    got["network.timeout.original"] = rrn(c.send(timed_out))
    want("network.timeout", c.send(Reversal.of(timed_out, "98")))
    want(
        "terminal.single_des_refused",
        c.send(SignOn(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="001")),
    )
    want(
        "transaction.not_supported",
        c.send(SignOn(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="009")),
    )
    # A10: a 0200 whose field 4 holds a non-digit
    bad = client(h)
    body = encode(
        "0200", {3: "000000", 4: "000000001234", 11: "000999", 41: "10000001", 42: MAIN_MID}
    )
    bad.send_raw(
        encode_frame(
            TPDU(),
            Header(),
            body.replace(bytes.fromhex("001234000999"), bytes.fromhex("0012A4000999")),
        )
    )
    got["message.format_error"] = str(decode(bad.recv_frame().body).fields[37])
    # A9: windows the provider schedules with clearpos admin
    wid = window(h, "issuer")
    want("issuer.unavailable", c.purchase(100, card=c.card(SPARE)))
    admin(h, "maintenance", "cancel", "--id", wid, "--by", "ops", "--why", "bank is back")
    wid = window(h, "host")
    want("host.maintenance", c.purchase(100, card=c.card(SPARE)))
    admin(h, "maintenance", "cancel", "--id", wid, "--by", "ops", "--why", "upgrade done")
    # D: merchants and terminals as the world has them
    c2 = client(h, "10000002")
    assert c2.sign_on().code == "00"
    want("merchant.single_limit", c2.purchase(50001, card=c2.card(SPARE)))
    want("merchant.restricted", c2.send(c2.request(Kind.PREAUTH, 100, c2.card(SPARE))))
    c3 = client(h, "10000003")
    assert c3.sign_on().code == "00"
    want("merchant.suspended.arrears", c3.purchase(100, card=c3.card(SPARE)))
    c4 = client(h, "10000004")
    assert c4.sign_on().code == "00"
    want("merchant.closed", c4.purchase(100, card=c4.card(SPARE)))
    want("terminal.unknown", Client(h.host, h.port, tid="99999999").connect().sign_on())
    want("terminal.suspended", client(h, "10000005").sign_on())
    want("terminal.update_required", client(h, "10000006").sign_on())
    c7 = client(h, "10000007")
    assert c7.sign_on().code == "00"
    off = c7.send(
        NetworkRequest(tid=c7.tid, mid=c7.mid, stan=c7.next_stan(), batch=c7.batch, netcode="002")
    )
    assert off.code == "00"
    want("terminal.not_signed_on", c7.purchase(100, card=c7.card(SPARE)))
    # a merchant the provider registers, then stops for risk, then by hand
    admin(h, "merchant", "add", "--mid", NEW_MID, "--name", "测试商户 Test Shop", "--by", "ops")
    admin(
        h, "terminal", "add", "--tid", "10000008", "--mid", NEW_MID, "--tmk", NEW_TMK, "--by", "ops"
    )
    c8 = client(h, "10000008")
    assert c8.sign_on().code == "00"
    admin(
        h,
        "merchant",
        "suspend",
        "--mid",
        NEW_MID,
        "--cause",
        "risk",
        "--by",
        "risk-team",
        "--why",
        "refund spike",
    )
    want("merchant.suspended.risk", c8.purchase(100, card=c8.card(SPARE)))
    admin(
        h, "merchant", "resume", "--mid", NEW_MID, "--by", "risk-team", "--why", "documents checked"
    )
    admin(
        h,
        "merchant",
        "suspend",
        "--mid",
        NEW_MID,
        "--cause",
        "manual",
        "--by",
        "ops",
        "--why",
        "owner's request",
    )
    want("merchant.suspended.manual", c8.purchase(100, card=c8.card(SPARE)))
    # E: a host fault — a terminal whose sealed TMK is damaged in the store
    admin(
        h,
        "terminal",
        "add",
        "--tid",
        "10000009",
        "--mid",
        MAIN_MID,
        "--tmk",
        NEW_TMK,
        "--by",
        "ops",
    )
    from clearpos.store import open_database

    with open_database(h.url).transaction() as tx:
        tx.update_terminal("10000009", tmk_sealed="v1:" + "A" * 60)
    want("host.error", client(h, "10000009", tmk=bytes.fromhex(NEW_TMK)).sign_on())
    # settlement, balanced then unbalanced, on the restricted merchant's terminal
    assert c2.purchase(100, card=c2.card(SPARE)).code == "00"
    bal = c2.send(
        Settlement(
            tid=c2.tid,
            mid=c2.mid,
            stan=c2.next_stan(),
            batch=c2.batch,
            totals=Settlement48(Totals(100, 1)),
        )
    )
    want("settlement.balanced", bal)
    assert c2.sign_on().code == "00" and c2.batch == "000002"
    assert c2.purchase(200, card=c2.card(SPARE)).code == "00"
    unb = c2.send(
        Settlement(
            tid=c2.tid,
            mid=c2.mid,
            stan=c2.next_stan(),
            batch=c2.batch,
            totals=Settlement48(Totals(999, 2)),
        )
    )
    want("settlement.unbalanced", unb)
    return got


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, store: Store
) -> Iterator[tuple[HostProc, dict[str, str]]]:
    h = start_host(tmp_path_factory.mktemp("diagnose"), store=store)
    try:
        yield h, provoke(h)
    finally:
        h.stop()
    assert run_audit(h.url) == []


def diagnose(h: HostProc, *argv: str) -> list[dict[str, Any]]:
    rc, docs = run_json("diagnose", "--db", h.url, *argv)
    assert rc == 0, docs
    blob = json.dumps(docs, ensure_ascii=False)
    for pan in ALL_PANS:
        assert pan not in blob, f"full PAN in diagnose {argv}"
    return docs


def test_every_spec_key_is_covered() -> None:
    # the chip declines need chip cards and a chip terminal: tests/test_diagnose_chip.py
    covered = set(EXPECT) | set(CATALOG_ONLY) | (CHIP_PRODUCED & REQUIRED_KEYS)
    assert covered == set(REQUIRED_KEYS) | {"merchant.suspended.manual"}
    assert not set(CATALOG_ONLY) & CHIP_PRODUCED  # each is explained from its facts now


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("key", sorted(EXPECT))
def test_diagnose_each_reason(world: tuple[HostProc, dict[str, str]], key: str, lang: str) -> None:
    h, rrns = world
    (d,) = diagnose(h, "--rrn", rrns[key], "--lang", lang)
    reason = catalog()[key]
    assert d["rrn"] == rrns[key] and d["tid"] and d["reason"] == key
    assert d["actor"] == reason.actor.get(lang)  # type: ignore[arg-type]
    # the catalog's remedy, with this case's facts and ids filled in
    facts = dict(h.rows("SELECT facts FROM journal WHERE id = ?", (int(rrns[key]),))[0])
    jf = json.loads(facts["facts"])
    jf["notice"] = jf.get(f"notice_{lang}")
    expected = reason.remedy_steps(lang, **jf)  # type: ignore[arg-type]
    back = [
        s.replace(f"--mid {d['mid']}", "--mid MID")
        .replace(f"--tid {d['tid']}", "--tid TID")
        .replace(f"--rrn {d['rrn']}", "--rrn RRN")
        for s in d["remedy"]
    ]
    assert back == expected
    # the cause: this case's facts first, then the catalog's explanation
    assert reason.cause_text(lang, **jf) in d["cause"]  # type: ignore[arg-type]
    assert d["facts"], f"{key}: no specific facts"
    if lang == "en":
        said = "; ".join(d["facts"])
        assert said[1:] in d["cause"]  # the facts open the cause (first letter capitalised)
        for part in EXPECT[key]:
            assert part in said, f"{key}: {part!r} not in {said!r}"
    assert d["screen"] == reason.screen_text(lang, **jf)  # type: ignore[arg-type]


def test_reversed_original_is_explained_as_the_timeout(
    world: tuple[HostProc, dict[str, str]],
) -> None:
    h, rrns = world
    (d,) = diagnose(h, "--rrn", rrns["network.timeout.original"], "--lang", "en")
    assert (d["reason"], d["journal_reason"], d["status"], d["code"]) == (
        "network.timeout",
        "approved",
        "reversed",
        "98",
    )
    assert "never got the answer and reversed it" in d["cause"] and "not charged" in d["cause"]


@pytest.mark.parametrize("key", CATALOG_ONLY)
def test_terminal_side_keys_from_the_catalog(key: str) -> None:
    rc, docs = run_json("diagnose", "--explain", key, "--lang", "en")
    assert rc == 0
    (d,) = docs
    reason = catalog()[key]
    assert (d["reason"], d["rrn"], d["actor"]) == (key, None, reason.actor.en)
    assert d["remedy"] == reason.remedy_steps("en") and d["cause"] == reason.cause_text("en")


def test_zh_cause_for_arrears(world: tuple[HostProc, dict[str, str]]) -> None:
    h, rrns = world
    (d,) = diagnose(h, "--rrn", rrns["merchant.suspended.arrears"])
    assert (
        d["lang"] == "zh" and "因欠费被世界文件停机" in d["cause"] and "欠费 ¥58.00" in d["cause"]
    )
    rc, out, _ = run("diagnose", "--db", h.url, "--rrn", rrns["merchant.suspended.arrears"])
    assert rc == 0 and "终端显示: 商户欠费停机，请联系服务商" in out and "处理步骤" in out


# --------------------------------------------------------------------------- terminals and merchants


def test_terminal_blocked_by_its_merchant(world: tuple[HostProc, dict[str, str]]) -> None:
    h, _ = world
    *txns, d = diagnose(h, "--tid", "10000003", "--lang", "en")
    assert d["type"] == "terminal" and d["fix"]["source"] == "state"
    assert (
        d["fix"]["reason"] == "merchant.suspended.arrears" and "owes ¥58.00" in d["fix"]["headline"]
    )
    assert "clearpos admin merchant resume --mid 898310048163002" in " ".join(d["fix"]["remedy"])
    (g,) = d["failures"]
    assert (g["reason"], g["count"]) == ("merchant.suspended.arrears", 1)
    # world.md: one document per transaction line, the terminal summary last
    assert txns and d["transactions"] == len(txns)
    assert all({"rrn", "tid", "reason", "cause", "actor", "remedy"} <= set(t) for t in txns)


@pytest.mark.parametrize(
    ("tid", "reason", "words"),
    [
        ("10000005", "terminal.suspended", "terminal 10000005 suspended since"),
        (
            "10000006",
            "terminal.update_required",
            "reports software 0.1.0, below the required 0.2.0",
        ),
        ("10000007", "terminal.not_signed_on", "holds no working keys"),
        ("10000004", "merchant.closed", "closed since"),
        ("99999999", "terminal.unknown", "no terminal 99999999"),
    ],
)
def test_blocking_state_is_the_fix(
    world: tuple[HostProc, dict[str, str]], tid: str, reason: str, words: str
) -> None:
    h, _ = world
    *_txns, d = diagnose(h, "--tid", tid, "--lang", "en")
    assert (
        d["fix"]["reason"] == reason
        and d["fix"]["source"] == "state"
        and words in d["fix"]["headline"]
    )


def test_no_blocking_state_then_the_latest_fixable_decline_since_the_last_approval(
    world: tuple[HostProc, dict[str, str]],
) -> None:
    """Issue 17: a count of older failures never heads the diagnosis; what is true now does."""
    h, _ = world
    *_txns, d = diagnose(h, "--tid", "10000001", "--lang", "en")
    assert d["blocking"] == []
    (last_ok,) = h.one(
        "SELECT MAX(ts) FROM journal WHERE tid = '10000001' AND reason = 'approved' "
        "AND code = '00' AND kind <> 'reversal'"
    )
    fixable = [g for g in d["failures"] if g["fixable"]]
    now = [g for g in fixable if g["last"] > last_ok]
    if now:
        latest = max(now, key=lambda g: g["last"])
        assert d["fix"]["source"] == "declines" and d["fix"]["reason"] == latest["reason"]
        assert "since the last approved transaction" in d["fix"]["headline"]
    else:
        assert d["fix"] is None
    before = [g for g in fixable if g["last"] <= last_ok]
    if before:
        assert d["resolved"]["reason"] == max(before, key=lambda g: g["last"])["reason"]
        assert d["resolved"]["at"] > d["resolved"]["last_failure"]
    by_reason = {g["reason"]: g for g in d["failures"]}
    assert not by_reason["card.frozen"]["fixable"]  # the cardholder's, never the merchant's fix
    assert by_reason["card.wrong_pin"]["count"] == 2 and by_reason["network.timeout"]["count"] == 1
    assert by_reason["card.wrong_pin"]["first_time"] <= by_reason["card.wrong_pin"]["last_time"]


def test_merchant_history_and_failures(world: tuple[HostProc, dict[str, str]]) -> None:
    h, _ = world
    *_txns, d = diagnose(h, "--mid", NEW_MID, "--lang", "en")
    assert d["type"] == "merchant" and d["merchant"]["suspension_cause"] == "manual"
    assert [x["action"] for x in d["history"]] == ["add", "suspend", "resume", "suspend"]
    assert {g["reason"] for g in d["failures"]} == {
        "merchant.suspended.risk",
        "merchant.suspended.manual",
    }
    assert d["fix"]["reason"] == "merchant.suspended.manual"
    rc, out, _ = run("diagnose", "--db", h.url, "--mid", NEW_MID, "--lang", "en")
    assert rc == 0 and "Most likely fix: merchant 898310048165004" in out and "History:" in out


def test_code_and_reason_queries(world: tuple[HostProc, dict[str, str]]) -> None:
    h, rrns = world
    docs = diagnose(h, "--code", "03", "--since", "1h", "--lang", "en")
    assert {d["reason"] for d in docs} == {
        "merchant.suspended.arrears",
        "merchant.suspended.risk",
        "merchant.suspended.manual",
        "merchant.closed",
    }
    for d in docs:
        assert {"rrn", "tid", "reason", "cause", "actor", "remedy"} <= set(d) and isinstance(
            d["remedy"], list
        )
    (t,) = diagnose(h, "--code", "network.timeout", "--lang", "en")
    assert t["rrn"] == rrns["network.timeout"]
    rc, out, _ = run("diagnose", "--db", h.url, "--code", "host.cutover", "--lang", "en")
    assert rc == 0 and "no transactions with host.cutover" in out and "Day-end cutover" in out


def test_usage_and_not_found(world: tuple[HostProc, dict[str, str]]) -> None:
    h, _ = world
    rc, _out, err = run("diagnose", "--db", h.url, "--rrn", "000099999999")
    assert rc == 1 and "no transaction with RRN" in err
    rc, _, err = run("diagnose", "--db", h.url, "--tid", "10000001", "--since", "yesterday")
    assert rc == 2 and "15m" in err
    rc, _, err = run("diagnose", "--db", h.url, "--code", "card.nonsense")
    assert rc == 2
    rc, _, err = run("diagnose", "--db", h.url)
    assert rc == 2
    rc, _, err = run("diagnose", "--db", h.url, "--mid", "000000000000000")
    assert rc == 1 and "no merchant" in err
