"""``clearpos.diagnosis`` — explain a transaction, a terminal or a merchant.

Library first: each function takes a store transaction (``clearpos.store.queries.read(db)``) and
returns typed, frozen results (:mod:`.model`) with texts already in Chinese or
English and card numbers masked. ``clearpos diagnose`` prints them; the web
console renders the same objects.

>>> from clearpos.diagnosis import explain_reason
>>> e = explain_reason("network.timeout", "en")
>>> e.code, e.actor
('98', 'no one - the terminal reverses')
"""

from __future__ import annotations

from .explain import explain_reason, explain_row, explain_rrn, explain_transaction
from .model import (
    Explanation,
    FailureGroup,
    Fix,
    HistoryEntry,
    MerchantDiagnosis,
    MerchantState,
    TerminalDiagnosis,
    TerminalState,
)
from .render import render_explanation, render_merchant, render_terminal
from .subjects import (
    NotFound,
    diagnose_code,
    diagnose_merchant,
    diagnose_terminal,
    failures,
    parse_since,
)

__all__ = [
    "Explanation",
    "FailureGroup",
    "Fix",
    "HistoryEntry",
    "MerchantDiagnosis",
    "MerchantState",
    "NotFound",
    "TerminalDiagnosis",
    "TerminalState",
    "diagnose_code",
    "diagnose_merchant",
    "diagnose_terminal",
    "explain_reason",
    "explain_row",
    "explain_rrn",
    "explain_transaction",
    "failures",
    "parse_since",
    "render_explanation",
    "render_merchant",
    "render_terminal",
]
