"""The fact sentences of a diagnosis, in Chinese and English.

The catalog says what a reason means in general; these sentences say what
happened in this case, from the journal's facts, the current state of the
merchant, terminal or card, and their audit history. Nothing here guesses:
a sentence is written only when its facts are recorded.
"""

from __future__ import annotations

from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..store import AuditRec, CardRec, MerchantRec, TerminalRec, Tx
from ..store.queries.ops import role_of

CAUSE = {
    "arrears": ("欠费", "arrears"),
    "risk": ("风控", "risk"),
    "manual": ("人工", "manual"),
}
ROLE = {
    "operator": ("操作员", "operator"),
    "supervisor": ("主管", "supervisor"),
    "admin": ("管理员", "admin"),
}
STATUS = {
    "active": ("正常", "active"),
    "restricted": ("受限", "restricted"),
    "suspended": ("停机", "suspended"),
    "closed": ("已解约", "closed"),
    "replaced": ("已更换", "replaced"),
    "normal": ("正常", "normal"),
    "frozen": ("冻结", "frozen"),
    "lost": ("挂失", "lost"),
    "stolen": ("被窃", "stolen"),
    "expired": ("过期", "expired"),
    "approved": ("已批准", "approved"),
    "declined": ("已拒绝", "declined"),
    "reversed": ("已冲正", "reversed"),
    "voided": ("已撤销", "voided"),
    "completed": ("已完成", "completed"),
    "unbalanced": ("对账不平", "unbalanced"),
    "pending": ("待审批", "pending"),
    "rejected": ("已驳回", "rejected"),
    "open": ("待处理", "open"),
    "in_progress": ("处理中", "in progress"),
    "resolved": ("已解决", "resolved"),
}
#: journal kinds (what the terminal did) in the words of a POS receipt
KIND = {
    "purchase": ("消费", "purchase"),
    "void": ("消费撤销", "void"),
    "refund": ("退货", "refund"),
    "preauth": ("预授权", "pre-authorisation"),
    "preauth_void": ("预授权撤销", "pre-authorisation void"),
    "completion": ("预授权完成", "completion"),
    "completion_void": ("预授权完成撤销", "completion void"),
    "balance": ("余额查询", "balance inquiry"),
    "offline": ("离线消费", "offline sale"),
    "reversal": ("冲正", "reversal"),
    "settle": ("结算", "settlement"),
    "settlement": ("结算", "settlement"),
    "batch_upload": ("批上送", "batch upload"),
    "signon": ("签到", "sign-on"),
    "signoff": ("签退", "sign-off"),
    "login": ("操作员签到", "operator sign-in"),
    "logout": ("操作员签退", "operator sign-out"),
    "parameters": ("参数下载", "parameter download"),
    "echo": ("回响测试", "echo test"),
    "invalid": ("无效报文", "invalid message"),
}

#: audited actions (the audit trail's ``action``) as a person says them
ACTION = {
    "add": ("新增", "added"),
    "suspend": ("停机", "suspended"),
    "resume": ("复机", "resumed"),
    "restrict": ("限制交易类型", "restricted"),
    "lift": ("解除限制", "restriction lifted"),
    "set_limit": ("设置单笔限额", "single limit set"),
    "close": ("关闭", "closed"),
    "replace": ("更换终端", "replaced"),
    "rotate_tmk": ("更换主密钥", "TMK rotated"),
    "set_software": ("设置最低软件版本", "minimum software set"),
    "freeze": ("冻结", "frozen"),
    "unfreeze": ("解冻", "unfrozen"),
    "report_lost": ("挂失", "reported lost"),
    "report_stolen": ("报失窃", "reported stolen"),
    "unlock_pin": ("解锁密码", "PIN unlocked"),
    "charge": ("记欠费", "charged"),
    "arrears.fee": ("记服务费", "fee charged"),
    "arrears.fine": ("记罚款", "fine charged"),
    "resume request": ("申请复机", "resumption asked"),
    "arrears.payment": ("缴费", "payment recorded"),
    "resumption.request": ("申请复机", "resumption requested"),
    "resumption.approve": ("批准复机", "resumption approved"),
    "resumption.reject": ("驳回复机", "resumption rejected"),
    "request": ("申请", "requested"),
    "approve": ("批准", "approved"),
    "reject": ("驳回", "rejected"),
    "schedule": ("安排维护", "scheduled"),
    "move": ("调整维护时间", "moved"),
    "cancel": ("取消", "cancelled"),
    "open": ("开单", "opened"),
    "assign": ("指派", "assigned"),
    "comment": ("备注", "commented"),
    "resolve": ("解决", "resolved"),
    "reopen": ("重新打开", "reopened"),
    "disable": ("停用", "disabled"),
    "login": ("登录", "signed in"),
    "login.failed": ("登录失败", "sign-in refused"),
    "seed": ("由世界文件载入", "loaded from the world file"),
}


def action_word(action: str, lang: str) -> str:
    """``resumption.approve`` -> ``批准复机`` / ``resumption approved``."""
    return word(ACTION, action, lang)


def state_word(value: str, lang: str) -> str:
    """An audited state such as ``suspended(arrears)`` in words: ``停机（欠费）``."""
    if not value:
        return "–"
    base, _, cause = value.partition("(")
    text = word(STATUS, base, lang)
    if cause:
        why = word(CAUSE, cause.rstrip(")"), lang)
        text += f"（{why}）" if lang == "zh" else f" ({why})"
    return text


def t(lang: str, zh: str, en: str) -> str:
    """The Chinese or the English text."""
    return zh if lang == "zh" else en


