"""What the operator sees: outcomes, their screen text, and the terminal's own lines.

Reason texts come from the catalog (:mod:`clearpos.reasons`); this module adds
only what the catalog cannot know -- the per-outcome facts the terminal
states explicitly: whether the customer was charged, that a reversal is still
owed, that the operator must repeat the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearpos.reasons import Lang, catalog

__all__ = [
    "DOCTOR_LABELS",
    "NOTES",
    "Outcome",
    "doctor_label",
    "fen_text",
    "finish",
    "kind_of",
    "kind_title",
    "note",
    "reason_of",
    "screen_of",
]

NOTES: dict[str, tuple[str, str]] = {
    "charged": ("顾客已扣款", "Customer charged"),
    "not_charged": ("顾客未被扣款", "Customer NOT charged"),
    "reversed_not_charged": ("已冲正，顾客未被扣款", "Reversed: customer NOT charged"),
    "reversal_pending": (
        "冲正尚未送达：顾客可能暂时显示扣款，终端会自动补发冲正，最终不会扣款",
        "Reversal not delivered yet: the customer may see a debit for now; the terminal "
        "sends the reversal automatically and the customer will NOT be charged in the end",
    ),
    "not_sent": ("交易未发出，顾客未被扣款", "Not sent: customer NOT charged"),
    "not_sent_plain": ("交易未发出", "Not sent"),
    "repeat": ("已自动重新签到，请重新交易", "Signed on again - please repeat the transaction"),
    "resign_failed": (
        "自动重新签到失败，请执行签到后再交易",
        "Automatic sign-on failed - sign on, then repeat the transaction",
    ),
    "void_reversed": (
        "撤销未完成（已冲正）：原交易仍有效",
        "Void not done (reversed): the original sale stands",
    ),
    "void_pending": (
        "撤销未完成：冲正待发，原交易仍有效",
        "Void not done: reversal pending, the original sale stands",
    ),
    "credited": ("款项已退回顾客", "Amount credited back to the customer"),
    "not_credited": ("未退款", "Nothing credited"),
    "refund_unknown": (
        "退货结果未知，请勿重复退货；先用 clearpos diagnose --rrn 原交易参考号 或控制台查询",
        "Refund outcome unknown - do NOT refund again; check it first with "
        "clearpos diagnose --rrn ORIGINAL_RRN or the console",
    ),
    "held": ("已预授权（冻结额度），未扣款", "Pre-authorised (amount held), not charged"),
    "not_held": ("未冻结额度，顾客未被扣款", "Nothing held, customer NOT charged"),
    "hold_released": ("预授权已撤销，冻结额度已释放", "Pre-auth voided, hold released"),
    "offline_stored": (
        "离线批准，联网后自动上送；顾客将被扣款",
        "Approved offline; uploaded when back online, customer will be charged",
    ),
    "balance_only": ("余额查询，不扣款", "Balance inquiry, nothing charged"),
    "offline_declined": (
        "离线交易上送被拒（流水{stan}）：请另向顾客收款",
        "Offline sale STAN {stan} declined at upload: collect payment another way",
    ),
    "offline_moved": (
        "离线交易（流水{old}）所在批次{batch}已被主机结算，已转入当前批次，新流水号{stan}",
        "Offline sale STAN {old}: the host had already closed batch {batch}; "
        "moved to the current batch as STAN {stan}",
    ),
    "offline_uploaded": ("离线交易已上送（流水{stan}）", "Offline sale STAN {stan} uploaded"),
    "reversal_sent": ("已补发冲正（流水{stan}）", "Pending reversal sent (STAN {stan})"),
    "batch_open": ("批次保持打开，请稍后重新结算", "Batch stays open - settle again later"),
    "new_batch": ("新批次：{batch}", "New batch: {batch}"),
    "uploading": ("对账不平，已批上送{count}笔", "Totals differed: {count} records uploaded"),
    "operator": ("操作员{no}已签到", "Operator {no} signed in"),
    "operator_no_signon": (
        "操作员{no}密码正确，但终端未能签到，不能交易",
        "Operator {no}'s password is right, but the terminal did not sign on: no trading",
    ),
    "operator_out": ("操作员已签退", "Operator signed out"),
    "signed_on": ("签到成功，批次{batch}", "Signed on, batch {batch}"),
    "signed_off": ("签退成功", "Signed off"),
    "echo_ok": ("主机连接正常，往返{ms}毫秒", "Host answers, round trip {ms} ms"),
    "parameters_ok": ("参数下载成功", "Parameters downloaded"),
    "status_ok": ("终端状态已上送", "Terminal status uploaded"),
    "chip_download_ok": (
        "IC卡参数下载成功：公钥{capk}个，AID {aid}个",
        "Chip parameters downloaded: {capk} CA keys, {aid} AIDs",
    ),
    "chip_download_failed": (
        "IC卡参数下载未完成，请稍后执行 download-chip",
        "Chip parameter download not finished: run download-chip later",
    ),
    "notice": ("维护公告：{text}", "Notice: {text}"),
    "balance": ("可用余额：{amount}", "Available balance: {amount}"),
}


#: the lines of ``pos doctor`` (their stable names, as in --json) as the operator reads them
DOCTOR_LABELS: dict[str, tuple[str, str]] = {
    "state directory": ("状态目录", "state directory"),
    "host": ("主机地址", "host"),
    "pending reversal": ("待发冲正", "pending reversal"),
    "echo test": ("回响测试", "echo test"),
    "signed on": ("签到状态", "signed on"),
    "clock": ("时钟", "clock"),
    "offline queue": ("离线队列", "offline queue"),
    "batch": ("批次", "batch"),
    "software": ("软件版本", "software"),
    "chip parameters": ("IC卡参数", "chip parameters"),
    "operator": ("操作员", "operator"),
}


def doctor_label(name: str, lang: Lang) -> str:
    """A doctor line's label in ``lang`` (its name when unknown)."""
    pair = DOCTOR_LABELS.get(name)
    return (pair[0] if lang == "zh" else pair[1]) if pair else name


