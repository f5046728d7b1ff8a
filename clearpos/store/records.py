"""Plain records read from the store. Money in fen; times as UTC ISO text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..record import record


def rrn_of(journal_id: int) -> str:
    """RRN (field 37, an12) of a journal row: its id, zero-padded."""
    return f"{journal_id:012d}"


def journal_id_of(rrn: str) -> int | None:
    """The journal id an RRN names, or None if it cannot be one of ours."""
    rrn = rrn.strip()
    return int(rrn) if rrn.isdecimal() and len(rrn) <= 12 else None


@record
class MerchantRec:
    mid: str
    name: str
    status: str
    suspension_cause: str
    arrears_fen: int
    single_limit_fen: int
    restricted_types: tuple[str, ...]
    status_since: str
    status_by: str
    status_why: str

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> MerchantRec:
        return cls(
            r["mid"],
            r["name"],
            r["status"],
            r["suspension_cause"],
            r["arrears_fen"],
            r["single_limit_fen"],
            tuple(json.loads(r["restricted_types"])),
            r["status_since"],
            r["status_by"],
            r["status_why"],
        )


@record
class TerminalRec:
    tid: str
    mid: str
    tmk_sealed: str
    tmk_kcv: str
    status: str
    min_software: str
    batch: str
    pik_sealed: str | None
    mak_sealed: str | None
    keys_issued_at: str | None
    notice_seen: int
    last_seen: str | None
    last_software: str | None
    replaced_by: str | None
    status_since: str
    status_by: str
    status_why: str
    key_scheme: str = "003"
    tdk_sealed: str | None = None
    keys_proven: bool = False
    unproven_signons: int = 0
    prev_pik_sealed: str | None = None
    prev_mak_sealed: str | None = None
    prev_tdk_sealed: str | None = None
    prev_until: str | None = None
    dialect: str = "cup"
    status_records: str = ""
    status_uploaded_at: str | None = None
    chip: bool = False
    capk_loaded: str = ""
    aid_loaded: str = ""

    @property
    def signed_on(self) -> bool:
        return self.mak_sealed is not None and self.pik_sealed is not None

    def previous_keys_valid(self, now_iso: str) -> bool:
        """The last proven keys still count beside newer, unproven ones."""
        return (
            self.prev_mak_sealed is not None
            and self.prev_pik_sealed is not None
            and self.prev_until is not None
            and now_iso < self.prev_until
        )

    def __repr__(self) -> str:
        return f"TerminalRec(tid={self.tid!r}, mid={self.mid!r}, status={self.status!r}, batch={self.batch!r})"

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> TerminalRec:
        return cls(
            r["tid"],
            r["mid"],
            r["tmk_sealed"],
            r["tmk_kcv"],
            r["status"],
            r["min_software"],
            r["batch"],
            r["pik_sealed"],
            r["mak_sealed"],
            r["keys_issued_at"],
            r["notice_seen"],
            r["last_seen"],
            r["last_software"],
            r["replaced_by"],
            r["status_since"],
            r["status_by"],
            r["status_why"],
            r["key_scheme"],
            r["tdk_sealed"],
            bool(r["keys_proven"]),
            int(r["unproven_signons"]),
            r["prev_pik_sealed"],
            r["prev_mak_sealed"],
            r["prev_tdk_sealed"],
            r["prev_until"],
            r["dialect"],
            r["status_records"],
            r["status_uploaded_at"],
            bool(r["chip"]),
            r["capk_loaded"],
            r["aid_loaded"],
        )


@record
class CardRec:
    id: int
    pan_token: str
    pan_masked: str
    expiry: str
    pvv: str
    status: str
    organisation: str
    balance_fen: int
    opening_fen: int
    holds_fen: int
    daily_limit_fen: int
    daily_used_fen: int
    daily_date: str
    wrong_pin: int
    pin_locked: bool
    velocity_until: str
    status_since: str
    status_by: str
    status_why: str

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.holds_fen

    def __repr__(self) -> str:
        return f"CardRec(id={self.id}, pan={self.pan_masked!r}, status={self.status!r})"

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> CardRec:
        return cls(
            r["id"],
            r["pan_token"],
            r["pan_masked"],
            r["expiry"],
            r["pvv"],
            r["status"],
            r["organisation"],
            r["balance_fen"],
            r["opening_fen"],
            r["holds_fen"],
            r["daily_limit_fen"],
            r["daily_used_fen"],
            r["daily_date"],
            r["wrong_pin"],
            bool(r["pin_locked"]),
            r["velocity_until"],
            r["status_since"],
            r["status_by"],
            r["status_why"],
        )


@record
class JournalRec:
    id: int
    ts: str
    business_date: str
    tid: str
    mid: str
    batch: str
    stan: str
    mti: str
    kind: str
    amount_fen: int | None
    card_id: int | None
    pan_masked: str
    organisation: str
    code: str
    reason: str
    facts: dict[str, Any]
    auth_code: str
    status: str
    delta_fen: int
    hold_fen: int
    original_id: int | None
    req_key: str | None
    settlement_id: int | None
    entry_mode: str
    software: str
    processing: int
    latency_us: int
    trail: str

    @property
    def rrn(self) -> str:
        """The retrieval reference number: the host assigns the journal id."""
        return rrn_of(self.id)

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> JournalRec:
        d = dict(r)
        d["facts"] = json.loads(d["facts"] or "{}")
        return cls(**d)


@record
class JournalEntry:
    """One journal row as the host writes it (``id`` and ``settlement_id`` come
    later: the store assigns the first, settlement sets the second). Typed, so a
    misspelt or missing column is an error where the row is made, not a SQL error
    in the writer thread.

    >>> JournalEntry(ts="2026-12-02T08:00:00.000000Z", business_date="20261202",
    ...     tid="10000001", mid="898310000000001", batch="000001", stan="000001",
    ...     mti="0200", kind="purchase", reason="approved", status="approved",
    ...     amount_fen=1000).values()[:9]
    ('2026-12-02T08:00:00.000000Z', '20261202', '10000001', '898310000000001', '000001', '000001', '0200', 'purchase', 1000)
    """

    ts: str
    business_date: str
    tid: str
    mid: str
    batch: str
    stan: str
    mti: str
    kind: str
    reason: str
    status: str
    amount_fen: int | None = None
    card_id: int | None = None
    pan_masked: str = ""
    organisation: str = "   "
    code: str = ""
    facts: Mapping[str, Any] | None = None
    auth_code: str = ""
    delta_fen: int = 0
    hold_fen: int = 0
    original_id: int | None = None
    req_key: str | None = None
    entry_mode: str = ""
    software: str = ""
    processing: int = 0
    latency_us: int = 0
    trail: str = ""

    def values(self) -> tuple[Any, ...]:
        """The values in :data:`JOURNAL_COLUMNS` order (facts as JSON text)."""
        facts = self.facts
        return (
            self.ts,
            self.business_date,
            self.tid,
            self.mid,
            self.batch,
            self.stan,
            self.mti,
            self.kind,
            self.amount_fen,
            self.card_id,
            self.pan_masked,
            self.organisation,
            self.code,
            self.reason,
            json.dumps(facts, ensure_ascii=False, sort_keys=True) if facts else "{}",
            self.auth_code,
            self.status,
            self.delta_fen,
            self.hold_fen,
            self.original_id,
            self.req_key,
            self.entry_mode,
            self.software,
            self.processing,
            self.latency_us,
            self.trail,
        )


#: the journal columns a :class:`JournalEntry` fills, in :meth:`JournalEntry.values` order
JOURNAL_COLUMNS = (
    "ts", "business_date", "tid", "mid", "batch", "stan", "mti", "kind", "amount_fen",
    "card_id", "pan_masked", "organisation", "code", "reason", "facts", "auth_code",
    "status", "delta_fen", "hold_fen", "original_id", "req_key", "entry_mode", "software",
    "processing", "latency_us", "trail",
)  # fmt: skip


@record
class MaintenanceRec:
    id: int
    who: str
    start_at: str
    end_at: str
    notice_zh: str
    notice_en: str
    created_by: str
    created_at: str
    cancelled: bool

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> MaintenanceRec:
        d = dict(r)
        d["cancelled"] = bool(d["cancelled"])
        return cls(**d)


@record
class SettlementRec:
    """One settlement (0500) of a terminal's batch: the terminal's totals and the host's."""

    id: int
    ts: str
    tid: str
    mid: str
    batch: str
    term_debit_fen: int
    term_debit_count: int
    term_credit_fen: int
    term_credit_count: int
    host_debit_fen: int
    host_debit_count: int
    host_credit_fen: int
    host_credit_count: int
    check_code: int
    status: str
    uploaded: int
    closed_at: str | None

    @property
    def term_sums(self) -> tuple[int, int, int, int]:
        """The terminal's debit amount, debit count, credit amount, credit count."""
        return (
            self.term_debit_fen,
            self.term_debit_count,
            self.term_credit_fen,
            self.term_credit_count,
        )

    @property
    def host_sums(self) -> tuple[int, int, int, int]:
        """The host's debit amount, debit count, credit amount, credit count."""
        return (
            self.host_debit_fen,
            self.host_debit_count,
            self.host_credit_fen,
            self.host_credit_count,
        )

    def __getitem__(self, column: str) -> Any:
        """The value of a column by name, as the untyped row it replaces was read
        (``st["uploaded"]``); prefer the attribute."""
        if column not in self.__dataclass_fields__:
            raise KeyError(column)
        return getattr(self, column)

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> SettlementRec:
        return cls(
            int(r["id"]),
            r["ts"],
            r["tid"],
            r["mid"],
            r["batch"],
            int(r["term_debit_fen"]),
            int(r["term_debit_count"]),
            int(r["term_credit_fen"]),
            int(r["term_credit_count"]),
            int(r["host_debit_fen"]),
            int(r["host_debit_count"]),
            int(r["host_credit_fen"]),
            int(r["host_credit_count"]),
            int(r["check_code"]),
            r["status"],
            int(r["uploaded"]),
            r["closed_at"],
        )


