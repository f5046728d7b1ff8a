"""A transaction's diagnosis and its terminal screen, as the console shows them.

The words come from :mod:`clearpos.diagnosis` (the same explanation
``clearpos diagnose`` prints). Should it fail on a row, the page falls back to
the reason catalog's texts with the facts the host recorded, and logs why.
The terminal screen is the catalog's screen text of the reason the terminal
was given, which is what it displayed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..reasons import Catalog, Lang
from ..store import JournalRec, Tx

__all__ = ["Explanation", "explain", "fact_items", "screen_facts"]

log = logging.getLogger("clearpos.console")

# facts that are bookkeeping, not evidence worth a line on the page
_HIDDEN_FACTS = frozenset({"notice_zh", "notice_en"})


@dataclass(frozen=True, slots=True)
class Explanation:
    """Cause, who must act, remedy steps and the terminal's screen text, in one language."""

    reason: str
    code: str
    screen: str
    cause: str
    actor: str
    remedy: list[str]
    category: str | None
    source: str  # "diagnosis" or "catalog"
    #: what the diagnosis found, one sentence each (reversals, tries left, windows...)
    sentences: list[str] = field(default_factory=list)


def screen_facts(rec: JournalRec, lang: Lang) -> dict[str, object]:
    """The recorded facts as the reason texts use them (notice in the display language)."""
    facts: dict[str, object] = {
        k: v for k, v in rec.facts.items() if not isinstance(v, dict | list)
    }
    notice = rec.facts.get(f"notice_{lang}") or rec.facts.get("notice_zh")
    if notice:
        facts["notice"] = notice
    return facts


def fact_items(rec: JournalRec) -> list[tuple[str, str]]:
    """The recorded facts as (name, text) lines for the page; keys and notices left out."""
    out: list[tuple[str, str]] = []
    for k in sorted(rec.facts):
        if k in _HIDDEN_FACTS or k.endswith("_kcv"):
            continue
        v = rec.facts[k]
        out.append((k, v if isinstance(v, str) else repr(v)))
    return out


def _from_catalog(rec: JournalRec, lang: Lang, cat: Catalog) -> Explanation:
    facts = screen_facts(rec, lang)
    reason = cat.get(rec.reason)
    if reason is None:
        text = cat.code_text(rec.code, lang)
        return Explanation(rec.reason, rec.code, text, text, "", [], None, "catalog")
    return Explanation(
        rec.reason,
        rec.code,
        reason.screen_text(lang, **facts),
        reason.cause_text(lang, **facts),
        reason.actor.get(lang),
        reason.remedy_steps(lang, **facts),
        reason.category,
        "catalog",
    )


def explain(tx: Tx, rec: JournalRec, lang: Lang, cat: Catalog) -> Explanation:
    """The explanation of one journal row: :func:`clearpos.diagnosis.explain_row`, the same
    words ``clearpos diagnose`` prints; the catalog's texts if the diagnosis fails."""
    base = _from_catalog(rec, lang, cat)
    try:
        from ..diagnosis import explain_row

        got = explain_row(tx, rec, lang)
    except Exception:  # the page still shows the catalog's explanation
        log.exception("diagnosis of journal row %s failed; showing the catalog's texts", rec.id)
        return base
    return Explanation(
        got.reason,
        got.code or "",
        got.screen,
        got.cause,
        got.actor,
        list(got.remedy),
        got.category,
        "diagnosis",
        sentences=list(got.facts),
    )
