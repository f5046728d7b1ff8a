"""The fact sentences of a diagnosis, in Chinese and English.

The catalog says what a reason means in general; these sentences say what
happened in this case, from the journal's facts, the current state of the
merchant, terminal or card, and their audit history. Nothing here guesses:
a sentence is written only when its facts are recorded.

The words are data: ``sentences.toml`` next to this module, loaded and checked
by :func:`clearpos.reasons.load_sentences` (every placeholder declared, both
languages present) and rendered by the catalog's template engine. :func:`say`
renders one sentence; the word tables (``CAUSE``, ``STATUS``...) come from its
``[words.*]`` tables.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..reasons import Sentences, load_sentences
from ..store import AuditRec, CardRec, MerchantRec, TerminalRec, Tx
from ..store.queries.ops import role_of


@cache
def sentences() -> Sentences:
    """The packaged diagnosis sentences, loaded and checked once."""
    return load_sentences(package=__package__ or "clearpos.diagnosis")


def say(sid: str, lang: str, **facts: object) -> str:
    """Sentence ``sid`` of ``sentences.toml`` in Chinese (``lang == "zh"``) or English,
    with ``facts`` filled in (TypeError when they do not match the sentence's)."""
    return sentences().render(sid, "zh" if lang == "zh" else "en", **facts)


def _table(name: str) -> dict[str, tuple[str, str]]:
    """Word table ``[words.<name>]`` as key -> (zh, en)."""
    return {k: (v.zh, v.en) for k, v in sentences().words(name).items()}


CAUSE = _table("cause")
ROLE = _table("role")
STATUS = _table("status")
#: journal kinds (what the terminal did) in the words of a POS receipt
KIND = _table("kind")

#: audited actions (the audit trail's ``action``) as a person says them
ACTION = _table("action")


def action_word(action: str, lang: str) -> str:
    """``resumption.approve`` -> ``resumption approved`` (in English)."""
    return word(ACTION, action, lang)


def state_word(value: str, lang: str) -> str:
    """An audited state such as ``suspended(arrears)`` in words: ``suspended (arrears)``."""
    if not value:
        return "–"
    base, _, cause = value.partition("(")
    text = word(STATUS, base, lang)
    if cause:
        why = word(CAUSE, cause.rstrip(")"), lang)
        text += say("sentences.state_word.cause", lang, why=why)
    return text


def word(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    pair = table.get(key)
    return (pair[0] if lang == "zh" else pair[1]) if pair else key


def when(iso: str | None) -> str:
    """China time of a stored UTC text, to the minute ('' when unknown)."""
    return show(iso) if iso else ""


def who(tx: Tx, name: str, lang: str) -> str:
    """``supervisor li`` when ``li`` is a console user, else the name as recorded."""
    if name == "world":
        return say("sentences.who.the_world_file", lang)
    role = role_of(tx, name)
    if role:
        return (
            f"{word(ROLE, role, lang)} {name}"
            if lang == "en"
            else f"{word(ROLE, role, lang)}{name}"
        )
    return name


def state_why(by: str, why: str) -> str:
    """The recorded why, except the seed's "loaded from FILE": the world file set the state,
    which "by the world file" already says, and a path is not a reason."""
    return "" if by == "world" and why.startswith("loaded from ") else why


def why_part(why: str, lang: str) -> str:
    return (say("sentences.why_part.colon", lang) + why) if why else ""


def merchant_label(m: MerchantRec) -> str:
    return f"{m.mid} ({m.name})"


def merchant_state(tx: Tx, m: MerchantRec, lang: str) -> str:
    """One sentence: the merchant's current state, since when, by whom, why, what it owes."""
    label = merchant_label(m)
    by = who(tx, m.status_by, lang)
    since = when(m.status_since)
    if m.status == "suspended":
        cause = m.suspension_cause or "manual"
        text = say(
            "sentences.merchant_state.merchant_suspended_for_since_by",
            lang,
            label=label,
            since=since,
            cause_word=word(CAUSE, cause, lang),
            by=by,
            why_part=why_part(state_why(m.status_by, m.status_why), lang),
            cause=cause,
        )
        if cause == "arrears" or m.arrears_fen:
            text += say("sentences.merchant_state.owes", lang, arrears=fen_yuan(m.arrears_fen))
        return text
    if m.status == "closed":
        return say(
            "sentences.merchant_state.merchant_closed_since_by",
            lang,
            label=label,
            since=since,
            by=by,
            why_part=why_part(state_why(m.status_by, m.status_why), lang),
        )
    if m.status == "restricted":
        types = ", ".join(m.restricted_types) or "-"
        return say(
            "sentences.merchant_state.merchant_restricted_since_by",
            lang,
            label=label,
            since=since,
            by=by,
            types=types,
            why_part=why_part(state_why(m.status_by, m.status_why), lang),
        )
    return say(
        "sentences.merchant_state.merchant_active_since_by",
        lang,
        label=label,
        since=since,
        by=by,
        why_part=why_part(state_why(m.status_by, m.status_why), lang),
    )


def terminal_state(tx: Tx, term: TerminalRec, lang: str) -> str:
    """One sentence: the terminal's current state, since when, by whom, why."""
    by = who(tx, term.status_by, lang)
    since = when(term.status_since)
    if term.status == "replaced":
        return say(
            "sentences.terminal_state.terminal_was_replaced_by_on",
            lang,
            tid=term.tid,
            since=since,
            by=by,
            replaced_by=term.replaced_by,
            why_part=why_part(state_why(term.status_by, term.status_why), lang),
        )
    if term.status == "suspended":
        return say(
            "sentences.terminal_state.terminal_suspended_since_by",
            lang,
            tid=term.tid,
            since=since,
            by=by,
            why_part=why_part(state_why(term.status_by, term.status_why), lang),
        )
    return say(
        "sentences.terminal_state.terminal_active_since_by",
        lang,
        tid=term.tid,
        since=since,
        by=by,
        why_part=why_part(state_why(term.status_by, term.status_why), lang),
    )


def card_state(tx: Tx, card: CardRec, lang: str) -> str:
    by = who(tx, card.status_by, lang)
    since = when(card.status_since)
    return say(
        "sentences.card_state.card_is_since_by",
        lang,
        pan_masked=card.pan_masked,
        since=since,
        status_word=word(STATUS, card.status, lang),
        by=by,
        why_part=why_part(state_why(card.status_by, card.status_why), lang),
        status=card.status,
    )


def audit_sentence(tx: Tx, a: AuditRec, lang: str) -> str:
    """An audit row as a sentence: 'resume on 2026-11-23 10:02 by supervisor li: paid'."""
    by = who(tx, a.actor, lang)
    move = f" ({a.from_state} → {a.to_state})" if a.from_state != a.to_state and a.to_state else ""
    moved = (
        say(
            "sentences.audit_sentence.moved",
            lang,
            from_state=state_word(a.from_state, lang),
            to_state=state_word(a.to_state, lang),
        )
        if a.from_state != a.to_state and a.to_state
        else ""
    )
    return say(
        "sentences.audit_sentence.on_by",
        lang,
        ts=when(a.ts),
        by=by,
        action_word=action_word(a.action, lang),
        moved=moved,
        why_part=why_part(a.reason, lang),
        action=a.action,
        move=move,
    )


def yuan_fact(facts: dict[str, Any], key: str) -> str | None:
    """A money fact as yuan text, whether recorded as ``key`` (yuan) or ``key_fen``."""
    if key in facts and facts[key] is not None:
        return str(facts[key])
    fen = facts.get(f"{key}_fen")
    return fen_yuan(int(fen)) if isinstance(fen, int) else None