def note(name: str, lang: Lang, **facts: object) -> str:
    """One of the terminal's own lines in ``lang``."""
    zh, en = NOTES[name]
    return (zh if lang == "zh" else en).format(**facts)


_TITLES: dict[str, tuple[str, str]] = {
    "balance": ("余额查询", "BALANCE INQUIRY"),
    "purchase": ("消费", "SALE"),
    "void": ("消费撤销", "VOID"),
    "refund": ("退货", "REFUND"),
    "preauth": ("预授权", "PRE-AUTH"),
    "preauth_void": ("预授权撤销", "PRE-AUTH VOID"),
    "completion": ("预授权完成", "PRE-AUTH COMPLETION"),
    "completion_void": ("预授权完成撤销", "COMPLETION VOID"),
    "offline": ("离线消费", "OFFLINE SALE"),
}


def kind_title(kind: str, lang: Lang) -> str:
    """The receipt title of a transaction kind."""
    zh, en = _TITLES.get(kind, (kind, kind.upper()))
    return zh if lang == "zh" else en


def fen_text(fen: int | None) -> str:
    """``1234`` -> ``"¥12.34"``."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


def reason_of(code: str | None, key: str) -> str:
    """The reason key of an answer: the key of field 63, else the one key of the code."""
    if key:
        return key
    if code:
        matches = catalog().keys_for_code(code)
        if len(matches) == 1:
            return matches[0].key
        return f"code.{code}"
    return "host.error"


def screen_of(key: str, code: str | None, lang: Lang, **facts: object) -> str:
    """Catalog screen text of ``key``; the code's fallback text for an unknown key."""
    reason = catalog().get(key)
    if reason is not None:
        return reason.screen_text(lang, **facts)
    return catalog().code_text(code or "", lang)


def remedy_of(key: str, lang: Lang, **facts: object) -> list[str]:
    """Catalog remedy steps of ``key`` (empty for an unknown key)."""
    reason = catalog().get(key)
    return reason.remedy_steps(lang, **facts) if reason is not None else []


# ---------------------------------------------------------------------------- vocabulary
#
# One vocabulary per outcome kind. The catalog's words are a *transaction's*: an
# approval is 交易成功 with a receipt to print, a network failure says the customer
# was not charged. They are right for a financial transaction only:
#
# - management (login, sign-on, echo...): says what was set up; no customer, no charge;
# - inquiry (balance): says the inquiry was answered; nothing to print, void or refund;
# - financial (purchase, void, refund, pre-auth...): the catalog's words as they are;
# - local error (the terminal decided: a key check, an unreachable host): no field 39
#   is shown, because no host answer decided it.

