"""Stock UnionPay terminals work unchanged (issue 15, spec §9).

Table tests of the real frames of ``shared/vectors/real-frames.md``; each request
among them sent to a real host over TCP and answered in the layout a stock terminal
expects (never silence); what a stock terminal may send — sign-on 001/003/004, TDK
tracks, 12-digit 61, PIN blocks of any 53 form, status upload, script results,
chip detail uploads, completion advice — answered and journaled; and a stranger's
sign-on that cannot take the real terminal off the host.
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_fixture import SQLITE, HostProc, Store, start_host, world_with
from hostclient import Client
from real_frames import REAL_FRAMES, from_source

from clearpos.audit import run_audit
from clearpos.keys import TerminalKeys
from clearpos.keys.crypto import FIELD62_LAYOUTS, KeyScheme, WorkingKeys, pack_field62
from clearpos.wire import (
    TPDU,
    Card,
    ChipDetailUpload,
    FinancialRequest,
    FinancialResponse,
    Framer,
    Header,
    Kind,
    NetworkRequest,
    OriginalRef,
    ParameterDownload,
    ParameterDownloadResponse,
    ScriptResult,
    SignOn,
    SignOnResponse,
    decode,
    decode_frame,
    encode_frame,
    parse,
)
from clearpos.wire.codec import RawTrack

PAN = "6222021234567890123"
SPARE = "6225880000001116"

# The terminals of the real frames, registered with TMKs of our own (theirs are unknown).
REAL_TERMINALS = {
    "70782214": ("808411341310014", "11223344556677881122334455667788"),
    "10000019": ("850100082410002", "2233445566778899AABBCCDDEEFF0011"),
    "90361748": ("923011753991695", "33445566778899AABBCCDDEEFF001122"),
    "92336787": ("847100053990002", "445566778899AABBCCDDEEFF00112233"),
}
STOCK_TID, STOCK_MID = "20000001", "898310048161234"
STOCK_TMK = bytes.fromhex("1A2B3C4D5E6F70811A2B3C4D5E6F7081")

EXTRA = "".join(
    f'[[merchants]]\nmid = "{mid}"\nname = "real frame {tid}"\n'
    f'[[terminals]]\ntid = "{tid}"\nmid = "{mid}"\ntmk = "{tmk}"\n'
    for tid, (mid, tmk) in REAL_TERMINALS.items()
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[HostProc]:
    h = start_host(tmp_path_factory.mktemp("stock"), store=store, world_text=world_with(EXTRA))
    yield h
    h.stop()
    assert run_audit(h.url) == []
    assert PAN not in h.log_text()


def stock(h: HostProc, tid: str = STOCK_TID, **kw: Any) -> Client:
    kw.setdefault("mid", STOCK_MID if tid == STOCK_TID else REAL_TERMINALS[tid][0])
    kw.setdefault("tmk", STOCK_TMK if tid == STOCK_TID else bytes.fromhex(REAL_TERMINALS[tid][1]))
    return Client(h.host, h.port, tid=tid, **kw).connect()


def signed_on(h: HostProc, scheme: str = KeyScheme.WITH_TDK, **kw: Any) -> Client:
    c = stock(h, **kw)
    r = c.sign_on(scheme=scheme)
    assert r.code == "00", r.reason
    return c


def frame_of(name: str) -> bytes:
    """A real frame whole; a ``_body`` one framed as a stock terminal frames it."""
    raw = bytes.fromhex(REAL_FRAMES[name])
    if name.endswith("_body"):
        return encode_frame(TPDU(0x0003, 0x0000), Header(), raw)
    return raw


def exchange(sock: socket.socket, data: bytes, timeout: float = 5.0) -> Any:
    sock.settimeout(timeout)
    sock.sendall(data)
    framer = Framer()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the host closed the connection instead of answering")
        frames = framer.feed(chunk)
        if frames:
            return frames[0]


# --------------------------------------------------------------------------- the real frames


def test_embedded_copy_matches_shared_vectors() -> None:
    src = from_source()
    if src is None:
        pytest.skip("shared/vectors/real-frames.md is not beside this checkout")
    assert {k: v.upper() for k, v in src.items()} == {k: v.upper() for k, v in REAL_FRAMES.items()}


EXPECTED: dict[str, tuple[type, dict[str, Any]]] = {
    "F1_easy8583_signon": (SignOn, {"netcode": "003", "operator": "001"}),
    "F3_codetd_purchase_ic": (FinancialRequest, {"kind": Kind.PURCHASE, "extra60": "600"}),
    "R1_pax_like_0810_tpduhdr": (SignOnResponse, {"code": "00"}),
    "R1b_0210_qpboc": (FinancialResponse, {"code": "00", "organisation": "CUP"}),
    "R2_easy8583_0810": (SignOnResponse, {"code": "00"}),
    "R5_android_0810_v22": (SignOnResponse, {"code": "00"}),
    "R6_whty_0800_004_body": (SignOn, {"netcode": "004", "operator": "01 "}),
    "R6c_whty_0200_qpboc_body": (FinancialRequest, {"kind": Kind.PURCHASE, "extra60": "6"}),
}


@pytest.mark.parametrize("name", sorted(REAL_FRAMES))
def test_real_frame_decodes(name: str) -> None:
    raw = bytes.fromhex(REAL_FRAMES[name])
    body = raw if name.endswith("_body") else decode_frame(raw).body
    msg, _, _ = parse(body)
    cls, attrs = EXPECTED[name]
    assert isinstance(msg, cls)
    for attr, value in attrs.items():
        assert getattr(msg, attr) == value, attr
    assert "6224242900000113" not in repr(msg) and "6217857600008050804" not in repr(msg)


def test_real_frame_details() -> None:
    f3, _, _ = parse(decode_frame(frame_of("F3_codetd_purchase_ic")).body)
    assert isinstance(f3, FinancialRequest) and f3.card is not None
    assert (f3.card.entry_mode, f3.card.sequence, f3.card.pin_format) == ("071", "000", "2")
    info = f3.terminal_info
    assert info is not None and info.app_version == "H7062801" and info.tags["13"] == "HFT17080301"
    assert f3.card.chip is not None and f3.card.chip[:2] == bytes.fromhex("9F26")
    r5, _, _ = parse(decode_frame(frame_of("R5_android_0810_v22")).body)
    assert isinstance(r5, SignOnResponse) and r5.keys is not None and len(r5.keys) == 40
    assert r5.keys[28:36] != bytes(8)  # a double-length MAC key from another acquirer
    f1, _, _ = parse(decode_frame(frame_of("F1_easy8583_signon")).body)
    assert isinstance(f1, SignOn) and f1.serial is not None and f1.serial.startswith(b"Sequence No")


def test_every_real_request_is_answered_over_tcp(host: HostProc) -> None:
    """Each request among the real frames, on one connection: an answer of the right
    MTI with the request's 11/41/42 every time, and the connection stays open."""
    with socket.create_connection((host.host, host.port)) as sock:
        # F1: sign-on 003 with a serial in 62, header 613100311108 echoed
        a = exchange(sock, frame_of("F1_easy8583_signon"))
        m, _, _ = parse(a.body)
        assert isinstance(m, SignOnResponse) and m.code == "00" and m.tid == "70782214"
        assert m.keys is not None and len(m.keys) == 40
        assert (a.header.app_type, a.header.version, a.header.reserved) == ("61", "31", "311108")
        # R6: sign-on 004: keys with a track data key, 60 bytes
        a = exchange(sock, frame_of("R6_whty_0800_004_body"))
        m, _, _ = parse(a.body)
        assert isinstance(m, SignOnResponse) and m.code == "00" and m.keys is not None
        assert len(m.keys) == 60
        keys = TerminalKeys(bytes.fromhex(REAL_TERMINALS["90361748"][1]))
        assert keys.accept_field62(m.keys).tdk is not None
        # F3 (59, 60.4-60.7, 55, 48 in a purchase): its terminal never signed on here
        a = exchange(sock, frame_of("F3_codetd_purchase_ic"))
        m, _, _ = parse(a.body)
        assert isinstance(m, FinancialResponse)
        assert (m.code, m.reason, m.stan) == ("A0", "terminal.not_signed_on", "000403")
        assert a.header.processing == 3
        # R6c signed on under our TMK: the frame's MAC is another key's -> A0, never silence
        c = stock(host, "92336787")
        assert c.sign_on().code == "00"
        a = exchange(sock, frame_of("R6c_whty_0200_qpboc_body"))
        m, _, _ = parse(a.body)
        assert isinstance(m, FinancialResponse)
        assert (m.code, m.reason, a.header.processing) == ("A0", "mac.invalid", 3)
    rows = host.rows(
        "SELECT tid, kind, reason, facts FROM journal WHERE tid IN (?, ?, ?, ?) ORDER BY id",
        tuple(REAL_TERMINALS),
    )
    assert [r["reason"] for r in rows] == [
        "approved",
        "approved",
        "terminal.not_signed_on",
        "approved",
        "mac.invalid",
    ]
    assert '"scheme": "004"' in rows[1]["facts"] and '"serial": "Sequence No12' in rows[0]["facts"]


