"""The terminal's rules as a sans-I/O protocol (spec/pos8583.md §4-§6).

Nothing here touches a socket, a clock or the state directory. A protocol
object is told what the terminal holds (the pending reversal, the offline
queue, the batch's records) and answers, one step at a time, what to do next:

- :class:`Send` -- send this request; report the answer with ``on_answer`` or
  the failure with ``on_link_error``;
- :class:`SignOnAgain` -- sign on again (the host asked); report ``on_signed_on``;
- a record (:class:`ReversalAnswered`, :class:`OfflineUploaded`, ...) -- write it
  to the journal and ask again;
- :class:`PreludeDone` / :class:`SettleDone` -- the end, with what happened.

The driver (:mod:`.reversal`, :mod:`.offline`, :mod:`.settle`) owns the link
and the store and does exactly what it is told, in order::

    proto = Prelude(...)
    while not isinstance(action := proto.next_action(), PreludeDone):
        ...

:func:`decide` is the verdict on one financial answer (approved, declined,
approved-but-untrusted, no answer) and which reversal, if any, it calls for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from functools import partial

from clearpos.wire import (
    BatchRecord,
    BatchUpload,
    BatchUploadEnd,
    BatchUploadItem,
    FinancialRequest,
    Kind,
    Request,
    Reversal,
    Settlement,
    Settlement48,
    Totals,
)

__all__ = [
    "RESIGN_CODES",
    "REVERSAL_DONE",
    "REVERSAL_TRIES",
    "Answer",
    "Decision",
    "OfflineDeclined",
    "OfflineKept",
    "OfflineMoved",
    "OfflineUploaded",
    "Prelude",
    "PreludeDone",
    "ReversalAnswered",
    "ReversalNoAnswer",
    "Send",
    "Settle",
    "SettleDone",
    "SignOnAgain",
    "Verdict",
    "decide",
    "needs_resign",
]

#: a reversal answered with one of these is done (12 / 25: the host has nothing to undo)
REVERSAL_DONE = frozenset({"00", "12", "25"})
#: answers after which the terminal signs on again by itself (spec §5)
RESIGN_CODES = frozenset({"99", "A0", "77"})
#: tries of the pending reversal per command (and again after a re-sign-on)
REVERSAL_TRIES = 3
#: debit records per 0320 (60.3 201)
RECORDS_PER_UPLOAD = 8


def needs_resign(code: str | None, processing: int = 0) -> bool:
    """The host wants a new sign-on: 99 / A0 / 77, or processing requirement 3."""
    return code in RESIGN_CODES or processing == 3


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for the last :class:`Send` (the driver parsed and checked it).

    ``code`` is field 39 (None when the answer is not the expected kind of
    response), ``processing`` the header's processing requirement, ``mac_ok``
    whether an approved answer's MAC verified (None: no MAC to check) and
    ``checks`` a settlement answer's two check codes (domestic, foreign).
    """

    code: str | None
    processing: int = 0
    mac_ok: bool | None = None
    checks: tuple[int, ...] = ()


# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` and wait for its answer."""

    message: Request
    purpose: str


@dataclass(frozen=True, slots=True)
class SignOnAgain:
    """Sign on by itself (the host asked); then ``on_signed_on``."""


@dataclass(frozen=True, slots=True)
class ReversalAnswered:
    """Journal: the reversal (reason ``reason_code``) was answered ``code``."""

    reason_code: str
    code: str
    done: bool


@dataclass(frozen=True, slots=True)
class ReversalNoAnswer:
    """Journal: a try of the reversal got no answer."""

    reason_code: str
    error: str


@dataclass(frozen=True, slots=True)
class OfflineMoved:
    """Store: offline sale ``row`` now is ``moved`` (current batch, new STAN)."""

    row: int
    old: FinancialRequest
    moved: FinancialRequest


@dataclass(frozen=True, slots=True)
class OfflineUploaded:
    """Store: offline sale ``row`` is with the host (00, or 94: it had it already)."""

    row: int
    stan: str
    code: str


@dataclass(frozen=True, slots=True)
class OfflineDeclined:
    """Store: the host refused offline sale ``row``."""

    row: int
    stan: str
    code: str