#: commands that move money (or holds); everything else never charges anyone
FINANCIAL = frozenset(
    {
        "purchase",
        "void",
        "refund",
        "preauth",
        "preauth_void",
        "complete",
        "completion",
        "completion_void",
        "offline",
    }
)
INQUIRY = frozenset({"balance"})

#: a management command that succeeded, in its own words (screen limits: zh 20, en 32)
_MANAGEMENT_OK: dict[str, tuple[str, str]] = {
    "login": ("操作员签到成功", "Operator signed in"),
    "logout": ("操作员已签退", "Operator signed out"),
    "signon": ("签到成功", "Signed on"),
    "signoff": ("签退成功", "Signed off"),
    "echo": ("主机连接正常", "Host reachable"),
    "operators": ("操作员设置已更新", "Operators updated"),
}
_INQUIRY_OK = ("查询成功", "Inquiry answered")
_INQUIRY_REMEDY = (
    "把余额告知持卡人；查询不扣款，交易到此结束。",
    "Tell the cardholder the balance; an inquiry charges nothing and ends here.",
)
#: no host reached, for a command that charges no one: no offline sale to offer
_NO_HOST = {
    "network.unreachable": ("无法连接主机", "Cannot reach the host"),
    "network.timeout": ("主机无应答", "No answer from the host"),
}
_NO_HOST_REMEDY = (
    (
        "检查电源、网线、Wi-Fi或SIM卡信号和路由器，运行 clearpos pos ... doctor 查看主机是否可达。",
        "Check power, cable, Wi-Fi or SIM signal and the router, and run clearpos pos ... "
        "doctor to see whether the host is reachable.",
    ),
    (
        "网络恢复后重做这一步（签到、查询或回响测试）；在此之前不能交易。",
        "When the network is back, repeat this step (sign-on, inquiry or echo); no trading "
        "until then.",
    ),
    (
        "网络正常但主机仍不可达时，请服务商确认主机地址和端口（终端参数 --host）。",
        "If the network is fine but the host is still unreachable, ask the provider to "
        "confirm the host address and port (the terminal's --host).",
    ),
)


def help_code(key: str) -> str | None:
    """The short help code of a reason (``H62A``), shown on the screen for the help center."""
    return catalog().help_codes().get(key)


def kind_of(command: str, reason: str) -> str:
    """``financial``, ``inquiry``, ``management`` or ``local`` (the terminal decided)."""
    r = catalog().get(reason)
    if reason != "approved" and r is not None and not r.code and command not in FINANCIAL:
        return "local"
    if command in FINANCIAL:
        return "financial"
    if command in INQUIRY:
        return "inquiry"
    return "management"


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "zh" else pair[1]


def finish(out: Outcome, lang: Lang) -> Outcome:
    """Put ``out`` in its kind's words (idempotent); every terminal command ends here."""
    kind = kind_of(out.command, out.reason)
    out.extra["outcome_kind"] = kind
    if kind == "financial":
        return out
    if out.reason in _NO_HOST:
        out.screen = _pick(_NO_HOST[out.reason], lang)
        out.remedy = [_pick(step, lang) for step in _NO_HOST_REMEDY]
        drop = {note("not_sent", lang), note("not_charged", lang)}
        out.lines = [x for x in out.lines if x not in drop]
    if kind == "local" and out.code is not None:
        # the terminal refused what the host approved (a key check): the host's 00 did not
        # decide, so it is not shown as the answer code
        out.extra.setdefault("host_code", out.code)
        out.code = None
    if out.command == "login" and not out.approved:
        no = str(out.extra.get("operator", "")) or _operator_no(out.lines, lang)
        if no:
            signed = note("operator", lang, no=no)
            out.lines = [
                note("operator_no_signon", lang, no=no) if x == signed else x for x in out.lines
            ]
    if not out.approved or out.reason != "approved":
        return out
    if kind == "inquiry":
        out.screen = _pick(_INQUIRY_OK, lang)
        out.remedy = [_pick(_INQUIRY_REMEDY, lang)]
    elif out.command in _MANAGEMENT_OK:
        out.screen = _pick(_MANAGEMENT_OK[out.command], lang)
        out.remedy = []
    return out


