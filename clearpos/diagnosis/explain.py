"""Explain one transaction: what the terminal showed, the real cause, who acts, the remedy.

The reason and its facts come from the journal row the host wrote (STYLE.md
§7: diagnosis from recorded results, not from guesses); the words come from
the catalog; the specific sentences (:mod:`.sentences`) come from the current
state of the merchant, terminal or card and their audit history.
"""

from __future__ import annotations

from typing import Any

from ..clock import show
from ..money import fen_yuan
from ..reasons import Lang, Reason, catalog
from ..store import AuditRec, JournalRec, Tx, rrn_of
from ..store.queries.ops import audit_rows, last_journal, maintenance_window
from . import chip
from .model import Explanation
from .sentences import (
    CAUSE,
    STATUS,
    audit_sentence,
    card_state,
    merchant_state,
    t,
    terminal_state,
    when,
    who,
    word,
    yuan_fact,
)

__all__ = [
    "explain_reason",
    "explain_row",
    "explain_rrn",
    "explain_transaction",
    "fill_ids",
    "is_fixable",
]

TIMEOUT = "network.timeout"
REFUSED = "card.refused_after_approval"
#: field 39 of a reversal (0400) -> the reason it stands for
_REVERSAL_REASONS = {"98": TIMEOUT, "06": REFUSED}


def fill_ids(steps: list[str], *, mid: str = "", tid: str = "", rrn: str = "") -> tuple[str, ...]:
    """Put the real MID, TID and RRN into the catalog's command examples."""
    out = []
    for s in steps:
        if mid:
            s = s.replace("--mid MID", f"--mid {mid}")
        if tid:
            s = s.replace("--tid TID", f"--tid {tid}")
        if rrn:
            s = s.replace("--rrn RRN", f"--rrn {rrn}")
        out.append(s)
    return tuple(out)


def is_fixable(reason: Reason) -> bool:
    """The merchant, the provider or the terminal must act — not the cardholder, and
    not "no one" or "wait" (a timeout the terminal reverses by itself, a maintenance window)."""
    actor = reason.actor.en.lower()
    if actor.startswith(("no one", "wait")) or "cardholder" in actor:
        return False
    return any(w in actor for w in ("merchant", "provider", "terminal"))


def explain_reason(
    key: str, lang: Lang = "zh", *, tid: str = "", mid: str = "", **facts: object
) -> Explanation:
    """A reason explained from the catalog alone (terminal-side keys such as
    ``network.timeout`` or ``operator.wrong_password`` never reach the host)."""
    r = catalog()[key]
    return Explanation(
        rrn=None,
        tid=tid,
        mid=mid,
        reason=key,
        code=r.code or r.reversal_code,
        category=r.category,
        screen=r.screen_text(lang, **facts),
        cause=r.cause_text(lang, **facts),
        facts=(),
        actor=r.actor.get(lang),
        remedy=fill_ids(r.remedy_steps(lang, **facts), mid=mid, tid=tid),
        lang=lang,
    )


def explain_rrn(tx: Tx, rrn: str, lang: Lang = "zh") -> Explanation | None:
    """The transaction with this RRN explained, or None when there is none."""
    row = tx.journal_by_rrn(rrn)
    return explain_row(tx, row, lang) if row is not None else None


explain_transaction = explain_rrn
"""Alias of :func:`explain_rrn` (``explain_transaction(tx, rrn, lang="en")``)."""


def _reversal_of(tx: Tx, row: JournalRec) -> JournalRec | None:
    rows = tx.journal_children(row.id, ("reversal",))
    done = [r for r in rows if r.code == "00"]
    return done[-1] if done else (rows[-1] if rows else None)


