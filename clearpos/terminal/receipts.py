"""Receipts (签购单) and settlement slips as text, saved in the state directory.

A receipt has a merchant copy and a customer copy; the card number is always
masked. Declined, reversed and timed-out attempts get a slip too: it is the
merchant's evidence of what happened (SCENARIOS.md A11, B3, B5).
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from clearpos.private import private_dir, private_open
from clearpos.reasons import Lang

from .screens import fen_text, kind_title

__all__ = ["Receipt", "SettlementSlip", "save_text"]

_WIDTH = 40


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    """Left-justify to a display width (a Chinese character takes two columns)."""
    return text + " " * max(1, width - _width(text))


def _center(text: str) -> str:
    left = max(0, (_WIDTH - _width(text)) // 2)
    return " " * left + text


def _copy_title(lang: Lang, merchant: bool) -> str:
    if lang == "zh":
        return "商户存根 MERCHANT COPY" if merchant else "持卡人存根 CUSTOMER COPY"
    return "MERCHANT COPY" if merchant else "CUSTOMER COPY"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a transaction receipt shows (card data already masked)."""

    kind: str
    tid: str
    mid: str
    operator: str
    pan: str
    entry: str
    amount_fen: int | None
    batch: str
    stan: str
    approved: bool
    screen: str
    reason: str
    code: str | None
    rrn: str = ""
    auth_code: str = ""
    when: str = ""
    original_stan: str = ""
    lines: tuple[str, ...] = field(default_factory=tuple)
    merchant_name: str = ""
    #: a chip sale's application (9F06 AID, 50 label), the first GENERATE AC's ARQC
    #: and ATC (9F36) and the TC of the second when the card accepted
    aid: str = ""
    app_label: str = ""
    arqc: str = ""
    tc: str = ""
    atc: int | None = None

    def text(self, lang: Lang) -> str:
        """Both copies, merchant first."""
        return "\n".join([*self._copy(lang, True), "", *self._copy(lang, False)]) + "\n"

    def _copy(self, lang: Lang, merchant: bool) -> list[str]:
        zh = lang == "zh"
        bar = "=" * _WIDTH
        out = [bar, _center("POS 签购单" if zh else "POS RECEIPT")]
        out.append(_center(_copy_title(lang, merchant)))
        out.append(bar)
        if self.merchant_name:
            out.append(_pad("收单机构:" if zh else "Acquirer:", 12) + self.merchant_name)
        rows = [
            (("商户编号", "MID"), self.mid),
            (("终端编号", "TID"), self.tid),
            (("操作员", "Operator"), self.operator),
            (("卡号", "Card"), self.pan),
            (("交易类型", "Type"), kind_title(self.kind, lang)),
            (("批次号", "Batch"), self.batch),
            (("流水号", "STAN"), self.stan),
            (("原流水号", "Orig. STAN"), self.original_stan),
            (("授权码", "Auth code"), self.auth_code),
            (("参考号", "RRN"), self.rrn),
            (("日期时间", "Date/time"), self.when),
            (("金额", "Amount"), fen_text(self.amount_fen) if self.amount_fen is not None else ""),
            (("AID", "AID"), self.aid),
            (("应用标签", "App label"), self.app_label),
            (("ARQC", "ARQC"), self.arqc),
            (("TC", "TC"), self.tc),
            (("ATC", "ATC"), "" if self.atc is None else f"{self.atc:04X}"),
        ]
        for (z, e), value in rows:
            if value:
                out.append(_pad((z if zh else e) + ":", 12) + value)
        out.append("-" * _WIDTH)
        status = ("结果: " if zh else "Result: ") + self.screen
        out.append(status)
        if not self.approved:
            out.append(
                ("原因: " if zh else "Reason: ")
                + self.reason
                + (f" ({self.code})" if self.code else "")
            )
        out.extend(self.lines)
        if merchant and self.approved and self.kind not in ("balance",):
            out.append("")
            out.append(("持卡人签名:" if zh else "Cardholder signature:") + " ____________")
        out.append(bar)
        return out


@dataclass(frozen=True, slots=True)
class SettlementSlip:
    """End-of-day settlement slip (结算单)."""

    tid: str
    mid: str
    batch: str
    when: str
    domestic: tuple[int, int, int, int]
    foreign: tuple[int, int, int, int]
    screen: str
    lines: tuple[str, ...] = ()

    def text(self, lang: Lang) -> str:
        """The slip as text."""
        zh = lang == "zh"
        bar = "=" * _WIDTH
        out = [bar, _center("结算单" if zh else "SETTLEMENT"), bar]
        out.append(_pad("商户编号:" if zh else "MID:", 12) + self.mid)
        out.append(_pad("终端编号:" if zh else "TID:", 12) + self.tid)
        out.append(_pad("批次号:" if zh else "Batch:", 12) + self.batch)
        out.append(_pad("日期时间:" if zh else "Date/time:", 12) + self.when)
        for title, (dfen, dn, cfen, cn) in (
            (("内卡", "Domestic"), self.domestic),
            (("外卡", "Foreign"), self.foreign),
        ):
            out.append("-" * _WIDTH)
            out.append(title[0] if zh else title[1])
            out.append(
                "  " + _pad("借记" if zh else "Debits", 8) + f"{dn:>5}  {fen_text(dfen):>16}"
            )
            out.append(
                "  " + _pad("贷记" if zh else "Credits", 8) + f"{cn:>5}  {fen_text(cfen):>16}"
            )
        out.append("-" * _WIDTH)
        out.append(self.screen)
        out.extend(self.lines)
        out.append(bar)
        return "\n".join(out) + "\n"


def save_text(path: Path, text: str) -> None:
    """Write ``text`` atomically and durably (temp file, fsync, rename)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    with private_open(tmp, "w", encoding="utf-8") as fh:  # a receipt is the owner's only
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