def test_real_0810_layouts_are_what_a_terminal_accepts() -> None:
    """The host side of the sign-on: every layout it writes is one terminals read."""
    tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    for scheme, length in ((KeyScheme.SINGLE, 24), (KeyScheme.DOUBLE, 40), ("004", 60)):
        keys = WorkingKeys.generate(scheme)
        field62 = pack_field62(tmk, keys, scheme)
        assert len(field62) == length and length in FIELD62_LAYOUTS
        assert TerminalKeys(tmk).accept_field62(field62) == keys


# --------------------------------------------------------------------------- a stock terminal's day


def test_signon_schemes_and_single_des_policy(host: HostProc) -> None:
    c = stock(host)
    r = c.sign_on(scheme="001")
    assert (r.code, r.reason) == ("40", "terminal.single_des_refused")
    assert (c.sign_on(scheme="009").code, c.sign_on(scheme="009").reason) == (
        "40",
        "transaction.not_supported",
    )
    r = c.sign_on(scheme="003")
    assert r.code == "00" and isinstance(r.msg, SignOnResponse) and len(r.msg.keys or b"") == 40


def test_encrypted_tracks_purchase_void_12_digit_61_refund(host: HostProc) -> None:
    c = signed_on(host)
    assert c.keys.has_tdk
    card = Card.swiped(SPARE, "2812", pin_block=c.keys.pin_block("123456", SPARE))
    card = dataclasses.replace(card, tracks_encrypted=True)
    sale = c.request(Kind.PURCHASE, 1234, card)
    raw = c.frame(sale)
    fields = decode(decode_frame(raw).body).fields
    assert fields[53] == "2610000000000000" and isinstance(fields[35], RawTrack | str)
    assert fields[35] != card.track2  # the track left encrypted
    r = c.send(sale)
    assert r.code == "00" and r.mac_ok, r.reason
    assert r.msg.expiry == "2812"  # type: ignore[union-attr]
    # void naming the sale by batch + STAN only (12 digits), as stock terminals do
    void = c.request(
        Kind.VOID,
        1234,
        card,
        rrn=r.msg.rrn,  # type: ignore[union-attr]
        auth_code=r.msg.auth_code,  # type: ignore[union-attr]
        original=OriginalRef(sale.batch, sale.stan),
    )
    assert decode(decode_frame(c.frame(void)).body).fields[61] == sale.batch + sale.stan
    v = c.send(void)
    assert v.code == "00", v.reason
    # a second sale, refunded (61 with the original date)
    r2 = c.send(c.request(Kind.PURCHASE, 500, card))
    assert r2.code == "00"
    refund = c.request(
        Kind.REFUND,
        200,
        Card.swiped(SPARE, "2812"),
        rrn=r2.msg.rrn,  # type: ignore[union-attr]
        original=OriginalRef(r2.msg.batch, r2.msg.stan, r2.msg.host_date or "0000"),  # type: ignore[union-attr]
    )
    assert c.send(refund).code == "00"