@dataclass(frozen=True, slots=True)
class OfflineKept:
    """Store: offline sale ``row`` stays queued (its upload got no answer)."""

    row: int
    error: str


@dataclass(frozen=True, slots=True)
class PreludeDone:
    """The prelude is over.

    ``reversal`` is None when none was pending (or it could not be tried: not
    signed on), True when it was delivered, False when it is still pending;
    ``unreachable`` the link error that stopped the offline upload;
    ``need_resign`` whether an offline upload's answer asked for a sign-on.
    """

    reversal: bool | None
    unreachable: str | None = None
    need_resign: bool = False

    @property
    def blocked(self) -> bool:
        """The pending reversal could not be delivered: no other online message may go."""
        return self.reversal is False


Action = (
    Send
    | SignOnAgain
    | ReversalAnswered
    | ReversalNoAnswer
    | OfflineMoved
    | OfflineUploaded
    | OfflineDeclined
    | OfflineKept
    | PreludeDone
)


# ---------------------------------------------------------------------------- prelude


class Prelude:
    """What goes before any online message: the pending reversal, then the offline queue.

    - the reversal of ``reversal_of`` (reason ``reason_code``) goes first, up to
      :data:`REVERSAL_TRIES` tries; 00 / 12 / 25 mean done; an answer asking for a
      sign-on (99, A0, 77, processing requirement 3) makes the terminal sign on
      once and try again (with fresh tries); undelivered, it blocks the command;
    - then (only when signed on, and the reversal is not pending) each queued
      offline sale is uploaded as stored (0220, 60.1 = 30): 00 / 94 mean the
      host has it; 77 for a sale whose batch is no longer the current one means
      the host closed that batch without it -- the sale is re-issued in the
      current batch under a new STAN (``stans``) and sent at once; 99 / A0 / 77
      otherwise stop the upload and ask for a sign-on; an approved answer whose
      MAC fails leaves the sale queued; no answer stops the upload.
    """

    def __init__(
        self,
        *,
        batch: str,
        signed_on: bool,
        reversal_of: FinancialRequest | None = None,
        reason_code: str = "98",
        offline: Sequence[tuple[int, FinancialRequest]] = (),
        stans: Callable[[], str] | None = None,
        tries: int = REVERSAL_TRIES,
    ) -> None:
        self.batch = batch
        self.signed_on = signed_on
        self.reversal_of = reversal_of
        self.reason_code = reason_code
        self._queue = deque(offline)
        self._stans = stans
        self._tries_per_round = tries
        self._tries = 0
        self._resigned = False
        self._need_resign = False
        self._out: deque[Action] = deque()
        self._waiting: str | None = None  # "reversal" | "offline" | "signon"
        self._current: tuple[int, FinancialRequest, bool] | None = None  # row, req, moved
        self._tried_reversal = reversal_of is not None and signed_on
        self._done: PreludeDone | None = None

    # -------------------------------------------------------------- steps

    def next_action(self) -> Action:
        """The next thing to do; the same :class:`PreludeDone` once over."""
        if self._out:
            return self._out.popleft()
        if self._waiting is not None:
            raise RuntimeError(f"waiting for the answer to the {self._waiting}")
        if self._done is not None:
            return self._done
        if self.reversal_of is not None and self.signed_on:
            if self._tries >= self._tries_per_round:
                return self._finish()
            self._waiting = "reversal"
            return Send(Reversal.of(self.reversal_of, self.reason_code), "reversal")
        if self.reversal_of is None and self.signed_on and self._queue and not self._need_resign:
            row, req = self._queue.popleft()
            self._current = (row, req, False)
            self._waiting = "offline"
            return Send(req, "offline upload")
        return self._finish()

    def on_answer(self, answer: Answer) -> None:
        """The answer to the last :class:`Send`."""
        what, self._waiting = self._waiting, None
        if what == "reversal":
            self._reversal_answer(answer)
        elif what == "offline":
            self._offline_answer(answer)
        else:
            raise RuntimeError("an answer when nothing was sent")

    def on_link_error(self, error: str) -> None:
        """The last :class:`Send` got no answer (or the link broke)."""
        what, self._waiting = self._waiting, None
        if what == "reversal":
            self._tries += 1
            self._out.append(ReversalNoAnswer(self.reason_code, error))
        elif what == "offline":
            assert self._current is not None
            self._out.append(OfflineKept(self._current[0], f"upload failed: {error}"))
            self._finish(unreachable=error)
        else:
            raise RuntimeError("a link error when nothing was sent")

    def on_signed_on(self, ok: bool) -> None:
        """The result of :class:`SignOnAgain`."""
        if self._waiting != "signon":
            raise RuntimeError("a sign-on result when none was asked for")
        self._waiting = None
        self.signed_on = ok
        if ok:
            self._tries = 0  # a fresh set of tries with the new keys
        else:
            self._finish()

    # -------------------------------------------------------------- rules

    def _reversal_answer(self, answer: Answer) -> None:
        code = answer.code or ""
        if code in REVERSAL_DONE:
            self._out.append(ReversalAnswered(self.reason_code, code, True))
            self.reversal_of = None
            return
        self._tries += 1
        self._out.append(ReversalAnswered(self.reason_code, code, False))
        if needs_resign(answer.code, answer.processing) and not self._resigned:
            self._resigned = True
            self._waiting = "signon"
            self._out.append(SignOnAgain())

    def _offline_answer(self, answer: Answer) -> None:
        assert self._current is not None
        row, req, moved = self._current
        code = answer.code
        if code is None:
            return  # not a financial answer: the sale stays queued
        if code == "77" and not moved and req.batch != self.batch and self.signed_on:
            if self._stans is None:
                raise RuntimeError("moving an offline sale needs new STANs")
            again = replace(req, stan=self._stans(), batch=self.batch)
            self._out.append(OfflineMoved(row, req, again))
            self._current = (row, again, True)
            self._waiting = "offline"
            self._out.append(Send(again, "offline upload"))
            return
        if code == "00" and answer.mac_ok is False:
            self._need_resign = True  # stays queued; the host has it or says 94 next time
            self._queue.clear()
            return
        if code in ("00", "94"):
            self._out.append(OfflineUploaded(row, req.stan, code))
        elif code in RESIGN_CODES:
            self._need_resign = True
            self._queue.clear()
        else:
            self._out.append(OfflineDeclined(row, req.stan, code))

    def _finish(self, unreachable: str | None = None) -> PreludeDone:
        if self._done is None:
            reversal: bool | None = None
            if self._tried_reversal:
                reversal = self.reversal_of is None
            self._done = PreludeDone(reversal, unreachable, self._need_resign)
        return self._done


