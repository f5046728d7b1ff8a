"""The diagnosis's own reads (``clearpos.diagnosis``); it also reads through
:mod:`.ops` (audit trail, journal, arrears) and :class:`~clearpos.store.Tx`."""

from __future__ import annotations

from .. import JournalRec, Tx

__all__ = ["journal_with_atc", "replaced_terminal"]


def replaced_terminal(tx: Tx, tid: str) -> str | None:
    """The TID of the terminal that ``tid`` replaced, if it replaced one."""
    row = tx.conn.execute("SELECT tid FROM terminals WHERE replaced_by = ?", (tid,)).fetchone()
    return str(row["tid"]) if row else None


def journal_with_atc(tx: Tx, card_id: int, atc: int, *, before_id: int) -> JournalRec | None:
    """The latest approved row of card ``card_id`` before ``before_id`` whose chip check
    saw ATC ``atc`` (the transaction a replayed ATC was first used by)."""
    rows = tx.conn.execute(
        "SELECT * FROM journal WHERE card_id = ? AND id < ? AND code = '00' AND facts LIKE ? "
        "ORDER BY id DESC",
        (card_id, before_id, f'%"atc": {atc}%'),
    ).fetchall()
    for row in rows:
        rec = JournalRec.of(row)
        chip = rec.facts.get("chip")
        if isinstance(chip, dict) and chip.get("atc") == atc:
            return rec
    return None