def test_tampered_encrypted_track_is_a_format_error_naming_field_35(host: HostProc) -> None:
    c = signed_on(host)
    card = Card(SPARE, "2812", f"{SPARE}=28122010000000000", tracks_encrypted=True)
    raw = bytearray(c.frame(c.request(Kind.PURCHASE, 100, card)))
    body_at = 2 + 5 + 6
    fields = decode(bytes(raw[body_at:])).fields
    track = fields[35]
    enc = bytes(track) if isinstance(track, bytes) else bytes.fromhex(track.replace("=", "D"))
    at = bytes(raw).index(enc) + len(enc) - 4  # a bit inside the encrypted 8 bytes
    raw[at] ^= 0x10
    c.send_raw(bytes(raw))
    r = c.recv()
    assert (r.code, r.reason) == ("30", "message.format_error")
    row = host.rows("SELECT facts FROM journal WHERE tid = ? ORDER BY id DESC", (STOCK_TID,))[0]
    assert '"field": 35' in row["facts"]


@pytest.mark.parametrize(
    ("pin_format", "algorithm"), [("2", "6"), ("1", "6"), ("1", "0"), ("2", "0")]
)
def test_pin_block_of_every_53_form(host: HostProc, pin_format: str, algorithm: str) -> None:
    c = signed_on(host, scheme=KeyScheme.DOUBLE)
    block = c.keys.pin_block("123456", PAN, pin_format=pin_format, algorithm=algorithm)
    card = Card.swiped(PAN, "2812", pin_block=block)
    card = Card(
        card.pan,
        card.expiry,
        card.track2,
        entry_mode="021",
        pin_block=block,
        pin_format=pin_format,
        pin_algorithm=algorithm,
    )
    r = c.send(c.request(Kind.BALANCE, None, card))
    assert (r.code, r.reason) == ("00", "approved")
    wrong = c.keys.pin_block("654321", PAN, pin_format=pin_format, algorithm=algorithm)
    bad = Card(
        card.pan, card.expiry, card.track2, entry_mode="021", pin_block=wrong,
        pin_format=pin_format, pin_algorithm=algorithm,
    )  # fmt: skip
    assert c.send(c.request(Kind.BALANCE, None, bad)).reason == "card.wrong_pin"
    ok = Card(
        card.pan, card.expiry, card.track2, entry_mode="021", pin_block=block,
        pin_format=pin_format, pin_algorithm=algorithm,
    )  # fmt: skip
    assert c.send(c.request(Kind.BALANCE, None, ok)).code == "00"  # tries reset


