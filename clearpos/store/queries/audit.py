"""The reads of the money audit (``clearpos audit``) and of the demo's day summary:
whole-store sums and the rows that break an invariant."""

from __future__ import annotations

from collections.abc import Sequence

from .. import Tx
from . import Row, marks

__all__ = [
    "approved_states",
    "card_journal_sums",
    "declines",
    "duplicate_requests",
    "misfiled_requests",
    "money_moved",
    "reason_counts",
    "reversed_after_settlement",
    "settlement_kind_sums",
]


def card_journal_sums(tx: Tx) -> dict[int, tuple[int, int]]:
    """Per card: the journal's sum of balance changes and of holds."""
    rows = tx.conn.execute(
        "SELECT card_id, COALESCE(SUM(delta_fen), 0) AS d, COALESCE(SUM(hold_fen), 0) AS h "
        "FROM journal WHERE card_id IS NOT NULL GROUP BY card_id"
    ).fetchall()
    return {int(r["card_id"]): (int(r["d"]), int(r["h"])) for r in rows}


def duplicate_requests(tx: Tx) -> list[Row]:
    """Requests (TID, batch, STAN) processed more than once: ``tid``, ``batch``,
    ``stan``, how many times ``n``, the first and last journal ids ``a`` and ``b``."""
    return list(
        tx.conn.execute(
            "SELECT tid, batch, stan, COUNT(*) AS n, MIN(id) AS a, MAX(id) AS b FROM journal "
            "WHERE req_key IS NOT NULL GROUP BY tid, batch, stan HAVING COUNT(*) > 1"
        ).fetchall()
    )


def misfiled_requests(tx: Tx) -> list[Row]:
    """``id`` and ``req_key`` of rows whose request key is not their own
    ``TID:batch:STAN``: the duplicate check and ``journal_request`` read the key by
    those three columns, so such a row would escape both."""
    return list(
        tx.conn.execute(
            "SELECT id, req_key FROM journal WHERE req_key IS NOT NULL "
            "AND req_key <> tid || ':' || batch || ':' || stan"
        ).fetchall()
    )


def approved_states(tx: Tx, kinds: Sequence[str]) -> list[Row]:
    """``id``, ``kind``, ``status`` of every approved request of ``kinds``."""
    return list(
        tx.conn.execute(
            "SELECT id, kind, status FROM journal WHERE code = '00' AND req_key IS NOT NULL "
            f"AND kind IN ({marks(kinds)})",
            tuple(kinds),
        ).fetchall()
    )


def reversed_after_settlement(tx: Tx) -> list[Row]:
    """``id``, ``kind`` of rows reversed by an approved reversal after their batch closed."""
    return list(
        tx.conn.execute(
            "SELECT j.id, j.kind FROM journal j WHERE j.status = 'reversed' "
            "AND j.settlement_id IS NOT NULL AND EXISTS (SELECT 1 FROM journal r "
            "WHERE r.original_id = j.id AND r.kind = 'reversal' AND r.code = '00' "
            "AND r.ts > (SELECT closed_at FROM settlements s WHERE s.id = j.settlement_id))"
        ).fetchall()
    )


def settlement_kind_sums(tx: Tx, settlement_id: int) -> dict[str, tuple[int, int]]:
    """Per kind: (count, amount) of the approved, not reversed rows a settlement closed."""
    rows = tx.conn.execute(
        "SELECT kind, COUNT(*) AS n, COALESCE(SUM(amount_fen), 0) AS a FROM journal "
        "WHERE settlement_id = ? AND code = '00' AND status <> 'reversed' GROUP BY kind",
        (settlement_id,),
    ).fetchall()
    return {str(r["kind"]): (int(r["n"]), int(r["a"])) for r in rows}


def declines(tx: Tx) -> list[tuple[int, str]]:
    """(journal id, reason key) of every row not approved."""
    rows = tx.conn.execute("SELECT id, reason FROM journal WHERE code <> '00'").fetchall()
    return [(int(r["id"]), str(r["reason"])) for r in rows]


def reason_counts(tx: Tx) -> list[tuple[str, int]]:
    """Every reason key in the journal with its count, commonest first."""
    rows = tx.conn.execute(
        "SELECT reason, COUNT(*) AS n FROM journal GROUP BY reason ORDER BY n DESC, reason"
    ).fetchall()
    return [(str(r["reason"]), int(r["n"])) for r in rows]


def money_moved(tx: Tx) -> tuple[int, int]:
    """(debits, credits): the fen taken from and given back to cards, over the whole journal."""
    row = tx.conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN delta_fen < 0 THEN -delta_fen ELSE 0 END), 0) AS debits, "
        "COALESCE(SUM(CASE WHEN delta_fen > 0 THEN delta_fen ELSE 0 END), 0) AS credits "
        "FROM journal"
    ).fetchone()
    return int(row["debits"]), int(row["credits"])
