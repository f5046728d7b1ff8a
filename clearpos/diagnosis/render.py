"""Human text of diagnosis results (the CLI; the console renders the same dataclasses)."""

from __future__ import annotations

from .model import (
    Explanation,
    FailureGroup,
    Fix,
    HistoryEntry,
    MerchantDiagnosis,
    Resolved,
    TerminalDiagnosis,
)
from .sentences import state_word, t

__all__ = ["render_explanation", "render_merchant", "render_terminal"]


def _steps(lang: str, steps: tuple[str, ...], indent: str = "    ") -> list[str]:
    return [f"{indent}{n}. {s}" for n, s in enumerate(steps, start=1)]


def render_explanation(e: Explanation) -> str:
    lang = e.lang
    head = []
    if e.rrn:
        head.append(t(lang, f"检索参考号 {e.rrn}", f"RRN {e.rrn}"))
    if e.time:
        head.append(e.time)
    if e.tid:
        head.append(t(lang, f"终端 {e.tid}", f"terminal {e.tid}"))
    if e.mid:
        head.append(t(lang, f"商户 {e.mid}", f"merchant {e.mid}"))
    lines = ["  ".join(head) if head else e.reason]
    what = [x for x in (e.kind, f"¥{e.amount}" if e.amount is not None else "", e.pan_masked) if x]
    if what:
        lines.append("  " + " ".join(what) + (f"  ({e.status})" if e.status else ""))
    code = f"{t(lang, '应答码', 'code')} {e.code}" if e.code else ""
    cat = f"{t(lang, '类别', 'category')} {e.category}" if e.category else ""
    extra = ", ".join(x for x in (code, cat) if x)
    lines += [
        f"  {t(lang, '终端显示', 'screen')}: {e.screen}",
        f"  {t(lang, '原因', 'reason')}: {e.reason}" + (f" ({extra})" if extra else ""),
    ]
    if e.journal_reason:
        lines.append(f"  {t(lang, '主机记录', 'host recorded')}: {e.journal_reason}")
    lines += [
        f"  {t(lang, '真实原因', 'cause')}: {e.cause}",
        f"  {t(lang, '谁来处理', 'who acts')}: {e.actor}",
        f"  {t(lang, '处理步骤', 'remedy')}:",
        *_steps(lang, e.remedy),
    ]
    return "\n".join(lines)


def _fix(
    lang: str,
    fix: Fix | None,
    failures: tuple[FailureGroup, ...],
    blocking: tuple[Fix, ...] = (),
    resolved: Resolved | None = None,
) -> list[str]:
    """The headline, then (when there is one) what was wrong before and is resolved."""
    after = [resolved.line] if resolved is not None else []
    return _headline(lang, fix, failures, blocking) + after


def _headline(
    lang: str, fix: Fix | None, failures: tuple[FailureGroup, ...], blocking: tuple[Fix, ...]
) -> list[str]:
    if fix is None:
        if failures:
            return [
                t(
                    lang,
                    "最可能要处理的：无。没有阻断状态；上一笔成功交易之后没有需要商户、服务商或终端处理的失败。",
                    "Most likely fix: nothing now. No blocking state, and no failure since the last approved transaction that the merchant, provider or terminal must act on.",
                )
            ]
        return [
            t(
                lang,
                "最可能要处理的：无（没有阻断状态，也没有近期失败）。",
                "Most likely fix: nothing (no blocking state, no recent failures).",
            )
        ]
    return [
        f"{t(lang, '最可能要处理的', 'Most likely fix')}: {fix.headline}",
        f"  {t(lang, '原因', 'reason')}: {fix.reason}",
        f"  {t(lang, '说明', 'cause')}: {fix.cause}",
        f"  {t(lang, '谁来处理', 'who acts')}: {fix.actor}",
        f"  {t(lang, '处理步骤', 'remedy')}:",
        *_steps(lang, fix.remedy),
        *(
            f"{t(lang, '同时阻断', 'Also blocking')}: {b.headline} ({b.reason})"
            for b in blocking
            if b != fix
        ),
    ]


def _failures(lang: str, since: str, failures: tuple[FailureGroup, ...]) -> list[str]:
    if not failures:
        return [t(lang, f"自 {since} 以来没有失败的交易。", f"No failures since {since}.")]
    out = [t(lang, f"自 {since} 以来的失败（按原因）：", f"Failures since {since}, by reason:")]
    for g in failures:
        where = f"  [{', '.join(g.tids)}]" if len(g.tids) > 1 else ""
        out.append(
            f"  {g.reason:<36} ×{g.count:<4} {g.first_time} → {g.last_time}  {g.screen}{where}"
        )
    return out


def _history(lang: str, history: tuple[HistoryEntry, ...]) -> list[str]:
    if not history:
        return [t(lang, "状态历史：无记录。", "History: nothing recorded.")]
    out = [t(lang, "状态历史：", "History:")]
    for h in history:
        move = (
            f" {h.from_state} → {h.to_state}" if h.from_state != h.to_state and h.to_state else ""
        )
        subject = f"{h.entity} {h.entity_id} " if h.entity in ("terminal",) else ""
        why = f" — {h.why}" if h.why else ""
        out.append(f"  {h.time}  {h.actor:<10} {subject}{h.action}{move}{why}")
    return out


