"""The diagnosis's own reads (``clearpos.diagnosis``); it also reads through
:mod:`.ops` (audit trail, journal, arrears) and :class:`~clearpos.store.Tx`."""

from __future__ import annotations

from .. import Tx

__all__ = ["replaced_terminal"]


def replaced_terminal(tx: Tx, tid: str) -> str | None:
    """The TID of the terminal that ``tid`` replaced, if it replaced one."""
    row = tx.conn.execute("SELECT tid FROM terminals WHERE replaced_by = ?", (tid,)).fetchone()
    return str(row["tid"]) if row else None