def _operator_no(lines: list[str], lang: Lang) -> str:
    """The operator number of an "Operator NN signed in" line, if there is one."""
    zh, en = NOTES["operator"]
    head, _, tail = (zh if lang == "zh" else en).partition("{no}")
    for x in lines:
        if x.startswith(head) and x.endswith(tail) and len(x) > len(head) + len(tail):
            return x[len(head) : len(x) - len(tail)]
    return ""


def notice_window(notice: dict[str, str]) -> str:
    """The window of a maintenance notice with its dates, in China time with the zone:
    ``2026-11-23 02:00 – 2026-11-23 04:00 +08:00`` ('' when the host sent no times)."""
    from datetime import datetime

    from clearpos.clock import CST

    def parse(text: str) -> datetime | None:
        text = text.strip()
        for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=CST)
            except ValueError:
                continue
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=CST)

    start, end = parse(notice.get("start", "")), parse(notice.get("end", ""))
    if start is None or end is None:
        return ""
    a, b = start.astimezone(CST), end.astimezone(CST)
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} +08:00"


@dataclass
class Outcome:
    """The result of one terminal command, as shown on screen and printed by ``--json``."""

    command: str
    reason: str
    code: str | None
    approved: bool
    screen: str
    stan: str | None = None
    rrn: str | None = None
    amount_fen: int | None = None
    charged: bool | None = None
    financial: bool = False
    remedy: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    notice: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        """0 approved / ok, 1 declined or refused."""
        return 0 if self.approved else 1

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (spec/world.md: reason, code, approved, screen, stan, ...)."""
        out: dict[str, Any] = {
            "command": self.command,
            "reason": self.reason,
            "code": self.code,
            "approved": self.approved,
            "screen": self.screen,
            "stan": self.stan,
            "rrn": self.rrn,
            "amount_fen": self.amount_fen,
        }
        if self.financial:
            out["charged"] = bool(self.charged)
        out["help_code"] = help_code(self.reason)
        out["remedy"] = list(self.remedy)
        out["lines"] = list(self.lines)
        if self.notice is not None:
            out["notice"] = dict(self.notice)
        out.update(self.extra)
        return out

    def render(self, lang: Lang) -> str:
        """Human text: the screen line first, then the facts and what to do next."""
        mark = "✔" if self.approved else "✘"
        out = [f"{mark} {self.screen}"]
        out.extend(f"  {line}" for line in self.lines)
        facts: list[tuple[str, str]] = []
        labels = {
            "stan": ("流水号", "STAN"),
            "rrn": ("参考号", "RRN"),
            "auth_code": ("授权码", "Auth code"),
            "batch": ("批次号", "Batch"),
            "pan": ("卡号", "Card"),
            "amount": ("金额", "Amount"),
            "code": ("应答码", "Code"),
            "reason": ("原因", "Reason"),
            "help": ("帮助码", "Help code"),
            "receipt": ("签购单", "Receipt"),
        }

        def add(name: str, value: object) -> None:
            if value not in (None, ""):
                zh, en = labels[name]
                facts.append((zh if lang == "zh" else en, str(value)))

        add("amount", fen_text(self.amount_fen) if self.amount_fen is not None else None)
        add("pan", self.extra.get("pan"))
        add("stan", self.stan)
        add("batch", self.extra.get("batch"))
        add("rrn", self.rrn)
        add("auth_code", self.extra.get("auth_code"))
        add("code", self.code)
        add("reason", self.reason)
        add("help", help_code(self.reason))
        add("receipt", self.extra.get("receipt"))
        out.extend(f"  {k}: {v}" for k, v in facts)
        if self.notice:
            text = self.notice.get("text_" + lang) or self.notice.get("text_zh", "")
            window = notice_window(self.notice)
            out.append("  " + note("notice", lang, text=text) + (f" ({window})" if window else ""))
        if self.remedy:
            out.append("  " + ("下一步：" if lang == "zh" else "What to do next:"))
            out.extend(f"   {i}. {step}" for i, step in enumerate(self.remedy, 1))
        return "\n".join(out)