# ---------------------------------------------------------------------------- one answer


class Verdict(Enum):
    APPROVED = "approved"
    DECLINED = "declined"
    #: approved, but the MAC failed: not trusted (reversed with A0 when reversible)
    UNTRUSTED = "untrusted"
    #: no answer: reversed with 98 when reversible, unknown for a refund
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class Decision:
    """What a financial answer means: the verdict, the reversal it calls for
    (reason code, or None), whether the outcome is unknown (a refund is never
    reversed) and whether the terminal must sign on again afterwards."""

    verdict: Verdict
    reverse: str | None = None
    unknown: bool = False
    resign: bool = False


def decide(kind: Kind, answer: Answer | None) -> Decision:
    """The verdict on the answer to a financial request of ``kind`` (None: no answer)."""
    if answer is None or answer.code is None:
        if kind.reversible:
            return Decision(Verdict.NO_ANSWER, reverse="98")
        return Decision(Verdict.NO_ANSWER, unknown=kind is Kind.REFUND)
    if answer.code == "00" and answer.mac_ok is False:
        return Decision(
            Verdict.UNTRUSTED,
            reverse="A0" if kind.reversible else None,
            unknown=kind is Kind.REFUND,
            resign=True,
        )
    if answer.code == "00":
        return Decision(Verdict.APPROVED)
    # processing requirement 3 is the header's, acted on after any answer by the driver
    return Decision(Verdict.DECLINED, resign=answer.code in RESIGN_CODES)


# ---------------------------------------------------------------------------- settlement


