"""What every operation shares: refusals, who and when, the audit row.

An operation is a plain function over a :class:`~clearpos.store.Tx`: it checks,
changes rows, and writes its audit row in the caller's transaction, so a change
and its audit row are committed together or not at all. A check that fails
raises :class:`Refused`, which names what was asked, the current state, and
what is allowed from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import Clock, utc_iso
from ..store import Tx
from ..wire import scrub

__all__ = [
    "Change",
    "Refused",
    "check_actor",
    "mask_text",
    "now_iso",
    "record",
]


def mask_text(text: str) -> str:
    """Free text with card numbers masked, however they are written (spaces, dashes
    or dots between digit groups, 13-19 digits, track data after them): the one
    detector of :func:`clearpos.wire.mask.find_pans`, which the leak scan uses too.

    People type reasons, titles and comments; a pasted card number must not be
    stored or shown in full. Merchant ids, TIDs and RRNs stay readable.

    >>> mask_text("card 6222 0212 3456 7890 123 at 898310048161234")
    'card 622202*********0123 at 898310048161234'
    """
    return scrub(text)


class Refused(Exception):
    """An operation that is not allowed now; ``str()`` says why and what is allowed.

    ``allowed`` lists the actions allowed from ``state`` (empty when the refusal
    is not about a state machine).
    """

    def __init__(
        self,
        message: str,
        *,
        entity: str = "",
        entity_id: str = "",
        state: str = "",
        action: str = "",
        allowed: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.entity = entity
        self.entity_id = entity_id
        self.state = state
        self.action = action
        self.allowed = tuple(allowed)

    def to_dict(self) -> dict[str, Any]:
        """The refusal as JSON-friendly data (``clearpos admin --json``)."""
        return {
            "ok": False,
            "refused": self.message,
            "entity": self.entity,
            "id": self.entity_id,
            "state": self.state,
            "action": self.action,
            "allowed": list(self.allowed),
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One audited change: who did what to which entity, when and why."""

    entity: str
    entity_id: str
    action: str
    from_state: str
    to_state: str
    by: str
    why: str
    at: str
    audit_id: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..clock import show

        return {
            "ok": True,
            "entity": self.entity,
            "id": self.entity_id,
            "action": self.action,
            "from": self.from_state,
            "to": self.to_state,
            "by": self.by,
            "why": self.why,
            "at": self.at,
            "at_local": show(self.at),
            "audit_id": self.audit_id,
            "detail": dict(self.detail),
        }


def now_iso(now: datetime | None = None) -> str:
    """UTC ISO text of ``now`` (default: the clock, which honours ``CLEARPOS_CLOCK_SKEW_S``)."""
    return utc_iso(now if now is not None else Clock().now())


def check_actor(by: str) -> str:
    """The ``--by`` name, trimmed; Refused when empty or not printable."""
    name = (by or "").strip()
    if not name or not name.isprintable() or len(name) > 64:
        raise Refused("say who does this: --by NAME (1-64 printable characters)")
    return name


def record(
    tx: Tx,
    *,
    at: str,
    by: str,
    entity: str,
    entity_id: str,
    action: str,
    from_state: str = "",
    to_state: str = "",
    why: str = "",
    detail: Mapping[str, Any] | None = None,
) -> Change:
    """Write the audit row of a change (in the caller's transaction) and return it.

    ``why`` is stored with card-number-like digit runs masked (:func:`mask_text`).
    """
    why = mask_text(why)
    aid = tx.audit(
        at,
        by,
        entity,
        entity_id,
        action,
        from_state=from_state,
        to_state=to_state,
        reason=why,
        detail=detail,
    )
    return Change(entity, entity_id, action, from_state, to_state, by, why, at, aid, detail or {})