def test_parameters_standard_for_stock_ext_for_clearpos(host: HostProc) -> None:
    c = signed_on(host)
    r = c.send(ParameterDownload(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch))
    assert isinstance(r.msg, ParameterDownloadResponse) and r.code == "00"
    tags = [rec.tag for rec in r.msg.records]
    assert tags == ["12", "13", "20", "22"] and not any(rec.ext for rec in r.msg.records)
    assert r.msg.param("22") == "老王面馆 Wang's Noodles"
    assert (r.msg.param("12"), r.msg.param("13")) == ("60", "3")
    own = Client(host.host, host.port).connect()
    assert own.sign_on().code == "00"
    r = own.send(ParameterDownload(tid=own.tid, mid=own.mid, stan=own.next_stan(), batch=own.batch))
    assert isinstance(r.msg, ParameterDownloadResponse)
    assert [rec.tag for rec in r.msg.records][:4] == ["12", "13", "20", "22"]
    assert r.msg.param("95") is not None  # [ext] host name, only for dialect = "clearpos"


def test_status_upload_is_kept_with_the_terminal(host: HostProc) -> None:
    c = signed_on(host)
    records = b"011021031040051" + b"1260133"
    r = c.send(
        NetworkRequest(
            tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="362", data=records
        )
    )
    assert (r.frame.body[:2].hex(), r.code) == ("0830", "00")
    (row,) = host.rows("SELECT status_records FROM terminals WHERE tid = ?", (STOCK_TID,))
    assert bytes.fromhex(row["status_records"]) == records
    r = c.send(
        NetworkRequest(tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch, netcode="999")
    )
    assert (r.code, r.reason) == ("40", "transaction.not_supported")


