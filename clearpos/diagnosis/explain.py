"""Explain one transaction: what the terminal showed, the real cause, who acts, the remedy.

The reason and its facts come from the journal row the host wrote (STYLE.md
§7: diagnosis from recorded results, not from guesses); the words come from
the catalog; the specific sentences (:mod:`.sentences`) come from the current
state of the merchant, terminal or card and their audit history.
"""

from __future__ import annotations

from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..reasons import Lang, Reason, catalog
from ..store import AuditRec, JournalRec, Tx, rrn_of
from ..store.queries.ops import audit_rows, last_journal, maintenance_window
from . import chip
from .model import Explanation
from .sentences import (
    CAUSE,
    STATUS,
    audit_sentence,
    card_state,
    merchant_state,
    say,
    terminal_state,
    when,
    who,
    word,
    yuan_fact,
)

__all__ = [
    "explain_reason",
    "explain_row",
    "explain_rrn",
    "explain_transaction",
    "fill_ids",
    "is_fixable",
]

TIMEOUT = "network.timeout"
REFUSED = "card.refused_after_approval"
#: field 39 of a reversal (0400) -> the reason it stands for
_REVERSAL_REASONS = {"98": TIMEOUT, "06": REFUSED}


def fill_ids(steps: list[str], *, mid: str = "", tid: str = "", rrn: str = "") -> tuple[str, ...]:
    """Put the real MID, TID and RRN into the catalog's command examples."""
    out = []
    for s in steps:
        if mid:
            s = s.replace("--mid MID", f"--mid {mid}")
        if tid:
            s = s.replace("--tid TID", f"--tid {tid}")
        if rrn:
            s = s.replace("--rrn RRN", f"--rrn {rrn}")
        out.append(s)
    return tuple(out)


def is_fixable(reason: Reason) -> bool:
    """The merchant, the provider or the terminal must act — not the cardholder, and
    not "no one" or "wait" (a timeout the terminal reverses by itself, a maintenance window)."""
    actor = reason.actor.en.lower()
    if actor.startswith(("no one", "wait")) or "cardholder" in actor:
        return False
    return any(w in actor for w in ("merchant", "provider", "terminal"))


def explain_reason(
    key: str, lang: Lang = "zh", *, tid: str = "", mid: str = "", **facts: object
) -> Explanation:
    """A reason explained from the catalog alone (terminal-side keys such as
    ``network.timeout`` or ``operator.wrong_password`` never reach the host)."""
    r = catalog()[key]
    return Explanation(
        rrn=None,
        tid=tid,
        mid=mid,
        reason=key,
        code=r.code or r.reversal_code,
        category=r.category,
        screen=r.screen_text(lang, **facts),
        cause=r.cause_text(lang, **facts),
        facts=(),
        actor=r.actor.get(lang),
        remedy=fill_ids(r.remedy_steps(lang, **facts), mid=mid, tid=tid),
        lang=lang,
    )


def explain_rrn(tx: Tx, rrn: str, lang: Lang = "zh") -> Explanation | None:
    """The transaction with this RRN explained, or None when there is none."""
    row = tx.journal_by_rrn(rrn)
    return explain_row(tx, row, lang) if row is not None else None


explain_transaction = explain_rrn
"""Alias of :func:`explain_rrn` (``explain_transaction(tx, rrn, lang="en")``)."""


def _reversal_of(tx: Tx, row: JournalRec) -> JournalRec | None:
    rows = tx.journal_children(row.id, ("reversal",))
    done = [r for r in rows if r.code == "00"]
    return done[-1] if done else (rows[-1] if rows else None)


