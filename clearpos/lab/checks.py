"""The final checks: every terminal's journal against the host's journal and cards."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from clearpos.audit import FINANCIAL
from clearpos.store import CREDIT_KINDS, DEBIT_KINDS
from clearpos.terminal.store import JournalRow

from .report import Discrepancy
from .world import LabWorld

__all__ = ["APPLIED", "NOT_APPLIED", "Comparison", "compare"]

APPLIED = ("approved", "offline_uploaded")
NOT_APPLIED = ("declined", "reversed", "local", "offline_declined")


@dataclass
class Comparison:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    unknown: int = 0


def compare(
    journals: dict[str, list[JournalRow]],
    host_rows: list[dict[str, Any]],
    cards: list[tuple[str, int, int, int]],
    world: LabWorld,
) -> Comparison:
    """Terminal journals against the host's journal and cards (see the campaign's
    module docstring).

    ``host_rows`` are the host's journal rows as dicts; ``cards`` are
    ``(pan_masked, opening_fen, balance_fen, holds_fen)`` from the host.
    """
    check = _Check(host_rows)
    for tid, rows in journals.items():
        check.terminal(tid, rows)
    check.unjournaled()
    check.money(cards, {c.masked: c.balance_fen for c in world.cards})
    return check.res


def _host_applied(r: dict[str, Any] | None) -> bool:
    return r is not None and r["code"] == "00" and r["status"] != "reversed"


class _Check:
    """One comparison: the host's rows by request key, and what the terminals say
    they charged, credited and hold per card."""

    def __init__(self, host_rows: list[dict[str, Any]]) -> None:
        self.res = Comparison()
        self.bad = self.res.discrepancies
        self.by_key: dict[str, dict[str, Any]] = {}
        for r in host_rows:
            key = r.get("req_key")
            if key and r["kind"] != "reversal":
                self.by_key[key] = r
        self.charged: Counter[str] = Counter()
        self.credited: Counter[str] = Counter()
        self.held: Counter[str] = Counter()
        self.seen_keys: set[str] = set()

    def terminal(self, tid: str, rows: list[JournalRow]) -> None:
        completed = {
            (r.original_batch, r.original_stan)
            for r in rows
            if r.kind == "completion" and r.status in APPLIED
        }
        for row in rows:
            if row.kind not in FINANCIAL or not row.stan:
                continue
            key = f"{tid}:{row.batch}:{row.stan}"
            self.seen_keys.add(key)
            if row.kind == "balance":
                continue  # a balance inquiry moves no money: nothing to agree on
            h = self.by_key.get(key)
            where = f"{tid} batch {row.batch} STAN {row.stan} {row.kind}"
            if self._applied(row, h, where):
                assert h is not None
                self._agree(row, h, where, completed)
                self._count(row, completed)

    def _applied(self, row: JournalRow, h: dict[str, Any] | None, where: str) -> bool:
        """Whether both sides say applied (a discrepancy when they disagree); an unknown
        refund takes the host's word."""
        if row.status in APPLIED:
            mine: bool | None = True
        elif row.status in NOT_APPLIED:
            mine = False
        elif row.kind == "refund" and row.status in ("unknown", "sending"):
            mine = None
        else:
            self.bad.append(
                Discrepancy("terminal", f"{where}: left in state {row.status!r} at the end")
            )
            return False
        theirs = _host_applied(h)
        if mine is None:
            self.res.unknown += 1
            return theirs
        if mine != theirs:
            hs = "no row" if h is None else f"code {h['code']!r} status {h['status']!r}"
            self.bad.append(
                Discrepancy(
                    "transaction",
                    f"{where}: terminal says {'applied' if mine else 'not applied'} "
                    f"({row.status}), host says {'applied' if theirs else 'not applied'} "
                    f"({hs})",
                )
            )
            return False
        return mine

    def _agree(
        self, row: JournalRow, h: dict[str, Any], where: str, completed: set[tuple[str, str]]
    ) -> None:
        """Amount, voided and completed the same on both sides."""
        if row.amount_fen != h["amount_fen"]:
            self.bad.append(
                Discrepancy(
                    "transaction",
                    f"{where}: amount {row.amount_fen} at the terminal, "
                    f"{h['amount_fen']} at the host",
                )
            )
        if row.kind in ("purchase", "completion", "preauth"):
            t_voided = row.voided
            h_voided = h["status"] == "voided"
            if t_voided != h_voided:
                self.bad.append(
                    Discrepancy(
                        "voided",
                        f"{where}: voided at the terminal {t_voided}, host status {h['status']!r}",
                    )
                )
        if row.kind == "preauth":
            t_done = (row.batch, row.stan) in completed
            h_done = h["status"] == "completed"
            if t_done != h_done:
                self.bad.append(
                    Discrepancy(
                        "completed",
                        f"{where}: completed at the terminal {t_done}, host status {h['status']!r}",
                    )
                )

    def _count(self, row: JournalRow, completed: set[tuple[str, str]]) -> None:
        card = row.pan
        amount = row.amount_fen or 0
        if row.kind in DEBIT_KINDS:
            self.charged[card] += amount
        elif row.kind in CREDIT_KINDS:
            self.credited[card] += amount
        elif row.kind == "preauth" and not row.voided and (row.batch, row.stan) not in completed:
            self.held[card] += amount

    def unjournaled(self) -> None:
        """The host holds no applied request that no terminal journaled."""
        for key, r in self.by_key.items():
            if key not in self.seen_keys and _host_applied(r):
                self.bad.append(
                    Discrepancy(
                        "transaction",
                        f"host row {r['id']} ({r['kind']} {key}) is applied but no terminal "
                        "journaled it",
                    )
                )

    def money(self, cards: list[tuple[str, int, int, int]], opening: dict[str, int]) -> None:
        """Per card: opening - charged + credited = balance; open pre-auths = holds."""
        charged, credited, held = self.charged, self.credited, self.held
        for masked, host_opening, balance, holds in cards:
            start = opening.get(masked, host_opening)
            want = start - charged[masked] + credited[masked]
            if want != balance:
                self.bad.append(
                    Discrepancy(
                        "money",
                        f"card {masked}: opening {start} - charged {charged[masked]} + credited "
                        f"{credited[masked]} = {want}, host balance {balance}",
                    )
                )
            if held[masked] != holds:
                self.bad.append(
                    Discrepancy(
                        "holds",
                        f"card {masked}: open pre-auths at the terminals {held[masked]}, "
                        f"host holds {holds}",
                    )
                )
