"""The context handed down the pipeline: one per message, one decision."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..record import record
from ..store import CardRec, MaintenanceRec, MerchantRec, TerminalRec, Tx
from ..wire import Frame, Message
from ..wire.terminfo import TerminalInfo


@record
class HostConfig:
    """Configuration the pipeline reads on every message, reloaded only when the
    store's config generation changes (any admin change of meta or maintenance)."""

    generation: str
    institution: str
    name: str
    velocity: dict[str, int] | None
    windows: tuple[MaintenanceRec, ...]
    #: sign-ons with single-length DES keys (60.3 = 001) allowed ([acquirer] single_des)
    single_des: bool = False

    @classmethod
    def load(cls, tx: Tx) -> HostConfig:
        raw = tx.meta("risk.card_velocity")
        return cls(
            tx.config_generation(),
            tx.meta("acquirer.institution", "48020000"),
            tx.meta("acquirer.name", "clearpos"),
            json.loads(raw) if raw else None,
            tuple(tx.maintenance_all()),
            tx.meta("acquirer.single_des", "0") == "1",
        )

    def active(self, now_iso: str) -> list[MaintenanceRec]:
        return [w for w in self.windows if w.start_at <= now_iso < w.end_at]

    def upcoming(self, now_iso: str) -> list[MaintenanceRec]:
        return [w for w in self.windows if w.end_at > now_iso]

    def latest_notice_id(self, now_iso: str) -> int:
        if not self.windows:
            return 0
        return max((w.id for w in self.windows if w.end_at > now_iso), default=0)


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
    #: loads the configuration the first time a participant asks for it
    load_config: Callable[[Tx], HostConfig]
    #: local (CST) time as YYYYMMDDhhmmss, formatted once per message
    stamp: str
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
    rrn: str = ""
    #: the MAK that authenticated the request (responses are MACed with it)
    mak_sealed: str | None = None
    #: the PIN key of the same key set (the newest, or the last proven ones)
    pik_sealed: str | None = None
    #: an acquirer's private fields in the request, masked (journaled as they came)
    private: dict[str, str] = field(default_factory=dict)
    #: the request's PAN token, when made before the participants ran (PostgreSQL)
    card_token: str | None = None
    #: what the issuer found in a chip request's field 55, and the answer's 55
    chip_check: Any = None
    answer_chip: bytes | None = None
    #: field 62 of a management answer (CA-key / chip-parameter lists and items)
    data62: bytes | None = None
    keys_field62: bytes | None = None
    _config: HostConfig | None = None
    _software: str | None = None

    @property
    def config(self) -> HostConfig:
        """The host configuration, checked against the store's generation on first use:
        after the terminal check, whose read brings the generation along."""
        if self._config is None:
            self._config = self.load_config(self.tx)
        return self._config

    @property
    def software(self) -> str:
        """The application version the terminal reported in field 59 (A2/05), or ''
        (read once per message: the terminal check, the sign-on and the journal ask)."""
        if self._software is None:
            info = getattr(self.msg, "info", None)
            try:
                self._software = (TerminalInfo.decode(info).app_version or "") if info else ""
            except ValueError:
                self._software = ""
        return self._software

    @property
    def business_date(self) -> str:
        """Today in China, YYYYMMDD (the journal's business date)."""
        return self.stamp[0:8]

    @property
    def yymm(self) -> str:
        return self.stamp[2:6]

    @property
    def mmdd(self) -> str:
        return self.stamp[4:8]

    @property
    def hhmmss(self) -> str:
        return self.stamp[8:14]

    @property
    def approved(self) -> bool:
        return self.reason == "approved"

    def decline(self, reason: str, **facts: Any) -> bool:
        """Record a decline with its reason key and facts; returns False (stop)."""
        self.reason = reason
        self.facts.update({k: v for k, v in facts.items() if v is not None})
        self.status = "declined"
        return False