def explain_row(tx: Tx, row: JournalRec, lang: Lang = "zh") -> Explanation:
    """One journal row explained (see the module docstring)."""
    cat = catalog()
    facts: dict[str, Any] = dict(row.facts)
    key = row.reason if row.reason in cat else "host.error"
    sentences: list[str] = []
    reversal = None
    why = str(facts.get("reversal_reason"))
    if row.kind == "reversal" and why in _REVERSAL_REASONS:
        key = _REVERSAL_REASONS[why]
        sentences += _reversal_sentences(tx, row, lang)
    elif row.status == "reversed":
        reversal = _reversal_of(tx, row)
        why = str(reversal.facts.get("reversal_reason")) if reversal is not None else ""
        if reversal is not None and why == "06":
            key = REFUSED
            sentences += chip.refused_sentences(row, reversal, lang)
        else:
            key = TIMEOUT if why == "98" else key
            sentences += _reversed_sentences(tx, row, reversal, lang)
    sentences += _sentences(tx, row, key, facts, lang)
    reason = cat[key]
    # what the catalog texts may use: notice in the display language, what is owed now
    facts["notice"] = facts.get(f"notice_{lang}")
    m = tx.merchant(row.mid) if row.mid else None
    if key == "merchant.suspended.arrears" and m is not None and m.suspension_cause == "arrears":
        remedy_facts = {**facts, "owed": fen_yuan(m.arrears_fen)}
    else:
        remedy_facts = facts
    general = reason.cause_text(lang, **facts)
    specific = say("explain.explain_row.joined", lang).join(sentences)
    if specific:
        specific = specific[0].upper() + specific[1:] if lang == "en" else specific
        cause = specific + say("explain.explain_row.end_of_facts", lang) + general
    else:
        cause = general
    code = row.code or None
    if key in (TIMEOUT, REFUSED):
        code = reason.reversal_code
    return Explanation(
        rrn=row.rrn,
        tid=row.tid,
        mid=row.mid,
        reason=key,
        code=code,
        category=reason.category,
        screen=reason.screen_text(lang, **facts),
        cause=cause,
        facts=tuple(sentences),
        actor=reason.actor.get(lang),
        remedy=fill_ids(
            reason.remedy_steps(lang, **remedy_facts), mid=row.mid, tid=row.tid, rrn=row.rrn
        ),
        lang=lang,
        ts=row.ts,
        time=show(row.ts),
        kind=row.kind,
        amount_fen=row.amount_fen,
        amount=fen_yuan(row.amount_fen) if row.amount_fen is not None else None,
        pan_masked=row.pan_masked,
        status=row.status,
        journal_reason=row.reason if key != row.reason else None,
        stan=row.stan,
        batch=row.batch,
    )


# --------------------------------------------------------------------------- reversals


def _reversal_sentences(tx: Tx, row: JournalRec, lang: Lang) -> list[str]:
    orig = tx.journal(row.original_id) if row.original_id else None
    if str(row.facts.get("reversal_reason")) == "06":
        heads = chip.refused_reversal_sentences(row, orig, lang)
    else:
        heads = [
            say(
                "explain.reversal_sentences.the_terminal_sent_an_automatic",
                lang,
                ts=when(row.ts),
                stan=row.stan,
            )
        ]
    if row.reason == "approved" and orig is not None:
        amount = fen_yuan(orig.amount_fen or 0)
        tail = say(
            "explain.reversal_sentences.the_host_undid_the_original",
            lang,
            rrn=orig.rrn,
            kind=orig.kind,
            amount=amount,
        )
    elif row.reason == "transaction.original_not_found":
        tail = say("explain.reversal_sentences.the_original_never_reached_the", lang)
    elif row.reason == "transaction.already_voided":
        tail = say("explain.reversal_sentences.the_original_had_already_been", lang)
    else:
        tail = say("explain.reversal_sentences.the_host_answered", lang, reason=row.reason)
    return [*heads, tail]


def _reversed_sentences(
    tx: Tx, row: JournalRec, reversal: JournalRec | None, lang: str
) -> list[str]:
    if reversal is None:
        return [say("explain.reversed_sentences.this_transaction_was_reversed", lang)]
    why = str(reversal.facts.get("reversal_reason", ""))
    return [
        say(
            "explain.reversed_sentences.the_host_approved_it_auth",
            lang,
            auth_code=row.auth_code or "-",
            ts=when(reversal.ts),
            rrn=reversal.rrn,
            why=why,
        )
    ]