def _since(window_start: str) -> str:
    from ..clock import show

    return show(window_start, zone=True)


def render_terminal(d: TerminalDiagnosis) -> str:
    lang = d.lang
    lines: list[str] = []
    if d.terminal is None:
        lines.append(t(lang, f"终端 {d.tid}：未登记", f"Terminal {d.tid}: not registered"))
    else:
        s = d.terminal
        lines.append(
            t(lang, f"终端 {s.tid} — 商户 {s.mid}", f"Terminal {s.tid} — merchant {s.mid}")
        )
        if d.merchant is not None:
            lines[-1] += f" {d.merchant.name}"
        lines.append(
            f"  {t(lang, '状态', 'state')}: {state_word(s.status, lang) if lang == 'zh' else s.status} {t(lang, '自', 'since')} {s.since} ({s.by}{': ' + s.why if s.why else ''})"
        )
        if s.replaced_by:
            lines.append(f"  {t(lang, '已更换为', 'replaced by')}: {s.replaced_by}")
        if s.replaces:
            lines.append(f"  {t(lang, '替换了', 'replaces')}: {s.replaces}")
        keys = (
            t(lang, f"已签到 {s.keys_issued_at}", f"signed on {s.keys_issued_at}")
            if s.signed_on
            else t(lang, "未签到（无工作密钥）", "not signed on (no working keys)")
        )
        lines.append(
            f"  {t(lang, '密钥', 'keys')}: {keys} · {t(lang, '批次', 'batch')} {s.batch} · "
            f"{t(lang, '软件', 'software')} {s.software or '-'} (min {s.min_software}) · TMK KCV {s.tmk_kcv}"
            + (f" · {t(lang, '最后通讯', 'last seen')} {s.last_seen}" if s.last_seen else "")
        )
        if d.merchant is not None:
            m = d.merchant
            cause = f"({m.suspension_cause})" if m.suspension_cause else ""
            lines.append(
                f"  {t(lang, '商户', 'merchant')}: {m.status}{cause} {t(lang, '自', 'since')} {m.since} ({m.by})"
                + (f"; {t(lang, '欠费', 'owes')} ¥{m.owed}" if m.owed_fen else "")
            )
    lines += [
        "",
        *_fix(lang, d.fix, d.failures, d.blocking, d.resolved),
        "",
        *_failures(lang, _since(d.window_start), d.failures),
    ]
    lines += ["", *_history(lang, d.history)]
    if d.transactions:
        lines += ["", t(lang, "最近失败的交易：", "Recent failed transactions:")]
        for e in d.transactions:
            lines += ["", render_explanation(e)]
    return "\n".join(lines)


def render_merchant(d: MerchantDiagnosis) -> str:
    lang = d.lang
    m = d.merchant
    cause = f"({m.suspension_cause})" if m.suspension_cause else ""
    lines = [
        t(lang, f"商户 {m.mid} {m.name}", f"Merchant {m.mid} {m.name}"),
        f"  {t(lang, '状态', 'state')}: {state_word(m.status, lang) if lang == 'zh' else m.status}{cause} {t(lang, '自', 'since')} {m.since} ({m.by}{': ' + m.why if m.why else ''})",
        f"  {t(lang, '欠费', 'owes')}: ¥{m.owed} · {t(lang, '单笔限额', 'single limit')} ¥{m.single_limit}"
        + (
            f" · {t(lang, '受限类型', 'restricted')} {', '.join(m.restricted_types)}"
            if m.restricted_types
            else ""
        )
        + (
            f" · {t(lang, '待审批复机申请', 'pending resumption request')} #{m.pending_request}"
            if m.pending_request
            else ""
        ),
        f"  {t(lang, '终端', 'terminals')}: "
        + ", ".join(
            f"{s.tid} {s.status}{'' if s.signed_on else t(lang, '（未签到）', ' (not signed on)')}"
            for s in d.terminals
        ),
    ]
    if d.arrears:
        lines.append(f"  {t(lang, '欠费台账', 'arrears ledger')}:")
        for a in d.arrears:
            voucher = f" {t(lang, '凭证', 'voucher')} {a['voucher']}" if a["voucher"] else ""
            lines.append(
                f"    {a['time']}  {a['kind']:<8} ¥{a['amount']:>10}  → ¥{a['owed_after']}  {a['by']}{voucher}  {a['note']}"
            )
    if d.requests:
        lines.append(f"  {t(lang, '复机申请', 'resumption requests')}:")
        for r in d.requests:
            decided = (
                f" → {r['status']} {r['decided_time']} {r['decided_by']}: {r['why']}"
                if r["decided_at"]
                else f" ({r['status']})"
            )
            lines.append(f"    #{r['id']} {r['requested_time']} {r['requested_by']}{decided}")
    lines += [
        "",
        *_fix(lang, d.fix, d.failures, d.blocking, d.resolved),
        "",
        *_failures(lang, _since(d.window_start), d.failures),
    ]
    lines += ["", *_history(lang, d.history)]
    if d.transactions:
        lines += ["", t(lang, "最近失败的交易：", "Recent failed transactions:")]
        for e in d.transactions:
            lines += ["", render_explanation(e)]
    return "\n".join(lines)