def explain_row(tx: Tx, row: JournalRec, lang: Lang = "zh") -> Explanation:
    """One journal row explained (see the module docstring)."""
    cat = catalog()
    facts: dict[str, Any] = dict(row.facts)
    key = row.reason if row.reason in cat else "host.error"
    sentences: list[str] = []
    reversal = None
    why = str(facts.get("reversal_reason"))
    if row.kind == "reversal" and why in _REVERSAL_REASONS:
        key = _REVERSAL_REASONS[why]
        sentences += _reversal_sentences(tx, row, lang)
    elif row.status == "reversed":
        reversal = _reversal_of(tx, row)
        why = str(reversal.facts.get("reversal_reason")) if reversal is not None else ""
        if reversal is not None and why == "06":
            key = REFUSED
            sentences += chip.refused_sentences(row, reversal, lang)
        else:
            key = TIMEOUT if why == "98" else key
            sentences += _reversed_sentences(tx, row, reversal, lang)
    sentences += _sentences(tx, row, key, facts, lang)
    reason = cat[key]
    # what the catalog texts may use: notice in the display language, what is owed now
    facts["notice"] = facts.get(f"notice_{lang}")
    m = tx.merchant(row.mid) if row.mid else None
    if key == "merchant.suspended.arrears" and m is not None and m.suspension_cause == "arrears":
        remedy_facts = {**facts, "owed": fen_yuan(m.arrears_fen)}
    else:
        remedy_facts = facts
    general = reason.cause_text(lang, **facts)
    specific = t(lang, "；", "; ").join(sentences)
    if specific:
        specific = specific[0].upper() + specific[1:] if lang == "en" else specific
        cause = specific + t(lang, "。", ". ") + general
    else:
        cause = general
    code = row.code or None
    if key in (TIMEOUT, REFUSED):
        code = reason.reversal_code
    return Explanation(
        rrn=row.rrn,
        tid=row.tid,
        mid=row.mid,
        reason=key,
        code=code,
        category=reason.category,
        screen=reason.screen_text(lang, **facts),
        cause=cause,
        facts=tuple(sentences),
        actor=reason.actor.get(lang),
        remedy=fill_ids(
            reason.remedy_steps(lang, **remedy_facts), mid=row.mid, tid=row.tid, rrn=row.rrn
        ),
        lang=lang,
        ts=row.ts,
        time=show(row.ts),
        kind=row.kind,
        amount_fen=row.amount_fen,
        amount=fen_yuan(row.amount_fen) if row.amount_fen is not None else None,
        pan_masked=row.pan_masked,
        status=row.status,
        journal_reason=row.reason if key != row.reason else None,
        stan=row.stan,
        batch=row.batch,
    )


# --------------------------------------------------------------------------- reversals


def _reversal_sentences(tx: Tx, row: JournalRec, lang: Lang) -> list[str]:
    orig = tx.journal(row.original_id) if row.original_id else None
    if str(row.facts.get("reversal_reason")) == "06":
        heads = chip.refused_reversal_sentences(row, orig, lang)
    else:
        heads = [
            t(
                lang,
                f"终端在 {when(row.ts)} 对流水号 {row.stan} 发出自动冲正（原因码98：未在规定时间内收到应答）",
                f"the terminal sent an automatic reversal (reason 98: no answer in time) for trace number {row.stan} at {when(row.ts)}",
            )
        ]
    if row.reason == "approved" and orig is not None:
        amount = fen_yuan(orig.amount_fen or 0)
        tail = t(
            lang,
            f"主机已撤回原交易 {orig.rrn}（{orig.kind} ¥{amount}），顾客未被扣款",
            f"the host undid the original {orig.rrn} ({orig.kind} ¥{amount}), so the customer was not charged",
        )
    elif row.reason == "transaction.original_not_found":
        tail = t(
            lang,
            "原交易从未到达主机，无需撤回，顾客未被扣款",
            "the original never reached the host, so there was nothing to undo and nobody was charged",
        )
    elif row.reason == "transaction.already_voided":
        tail = t(lang, "原交易此前已被撤回", "the original had already been undone")
    else:
        tail = t(lang, f"主机应答 {row.reason}", f"the host answered {row.reason}")
    return [*heads, tail]


def _reversed_sentences(
    tx: Tx, row: JournalRec, reversal: JournalRec | None, lang: str
) -> list[str]:
    if reversal is None:
        return [t(lang, "该交易已被冲正", "this transaction was reversed")]
    why = str(reversal.facts.get("reversal_reason", ""))
    return [
        t(
            lang,
            f"主机批准了该交易（授权码 {row.auth_code or '-'}），但终端没有收到应答，于 {when(reversal.ts)} 发出冲正"
            f"（检索参考号 {reversal.rrn}，原因码 {why}），款项已退回，顾客未被扣款",
            f"the host approved it (auth code {row.auth_code or '-'}) but the terminal never got the answer and reversed it "
            f"at {when(reversal.ts)} (RRN {reversal.rrn}, reason {why}); the money is back and the customer was not charged",
        )
    ]