# --------------------------------------------------------------------------- per reason


def _sentences(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: Lang) -> list[str]:
    if key.startswith("merchant."):
        return _merchant(tx, row, key, f, lang)
    if key.startswith("terminal.") or key in ("mac.invalid", "pin.format_error"):
        return _terminal(tx, row, key, f, lang)
    if key.startswith("card.") or key == "risk.card_velocity":
        return _card(tx, row, key, f, lang)
    if key in ("host.maintenance", "issuer.unavailable"):
        return _window(tx, f, lang)
    if key.startswith("transaction."):
        return _transaction(tx, row, key, f, lang)
    if key == "message.format_error":
        if f.get("field") == 55 and (amounts := chip.amount_sentences(f, lang)):
            return amounts
        where = []
        if f.get("field") is not None:
            where.append(say("explain.sentences.field", lang, field=f["field"]))
        if f.get("offset") is not None:
            where.append(say("explain.sentences.byte", lang, offset=f["offset"]))
        detail = f.get("expected") or f.get("detail")
        text = say("explain.sentences.the_message_went_wrong_at", lang) + (
            say("explain.sentences.place_separator", lang).join(where)
            or say("explain.sentences.an_unknown_place", lang)
        )
        if detail:
            text += say("explain.sentences.expected", lang, detail=detail)
        return [
            text
            + say(
                "explain.sentences.mti_software",
                lang,
                mti=row.mti or "-",
                software=row.software or "-",
            )
        ]
    if key == "host.error":
        return [
            say(
                "explain.sentences.internal_host_fault_nothing_was",
                lang,
                error=f.get("error", ""),
                ts=when(row.ts),
            )
        ]
    if key.startswith("settlement."):
        return [
            say(
                "explain.sentences.batch_host_debit_total_credit",
                lang,
                batch=row.batch,
                host_debit=f.get("host_debit", "-"),
                host_credit=f.get("host_credit", "-"),
            )
        ]
    if key == "approved":
        return _approved(tx, row, lang)
    return []


