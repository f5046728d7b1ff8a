"""The fault lab's reads (``clearpos.lab``)."""

from __future__ import annotations

from typing import Any

from .. import Tx

__all__ = ["journal_dicts"]


def journal_dicts(tx: Tx) -> list[dict[str, Any]]:
    """Every journal row as stored (facts still JSON text), by id: what a
    campaign exports and compares with the terminals' journals."""
    return [dict(r) for r in tx.conn.execute("SELECT * FROM journal ORDER BY id").fetchall()]