# --------------------------------------------------------------------------- per reason


def _sentences(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: Lang) -> list[str]:
    if key.startswith("merchant."):
        return _merchant(tx, row, key, f, lang)
    if key.startswith("terminal.") or key in ("mac.invalid", "pin.format_error"):
        return _terminal(tx, row, key, f, lang)
    if key.startswith("card.") or key == "risk.card_velocity":
        return _card(tx, row, key, f, lang)
    if key in ("host.maintenance", "issuer.unavailable"):
        return _window(tx, f, lang)
    if key.startswith("transaction."):
        return _transaction(tx, row, key, f, lang)
    if key == "message.format_error":
        if f.get("field") == 55 and (amounts := chip.amount_sentences(f, lang)):
            return amounts
        where = []
        if f.get("field") is not None:
            where.append(t(lang, f"域 {f['field']}", f"field {f['field']}"))
        if f.get("offset") is not None:
            where.append(t(lang, f"第 {f['offset']} 字节", f"byte {f['offset']}"))
        detail = f.get("expected") or f.get("detail")
        text = t(lang, "报文出错位置：", "the message went wrong at ") + (
            t(lang, "，", ", ").join(where) or t(lang, "未知", "an unknown place")
        )
        if detail:
            text += t(lang, f"（期望：{detail}）", f" (expected: {detail})")
        return [
            text
            + t(
                lang,
                f"；MTI {row.mti or '-'}，软件版本 {row.software or '-'}",
                f"; MTI {row.mti or '-'}, software {row.software or '-'}",
            )
        ]
    if key == "host.error":
        return [
            t(
                lang,
                f"主机内部故障 {f.get('error', '')}，本笔没有任何入账；详见主机日志 {when(row.ts)} 前后",
                f"internal host fault {f.get('error', '')}; nothing was committed — see the host log around {when(row.ts)}",
            )
        ]
    if key.startswith("settlement."):
        return [
            t(
                lang,
                f"批次 {row.batch}：主机借记合计 ¥{f.get('host_debit', '-')}，贷记合计 ¥{f.get('host_credit', '-')}",
                f"batch {row.batch}: host debit total ¥{f.get('host_debit', '-')}, credit total ¥{f.get('host_credit', '-')}",
            )
        ]
    if key == "approved":
        return _approved(tx, row, lang)
    return []


