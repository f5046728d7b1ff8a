"""The context handed down the pipeline: one per message, one decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store import CardRec, MerchantRec, TerminalRec, Tx
from ..wire import Frame, Message


@dataclass(slots=True)
class Ctx:
    """What the participants know and decide about one message."""

    tx: Tx
    frame: Frame
    msg: Message
    mac_block: bytes | None
    mac: bytes | None
    now: datetime
    now_iso: str
    terminal: TerminalRec | None = None
    merchant: MerchantRec | None = None
    card: CardRec | None = None
    reason: str = "approved"
    facts: dict[str, Any] = field(default_factory=dict)
    processing: int = 0
    #: who decided: participant name -> short outcome, stored with the journal row
    trail: list[str] = field(default_factory=list)
    # effects recorded in the journal
    delta_fen: int = 0
    hold_fen: int = 0
    status: str = "approved"
    original_id: int | None = None
    req_key: str | None = None
    auth_code: str = ""
    balance_fen: int | None = None
    journal_id: int | None = None
    rrn: str = ""
    kind: str = ""
    amount_fen: int | None = None
    #: the MAK that authenticated the request (responses are MACed with it)
    mak_sealed: str | None = None
    keys_field62: bytes | None = None
    response: Message | None = None

    @property
    def approved(self) -> bool:
        return self.reason == "approved"

    def decline(self, reason: str, **facts: Any) -> bool:
        """Record a decline with its reason key and facts; returns False (stop)."""
        self.reason = reason
        self.facts.update({k: v for k, v in facts.items() if v is not None})
        self.status = "declined"
        return False