def word(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    pair = table.get(key)
    return (pair[0] if lang == "zh" else pair[1]) if pair else key


def when(iso: str | None) -> str:
    """China time of a stored UTC text, to the minute ('' when unknown)."""
    return show(iso) if iso else ""


def who(tx: Tx, name: str, lang: str) -> str:
    """``supervisor li`` when ``li`` is a console user, else the name as recorded."""
    if name == "world":
        return t(lang, "世界文件", "the world file")
    role = role_of(tx, name)
    if role:
        return (
            f"{word(ROLE, role, lang)} {name}"
            if lang == "en"
            else f"{word(ROLE, role, lang)}{name}"
        )
    return name


def state_why(by: str, why: str) -> str:
    """The recorded why, except the seed's "loaded from FILE": the world file set the state,
    which "by the world file" already says, and a path is not a reason."""
    return "" if by == "world" and why.startswith("loaded from ") else why


def why_part(why: str, lang: str) -> str:
    return (t(lang, "：", ": ") + why) if why else ""


def merchant_label(m: MerchantRec) -> str:
    return f"{m.mid} ({m.name})"


def merchant_state(tx: Tx, m: MerchantRec, lang: str) -> str:
    """One sentence: the merchant's current state, since when, by whom, why, what it owes."""
    label = merchant_label(m)
    by = who(tx, m.status_by, lang)
    since = when(m.status_since)
    if m.status == "suspended":
        cause = m.suspension_cause or "manual"
        text = t(
            lang,
            f"商户 {label} 自 {since} 起因{word(CAUSE, cause, lang)}被{by}停机{why_part(state_why(m.status_by, m.status_why), lang)}",
            f"merchant {label} suspended for {cause} since {since} by {by}{why_part(state_why(m.status_by, m.status_why), lang)}",
        )
        if cause == "arrears" or m.arrears_fen:
            text += t(
                lang, f"；欠费 ¥{fen_yuan(m.arrears_fen)}", f"; owes ¥{fen_yuan(m.arrears_fen)}"
            )
        return text
    if m.status == "closed":
        return t(
            lang,
            f"商户 {label} 已于 {since} 由{by}解约{why_part(state_why(m.status_by, m.status_why), lang)}",
            f"merchant {label} closed since {since} by {by}{why_part(state_why(m.status_by, m.status_why), lang)}",
        )
    if m.status == "restricted":
        types = ", ".join(m.restricted_types) or "-"
        return t(
            lang,
            f"商户 {label} 自 {since} 起被{by}限制交易类型 {types}{why_part(state_why(m.status_by, m.status_why), lang)}",
            f"merchant {label} restricted ({types}) since {since} by {by}{why_part(state_why(m.status_by, m.status_why), lang)}",
        )
    return t(
        lang,
        f"商户 {label} 自 {since} 起正常交易（{by}{why_part(state_why(m.status_by, m.status_why), lang)}）",
        f"merchant {label} active since {since} (by {by}{why_part(state_why(m.status_by, m.status_why), lang)})",
    )


def terminal_state(tx: Tx, term: TerminalRec, lang: str) -> str:
    """One sentence: the terminal's current state, since when, by whom, why."""
    by = who(tx, term.status_by, lang)
    since = when(term.status_since)
    if term.status == "replaced":
        return t(
            lang,
            f"终端 {term.tid} 已于 {since} 由{by}更换为 {term.replaced_by}{why_part(state_why(term.status_by, term.status_why), lang)}；请使用 {term.replaced_by}",
            f"terminal {term.tid} was replaced by {term.replaced_by} on {since} by {by}{why_part(state_why(term.status_by, term.status_why), lang)}; use {term.replaced_by}",
        )
    if term.status == "suspended":
        return t(
            lang,
            f"终端 {term.tid} 自 {since} 起被{by}停机{why_part(state_why(term.status_by, term.status_why), lang)}",
            f"terminal {term.tid} suspended since {since} by {by}{why_part(state_why(term.status_by, term.status_why), lang)}",
        )
    return t(
        lang,
        f"终端 {term.tid} 自 {since} 起正常（{by}{why_part(state_why(term.status_by, term.status_why), lang)}）",
        f"terminal {term.tid} active since {since} (by {by}{why_part(state_why(term.status_by, term.status_why), lang)})",
    )


def card_state(tx: Tx, card: CardRec, lang: str) -> str:
    by = who(tx, card.status_by, lang)
    since = when(card.status_since)
    return t(
        lang,
        f"卡 {card.pan_masked} 自 {since} 起状态为{word(STATUS, card.status, lang)}（{by}{why_part(state_why(card.status_by, card.status_why), lang)}）",
        f"card {card.pan_masked} is {card.status} since {since} (by {by}{why_part(state_why(card.status_by, card.status_why), lang)})",
    )


def audit_sentence(tx: Tx, a: AuditRec, lang: str) -> str:
    """An audit row as a sentence: 'resume on 2026-11-23 10:02 by supervisor li: paid'."""
    by = who(tx, a.actor, lang)
    move = f" ({a.from_state} → {a.to_state})" if a.from_state != a.to_state and a.to_state else ""
    moved = (
        f"（{state_word(a.from_state, lang)} → {state_word(a.to_state, lang)}）"
        if a.from_state != a.to_state and a.to_state
        else ""
    )
    return t(
        lang,
        f"{when(a.ts)} {by}{action_word(a.action, lang)}{moved}{why_part(a.reason, lang)}",
        f"{a.action}{move} on {when(a.ts)} by {by}{why_part(a.reason, lang)}",
    )


def yuan_fact(facts: dict[str, Any], key: str) -> str | None:
    """A money fact as yuan text, whether recorded as ``key`` (yuan) or ``key_fen``."""
    if key in facts and facts[key] is not None:
        return str(facts[key])
    fen = facts.get(f"{key}_fen")
    return fen_yuan(int(fen)) if isinstance(fen, int) else None
