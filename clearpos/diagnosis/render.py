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
from .sentences import say, state_word

__all__ = ["render_explanation", "render_merchant", "render_terminal"]


def _steps(lang: str, steps: tuple[str, ...], indent: str = "    ") -> list[str]:
    return [f"{indent}{n}. {s}" for n, s in enumerate(steps, start=1)]


def render_explanation(e: Explanation) -> str:
    lang = e.lang
    head = []
    if e.rrn:
        head.append(say("render.render_explanation.rrn", lang, rrn=e.rrn))
    if e.time:
        head.append(e.time)
    if e.tid:
        head.append(say("render.render_explanation.terminal", lang, tid=e.tid))
    if e.mid:
        head.append(say("render.render_explanation.merchant", lang, mid=e.mid))
    lines = ["  ".join(head) if head else e.reason]
    what = [x for x in (e.kind, f"¥{e.amount}" if e.amount is not None else "", e.pan_masked) if x]
    if what:
        lines.append("  " + " ".join(what) + (f"  ({e.status})" if e.status else ""))
    code = f"{say('render.render_explanation.code', lang)} {e.code}" if e.code else ""
    cat = f"{say('render.render_explanation.category', lang)} {e.category}" if e.category else ""
    extra = ", ".join(x for x in (code, cat) if x)
    lines += [
        f"  {say('render.render_explanation.screen', lang)}: {e.screen}",
        f"  {say('render.render_explanation.reason', lang)}: {e.reason}"
        + (f" ({extra})" if extra else ""),
    ]
    if e.journal_reason:
        lines.append(
            f"  {say('render.render_explanation.host_recorded', lang)}: {e.journal_reason}"
        )
    lines += [
        f"  {say('render.render_explanation.cause', lang)}: {e.cause}",
        f"  {say('render.render_explanation.who_acts', lang)}: {e.actor}",
        f"  {say('render.render_explanation.remedy', lang)}:",
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
            return [say("render.headline.most_likely_fix_nothing_now", lang)]
        return [say("render.headline.most_likely_fix_nothing_no", lang)]
    return [
        f"{say('render.headline.most_likely_fix', lang)}: {fix.headline}",
        f"  {say('render.headline.reason', lang)}: {fix.reason}",
        f"  {say('render.headline.cause', lang)}: {fix.cause}",
        f"  {say('render.headline.who_acts', lang)}: {fix.actor}",
        f"  {say('render.headline.remedy', lang)}:",
        *_steps(lang, fix.remedy),
        *(
            f"{say('render.headline.also_blocking', lang)}: {b.headline} ({b.reason})"
            for b in blocking
            if b != fix
        ),
    ]


def _failures(lang: str, since: str, failures: tuple[FailureGroup, ...]) -> list[str]:
    if not failures:
        return [say("render.failures.no_failures_since", lang, since=since)]
    out = [say("render.failures.failures_since_by_reason", lang, since=since)]
    for g in failures:
        where = f"  [{', '.join(g.tids)}]" if len(g.tids) > 1 else ""
        out.append(
            f"  {g.reason:<36} ×{g.count:<4} {g.first_time} → {g.last_time}  {g.screen}{where}"
        )
    return out


def _history(lang: str, history: tuple[HistoryEntry, ...]) -> list[str]:
    if not history:
        return [say("render.history.history_nothing_recorded", lang)]
    out = [say("render.history.history", lang)]
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
        lines.append(say("render.render_terminal.terminal_not_registered", lang, tid=d.tid))
    else:
        s = d.terminal
        lines.append(say("render.render_terminal.terminal_merchant", lang, tid=s.tid, mid=s.mid))
        if d.merchant is not None:
            lines[-1] += f" {d.merchant.name}"
        lines.append(
            f"  {say('render.render_terminal.state', lang)}: {state_word(s.status, lang) if lang == 'zh' else s.status} {say('render.render_terminal.since', lang)} {s.since} ({s.by}{': ' + s.why if s.why else ''})"
        )
        if s.replaced_by:
            lines.append(f"  {say('render.render_terminal.replaced_by', lang)}: {s.replaced_by}")
        if s.replaces:
            lines.append(f"  {say('render.render_terminal.replaces', lang)}: {s.replaces}")
        keys = (
            say("render.render_terminal.signed_on", lang, keys_issued_at=s.keys_issued_at)
            if s.signed_on
            else say("render.render_terminal.not_signed_on_no_working", lang)
        )
        lines.append(
            f"  {say('render.render_terminal.keys', lang)}: {keys} · {say('render.render_terminal.batch', lang)} {s.batch} · "
            f"{say('render.render_terminal.software', lang)} {s.software or '-'} (min {s.min_software}) · TMK KCV {s.tmk_kcv}"
            + (
                f" · {say('render.render_terminal.last_seen', lang)} {s.last_seen}"
                if s.last_seen
                else ""
            )
        )
        if d.merchant is not None:
            m = d.merchant
            cause = f"({m.suspension_cause})" if m.suspension_cause else ""
            lines.append(
                f"  {say('render.render_terminal.merchant', lang)}: {m.status}{cause} {say('render.render_terminal.since_word', lang)} {m.since} ({m.by})"
                + (f"; {say('render.render_terminal.owes', lang)} ¥{m.owed}" if m.owed_fen else "")
            )
    lines += [
        "",
        *_fix(lang, d.fix, d.failures, d.blocking, d.resolved),
        "",
        *_failures(lang, _since(d.window_start), d.failures),
    ]
    lines += ["", *_history(lang, d.history)]
    if d.transactions:
        lines += ["", say("render.render_terminal.recent_failed_transactions", lang)]
        for e in d.transactions:
            lines += ["", render_explanation(e)]
    return "\n".join(lines)


def render_merchant(d: MerchantDiagnosis) -> str:
    lang = d.lang
    m = d.merchant
    cause = f"({m.suspension_cause})" if m.suspension_cause else ""
    lines = [
        say("render.render_merchant.merchant", lang, mid=m.mid, name=m.name),
        f"  {say('render.render_merchant.state', lang)}: {state_word(m.status, lang) if lang == 'zh' else m.status}{cause} {say('render.render_merchant.since', lang)} {m.since} ({m.by}{': ' + m.why if m.why else ''})",
        f"  {say('render.render_merchant.owes', lang)}: ¥{m.owed} · {say('render.render_merchant.single_limit', lang)} ¥{m.single_limit}"
        + (
            f" · {say('render.render_merchant.restricted', lang)} {', '.join(m.restricted_types)}"
            if m.restricted_types
            else ""
        )
        + (
            f" · {say('render.render_merchant.pending_resumption_request', lang)} #{m.pending_request}"
            if m.pending_request
            else ""
        ),
        f"  {say('render.render_merchant.terminals', lang)}: "
        + ", ".join(
            f"{s.tid} {s.status}{'' if s.signed_on else say('render.render_merchant.not_signed_on', lang)}"
            for s in d.terminals
        ),
    ]
    if d.arrears:
        lines.append(f"  {say('render.render_merchant.arrears_ledger', lang)}:")
        for a in d.arrears:
            voucher = (
                f" {say('render.render_merchant.voucher', lang)} {a['voucher']}"
                if a["voucher"]
                else ""
            )
            lines.append(
                f"    {a['time']}  {a['kind']:<8} ¥{a['amount']:>10}  → ¥{a['owed_after']}  {a['by']}{voucher}  {a['note']}"
            )
    if d.requests:
        lines.append(f"  {say('render.render_merchant.resumption_requests', lang)}:")
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
        lines += ["", say("render.render_merchant.recent_failed_transactions", lang)]
        for e in d.transactions:
            lines += ["", render_explanation(e)]
    return "\n".join(lines)