def _merchant(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    m = tx.merchant(row.mid)
    if m is None:
        return [say("explain.merchant.merchant_is_not_in_this", lang, mid=row.mid)]
    if key in (
        "merchant.suspended.arrears",
        "merchant.suspended.risk",
        "merchant.suspended.manual",
        "merchant.closed",
    ):
        wanted_status = "closed" if key == "merchant.closed" else "suspended"
        wanted_cause = key.rsplit(".", 1)[1] if wanted_status == "suspended" else ""
        if m.status == wanted_status and (m.suspension_cause or "manual") == (
            wanted_cause or m.suspension_cause or "manual"
        ):
            out = [merchant_state(tx, m, lang)]
            if wanted_cause == "arrears":
                out += _arrears_progress(tx, m.mid, m.arrears_fen, lang)
            return out
        then = say(
            "explain.merchant.at_the_time",
            lang,
            mid=m.mid,
            name=m.name,
            status_word=word(STATUS, wanted_status, lang),
            status=wanted_status,
            cause_word=word(CAUSE, wanted_cause, lang) if wanted_cause else None,
            cause=wanted_cause or None,
            since=f.get("since", "-"),
            by=f.get("by", "-"),
            owed=f["owed"] if f.get("owed") else None,
        )
        return [
            then,
            say("explain.merchant.now", lang)
            + merchant_state(tx, m, lang)
            + _last_change(tx, "merchant", m.mid, row.ts, lang),
        ]
    if key == "merchant.restricted":
        kind = f.get("kind", row.kind)
        if m.status == "restricted":
            return [
                merchant_state(tx, m, lang),
                say("explain.merchant.this_was_a_one_of", lang, kind=kind),
            ]
        return [
            say("explain.merchant.at_the_time_the_merchant", lang, kind=kind),
            say("explain.merchant.now_restricted", lang)
            + merchant_state(tx, m, lang)
            + _last_change(tx, "merchant", m.mid, row.ts, lang),
        ]
    if key == "merchant.single_limit":
        limit, amount = f.get("limit", "-"), f.get("amount", fen_yuan(row.amount_fen or 0))
        out = [
            say(
                "explain.merchant.the_amount_is_above_merchant",
                lang,
                amount=amount,
                mid=m.mid,
                limit=limit,
            )
        ]
        if fen_yuan(m.single_limit_fen) != limit:
            out.append(
                say(
                    "explain.merchant.the_cap_is_now",
                    lang,
                    single_limit=fen_yuan(m.single_limit_fen),
                )
            )
        return out
    return [merchant_state(tx, m, lang)]


def _arrears_progress(tx: Tx, mid: str, owed: int, lang: str) -> list[str]:
    from ..ops.arrears import ledger, pending_request

    out = []
    pays = [e for e in ledger(tx, mid) if e.kind == "payment"]
    if pays:
        p = pays[-1]
        out.append(
            say(
                "explain.arrears_progress.last_payment_on_voucher",
                lang,
                amount=fen_yuan(p.amount_fen),
                ts=when(p.ts),
                voucher=p.voucher,
            )
        )
    req = pending_request(tx, mid)
    if req is not None:
        out.append(
            say(
                "explain.arrears_progress.resumption_request_by_waits_for",
                lang,
                id=req.id,
                requested_at=when(req.requested_at),
                requested_by=req.requested_by,
            )
        )
    elif owed == 0:
        out.append(say("explain.arrears_progress.nothing_is_owed_any_more", lang, mid=mid))
    return out


def _last_change(tx: Tx, entity: str, entity_id: str, after: str, lang: str) -> str:
    rows = [
        a for a in audit_rows(tx, entity, [entity_id], since=after) if a.from_state != a.to_state
    ]
    if not rows:
        return ""
    return (
        say("explain.last_change.open", lang)
        + audit_sentence(tx, rows[-1], lang)
        + say("explain.last_change.close", lang)
    )


def _rotation_after(tx: Tx, tid: str, after: str | None) -> AuditRec | None:
    rows = [
        a
        for a in audit_rows(tx, "terminal", [tid])
        if a.action == "rotate_tmk" and (after is None or a.ts > after)
    ]
    return rows[-1] if rows else None


def _terminal(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    if key == "terminal.single_des_refused":
        return [
            say(
                "explain.terminal.the_terminal_asked_for_single",
                lang,
                netcode=f.get("netcode", "001"),
            )
        ]
    if key == "terminal.signon_rate_limited":
        return [
            say(
                "explain.terminal.this_terminal_id_signed_on",
                lang,
                window_min=f.get("window_min", "-"),
                count=f.get("count", "-"),
            )
        ]
    term = tx.terminal(row.tid)
    if key == "terminal.unknown":
        if f.get("note") and term is not None:
            return [
                say(
                    "explain.terminal.terminal_is_registered_for_merchant",
                    lang,
                    tid=row.tid,
                    mid=term.mid,
                    mid_2=f.get("mid", row.mid),
                )
            ]
        out = [say("explain.terminal.no_terminal_was_registered_at", lang, tid=row.tid)]
        if term is not None:
            out.append(
                say(
                    "explain.terminal.it_has_been_registered_since",
                    lang,
                    status_since=when(term.status_since),
                    by=who(tx, term.status_by, lang),
                )
            )
        return out
    if term is None:
        return [say("explain.terminal.terminal_is_no_longer_in", lang, tid=row.tid)]
    if key == "terminal.suspended":
        if term.status in ("suspended", "replaced"):
            return [terminal_state(tx, term, lang)]
        return [
            say(
                "explain.terminal.at_the_time_terminal_was",
                lang,
                tid=term.tid,
                since=f.get("since", "-"),
                by=f.get("by", "-"),
                why=f.get("why", ""),
            ),
            say("explain.terminal.now", lang)
            + terminal_state(tx, term, lang)
            + _last_change(tx, "terminal", term.tid, row.ts, lang),
        ]
    if key == "terminal.update_required":
        software, minimum = f.get("software", row.software), f.get("minimum", term.min_software)
        out = [
            say(
                "explain.terminal.terminal_reports_software_the_provider",
                lang,
                tid=term.tid,
                software=software,
                minimum=minimum,
            )
        ]
        sets = [a for a in audit_rows(tx, "terminal", [term.tid]) if a.action == "set_software"]
        if sets:
            out.append(
                say("explain.terminal.minimum_set", lang) + audit_sentence(tx, sets[-1], lang)
            )
        if term.last_software and term.last_software >= term.min_software:
            out.append(
                say(
                    "explain.terminal.it_has_since_reported_which",
                    lang,
                    last_software=term.last_software,
                )
            )
        return out
    if key == "terminal.batch_mismatch":
        return [
            say(
                "explain.terminal.terminal_sent_batch_the_host",
                lang,
                tid=term.tid,
                terminal_batch=f.get("terminal_batch", row.batch),
                host_batch=f.get("host_batch", "-"),
            )
        ]
    signon = last_journal(tx, term.tid, ("signon",), before_id=row.id)
    out = []
    rotated = _rotation_after(tx, term.tid, signon.ts if signon else None)
    rotated = rotated if rotated is not None and rotated.ts <= row.ts else None
    if key == "terminal.not_signed_on":
        signoff = last_journal(tx, term.tid, ("signoff",), before_id=row.id)
        if rotated is not None:
            out.append(
                say(
                    "explain.terminal.the_tmk_of_terminal_was",
                    lang,
                    tid=term.tid,
                    ts=when(rotated.ts),
                    by=who(tx, rotated.actor, lang),
                    reason=rotated.reason,
                    new_kcv=rotated.detail.get("new_kcv", "-"),
                )
            )
        elif signoff is not None and (signon is None or signoff.id > signon.id):
            out.append(
                say(
                    "explain.terminal.terminal_signed_off_at_rrn",
                    lang,
                    tid=term.tid,
                    ts=when(signoff.ts),
                    rrn=signoff.rrn,
                )
            )
        elif signon is None:
            out.append(say("explain.terminal.terminal_had_never_signed_on", lang, tid=term.tid))
        else:
            out.append(
                say(
                    "explain.terminal.the_host_held_no_working",
                    lang,
                    tid=term.tid,
                    ts=when(signon.ts),
                )
            )
        if term.keys_issued_at and term.keys_issued_at > row.ts:
            out.append(
                say(
                    "explain.terminal.it_has_signed_on_again",
                    lang,
                    keys_issued_at=when(term.keys_issued_at),
                )
            )
        return out
    # mac.invalid, pin.format_error: the keys of the last sign-on did not match
    what = (
        say("explain.terminal.the_mac", lang)
        if key == "mac.invalid"
        else say("explain.terminal.the_pin_block", lang)
    )
    if f.get("detail"):
        out.append(str(f["detail"]))
    if signon is not None:
        later = last_journal(tx, term.tid, ("signon",), before_id=10**15)
        out.append(
            say(
                "explain.terminal.did_not_verify_under_the",
                lang,
                what=what,
                ts=when(signon.ts),
                rrn=signon.rrn,
            )
        )
        if later is not None and later.id > row.id:
            out.append(
                say("explain.terminal.the_terminal_signed_on_again", lang, ts=when(later.ts))
            )
    if rotated is not None:
        out.append(
            say("explain.terminal.the_tmk_had_been_rotated", lang)
            + audit_sentence(tx, rotated, lang)
        )
    return out


def _card(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: Lang) -> list[str]:
    if key in chip.CHIP_KEYS:
        return chip.card_sentences(tx, row, key, f, lang)
    if key == REFUSED:
        return []  # said by the reversal's sentences
    card = tx.card(row.card_id) if row.card_id is not None else None
    pan = row.pan_masked or (card.pan_masked if card else "-")
    if key == "card.unknown":
        return [say("explain.card.the_issuer_has_no_account", lang, pan=pan)]
    if card is None:
        return []
    status_key = key.split(".", 1)[1]
    if key in ("card.frozen", "card.closed", "card.lost", "card.stolen") or (
        key == "card.expired" and f.get("status")
    ):
        if card.status == status_key:
            return [card_state(tx, card, lang)]
        return [
            say(
                "explain.card.at_the_time_card_was",
                lang,
                pan=pan,
                status_key_word=word(STATUS, status_key, lang),
                status_key=status_key,
            ),
            say("explain.card.now", lang) + card_state(tx, card, lang),
        ]
    if key == "card.expired":
        exp = str(f.get("expiry", card.expiry))
        return [
            say(
                "explain.card.card_expired_at_the_end",
                lang,
                pan=pan,
                value=exp[:2],
                value_2=exp[2:],
                business_date=row.business_date,
            )
        ]
    if key == "card.wrong_pin":
        out = [
            say(
                "explain.card.wrong_pin_for_card_tries",
                lang,
                pan=pan,
                tries_left=f.get("tries_left", "-"),
            )
        ]
        if card.pin_locked:
            out.append(say("explain.card.the_card_s_pin_is", lang))
        return out
    if key == "card.pin_tries_exceeded":
        out = [say("explain.card.the_pin_of_card_is", lang, pan=pan)]
        unlocks = [
            a
            for a in audit_rows(tx, "card", [str(card.id)], since=row.ts)
            if a.action == "unlock_pin"
        ]
        if unlocks and not card.pin_locked:
            out.append(
                say("explain.card.unlocked_since", lang) + audit_sentence(tx, unlocks[-1], lang)
            )
        return out
    if key == "card.insufficient_funds":
        return [
            say(
                "explain.card.card_had_available_for_an",
                lang,
                pan=pan,
                yuan_fact=yuan_fact(f, "available") or "-",
                yuan_fact_2=yuan_fact(f, "amount") or fen_yuan(row.amount_fen or 0),
            )
        ]
    if key == "card.daily_limit":
        return [
            say(
                "explain.card.card_daily_limit_already_used",
                lang,
                pan=pan,
                yuan_fact=yuan_fact(f, "limit") or "-",
                yuan_fact_2=yuan_fact(f, "used") or "-",
                yuan_fact_3=yuan_fact(f, "amount") or "-",
            )
        ]
    if key == "risk.card_velocity":
        if f.get("count") is not None:
            return [
                say(
                    "explain.card.card_made_purchases_within_s",
                    lang,
                    pan=pan,
                    window_s=f.get("window_s"),
                    count=f["count"],
                    until=f.get("until", "-"),
                )
            ]
        return [
            say("explain.card.card_was_still_locked_by", lang, pan=pan, until=f.get("until", "-"))
        ]
    return []


def _window(tx: Tx, f: dict[str, Any], lang: str) -> list[str]:
    wid = f.get("window")
    row = maintenance_window(tx, wid) if wid else None
    if row is None:
        return (
            [say("explain.window.maintenance_until", lang, until=f.get("until", "-"))]
            if f.get("until")
            else []
        )
    whose = say("explain.window.host" if row.who == "host" else "explain.window.issuer", lang)
    text = say(
        "explain.window.maintenance_window_from_to_announced",
        lang,
        whose=whose,
        wid=wid,
        start_at=when(row.start_at),
        end_at=when(row.end_at),
        by=who(tx, row.created_by, lang),
        created_at=when(row.created_at),
    )
    out = [text]
    if row.cancelled:
        out.append(say("explain.window.the_window_has_since_been", lang))
    return out


def _transaction(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    if key == "transaction.duplicate":
        return [
            say(
                "explain.transaction.terminal_batch_trace_number_was",
                lang,
                tid=row.tid,
                batch=row.batch,
                stan=row.stan,
                first_rrn=f.get("first_rrn", "-"),
                first_reason=f.get("first_reason", "-"),
            )
        ]
    if key == "transaction.original_amount_mismatch":
        extra = (
            say("explain.transaction.already_refunded", lang, refunded=f["refunded"])
            if f.get("refunded")
            else ""
        )
        return [
            say(
                "explain.transaction.the_original_amount_is_this",
                lang,
                original=f.get("original", "-"),
                extra=extra,
                amount=f.get("amount", "-"),
            )
        ]
    if key == "transaction.already_voided":
        if f.get("original_rrn"):
            return [
                say(
                    "explain.transaction.the_original_is_already",
                    lang,
                    original_rrn=f["original_rrn"],
                    str_word=word(STATUS, str(f.get("original_status")), lang),
                    original_status=f.get("original_status"),
                )
            ]
        return [str(f["note"])] if f.get("note") else []
    if key == "transaction.original_not_found":
        parts = []
        if row.kind == "reversal":
            parts.append(
                say(
                    "explain.transaction.the_original_of_trace_number",
                    lang,
                    stan=f.get("stan", row.stan),
                )
            )
        else:
            ref = ", ".join(
                x
                for x in (
                    f"RRN {f['rrn']}" if f.get("rrn") else "",
                    say("explain.transaction.original_trace", lang, original=f["original"])
                    if f.get("original")
                    else "",
                )
                if x
            )
            parts.append(
                say(
                    "explain.transaction.the_names_an_original_the",
                    lang,
                    kind=row.kind,
                    ref=ref or "-",
                )
            )
        if f.get("original_reason"):
            parts.append(
                say(
                    "explain.transaction.the_original_was_answered",
                    lang,
                    original_reason=f["original_reason"],
                )
            )
        if f.get("note"):
            parts.append(str(f["note"]))
        return parts
    if key == "transaction.not_supported":
        return [f"{f.get('note', '')} (60.3 = {f.get('netcode', '-')})"] if f else []
    return []


#: management messages: approved means done, nothing more to explain
_MANAGEMENT = frozenset(
    {
        "signon", "params", "echo", "signoff", "status", "capk_query", "aid_query",
        "capk_item", "aid_item", "capk_end", "aid_end",
    }
)  # fmt: skip


def _approved(tx: Tx, row: JournalRec, lang: str) -> list[str]:
    if row.kind in _MANAGEMENT:
        return []
    if row.kind in ("script_result", "chip_detail") and row.original_id is not None:
        what = (
            say("explain.approved.script_results", lang)
            if row.kind == "script_result"
            else say("explain.approved.the_chip_s_final_cryptogram", lang)
        )
        return [
            say(
                "explain.approved.the_terminal_uploaded_of_the",
                lang,
                rrn_of=rrn_of(row.original_id),
                what=what,
            )
        ]
    out = [
        say(
            "explain.approved.approved_auth_code_now",
            lang,
            auth_code=row.auth_code or "-",
            status_word=word(STATUS, row.status, lang),
            status=row.status,
        )
    ]
    if row.settlement_id is not None:
        s = tx.settlement(row.settlement_id)
        if s is not None and s.closed_at:
            out.append(
                say(
                    "explain.approved.settled_in_batch_at",
                    lang,
                    batch=s.batch,
                    closed_at=when(s.closed_at),
                )
            )
    for child in tx.journal_children(
        row.id, ("void", "refund", "completion", "completion_void", "preauth_void")
    ):
        if child.code == "00":
            out.append(
                say(
                    "explain.approved.as_rrn_at",
                    lang,
                    kind=child.kind,
                    amount=fen_yuan(child.amount_fen or 0),
                    rrn_of=rrn_of(child.id),
                    ts=when(child.ts),
                )
            )
    return out
