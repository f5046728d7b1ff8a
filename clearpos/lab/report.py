"""What a campaign did and found: :class:`Report` and its :class:`Discrepancy` list."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Discrepancy", "Report"]


@dataclass(frozen=True)
class Discrepancy:
    """One thing the final checks found: which check, which terminal/card, what."""

    check: str
    detail: str


@dataclass
class Report:
    """What a campaign did and found (``discrepancies`` must be empty)."""

    seed: int
    terminals: int
    transactions: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    reversals_sent: int = 0
    reversals_confirmed: int = 0
    host_restarts: int = 0
    host_kills_in_flight: int = 0
    host_kills_between: int = 0
    host_down_ops: int = 0
    cli_runs: int = 0
    terminal_kills: int = 0
    terminal_restarts: int = 0
    offline_stored: int = 0
    unknown_refunds: int = 0
    settlements: int = 0
    errors: list[str] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    audit: int = 0
    leak_hits: int = -1
    leak_files: int = 0
    seconds: float = 0.0
    command: str = ""

    @property
    def faults_injected(self) -> int:
        """Network faults drawn by the proxy (host and terminal kills not included)."""
        return sum(self.faults.values())

    @property
    def ok(self) -> bool:
        return not self.discrepancies and not self.errors and self.leak_hits <= 0

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Counter):
                value = dict(sorted(value.items()))
            elif name == "discrepancies":
                value = [asdict(d) for d in value]
            doc[name] = value
        doc["faults_injected"] = self.faults_injected
        doc["ok"] = self.ok
        return doc

    def text(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.operations.items()))
        res = ", ".join(f"{k} {v}" for k, v in sorted(self.results.items()))
        lines = [
            f"fault lab: seed {self.seed}, {self.terminals} terminals, {self.seconds:.0f} s",
            f"  transactions       {self.transactions} ({ops})",
            f"  outcomes           {res}",
            f"  request frames     {self.frames}",
            f"  faults injected    {self.faults_injected} ({faults})",
            f"  reversals          {self.reversals_sent} sent, {self.reversals_confirmed} confirmed",
            f"  host               {self.host_restarts} restarts after "
            f"{self.host_kills_in_flight} SIGKILLs in flight and {self.host_kills_between} "
            f"between operations; {self.host_down_ops} operations while it was down",
            f"  terminals          {self.cli_runs} subprocess operations, {self.terminal_kills} "
            f"SIGKILLed, {self.terminal_restarts} restarts",
            f"  offline sales      {self.offline_stored} stored",
            f"  unknown refunds    {self.unknown_refunds} (resolved from the host's row)",
            f"  settlements        {self.settlements}",
            f"  audit              {self.audit} discrepancies",
            "  leak scan          "
            + (
                "not run"
                if self.leak_hits < 0
                else f"{self.leak_hits} hits in {self.leak_files} files"
            ),
            f"  errors             {len(self.errors)}",
            f"  discrepancies      {len(self.discrepancies)}",
        ]
        for e in self.errors[:20]:
            lines.append(f"    error: {e}")
        for d in self.discrepancies[:50]:
            lines.append(f"    {d.check}: {d.detail}")
        if len(self.discrepancies) > 50:
            lines.append(f"    ... {len(self.discrepancies) - 50} more in report.json")
        lines.append("RESULT: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)