@record
class AuditRec:
    """One row of the audit trail."""

    id: int
    ts: str
    actor: str
    entity: str
    entity_id: str
    action: str
    from_state: str
    to_state: str
    reason: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> AuditRec:
        return cls(
            int(r["id"]),
            r["ts"],
            r["actor"],
            r["entity"],
            r["entity_id"],
            r["action"],
            r["from_state"],
            r["to_state"],
            r["reason"],
            json.loads(r["detail"] or "{}"),
        )


@record
class ChipRec:
    """A card's chip as the issuer knows it; ``last_atc`` -1 before the first
    accepted cryptogram. Fits :class:`clearpos.issuer.emv.ChipRecord`."""

    card_id: int
    psn: str
    cvn: str
    service_code: str
    last_atc: int
    atc_at: str

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> ChipRec:
        return cls(
            int(r["card_id"]),
            r["psn"],
            r["cvn"],
            r["service_code"],
            int(r["last_atc"]),
            r["atc_at"],
        )


@record
class CapkRec:
    """A CA public key the terminals download; hex text, ``expiry`` YYYYMMDD."""

    rid: str
    index: str
    modulus: str
    exponent: str
    expiry: str
    check_value: str

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> CapkRec:
        return cls(r["rid"], r["idx"], r["modulus"], r["exponent"], r["expiry"], r["check_value"])


@record
class AidRec:
    """Chip parameters of one AID; amounts in fen, TACs and version as hex."""

    aid: str
    app_version: str
    floor_limit_fen: int
    contactless_limit_fen: int
    contactless_cvm_limit_fen: int
    tac_default: str
    tac_online: str
    tac_denial: str

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> AidRec:
        return cls(
            r["aid"],
            r["app_version"],
            int(r["floor_limit_fen"]),
            int(r["contactless_limit_fen"]),
            int(r["contactless_cvm_limit_fen"]),
            r["tac_default"],
            r["tac_online"],
            r["tac_denial"],
        )
