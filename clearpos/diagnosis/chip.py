"""Chip declines explained from what the host journaled (issue 19, spec §8).

The host records, for a chip request, field 55 masked (``chip_data``) and what the
issuer's cryptogram check found (``chip``: CVN, ATC seen, last ATC accepted, TVR,
AID); the chip rules record the entry mode and service code of a swipe and the
QuickPass no-PIN limit of a tap. These functions turn those facts into the case
sentences of :mod:`.explain`; the words are data (``sentences.toml``).
"""

from __future__ import annotations

from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..reasons import Lang
from ..store import JournalRec, Tx
from ..store.queries.diagnosis import journal_with_atc
from ..wire.emvtags import tvr_words
from .sentences import say

__all__ = [
    "amount_sentences",
    "card_sentences",
    "refused_reversal_sentences",
    "refused_sentences",
]

#: reason keys of a chip decline this module explains
CHIP_KEYS = frozenset(
    {
        "card.cryptogram_invalid",
        "card.cryptogram_replayed",
        "card.chip_required",
        "card.pin_required",
    }
)


def _v(value: object) -> object:
    """A recorded fact as shown: ``-`` when it was not recorded."""
    return "-" if value is None or value == "" else value


def _tvr(tvr: object, lang: Lang, *, after: bool = False) -> list[str]:
    text = str(tvr or "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return []
    if len(raw) != 5:
        return []
    words = tvr_words(raw, lang)
    if not words:
        return [] if after else [say("chip.tvr_clean", lang, tvr=text)]
    joined = say("list_separator", lang).join(words)
    if after:
        return [say("chip.tvr_after", lang, tvr=text, words=joined)]
    return [say("chip.tvr", lang, tvr=text, words=joined)]


def _chip(f: dict[str, Any]) -> dict[str, Any]:
    chip = f.get("chip")
    return dict(chip) if isinstance(chip, dict) else {}


def _masked(f: dict[str, Any]) -> dict[str, str]:
    data = f.get("chip_data")
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def card_sentences(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: Lang) -> list[str]:
    """The case sentences of a chip decline (``CHIP_KEYS``)."""
    pan = row.pan_masked or "-"
    if key == "card.chip_required":
        return [
            say(
                "chip.swiped",
                lang,
                pan=pan,
                service_code=_v(f.get("service_code")),
                tid=row.tid,
                entry_mode=_v(f.get("entry_mode") or row.entry_mode),
            )
        ]
    if key == "card.pin_required":
        amount = f.get("amount_fen", row.amount_fen)
        limit_fen = f.get("limit_fen")
        out = [
            say(
                "chip.no_pin",
                lang,
                entry_mode=row.entry_mode or "-",
                amount=fen_yuan(int(amount)) if isinstance(amount, int) else "-",
                limit=fen_yuan(int(limit_fen))
                if isinstance(limit_fen, int)
                else _v(f.get("limit")),
            )
        ]
        now = tx.quickpass_no_pin_limit_fen()
        if isinstance(limit_fen, int) and now != limit_fen:
            out.append(say("chip.limit_now", lang, limit=fen_yuan(now)))
        return out
    if key == "card.cryptogram_invalid":
        if f.get("note") and f.get("cvn") is None:
            return [say("chip.no_chip", lang, pan=pan)]
        if f.get("iad_cvn") is not None:
            out = [say("chip.iad_cvn", lang, pan=pan, iad_cvn=f["iad_cvn"], cvn=_v(f.get("cvn")))]
        else:
            out = [
                say(
                    "chip.arqc_failed",
                    lang,
                    pan=pan,
                    cvn=_v(f.get("cvn")),
                    atc=_v(f.get("atc")),
                    last_atc=_v(f.get("last_atc")),
                    arqc=_masked(f).get("9F26"),
                )
            ]
        return out + _tvr(f.get("tvr"), lang)
    if key == "card.cryptogram_replayed":
        atc = f.get("atc")
        if f.get("last_atc") is None:
            out = [say("chip.replayed_race", lang, pan=pan, atc=_v(atc))]
        else:
            out = [say("chip.replayed", lang, pan=pan, atc=_v(atc), last_atc=f["last_atc"])]
        if isinstance(atc, int) and row.card_id is not None:
            first = journal_with_atc(tx, row.card_id, atc, before_id=row.id)
            if first is not None:
                out.append(
                    say("chip.replayed_first", lang, atc=atc, rrn=first.rrn, time=show(first.ts))
                )
        return out
    return []


def amount_sentences(f: dict[str, Any], lang: Lang) -> list[str]:
    """``message.format_error`` of field 55 because 9F02 is not field 4."""
    tag, field4 = f.get("tag_amount_fen"), f.get("field4_fen")
    if not isinstance(tag, int) or not isinstance(field4, int):
        return []
    return [say("chip.amount_mismatch", lang, tag_amount=fen_yuan(tag), field4=fen_yuan(field4))]


def _counter(f: dict[str, Any], lang: Lang) -> list[str]:
    chip = _chip(f)
    if chip.get("atc") is None or chip.get("cvn") is None:
        return []
    return [say("chip.counter", lang, atc=chip["atc"], cvn=chip["cvn"], aid=chip.get("aid"))]


def refused_sentences(row: JournalRec, reversal: JournalRec, lang: Lang) -> list[str]:
    """An approved chip sale the card refused at its second GENERATE AC (reversal 06)."""
    out = [
        say(
            "chip.refused",
            lang,
            auth_code=row.auth_code or "-",
            time=show(reversal.ts),
            rrn=reversal.rrn,
        )
    ]
    out += _counter(row.facts, lang)
    out += _tvr(_masked(reversal.facts).get("95"), lang, after=True)
    return out


def refused_reversal_sentences(row: JournalRec, orig: JournalRec | None, lang: Lang) -> list[str]:
    """The head of a reversal 06 (the rest is the host's answer, as for any reversal)."""
    out = [say("chip.refused_reversal", lang, stan=row.stan, time=show(row.ts))]
    if orig is not None:
        out += _counter(orig.facts, lang)
    out += _tvr(_masked(row.facts).get("95"), lang, after=True)
    return out