def test_script_result_and_chip_detail_are_journaled_against_the_original(host: HostProc) -> None:
    c = signed_on(host)
    sale = c.request(Kind.PURCHASE, 300, c.card(SPARE))
    r = c.send(sale)
    assert r.code == "00"
    rrn = r.msg.rrn  # type: ignore[union-attr]
    script = ScriptResult(
        tid=c.tid,
        mid=c.mid,
        stan=c.next_stan(),
        batch=c.batch,
        original=OriginalRef(sale.batch, sale.stan, "1202"),
        rrn=rrn,
        amount_fen=300,
        chip=bytes.fromhex("DF3105200000000000"),
    )
    a = c.send(script)
    assert (a.frame.body[:2].hex(), a.code) == ("0630", "00")
    import json
    import subprocess

    from host_fixture import ROOT, env

    d = subprocess.run(
        [sys.executable, "-m", "clearpos.cli", "diagnose", "--db", host.url, "--rrn",
         str(a.msg.rrn), "--lang", "en", "--json"],
        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert d.returncode == 0, d.stderr
    said = json.loads(d.stdout.splitlines()[0])
    assert "uploaded script results of the original" in json.dumps(said)
    tc = ChipDetailUpload(
        tid=c.tid, mid=c.mid, stan=sale.stan, batch=c.batch, rrn=rrn, amount_fen=300,
        chip=bytes.fromhex("9F2608000102030405060708"),
    )  # fmt: skip
    a = c.send(tc)
    assert (a.frame.body[:2].hex(), a.code) == ("0330", "00")
    (orig,) = host.rows("SELECT id FROM journal WHERE id = ?", (int(rrn),))
    kids = host.rows(
        "SELECT kind, reason FROM journal WHERE original_id = ? ORDER BY id", (orig["id"],)
    )
    assert [(k["kind"], k["reason"]) for k in kids] == [
        ("script_result", "approved"),
        ("chip_detail", "approved"),
    ]
    lost = ScriptResult(
        tid=c.tid, mid=c.mid, stan=c.next_stan(), batch=c.batch,
        original=OriginalRef(sale.batch, "999990", "1202"),
    )  # fmt: skip
    assert c.send(lost).reason == "transaction.original_not_found"


def test_completion_advice_is_a_completion_in_the_books(host: HostProc) -> None:
    c = signed_on(host)
    pre = c.request(Kind.PREAUTH, 1000, c.card(SPARE))
    r = c.send(pre)
    assert r.code == "00"
    advice = c.request(
        Kind.COMPLETION_ADVICE,
        800,
        Card.swiped(SPARE, "2812"),
        rrn=r.msg.rrn,  # type: ignore[union-attr]
        auth_code=r.msg.auth_code,  # type: ignore[union-attr]
        original=OriginalRef(pre.batch, pre.stan, r.msg.host_date or "0000"),  # type: ignore[union-attr]
    )
    a = c.send(advice)
    assert (a.frame.body[:2].hex(), a.code) == ("0230", "00")
    (row,) = host.rows("SELECT kind, mti FROM journal WHERE id = ?", (int(a.msg.rrn),))  # type: ignore[union-attr]
    assert (row["kind"], row["mti"]) == ("completion", "0220")


def test_zero_amount_is_13(host: HostProc) -> None:
    c = signed_on(host)
    r = c.purchase(0, card=c.card(SPARE))
    assert (r.code, r.reason) == ("13", "transaction.invalid_amount")


def test_odd_mti_with_a_readable_tid_is_answered(host: HostProc) -> None:
    """Spec §9: never a closed connection while the MTI and TID can be read."""
    body = decode_frame(frame_of("R6_whty_0800_004_body")).body
    odd = bytes.fromhex("0801") + body[2:]
    with socket.create_connection((host.host, host.port)) as sock:
        a = exchange(sock, encode_frame(TPDU(), Header(), odd))
        assert a.body[:2].hex() == "0810"
        assert decode(a.body).fields[39] == "30"
        a = exchange(sock, frame_of("R6_whty_0800_004_body"))  # still open
        assert decode(a.body).fields[39] == "00"


# --------------------------------------------------------------------------- sign-on abuse


def test_a_strangers_signon_cannot_take_the_terminal_down(host: HostProc) -> None:
    """Issue 16 item 1: anyone who knows a TID can send a sign-on (it needs no secret).
    The real terminal goes on trading with 0 failed purchases; a MID that is not the
    terminal's merchant is refused; sign-on after sign-on with unused keys is stopped."""
    # different cards, so the example world's velocity rule (5 a minute) stays out of it
    cards = itertools.cycle([SPARE, "6225880000001124", PAN])
    real = signed_on(host, scheme=KeyScheme.DOUBLE, tid="10000019")
    assert real.purchase(100, card=real.card(next(cards))).code == "00"  # keys proven
    stranger = Client(host.host, host.port, tid="10000019", mid=REAL_TERMINALS["10000019"][0],
                      tmk=bytes(16)).connect()  # fmt: skip
    failed = 0
    for _ in range(3):
        r = stranger.send(
            SignOn(tid="10000019", mid=stranger.mid, stan=stranger.next_stan(), batch="000001")
        )
        assert r.code == "00"  # the host cannot tell; it issues keys nobody real holds
        p = real.purchase(100, card=real.card(next(cards)))
        failed += p.code != "00"
        assert p.mac_ok  # the answer is MAC'd with the keys the real terminal holds
    assert failed == 0
    # sign-on after sign-on with none of the new keys used: stopped after 6 in a row
    # (3 above), while the real terminal's keys stay valid
    codes = [
        stranger.send(
            SignOn(tid="10000019", mid=stranger.mid, stan=stranger.next_stan(), batch="000001")
        ).code
        for _ in range(5)
    ]
    assert codes == ["00", "00", "00", "65", "65"]
    assert real.purchase(100, card=real.card(next(cards))).code == "00"
    # the MID must be the terminal's merchant
    other = stranger.send(
        SignOn(tid="10000019", mid="898310048161234", stan=stranger.next_stan(), batch="000001")
    )
    assert (other.code, other.reason) == ("97", "terminal.unknown")
    # the real terminal cannot sign on either while the stranger's run lasts (the host
    # cannot tell them apart), but it trades on; its first MAC under new keys, once it
    # may sign on again, retires the old ones (test_pg_concurrency checks that part)
    assert real.sign_on(scheme=KeyScheme.DOUBLE).code == "65"
    assert real.purchase(100, card=real.card(next(cards))).code == "00"


def test_mutation_campaign_over_the_real_frames() -> None:
    """A short run of bench/fuzz_real_frames.py (the documented run is 100,000 frames):
    no readable frame left unanswered or its connection closed, host alive, audit clean."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from fuzz_real_frames import run  # type: ignore[import-not-found]

    assert run(1500, 2026, SQLITE, None) == 0


# --------------------------------------------------------------------------- private fields

PRIVATE_TOML = """
[dialect]
fields = [
  { number = 46, format = "ans", length_type = "lllvar", length = 99, meaning = "acquirer remarks" },
  { number = 56, format = "n", length_type = "llvar", length = 19, meaning = "loyalty card", card_data = true },
]
"""


def _body_with(fields: dict[int, Any], extra: dict[int, bytes], mac: Any) -> bytes:
    """A body with extra fields given as raw bytes (the test process keeps the plain
    dialect; the host reads them from its world)."""
    from clearpos.wire.codec import _WRITERS

    numbers = sorted([*fields, *extra, 64])
    bits = 0
    for n in numbers:
        bits |= 1 << (64 - n)
    parts = [bytes.fromhex("0200"), bits.to_bytes(8, "big")]
    for n in numbers:
        if n == 64:
            break
        parts.append(extra[n] if n in extra else _WRITERS[n](fields[n]))
    body = b"".join(parts)
    return body + mac(body)


def test_private_fields_are_read_kept_and_masked(tmp_path: Path) -> None:
    h = start_host(tmp_path, world_text=world_with(PRIVATE_TOML))
    try:
        c = Client(h.host, h.port).connect()
        assert c.sign_on().code == "00"
        from clearpos.wire import to_fields

        _, f = to_fields(c.request(Kind.PURCHASE, 150, c.card(SPARE)))
        extra = {46: b"\x00\x05HELLO", 56: bytes.fromhex("16") + bytes.fromhex("6222021234567890")}
        body = _body_with(f, extra, c.keys.mac)
        c.send_raw(encode_frame(TPDU(0x0003, 0x0000), Header(), body))
        r = c.recv()
        assert (r.code, r.mac_ok) == ("00", True), r.reason
        (row,) = h.rows("SELECT facts FROM journal WHERE id = ?", (int(r.msg.rrn),))  # type: ignore[union-attr]
        assert '"46": "\'HELLO\'"' in row["facts"]
        assert "card data, 16 characters hidden" in row["facts"]
        assert "6222021234567890" not in row["facts"]
    finally:
        h.stop()
    assert run_audit(h.url) == []


@pytest.mark.parametrize(
    ("decl", "key", "words"),
    [
        (
            '{ number = 35, format = "z", length_type = "llvar", length = 37, meaning = "x" }',
            "number",
            "part of the clearpos dialect",
        ),
        (
            '{ number = 46, format = "q", length_type = "lllvar", length = 9, meaning = "x" }',
            "format",
            "must be one of n | z | an | ans | b",
        ),
        (
            '{ number = 46, format = "ans", length_type = "llvar", length = 100, meaning = "x" }',
            "length",
            "does not fit a LLVAR field",
        ),
        (
            '{ number = 46, format = "ans", length_type = "fixed", length = 9 }',
            "meaning",
            "say what the field holds",
        ),
        (
            '{ number = 46, format = "ans", length_type = "fixed", length = 9, meaning = "x", mask = true }',
            "mask",
            "unknown key",
        ),
    ],
)
def test_bad_private_field_declarations_are_refused_with_field_and_key(
    tmp_path: Path, decl: str, key: str, words: str
) -> None:
    from clearpos.world import WorldError, load_world

    world = tmp_path / "w.toml"
    world.write_text(world_with(f"[dialect]\nfields = [ {decl} ]\n"), "utf-8")
    with pytest.raises(WorldError) as caught:
        load_world(world)
    text = str(caught.value)
    assert "[[dialect.fields]]" in text and "#1" in text and f"{key}:" in text and words in text


def test_wire_decode_with_a_dialect_file(tmp_path: Path) -> None:
    import subprocess

    from host_fixture import ROOT, env

    spec = tmp_path / "acq.toml"
    spec.write_text(PRIVATE_TOML, "utf-8")
    body = _body_with(
        {11: "000001", 41: "10000001"},
        {56: bytes.fromhex("16") + bytes.fromhex("6222021234567890")},
        lambda b: b"MACMACMA",
    )
    cmd = [sys.executable, "-m", "clearpos.cli", "wire", "decode", body.hex(), "--json"]
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert plain.returncode == 1 and "field 56, which is not part" in plain.stdout
    r = subprocess.run(
        [*cmd, "--dialect", str(spec)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "6222021234567890" not in r.stdout and "card data, 16 characters hidden" in r.stdout
