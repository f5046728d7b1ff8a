"""The daily report per merchant (自动对账): what was approved, declined, undone and settled.

For one business date (China time, the journal's ``business_date``):

- ``approved``: approved money-taking requests by kind (purchase, completion,
  offline, preauth) as approved at the time, even if later undone;
- ``declined``: every declined request by reason (reversal answers 12 and 25,
  which mean "reversal done", and settlement check codes are not declines);
- ``reversed``: approved transactions later reversed (the customer was not charged);
- ``voided``: approved voids (void, completion void, pre-authorisation void);
- ``refunded``: approved refunds;
- ``settled``: each batch settled that day, with the host's debit and credit totals;
- ``net``: debits (purchase, completion, offline) minus credits (void,
  completion void, refund) that stand — approved and not reversed — the same
  rule as settlement totals (spec §4).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..clock import CST, show, utc_iso
from ..money import fen_yuan
from ..store import CREDIT_KINDS, DEBIT_KINDS, Tx
from ..store.queries import ops as q

__all__ = ["Count", "MerchantDay", "daily_report", "report_csv", "report_json"]

TAKING_KINDS = ("purchase", "completion", "offline", "preauth")
VOID_KINDS = ("void", "completion_void", "preauth_void")
NOT_DECLINES = ("reversal", "settlement", "batch_upload", "batch_upload_end")


@dataclass(slots=True)
class Count:
    count: int = 0
    amount_fen: int = 0

    def add(self, amount: int | None) -> None:
        self.count += 1
        self.amount_fen += amount or 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "amount": fen_yuan(self.amount_fen),
            "amount_fen": self.amount_fen,
        }


@dataclass(slots=True)
class Batch:
    tid: str
    batch: str
    status: str
    closed_at: str | None
    debit: Count
    credit: Count

    def to_dict(self) -> dict[str, Any]:
        return {
            "tid": self.tid,
            "batch": self.batch,
            "status": self.status,
            "closed_at": self.closed_at,
            "closed_time": show(self.closed_at) if self.closed_at else None,
            "debit": self.debit.to_dict(),
            "credit": self.credit.to_dict(),
            "net": fen_yuan(self.debit.amount_fen - self.credit.amount_fen),
        }


@dataclass(slots=True)
class MerchantDay:
    """One merchant's day."""

    date: str
    mid: str
    name: str
    approved: dict[str, Count] = field(default_factory=dict)
    declined: dict[str, Count] = field(default_factory=dict)
    reversed: Count = field(default_factory=Count)
    voided: Count = field(default_factory=Count)
    refunded: Count = field(default_factory=Count)
    settled: list[Batch] = field(default_factory=list)
    net_fen: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "mid": self.mid,
            "name": self.name,
            "approved": {k: v.to_dict() for k, v in sorted(self.approved.items())},
            "declined": {k: v.to_dict() for k, v in sorted(self.declined.items())},
            "reversed": self.reversed.to_dict(),
            "voided": self.voided.to_dict(),
            "refunded": self.refunded.to_dict(),
            "settled": [b.to_dict() for b in self.settled],
            "net": fen_yuan(self.net_fen),
            "net_fen": self.net_fen,
        }


def _day_bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=CST)
    return utc_iso(start), utc_iso(start + timedelta(days=1))


def daily_report(tx: Tx, day: date, mid: str | None = None) -> list[MerchantDay]:
    """One :class:`MerchantDay` per merchant (or just ``mid``), for merchants with activity
    that day — and ``mid`` even without any."""
    bd = day.strftime("%Y%m%d")
    names = {m.mid: m.name for m in tx.merchants()}
    days: dict[str, MerchantDay] = {}

    def get(m: str) -> MerchantDay:
        if m not in days:
            days[m] = MerchantDay(day.isoformat(), m, names.get(m, ""))
        return days[m]

    if mid:
        get(mid)
    start, end = _day_bounds(day)
    for r in q.journal_between(tx, start, end, business_date=bd, mid=mid or None):
        d = get(r.mid or "-")
        kind, code, status, amount = r.kind, r.code, r.status, r.amount_fen
        financial = r.req_key is not None
        if code == "00" and financial and kind != "reversal":
            if kind in TAKING_KINDS:
                d.approved.setdefault(kind, Count()).add(amount)
            if status == "reversed":
                d.reversed.add(amount)
                continue
            if kind in VOID_KINDS:
                d.voided.add(amount)
            elif kind == "refund":
                d.refunded.add(amount)
            if kind in DEBIT_KINDS:
                d.net_fen += amount or 0
            elif kind in CREDIT_KINDS:
                d.net_fen -= amount or 0
        elif status == "declined" and kind not in NOT_DECLINES:
            d.declined.setdefault(r.reason, Count()).add(amount)
    for s in tx.settlements(since=start, until=end, mid=mid or None):
        get(s.mid).settled.append(
            Batch(
                s.tid,
                s.batch,
                s.status,
                s.closed_at,
                Count(s.host_debit_count, s.host_debit_fen),
                Count(s.host_credit_count, s.host_credit_fen),
            )
        )
    return [days[k] for k in sorted(days)]


def report_json(days: list[MerchantDay]) -> list[dict[str, Any]]:
    return [d.to_dict() for d in days]


CSV_HEADER = ("date", "mid", "merchant", "section", "item", "count", "amount")


def report_csv(days: list[MerchantDay]) -> str:
    """Long format: one line per (merchant, section, item); amounts in yuan."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for d in days:
        base = (d.date, d.mid, d.name)
        for kind, c in sorted(d.approved.items()):
            w.writerow((*base, "approved", kind, c.count, fen_yuan(c.amount_fen)))
        for reason, c in sorted(d.declined.items()):
            w.writerow((*base, "declined", reason, c.count, fen_yuan(c.amount_fen)))
        for name, c in (("reversed", d.reversed), ("voided", d.voided), ("refunded", d.refunded)):
            w.writerow((*base, name, "", c.count, fen_yuan(c.amount_fen)))
        for b in d.settled:
            item = f"{b.tid}/{b.batch}/{b.status}"
            w.writerow((*base, "settled_debit", item, b.debit.count, fen_yuan(b.debit.amount_fen)))
            w.writerow(
                (*base, "settled_credit", item, b.credit.count, fen_yuan(b.credit.amount_fen))
            )
        w.writerow((*base, "net", "", "", fen_yuan(d.net_fen)))
    return out.getvalue()