def _merchant(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    m = tx.merchant(row.mid)
    if m is None:
        return [t(lang, f"商户 {row.mid} 不在本系统中", f"merchant {row.mid} is not in this store")]
    if key in (
        "merchant.suspended.arrears",
        "merchant.suspended.risk",
        "merchant.suspended.manual",
        "merchant.closed",
    ):
        wanted_status = "closed" if key == "merchant.closed" else "suspended"
        wanted_cause = key.rsplit(".", 1)[1] if wanted_status == "suspended" else ""
        if m.status == wanted_status and (m.suspension_cause or "manual") == (
            wanted_cause or m.suspension_cause or "manual"
        ):
            out = [merchant_state(tx, m, lang)]
            if wanted_cause == "arrears":
                out += _arrears_progress(tx, m.mid, m.arrears_fen, lang)
            return out
        then = t(
            lang,
            f"当时商户 {m.mid}（{m.name}）{word(STATUS, wanted_status, lang)}"
            + (f"（{word(CAUSE, wanted_cause, lang)}）" if wanted_cause else "")
            + f"，自 {f.get('since', '-')} 起，操作人 {f.get('by', '-')}"
            + (f"，欠费 ¥{f['owed']}" if f.get("owed") else ""),
            f"at the time merchant {m.mid} ({m.name}) was {wanted_status}"
            + (f" for {wanted_cause}" if wanted_cause else "")
            + f" since {f.get('since', '-')} by {f.get('by', '-')}"
            + (f", owing ¥{f['owed']}" if f.get("owed") else ""),
        )
        return [
            then,
            t(lang, "现在：", "now: ")
            + merchant_state(tx, m, lang)
            + _last_change(tx, "merchant", m.mid, row.ts, lang),
        ]
    if key == "merchant.restricted":
        kind = f.get("kind", row.kind)
        if m.status == "restricted":
            return [
                merchant_state(tx, m, lang),
                t(
                    lang,
                    f"本笔是{kind}，属于受限类型",
                    f"this was a {kind}, one of the restricted types",
                ),
            ]
        return [
            t(
                lang,
                f"当时商户限制了{kind}交易",
                f"at the time the merchant was restricted for {kind}",
            ),
            t(lang, "现在：", "now: ")
            + merchant_state(tx, m, lang)
            + _last_change(tx, "merchant", m.mid, row.ts, lang),
        ]
    if key == "merchant.single_limit":
        limit, amount = f.get("limit", "-"), f.get("amount", fen_yuan(row.amount_fen or 0))
        out = [
            t(
                lang,
                f"金额 ¥{amount} 超过商户 {m.mid} 的单笔限额 ¥{limit}",
                f"the amount ¥{amount} is above merchant {m.mid}'s single-transaction cap ¥{limit}",
            )
        ]
        if fen_yuan(m.single_limit_fen) != limit:
            out.append(
                t(
                    lang,
                    f"现在的单笔限额为 ¥{fen_yuan(m.single_limit_fen)}",
                    f"the cap is now ¥{fen_yuan(m.single_limit_fen)}",
                )
            )
        return out
    return [merchant_state(tx, m, lang)]


def _arrears_progress(tx: Tx, mid: str, owed: int, lang: str) -> list[str]:
    from ..ops.arrears import ledger, pending_request

    out = []
    pays = [e for e in ledger(tx, mid) if e.kind == "payment"]
    if pays:
        p = pays[-1]
        out.append(
            t(
                lang,
                f"最近一次缴费 ¥{fen_yuan(p.amount_fen)}（{when(p.ts)}，凭证 {p.voucher}）",
                f"last payment ¥{fen_yuan(p.amount_fen)} on {when(p.ts)} (voucher {p.voucher})",
            )
        )
    req = pending_request(tx, mid)
    if req is not None:
        out.append(
            t(
                lang,
                f"复机申请 #{req.id}（{when(req.requested_at)}，{req.requested_by}）等待主管审批",
                f"resumption request #{req.id} ({when(req.requested_at)}, by {req.requested_by}) waits for a supervisor's approval",
            )
        )
    elif owed == 0:
        out.append(
            t(
                lang,
                f"已无欠费，尚未申请复机：clearpos admin resume request --mid {mid}",
                f"nothing is owed any more but no resumption was requested: clearpos admin resume request --mid {mid}",
            )
        )
    return out


def _last_change(tx: Tx, entity: str, entity_id: str, after: str, lang: str) -> str:
    rows = [
        a for a in audit_rows(tx, entity, [entity_id], since=after) if a.from_state != a.to_state
    ]
    if not rows:
        return ""
    return t(lang, "（", " (") + audit_sentence(tx, rows[-1], lang) + t(lang, "）", ")")


def _rotation_after(tx: Tx, tid: str, after: str | None) -> AuditRec | None:
    rows = [
        a
        for a in audit_rows(tx, "terminal", [tid])
        if a.action == "rotate_tmk" and (after is None or a.ts > after)
    ]
    return rows[-1] if rows else None


def _terminal(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    if key == "terminal.single_des_refused":
        return [
            t(
                lang,
                f"终端签到申请单倍长密钥（60.3 = {f.get('netcode', '001')}），收单配置不允许",
                f"the terminal asked for single-length DES keys (60.3 = "
                f"{f.get('netcode', '001')}); the acquirer does not allow them",
            )
        ]
    if key == "terminal.signon_rate_limited":
        return [
            t(
                lang,
                f"该终端号在 {f.get('window_min', '-')} 分钟内连续签到 {f.get('count', '-')} 次，"
                "新发的密钥一次都没有用过",
                f"this terminal id signed on {f.get('count', '-')} times in a row within "
                f"{f.get('window_min', '-')} minutes without ever using the keys it got",
            )
        ]
    term = tx.terminal(row.tid)
    if key == "terminal.unknown":
        if f.get("note") and term is not None:
            return [
                t(
                    lang,
                    f"终端 {row.tid} 登记在商户 {term.mid} 名下，但请求中的商户号是 {f.get('mid', row.mid)}",
                    f"terminal {row.tid} is registered for merchant {term.mid}, but the request named merchant {f.get('mid', row.mid)}",
                )
            ]
        out = [
            t(
                lang,
                f"主机中没有登记终端号 {row.tid}",
                f"no terminal {row.tid} was registered at the host",
            )
        ]
        if term is not None:
            out.append(
                t(
                    lang,
                    f"现已登记（{when(term.status_since)}，{who(tx, term.status_by, lang)}）",
                    f"it has been registered since {when(term.status_since)} by {who(tx, term.status_by, lang)}",
                )
            )
        return out
    if term is None:
        return [
            t(
                lang,
                f"终端 {row.tid} 已不在本系统中",
                f"terminal {row.tid} is no longer in this store",
            )
        ]
    if key == "terminal.suspended":
        if term.status in ("suspended", "replaced"):
            return [terminal_state(tx, term, lang)]
        return [
            t(
                lang,
                f"当时终端 {term.tid} 已停机（自 {f.get('since', '-')} 起，{f.get('by', '-')}：{f.get('why', '')}）",
                f"at the time terminal {term.tid} was suspended (since {f.get('since', '-')} by {f.get('by', '-')}: {f.get('why', '')})",
            ),
            t(lang, "现在：", "now: ")
            + terminal_state(tx, term, lang)
            + _last_change(tx, "terminal", term.tid, row.ts, lang),
        ]
    if key == "terminal.update_required":
        software, minimum = f.get("software", row.software), f.get("minimum", term.min_software)
        out = [
            t(
                lang,
                f"终端 {term.tid} 上报的软件版本为 {software}，服务商要求至少 {minimum}",
                f"terminal {term.tid} reports software {software}; the provider requires {minimum} or later",
            )
        ]
        sets = [a for a in audit_rows(tx, "terminal", [term.tid]) if a.action == "set_software"]
        if sets:
            out.append(
                t(lang, "最低版本的设置：", "minimum set: ") + audit_sentence(tx, sets[-1], lang)
            )
        if term.last_software and term.last_software >= term.min_software:
            out.append(
                t(
                    lang,
                    f"此后终端已上报 {term.last_software}，问题已解决",
                    f"it has since reported {term.last_software}, which is enough",
                )
            )
        return out
    if key == "terminal.batch_mismatch":
        return [
            t(
                lang,
                f"终端 {term.tid} 上送批次号 {f.get('terminal_batch', row.batch)}，主机当前批次号为 {f.get('host_batch', '-')}",
                f"terminal {term.tid} sent batch {f.get('terminal_batch', row.batch)}; the host's open batch was {f.get('host_batch', '-')}",
            )
        ]
    signon = last_journal(tx, term.tid, ("signon",), before_id=row.id)
    out = []
    rotated = _rotation_after(tx, term.tid, signon.ts if signon else None)
    rotated = rotated if rotated is not None and rotated.ts <= row.ts else None
    if key == "terminal.not_signed_on":
        signoff = last_journal(tx, term.tid, ("signoff",), before_id=row.id)
        if rotated is not None:
            out.append(
                t(
                    lang,
                    f"终端 {term.tid} 的主密钥已于 {when(rotated.ts)} 由{who(tx, rotated.actor, lang)}更换（{rotated.reason}），工作密钥随之清除；"
                    f"终端须装入新主密钥（校验值 {rotated.detail.get('new_kcv', '-')}）后重新签到",
                    f"the TMK of terminal {term.tid} was rotated on {when(rotated.ts)} by {who(tx, rotated.actor, lang)} ({rotated.reason}), "
                    f"which cleared its working keys; it must sign on again with the new TMK (check value {rotated.detail.get('new_kcv', '-')})",
                )
            )
        elif signoff is not None and (signon is None or signoff.id > signon.id):
            out.append(
                t(
                    lang,
                    f"终端 {term.tid} 已于 {when(signoff.ts)} 签退（检索参考号 {signoff.rrn}），之后没有重新签到",
                    f"terminal {term.tid} signed off at {when(signoff.ts)} (RRN {signoff.rrn}) and had not signed on again",
                )
            )
        elif signon is None:
            out.append(
                t(lang, f"终端 {term.tid} 从未签到", f"terminal {term.tid} had never signed on")
            )
        else:
            out.append(
                t(
                    lang,
                    f"主机没有终端 {term.tid} 的工作密钥（上次签到 {when(signon.ts)}）",
                    f"the host held no working keys for terminal {term.tid} (last sign-on {when(signon.ts)})",
                )
            )
        if term.keys_issued_at and term.keys_issued_at > row.ts:
            out.append(
                t(
                    lang,
                    f"终端已于 {when(term.keys_issued_at)} 重新签到",
                    f"it has signed on again since {when(term.keys_issued_at)}",
                )
            )
        return out
    # mac.invalid, pin.format_error: the keys of the last sign-on did not match
    what = t(lang, "MAC", "the MAC") if key == "mac.invalid" else t(lang, "PIN块", "the PIN block")
    if f.get("detail"):
        out.append(str(f["detail"]))
    if signon is not None:
        later = last_journal(tx, term.tid, ("signon",), before_id=10**15)
        out.append(
            t(
                lang,
                f"{what}与主机在 {when(signon.ts)} 签到（检索参考号 {signon.rrn}）时下发的密钥不符",
                f"{what} did not verify under the keys the host issued at the sign-on of {when(signon.ts)} (RRN {signon.rrn})",
            )
        )
        if later is not None and later.id > row.id:
            out.append(
                t(
                    lang,
                    f"终端已于 {when(later.ts)} 重新签到",
                    f"the terminal signed on again at {when(later.ts)}",
                )
            )
    if rotated is not None:
        out.append(
            t(lang, "主密钥在此之前已更换：", "the TMK had been rotated before: ")
            + audit_sentence(tx, rotated, lang)
        )
    return out


def _card(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: Lang) -> list[str]:
    if key in chip.CHIP_KEYS:
        return chip.card_sentences(tx, row, key, f, lang)
    if key == REFUSED:
        return []  # said by the reversal's sentences
    card = tx.card(row.card_id) if row.card_id is not None else None
    pan = row.pan_masked or (card.pan_masked if card else "-")
    if key == "card.unknown":
        return [
            t(lang, f"发卡方没有卡号 {pan} 的账户", f"the issuer has no account for card {pan}")
        ]
    if card is None:
        return []
    status_key = key.split(".", 1)[1]
    if key in ("card.frozen", "card.closed", "card.lost", "card.stolen") or (
        key == "card.expired" and f.get("status")
    ):
        if card.status == status_key:
            return [card_state(tx, card, lang)]
        return [
            t(
                lang,
                f"当时卡 {pan} 的状态为{word(STATUS, status_key, lang)}",
                f"at the time card {pan} was {status_key}",
            ),
            t(lang, "现在：", "now: ") + card_state(tx, card, lang),
        ]
    if key == "card.expired":
        exp = str(f.get("expiry", card.expiry))
        return [
            t(
                lang,
                f"卡 {pan} 的有效期为 20{exp[:2]} 年 {exp[2:]} 月，已过期（交易日 {row.business_date}）",
                f"card {pan} expired at the end of {exp[2:]}/20{exp[:2]} (transaction date {row.business_date})",
            )
        ]
    if key == "card.wrong_pin":
        out = [
            t(
                lang,
                f"卡 {pan} 密码错误，锁定前还可输错 {f.get('tries_left', '-')} 次",
                f"wrong PIN for card {pan}; {f.get('tries_left', '-')} tries left before the PIN locks",
            )
        ]
        if card.pin_locked:
            out.append(t(lang, "该卡密码现已锁定", "the card's PIN is now locked"))
        return out
    if key == "card.pin_tries_exceeded":
        out = [
            t(
                lang,
                f"卡 {pan} 的密码因连续输错已被发卡方锁定",
                f"the PIN of card {pan} is locked after repeated wrong PINs",
            )
        ]
        unlocks = [
            a
            for a in audit_rows(tx, "card", [str(card.id)], since=row.ts)
            if a.action == "unlock_pin"
        ]
        if unlocks and not card.pin_locked:
            out.append(
                t(lang, "此后已解锁：", "unlocked since: ") + audit_sentence(tx, unlocks[-1], lang)
            )
        return out
    if key == "card.insufficient_funds":
        return [
            t(
                lang,
                f"卡 {pan} 可用余额 ¥{yuan_fact(f, 'available') or '-'}，交易金额 ¥{yuan_fact(f, 'amount') or fen_yuan(row.amount_fen or 0)}",
                f"card {pan} had ¥{yuan_fact(f, 'available') or '-'} available for an amount of ¥{yuan_fact(f, 'amount') or fen_yuan(row.amount_fen or 0)}",
            )
        ]
    if key == "card.daily_limit":
        return [
            t(
                lang,
                f"卡 {pan} 单日限额 ¥{yuan_fact(f, 'limit') or '-'}，当日已用 ¥{yuan_fact(f, 'used') or '-'}，本笔 ¥{yuan_fact(f, 'amount') or '-'}",
                f"card {pan}: daily limit ¥{yuan_fact(f, 'limit') or '-'}, already used today ¥{yuan_fact(f, 'used') or '-'}, this amount ¥{yuan_fact(f, 'amount') or '-'}",
            )
        ]
    if key == "risk.card_velocity":
        if f.get("count") is not None:
            return [
                t(
                    lang,
                    f"卡 {pan} 在 {f.get('window_s')} 秒内已有 {f['count']} 笔消费，触发风控规则，锁定至 {f.get('until', '-')}",
                    f"card {pan} made {f['count']} purchases within {f.get('window_s')} s, which trips the risk rule; locked until {f.get('until', '-')}",
                )
            ]
        return [
            t(
                lang,
                f"卡 {pan} 仍在风控锁定期内，锁定至 {f.get('until', '-')}",
                f"card {pan} was still locked by the risk rule until {f.get('until', '-')}",
            )
        ]
    return []


def _window(tx: Tx, f: dict[str, Any], lang: str) -> list[str]:
    wid = f.get("window")
    row = maintenance_window(tx, wid) if wid else None
    if row is None:
        return (
            [t(lang, f"维护至 {f.get('until', '-')}", f"maintenance until {f.get('until', '-')}")]
            if f.get("until")
            else []
        )
    whose = t(
        lang,
        "收单主机" if row.who == "host" else "发卡行",
        "host" if row.who == "host" else "issuer",
    )
    text = t(
        lang,
        f"{whose}维护窗口 #{wid}：{when(row.start_at)} 至 {when(row.end_at)}，由{who(tx, row.created_by, lang)}于 {when(row.created_at)} 公告",
        f"{whose} maintenance window #{wid} from {when(row.start_at)} to {when(row.end_at)}, announced by {who(tx, row.created_by, lang)} at {when(row.created_at)}",
    )
    out = [text]
    if row.cancelled:
        out.append(t(lang, "该窗口此后已取消", "the window has since been cancelled"))
    return out


def _transaction(tx: Tx, row: JournalRec, key: str, f: dict[str, Any], lang: str) -> list[str]:
    if key == "transaction.duplicate":
        return [
            t(
                lang,
                f"终端 {row.tid} 批次 {row.batch} 流水号 {row.stan} 已在检索参考号 {f.get('first_rrn', '-')} 处理过（结果 {f.get('first_reason', '-')}）",
                f"terminal {row.tid}, batch {row.batch}, trace number {row.stan} was already processed as RRN {f.get('first_rrn', '-')} (answered {f.get('first_reason', '-')})",
            )
        ]
    if key == "transaction.original_amount_mismatch":
        extra = (
            t(lang, f"，已退货 ¥{f['refunded']}", f", already refunded ¥{f['refunded']}")
            if f.get("refunded")
            else ""
        )
        return [
            t(
                lang,
                f"原交易金额 ¥{f.get('original', '-')}{extra}，本笔请求金额 ¥{f.get('amount', '-')}",
                f"the original amount is ¥{f.get('original', '-')}{extra}; this request asked for ¥{f.get('amount', '-')}",
            )
        ]
    if key == "transaction.already_voided":
        if f.get("original_rrn"):
            return [
                t(
                    lang,
                    f"原交易 {f['original_rrn']} 已经是{word(STATUS, str(f.get('original_status')), lang)}状态",
                    f"the original {f['original_rrn']} is already {f.get('original_status')}",
                )
            ]
        return [str(f["note"])] if f.get("note") else []
    if key == "transaction.original_not_found":
        parts = []
        if row.kind == "reversal":
            parts.append(
                t(
                    lang,
                    f"冲正所指的流水号 {f.get('stan', row.stan)} 的原交易从未到达主机，无需撤回，顾客未被扣款",
                    f"the original of trace number {f.get('stan', row.stan)} never reached the host: nothing to undo, nobody was charged",
                )
            )
        else:
            ref = ", ".join(
                x
                for x in (
                    f"RRN {f['rrn']}" if f.get("rrn") else "",
                    t(lang, f"原流水号 {f['original']}", f"original trace {f['original']}")
                    if f.get("original")
                    else "",
                )
                if x
            )
            parts.append(
                t(
                    lang,
                    f"{row.kind} 所指的原交易（{ref or '-'}）在主机中找不到或未成功",
                    f"the {row.kind} names an original ({ref or '-'}) the host does not have as approved",
                )
            )
        if f.get("original_reason"):
            parts.append(
                t(
                    lang,
                    f"原交易结果为 {f['original_reason']}",
                    f"the original was answered {f['original_reason']}",
                )
            )
        if f.get("note"):
            parts.append(str(f["note"]))
        return parts
    if key == "transaction.not_supported":
        return [f"{f.get('note', '')} (60.3 = {f.get('netcode', '-')})"] if f else []
    return []


#: management messages: approved means done, nothing more to explain
_MANAGEMENT = frozenset(
    {
        "signon", "params", "echo", "signoff", "status", "capk_query", "aid_query",
        "capk_item", "aid_item", "capk_end", "aid_end",
    }
)  # fmt: skip


def _approved(tx: Tx, row: JournalRec, lang: str) -> list[str]:
    if row.kind in _MANAGEMENT:
        return []
    if row.kind in ("script_result", "chip_detail") and row.original_id is not None:
        what = (
            t(lang, "脚本执行结果", "script results")
            if row.kind == "script_result"
            else t(lang, "芯片交易证书（TC）", "the chip's final cryptogram (TC)")
        )
        return [
            t(
                lang,
                f"终端上送了原交易（检索参考号 {rrn_of(row.original_id)}）的{what}，已记入流水",
                f"the terminal uploaded {what} of the original (RRN "
                f"{rrn_of(row.original_id)}); journaled with it",
            )
        ]
    out = [
        t(
            lang,
            f"已批准（授权码 {row.auth_code or '-'}），当前状态：{word(STATUS, row.status, lang)}",
            f"approved (auth code {row.auth_code or '-'}); now {row.status}",
        )
    ]
    if row.settlement_id is not None:
        s = tx.settlement(row.settlement_id)
        if s is not None and s.closed_at:
            out.append(
                t(
                    lang,
                    f"已在批次 {s.batch} 中于 {when(s.closed_at)} 结算",
                    f"settled in batch {s.batch} at {when(s.closed_at)}",
                )
            )
    for child in tx.journal_children(
        row.id, ("void", "refund", "completion", "completion_void", "preauth_void")
    ):
        if child.code == "00":
            out.append(
                t(
                    lang,
                    f"{child.kind} ¥{fen_yuan(child.amount_fen or 0)}：检索参考号 {rrn_of(child.id)}，{when(child.ts)}",
                    f"{child.kind} ¥{fen_yuan(child.amount_fen or 0)} as RRN {rrn_of(child.id)} at {when(child.ts)}",
                )
            )
    return out