@dataclass(frozen=True, slots=True)
class SettleDone:
    """Settlement is over: ``key`` is the reason (``settlement.balanced``,
    ``settlement.unbalanced``, ``settlement.error``, ``message.format_error``,
    ``network.timeout``); ``closed`` whether the batch may be closed;
    ``uploaded`` the records uploaded; ``error`` the link error, if one stopped it."""

    key: str
    closed: bool
    checks: tuple[int, ...] = ()
    uploaded: int | None = None
    error: str | None = None
    #: the error came before the settlement was answered (nothing settled)
    unanswered: bool = False


class Settle:
    """0500 with the batch's totals; on check code 2 (the host's totals differ) the
    batch upload -- 0320 with up to 8 debit records each, then each refund and
    offline sale whole, then the end (0320, 60.3 202, 48 = count) -- and the batch
    closes. Check code 3 or an unknown one: settlement error, the batch stays open."""

    def __init__(
        self,
        *,
        tid: str,
        mid: str,
        batch: str,
        operator: str,
        domestic: Totals,
        foreign: Totals,
        debits: Callable[[], Sequence[BatchRecord]],
        items: Callable[[], Sequence[FinancialRequest]],
        stans: Callable[[], str],
    ) -> None:
        self.tid, self.mid, self.batch, self.operator = tid, mid, batch, operator
        self.domestic, self.foreign = domestic, foreign
        self._debits, self._items, self._stans = debits, items, stans
        self._upload: deque[Callable[[], Request]] | None = None
        self._count = 0
        self._checks: tuple[int, ...] = ()
        self._waiting = False
        self._done: SettleDone | None = None
        self.stan: str | None = None

    def next_action(self) -> Send | SettleDone:
        if self._waiting:
            raise RuntimeError("waiting for an answer")
        if self._done is not None:
            return self._done
        if self.stan is None:
            self.stan = self._stans()
            self._waiting = True
            return Send(
                Settlement(
                    tid=self.tid,
                    mid=self.mid,
                    stan=self.stan,
                    batch=self.batch,
                    totals=Settlement48(self.domestic, self.foreign),
                    operator=self.operator.ljust(3),
                ),
                "settlement",
            )
        assert self._upload is not None
        if self._upload:
            self._waiting = True
            return Send(self._upload.popleft()(), "batch upload")
        self._done = SettleDone("settlement.unbalanced", True, self._checks, uploaded=self._count)
        return self._done

    def on_answer(self, answer: Answer) -> None:
        if not self._waiting:
            raise RuntimeError("an answer when nothing was sent")
        self._waiting = False
        if self._upload is not None:
            return  # a batch upload answer: only that it came
        checks = answer.checks
        self._checks = checks
        if not checks:
            self._done = SettleDone("message.format_error", False)
        elif 3 in checks or not all(c in (0, 1, 2) for c in checks):
            self._done = SettleDone("settlement.error", False, checks)
        elif 2 in checks:
            self._upload = deque(self._plan())
        else:
            self._done = SettleDone("settlement.balanced", True, checks)

    def on_link_error(self, error: str) -> None:
        if not self._waiting:
            raise RuntimeError("a link error when nothing was sent")
        self._waiting = False
        unanswered = self._upload is None
        self._done = SettleDone(
            "network.timeout", False, self._checks, error=error, unanswered=unanswered
        )

    def _plan(self) -> list[Callable[[], Request]]:
        """The batch upload, each message built when it goes (its STAN taken then)."""
        debits = list(self._debits())
        items = list(self._items())
        out: list[Callable[[], Request]] = [
            partial(self._records, tuple(debits[i : i + RECORDS_PER_UPLOAD]))
            for i in range(0, len(debits), RECORDS_PER_UPLOAD)
        ]
        out.extend(partial(BatchUploadItem.of, item) for item in items)
        self._count = len(debits) + len(items)
        out.append(self._end)
        return out

    def _records(self, chunk: tuple[BatchRecord, ...]) -> Request:
        return BatchUpload(
            tid=self.tid, mid=self.mid, stan=self._stans(), batch=self.batch, records=chunk
        )

    def _end(self) -> Request:
        return BatchUploadEnd(
            tid=self.tid, mid=self.mid, stan=self._stans(), batch=self.batch, count=self._count
        )
