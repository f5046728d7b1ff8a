"""The terminal's rules as a protocol object, driven without sockets (terminal/protocol.py).

Each test plays the host: it answers every :class:`Send` the protocol asks for and
records what went out -- MTI, processing code (3), STAN (11), 39 and 60 as the wire
codec would put them -- and what the protocol asked the driver to record. The
expected sequences are spelled out in full, so a changed order, a missing retry or
a wrong field fails the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from clearpos.reasons import load_catalog
from clearpos.terminal.protocol import (
    RESIGN_CODES,
    Answer,
    OfflineDeclined,
    OfflineKept,
    OfflineMoved,
    OfflineUploaded,
    Prelude,
    PreludeDone,
    ReversalAnswered,
    ReversalNoAnswer,
    Send,
    Settle,
    SettleDone,
    SignOnAgain,
    Verdict,
    decide,
)
from clearpos.wire import (
    BatchRecord,
    Card,
    FinancialRequest,
    Kind,
    OriginalRef,
    Totals,
    to_fields,
)

TID, MID = "10000001", "898310048161234"
PAN = "6222021234567890123"


def sale(
    stan: str, batch: str = "000001", kind: Kind = Kind.PURCHASE, fen: int = 1234
) -> FinancialRequest:
    card = Card.swiped(PAN, "2812")
    if kind is Kind.OFFLINE:
        return FinancialRequest(kind=kind, tid=TID, mid=MID, stan=stan, batch=batch,
                                amount_fen=fen, card=card, auth_code="L" + stan[1:])  # fmt: skip
    if kind is Kind.REFUND:
        return FinancialRequest(kind=kind, tid=TID, mid=MID, stan=stan, batch=batch,
                                amount_fen=fen, card=card, rrn="123456789012",
                                original=OriginalRef("000001", "000002", "1201"))  # fmt: skip
    return FinancialRequest(kind=kind, tid=TID, mid=MID, stan=stan, batch=batch,
                            amount_fen=fen, card=card)  # fmt: skip


def wire(send: Send) -> tuple[str, str | None, str, str | None, str]:
    """(MTI, 3, 11, 39, 60) of a request as the codec encodes it."""
    mti, fields = to_fields(send.message)
    f3, f39 = fields.get(3), fields.get(39)
    return (mti, None if f3 is None else str(f3), str(fields[11]),
            None if f39 is None else str(f39), str(fields[60]))  # fmt: skip


Host = Callable[[Send], Answer | str]


def drive(proto: Prelude, host: Host, signon: Sequence[bool] = ()) -> list[object]:
    """Run ``proto`` to the end; ``host`` answers each send (a str = a link error)."""
    log: list[object] = []
    signons = iter(signon)
    while not isinstance(action := proto.next_action(), PreludeDone):
        if isinstance(action, Send):
            log.append(wire(action))
            got = host(action)
            if isinstance(got, str):
                proto.on_link_error(got)
            else:
                proto.on_answer(got)
        elif isinstance(action, SignOnAgain):
            log.append("sign on")
            proto.on_signed_on(next(signons))
        else:
            log.append(action)
    log.append(action)
    return log


def answers(*codes: Answer | str) -> Host:
    it = iter(codes)
    return lambda _send: next(it)


# ---------------------------------------------------------------------------- reversal


def test_the_pending_reversal_goes_before_the_offline_queue_and_then_the_sale_may_go() -> None:
    pending = sale("000005")
    queued = sale("000003", kind=Kind.OFFLINE, fen=500)
    proto = Prelude(batch="000001", signed_on=True, reversal_of=pending, offline=[(7, queued)])
    log = drive(proto, answers(Answer("00"), Answer("00")))
    assert log == [
        ("0400", "000000", "000005", "98", "22000001000"),
        ReversalAnswered("98", "00", True),
        ("0220", "000000", "000003", None, "30000001000"),
        OfflineUploaded(7, "000003", "00"),
        PreludeDone(reversal=True),
    ]
    assert not log[-1].blocked  # type: ignore[attr-defined]


def test_an_undelivered_reversal_blocks_everything_else_after_three_tries() -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"), reason_code="A0",
                    offline=[(7, sale("000003", kind=Kind.OFFLINE))])  # fmt: skip
    log = drive(proto, answers(Answer("96"), "no answer in 30 s", Answer("96")))
    rev = ("0400", "000000", "000005", "A0", "22000001000")
    assert log == [
        rev,
        ReversalAnswered("A0", "96", False),
        rev,
        ReversalNoAnswer("A0", "no answer in 30 s"),
        rev,
        ReversalAnswered("A0", "96", False),
        PreludeDone(reversal=False),
    ]
    assert proto.next_action() == PreludeDone(reversal=False)
    assert proto.next_action().blocked  # type: ignore[union-attr]


@pytest.mark.parametrize("code", ["12", "25"])
def test_nothing_to_undo_at_the_host_also_ends_the_reversal(code: str) -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"))
    log = drive(proto, answers(Answer(code)))
    assert log[1:] == [ReversalAnswered("98", code, True), PreludeDone(reversal=True)]


def test_without_keys_nothing_is_sent_and_the_reversal_waits() -> None:
    proto = Prelude(batch="000001", signed_on=False, reversal_of=sale("000005"),
                    offline=[(7, sale("000003", kind=Kind.OFFLINE))])  # fmt: skip
    assert drive(proto, answers()) == [PreludeDone(reversal=None)]


def test_timeout_of_a_sale_calls_for_its_reversal_98_which_goes_next() -> None:
    req = sale("000008", fen=9900)
    decision = decide(req.kind, None)
    assert (decision.verdict, decision.reverse, decision.unknown) == (
        Verdict.NO_ANSWER,
        "98",
        False,
    )
    assert decision.reverse is not None
    proto = Prelude(batch="000001", signed_on=True, reversal_of=req, reason_code=decision.reverse)
    log = drive(proto, answers(Answer("00")))
    assert log == [
        ("0400", "000000", "000008", "98", "22000001000"),
        ReversalAnswered("98", "00", True),
        PreludeDone(reversal=True),
    ]
    _, fields = to_fields(proto_first_send(req, decision.reverse).message)
    assert fields[4] == "000000009900"  # the reversal carries the original's amount


def proto_first_send(req: FinancialRequest, reason: str) -> Send:
    action = Prelude(
        batch=req.batch, signed_on=True, reversal_of=req, reason_code=reason
    ).next_action()
    assert isinstance(action, Send)
    return action


@pytest.mark.parametrize(
    ("kind", "answer", "verdict", "reverse", "unknown", "resign"),
    [
        (Kind.PURCHASE, Answer("00", mac_ok=True), Verdict.APPROVED, None, False, False),
        (Kind.PURCHASE, Answer("00", mac_ok=False), Verdict.UNTRUSTED, "A0", False, True),
        (Kind.REFUND, Answer("00", mac_ok=False), Verdict.UNTRUSTED, None, True, True),
        (Kind.REFUND, None, Verdict.NO_ANSWER, None, True, False),
        (Kind.BALANCE, None, Verdict.NO_ANSWER, None, False, False),
        (Kind.PREAUTH, None, Verdict.NO_ANSWER, "98", False, False),
        (Kind.PURCHASE, Answer("51"), Verdict.DECLINED, None, False, False),
        (Kind.PURCHASE, Answer("99"), Verdict.DECLINED, None, False, True),
    ],
)
def test_the_verdict_on_one_financial_answer(
    kind: Kind,
    answer: Answer | None,
    verdict: Verdict,
    reverse: str | None,
    unknown: bool,
    resign: bool,
) -> None:
    d = decide(kind, answer)
    assert (d.verdict, d.reverse, d.unknown, d.resign) == (verdict, reverse, unknown, resign)


# ---------------------------------------------------------------------------- re-sign-on


def _resign_codes() -> list[str]:
    return sorted({r.code for r in load_catalog() if r.terminal_action == "re_sign_on" and r.code})


def test_the_codes_the_terminal_signs_on_again_for_are_the_catalogs() -> None:
    assert _resign_codes() == sorted(RESIGN_CODES) == ["77", "99", "A0"]


@pytest.mark.parametrize("code", _resign_codes())
def test_a_reversal_answer_asking_for_sign_on_signs_on_then_retries(code: str) -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"))
    log = drive(proto, answers(Answer(code), Answer("00")), signon=[True])
    rev = ("0400", "000000", "000005", "98", "22000001000")
    assert log == [
        rev,
        ReversalAnswered("98", code, False),
        "sign on",
        rev,
        ReversalAnswered("98", "00", True),
        PreludeDone(reversal=True),
    ]
    assert decide(Kind.PURCHASE, Answer(code)).resign


def test_processing_requirement_3_signs_on_once_and_a_failed_sign_on_gives_up() -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"))
    log = drive(proto, answers(Answer("96", processing=3)), signon=[False])
    assert log == [
        ("0400", "000000", "000005", "98", "22000001000"),
        ReversalAnswered("98", "96", False),
        "sign on",
        PreludeDone(reversal=False),
    ]


def test_after_a_re_sign_on_the_reversal_gets_fresh_tries_but_signs_on_only_once() -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"))
    log = drive(proto, answers(*[Answer("99")] * 4), signon=[True])
    assert log.count("sign on") == 1
    assert sum(isinstance(x, tuple) and x[0] == "0400" for x in log) == 4  # 1, then 3 fresh
    assert log[-1] == PreludeDone(reversal=False)


# ---------------------------------------------------------------------------- offline


def test_an_offline_sale_of_a_closed_batch_is_re_issued_in_the_current_batch_on_77() -> None:
    old = sale("000003", batch="000001", kind=Kind.OFFLINE, fen=800)
    later = sale("000004", batch="000002", kind=Kind.OFFLINE, fen=300)
    stans = itertools.count(10)
    proto = Prelude(batch="000002", signed_on=True, offline=[(4, old), (5, later)],
                    stans=lambda: f"{next(stans):06d}")  # fmt: skip
    log = drive(proto, answers(Answer("77"), Answer("00"), Answer("94")))
    assert log == [
        ("0220", "000000", "000003", None, "30000001000"),
        OfflineMoved(4, old, replace(old, stan="000010", batch="000002")),
        ("0220", "000000", "000010", None, "30000002000"),
        OfflineUploaded(4, "000010", "00"),
        ("0220", "000000", "000004", None, "30000002000"),
        OfflineUploaded(5, "000004", "94"),
        PreludeDone(reversal=None),
    ]
    assert isinstance(log[1], OfflineMoved) and log[1].moved.auth_code == old.auth_code


def test_77_for_a_sale_of_the_current_batch_stops_the_upload_and_asks_for_sign_on() -> None:
    queue = [(1, sale("000003", kind=Kind.OFFLINE)), (2, sale("000004", kind=Kind.OFFLINE))]
    proto = Prelude(batch="000001", signed_on=True, offline=queue, stans=lambda: "000099")
    log = drive(proto, answers(Answer("77")))
    assert log == [
        ("0220", "000000", "000003", None, "30000001000"),
        PreludeDone(reversal=None, need_resign=True),
    ]


def test_a_declined_offline_sale_is_recorded_and_the_next_still_goes() -> None:
    queue = [(1, sale("000003", kind=Kind.OFFLINE)), (2, sale("000004", kind=Kind.OFFLINE))]
    proto = Prelude(batch="000001", signed_on=True, offline=queue)
    log = drive(proto, answers(Answer("51"), Answer("00", mac_ok=False)))
    assert log == [
        ("0220", "000000", "000003", None, "30000001000"),
        OfflineDeclined(1, "000003", "51"),
        ("0220", "000000", "000004", None, "30000001000"),
        PreludeDone(reversal=None, need_resign=True),  # untrusted 00: stays queued
    ]


def test_a_lost_offline_upload_keeps_the_sale_and_stops() -> None:
    queue = [(1, sale("000003", kind=Kind.OFFLINE)), (2, sale("000004", kind=Kind.OFFLINE))]
    proto = Prelude(batch="000001", signed_on=True, offline=queue)
    log = drive(proto, answers("connection reset"))
    assert log == [
        ("0220", "000000", "000003", None, "30000001000"),
        OfflineKept(1, "upload failed: connection reset"),
        PreludeDone(reversal=None, unreachable="connection reset"),
    ]


def test_the_protocol_refuses_to_be_driven_out_of_order() -> None:
    proto = Prelude(batch="000001", signed_on=True, reversal_of=sale("000005"))
    with pytest.raises(RuntimeError, match="nothing was sent"):
        proto.on_answer(Answer("00"))
    proto.next_action()
    with pytest.raises(RuntimeError, match="waiting for the answer to the reversal"):
        proto.next_action()


# ---------------------------------------------------------------------------- settlement


def settle_log(proto: Settle, host: Host) -> list[object]:
    log: list[object] = []
    while not isinstance(action := proto.next_action(), SettleDone):
        _, fields = to_fields(action.message)
        log.append((wire(action)[0], wire(action)[2], str(fields.get(48, ""))[:4], wire(action)[4]))
        got = host(action)
        if isinstance(got, str):
            proto.on_link_error(got)
        else:
            proto.on_answer(got)
    log.append(action)
    return log


def settlement(debits: Sequence[BatchRecord], items: Sequence[FinancialRequest]) -> Settle:
    stans = itertools.count(20)
    return Settle(
        tid=TID, mid=MID, batch="000001", operator="01",
        domestic=Totals(1000, 9, 500, 1), foreign=Totals(0, 0, 0, 0),
        debits=lambda: debits, items=lambda: items, stans=lambda: f"{next(stans):06d}",
    )  # fmt: skip


def test_unbalanced_settlement_uploads_the_batch_8_records_a_message_then_the_end() -> None:
    debits = [BatchRecord(f"{i:06d}", PAN, 100 + i) for i in range(1, 10)]  # 9 debits
    refund = sale("000015", kind=Kind.REFUND, fen=500)
    proto = settlement(debits, [refund])
    sent: list[Send] = []
    replies = answers(Answer(None, checks=(2, 1)), *[Answer("00")] * 4)
    log = settle_log(proto, lambda send: sent.append(send) or replies(send))
    assert log == [
        ("0500", "000020", "0000", "00000001201"),
        ("0320", "000021", "08" + "00", "00000001201"),  # 8 records, card class 00 ...
        ("0320", "000022", "01" + "00", "00000001201"),  # ... and the ninth
        ("0320", "000015", "", "25000001201"),  # the refund whole, under its own STAN
        ("0320", "000023", "0010", "00000001202"),  # the end: 10 records
        SettleDone("settlement.unbalanced", True, (2, 1), uploaded=10),
    ]
    _, first = to_fields(sent[1].message)
    record = "00" + "000001" + PAN.zfill(20) + "000000000101"  # class, STAN, PAN, amount
    assert str(first[48]).startswith("08" + record)


@pytest.mark.parametrize(
    ("checks", "done"),
    [
        ((1, 1), SettleDone("settlement.balanced", True, (1, 1))),
        ((1, 0), SettleDone("settlement.balanced", True, (1, 0))),
        ((3, 1), SettleDone("settlement.error", False, (3, 1))),
        ((1, 7), SettleDone("settlement.error", False, (1, 7))),
        ((), SettleDone("message.format_error", False)),
    ],
)
def test_balanced_or_refused_settlement_sends_nothing_more(
    checks: tuple[int, ...], done: SettleDone
) -> None:
    proto = settlement([BatchRecord("000001", PAN, 100)], [])
    log = settle_log(proto, answers(Answer(None, checks=checks)))
    assert log == [("0500", "000020", "0000", "00000001201"), done]


def test_a_lost_batch_upload_leaves_the_batch_open() -> None:
    proto = settlement([BatchRecord("000001", PAN, 100)], [])
    log = settle_log(proto, answers(Answer(None, checks=(2, 1)), "no answer"))
    assert log[-1] == SettleDone("network.timeout", False, (2, 1), error="no answer")
    assert [x[0] for x in log[:-1]] == ["0500", "0320"]  # type: ignore[index]
