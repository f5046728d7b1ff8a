"""Typed diagnosis results: what the CLI prints and the web console renders.

Every result is a frozen dataclass with ``to_dict()`` (JSON-friendly: times
both as UTC ISO text and as China time for display). Texts are already in the
language asked for; card numbers are masked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Explanation",
    "FailureGroup",
    "Fix",
    "HistoryEntry",
    "MerchantDiagnosis",
    "MerchantState",
    "Resolved",
    "TerminalDiagnosis",
    "TerminalState",
]


@dataclass(frozen=True, slots=True)
class Explanation:
    """One transaction (or one catalog reason) explained.

    ``reason`` is the outcome the terminal showed; it differs from
    ``journal_reason`` (what the host recorded) only when the terminal never
    got the host's answer — ``network.timeout`` for an approved purchase the
    terminal then reversed.
    """

    rrn: str | None
    tid: str
    mid: str
    reason: str
    code: str | None
    category: str | None
    screen: str
    cause: str
    facts: tuple[str, ...]
    actor: str
    remedy: tuple[str, ...]
    lang: str
    ts: str | None = None
    time: str | None = None
    kind: str = ""
    amount_fen: int | None = None
    amount: str | None = None
    pan_masked: str = ""
    status: str = ""
    journal_reason: str | None = None
    stan: str = ""
    batch: str = ""

    def lines(self) -> list[str]:
        """The explanation as the lines ``clearpos diagnose`` prints."""
        from .render import render_explanation

        return render_explanation(self).splitlines()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = "transaction"
        d["facts"] = list(self.facts)
        d["remedy"] = list(self.remedy)
        return d


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Recent failures of one reason: how many, first and last time, where."""

    reason: str
    screen: str
    actor: str
    category: str | None
    count: int
    first: str
    last: str
    first_time: str
    last_time: str
    tids: tuple[str, ...]
    rrns: tuple[str, ...]
    #: the merchant, the provider or the terminal must act (not the cardholder, not "wait")
    fixable: bool

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tids"] = list(self.tids)
        d["rrns"] = list(self.rrns)
        return d


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audited change of the subject: who, when, what, why."""

    ts: str
    time: str
    entity: str
    entity_id: str
    actor: str
    action: str
    from_state: str
    to_state: str
    why: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Fix:
    """The single most likely thing to fix, with who acts and the steps.

    ``source`` is ``"state"`` for a blocking state (suspended, closed, not
    signed on, update required) and ``"declines"`` for the most frequent recent
    decline the merchant, provider or terminal can act on.
    """

    reason: str
    source: str
    headline: str
    cause: str
    actor: str
    remedy: tuple[str, ...]
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["remedy"] = list(self.remedy)
        return d


@dataclass(frozen=True, slots=True)
class Resolved:
    """What went wrong before and is no longer true: the headline's second line.

    ``line`` reads "It was X, now resolved at T by Y"; ``at`` is UTC ISO, ``time``
    China time with its zone, ``by`` who or what resolved it (an audited change,
    or the approved transaction that showed it works again).
    """

    reason: str
    screen: str
    last_failure: str
    at: str
    time: str
    by: str
    how: str
    line: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TerminalState:
    tid: str
    mid: str
    status: str
    since: str
    by: str
    why: str
    signed_on: bool
    keys_issued_at: str | None
    batch: str
    software: str | None
    min_software: str
    last_seen: str | None
    tmk_kcv: str
    replaced_by: str | None
    replaces: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MerchantState:
    mid: str
    name: str
    status: str
    suspension_cause: str
    owed: str
    owed_fen: int
    since: str
    by: str
    why: str
    restricted_types: tuple[str, ...]
    single_limit: str
    pending_request: int | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["restricted_types"] = list(self.restricted_types)
        return d


@dataclass(frozen=True, slots=True)
class TerminalDiagnosis:
    tid: str
    window_start: str
    terminal: TerminalState | None
    merchant: MerchantState | None
    blocking: tuple[Fix, ...]
    failures: tuple[FailureGroup, ...]
    fix: Fix | None
    history: tuple[HistoryEntry, ...]
    transactions: tuple[Explanation, ...]
    lang: str
    resolved: Resolved | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "terminal",
            "tid": self.tid,
            "mid": self.terminal.mid if self.terminal else None,
            "window_start": self.window_start,
            "terminal": self.terminal.to_dict() if self.terminal else None,
            "merchant": self.merchant.to_dict() if self.merchant else None,
            "blocking": [b.to_dict() for b in self.blocking],
            "failures": [f.to_dict() for f in self.failures],
            "fix": self.fix.to_dict() if self.fix else None,
            "resolved": self.resolved.to_dict() if self.resolved else None,
            "history": [h.to_dict() for h in self.history],
            "transactions": [t.to_dict() for t in self.transactions],
            "lang": self.lang,
        }


@dataclass(frozen=True, slots=True)
class MerchantDiagnosis:
    mid: str
    window_start: str
    merchant: MerchantState
    terminals: tuple[TerminalState, ...]
    arrears: tuple[dict[str, Any], ...]
    requests: tuple[dict[str, Any], ...]
    blocking: tuple[Fix, ...]
    failures: tuple[FailureGroup, ...]
    fix: Fix | None
    history: tuple[HistoryEntry, ...]
    transactions: tuple[Explanation, ...]
    lang: str
    resolved: Resolved | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "merchant",
            "mid": self.mid,
            "window_start": self.window_start,
            "merchant": self.merchant.to_dict(),
            "terminals": [t.to_dict() for t in self.terminals],
            "arrears": list(self.arrears),
            "requests": list(self.requests),
            "blocking": [b.to_dict() for b in self.blocking],
            "failures": [f.to_dict() for f in self.failures],
            "fix": self.fix.to_dict() if self.fix else None,
            "resolved": self.resolved.to_dict() if self.resolved else None,
            "history": [h.to_dict() for h in self.history],
            "transactions": [t.to_dict() for t in self.transactions],
            "lang": self.lang,
        }
