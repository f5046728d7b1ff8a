"""``clearpos pos doctor``: the self-check of SCENARIOS.md B1.

One line per check -- state directory, host reachable and connect time, the
pending reversal (sent now when the host can be reached, as before any online
message), echo test and round trip, sign-on and key check values, clock skew
against the host's fields 12/13, offline queue, open batch and its totals,
software version against the host's last answer, the CA keys and AIDs held
against the host's 372 / 382 lists, operator. Each line is OK or
says exactly what to do.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clearpos.reasons import Lang
from clearpos.wire import NetCode, NetworkRequest, NetworkResponse, WireError, emvparams

from . import store as st
from .client import LinkError, Unreachable
from .screens import doctor_label, fen_text, reason_of, remedy_of

if TYPE_CHECKING:
    from .machine import Terminal

__all__ = ["SKEW_LIMIT_S", "Check", "DoctorReport", "run_doctor"]

SKEW_LIMIT_S = 60
"""Largest clock difference from the host, in seconds, that doctor accepts."""

_Say = Callable[[str, str], str]
"""Pick the Chinese or the English wording."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``doctor``: OK, or what is wrong and exactly what to do."""

    name: str
    ok: bool
    detail: str
    remedy: tuple[str, ...] = ()


@dataclass
class DoctorReport:
    """All doctor lines; ``ok`` only when every line is."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "doctor",
            "ok": self.ok,
            "checks": [
                {
                    "name": c.name,
                    "label_zh": doctor_label(c.name, "zh"),
                    "ok": c.ok,
                    "detail": c.detail,
                    "remedy": list(c.remedy),
                }
                for c in self.checks
            ],
        }

    def render(self, lang: Lang) -> str:
        out = []
        mark = ("正常", "异常") if lang == "zh" else ("OK  ", "FAIL")
        width = 10 if lang == "zh" else 18
        for c in self.checks:
            label = doctor_label(c.name, lang)
            pad = " " * max(1, width - _width(label))
            out.append(f"{mark[0] if c.ok else mark[1]} {label}{pad}{c.detail}")
            out.extend(f"       -> {step}" for step in c.remedy)
        summary = (
            ("全部正常" if self.ok else "有问题，请按提示处理")
            if lang == "zh"
            else ("all OK" if self.ok else "problems found: follow the steps above")
        )
        out.append(summary)
        return "\n".join(out)


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def run_doctor(term: Terminal) -> DoctorReport:
    """Run every check on terminal ``term``; sends its pending reversal if it can."""
    term._reset_command()
    zh = term.lang == "zh"
    report = DoctorReport()
    add = report.checks.append

    def t(z: str, e: str) -> str:
        return z if zh else e

    try:
        _state_directory(term, add, t)
        reachable = _host(term, add, t)
        _pending_reversal(term, add, t, reachable)
        _echo(term, add, t, reachable)
        last = _signed_on(term, add, t)
        _clock(term, add, t, reachable)
        _offline_queue(term, add, t)
        _batch(term, add, t)
        _software(term, add, t, last)
        _chip_parameters(term, add, t, reachable)
        _operator(term, add, t)
    finally:
        term.link.close()
    return report


def _state_directory(term: Terminal, add: Callable[[Check], None], t: _Say) -> None:
    """The state directory can be written."""
    problem = term.store.writable_probe()
    add(
        Check(
            "state directory",
            problem is None,
            t(f"{term.store.directory} 可写", f"{term.store.directory} writable")
            if problem is None
            else f"{term.store.directory}: {problem}",
            ()
            if problem is None
            else (
                t(
                    f"确认磁盘未满且当前用户可写 {term.store.directory}",
                    f"make sure the disk is not full and {term.store.directory} is writable "
                    "by this user",
                ),
            ),
        )
    )


def _host(term: Terminal, add: Callable[[Check], None], t: _Say) -> bool:
    """The host answers a connect; True when it does."""
    reachable = True
    try:
        connect_s = term.link.connect()
        add(
            Check(
                "host",
                True,
                t(
                    f"可达，建立连接 {connect_s * 1000:.0f} 毫秒",
                    f"reachable, connect {connect_s * 1000:.0f} ms",
                ),
            )
        )
    except Unreachable as exc:
        reachable = False
        add(Check("host", False, str(exc), tuple(remedy_of("network.unreachable", term.lang)[1:])))
    return reachable


def _pending_reversal(
    term: Terminal, add: Callable[[Check], None], t: _Say, reachable: bool
) -> None:
    """The pending reversal: delivered now if it can be, else what to do."""
    pending = term.store.reversal()
    if pending is not None and reachable and term.keys.signed_on:
        term._deliver_reversal()
        after = term.store.reversal()
        if after is None:
            add(
                Check(
                    "pending reversal",
                    True,
                    t(
                        f"流水{pending.stan}的冲正（原因{pending.reason_code}）已补发成功",
                        f"reversal of STAN {pending.stan} (reason {pending.reason_code}) delivered now",
                    ),
                )
            )
            return
    if pending is not None:
        add(
            Check(
                "pending reversal",
                False,
                t(
                    f"流水{pending.stan}（{pending.kind} {fen_text(pending.amount_fen)}）的冲正待发，"
                    f"原因{pending.reason_code}，已试{pending.tries}次",
                    f"reversal of STAN {pending.stan} ({pending.kind} {fen_text(pending.amount_fen)}) "
                    f"pending, reason {pending.reason_code}, {pending.tries} tries",
                ),
                tuple(remedy_of("reversal.pending", term.lang)),
            )
        )
    else:
        add(Check("pending reversal", True, t("无待发冲正", "none")))


def _echo(term: Terminal, add: Callable[[Check], None], t: _Say, reachable: bool) -> None:
    """An echo test (0820, 60.3 301) and its round trip."""
    if reachable:
        stan = term.store.next_stan()
        try:
            reply = term._exchange(
                NetworkRequest(
                    tid=term.tid,
                    mid=term.mid,
                    stan=stan,
                    batch=term.batch,
                    netcode=NetCode.ECHO,
                )
            )
            m = reply.msg
            code = m.code if isinstance(m, NetworkResponse) else None
            if isinstance(m, NetworkResponse):
                term._clock(m.host_date, m.host_time, reply.rtt)
            ok = code == "00"
            add(
                Check(
                    "echo test",
                    ok,
                    t(
                        f"应答{code}，往返 {reply.rtt * 1000:.0f} 毫秒",
                        f"answered {code}, round trip {reply.rtt * 1000:.0f} ms",
                    ),
                    ()
                    if ok
                    else tuple(remedy_of(reason_of(code, getattr(m, "reason", "")), term.lang)),
                )
            )
        except LinkError as exc:
            add(
                Check(
                    "echo test",
                    False,
                    str(exc),
                    tuple(remedy_of("network.timeout", term.lang)[1:2]),
                )
            )
    else:
        add(
            Check(
                "echo test",
                False,
                t("主机不可达，未测试", "not run: host unreachable"),
                tuple(remedy_of("network.unreachable", term.lang)[1:2]),
            )
        )


def _signed_on(term: Terminal, add: Callable[[Check], None], t: _Say) -> dict[str, Any]:
    """Signed on, with the key check values; returns the last sign-on record."""
    kcv = term.keys.check_values()
    last = term.store.get("last_signon") or {}
    if term.signed_on:
        add(
            Check(
                "signed on",
                True,
                t(
                    f"已签到，批次{term.batch}；校验值 TMK {kcv['tmk']} PIK {kcv['pik']} MAK {kcv['mak']}",
                    f"yes, batch {term.batch}; check values TMK {kcv['tmk']} PIK {kcv['pik']} "
                    f"MAK {kcv['mak']}",
                ),
            )
        )
    else:
        why = last.get("reason") or "terminal.not_signed_on"
        add(
            Check(
                "signed on",
                False,
                t(
                    f"未签到（TMK校验值 {kcv['tmk']}；上次签到：{why}）",
                    f"no (TMK check value {kcv['tmk']}; last sign-on: {why})",
                ),
                tuple(remedy_of(why if why != "approved" else "terminal.not_signed_on", term.lang)),
            )
        )
    return last


def _clock(term: Terminal, add: Callable[[Check], None], t: _Say, reachable: bool) -> None:
    """The clock against the host's fields 12/13."""
    skew = term.store.get("clock_skew")
    if skew is None:
        add(
            Check(
                "clock",
                reachable,
                t("未取得主机时间", "host time not known yet"),
                ()
                if reachable
                else (t("网络恢复后再运行 doctor", "run doctor again when the host is reachable"),),
            )
        )
    else:
        s = float(skew["seconds"])
        ok = abs(s) <= SKEW_LIMIT_S
        add(
            Check(
                "clock",
                ok,
                t(
                    f"与主机相差 {s:+.0f} 秒（{skew['at']}）",
                    f"{s:+.0f} s from the host's clock (at {skew['at']})",
                ),
                ()
                if ok
                else (
                    t(
                        "校正终端日期和时间（或开启自动对时），然后重新签到",
                        "set the terminal's date and time (or enable time sync), "
                        "then sign on again",
                    ),
                ),
            )
        )


def _offline_queue(term: Terminal, add: Callable[[Check], None], t: _Say) -> None:
    """Offline sales still to upload."""
    queued = term.store.journal("status = ?", (st.OFFLINE_STORED,))
    if queued:
        total = sum(r.amount_fen or 0 for r in queued)
        add(
            Check(
                "offline queue",
                False,
                t(
                    f"{len(queued)}笔离线交易待上送，共{fen_text(total)}",
                    f"{len(queued)} offline sales to upload, {fen_text(total)}",
                ),
                (
                    t(
                        "网络恢复后执行 clearpos pos ... echo 或下一笔交易时自动上送",
                        "once the host is reachable, run clearpos pos ... echo (or the next "
                        "transaction uploads them)",
                    ),
                ),
            )
        )
    else:
        add(Check("offline queue", True, t("空", "empty")))


def _batch(term: Terminal, add: Callable[[Check], None], t: _Say) -> None:
    """The open batch and its totals."""
    domestic, foreign = term.totals()
    n = domestic.debit_count + domestic.credit_count + foreign.debit_count + foreign.credit_count
    add(
        Check(
            "batch",
            True,
            t(
                f"批次{term.batch}未结算：{n}笔，借记{fen_text(domestic.debit_fen + foreign.debit_fen)}"
                f"/{domestic.debit_count + foreign.debit_count}笔，贷记"
                f"{fen_text(domestic.credit_fen + foreign.credit_fen)}/"
                f"{domestic.credit_count + foreign.credit_count}笔",
                f"batch {term.batch} open: {n} transactions, debits "
                f"{fen_text(domestic.debit_fen + foreign.debit_fen)} / "
                f"{domestic.debit_count + foreign.debit_count}, credits "
                f"{fen_text(domestic.credit_fen + foreign.credit_fen)} / "
                f"{domestic.credit_count + foreign.credit_count}",
            ),
        )
    )


def _software(term: Terminal, add: Callable[[Check], None], t: _Say, last: dict[str, Any]) -> None:
    """The application version against the host's last answer."""
    version = term.software
    refused = last.get("reason") == "terminal.update_required"
    add(
        Check(
            "software",
            not refused,
            t(
                f"版本 {version}"
                + (
                    "，主机要求升级"
                    if refused
                    else ("，上次签到被主机接受" if last.get("code") == "00" else "")
                ),
                f"version {version}"
                + (
                    ", the host requires an update"
                    if refused
                    else (
                        ", accepted by the host at the last sign-on"
                        if last.get("code") == "00"
                        else ""
                    )
                ),
            ),
            tuple(remedy_of("terminal.update_required", term.lang)) if refused else (),
        )
    )


def _operator(term: Terminal, add: Callable[[Check], None], t: _Say) -> None:
    """The signed-in operator."""
    op = term.operator
    add(
        Check(
            "operator",
            True,
            t(f"操作员{op}已签到", f"operator {op} signed in")
            if op
            else t("无操作员签到（交易前需 login）", "none signed in (login before trading)"),
        )
    )


def _host_list(term: Terminal, netcode: str) -> list[dict[str, bytes]]:
    """Every record of the host's 372 / 382 list answer, page after page (raises
    LinkError, or ValueError / WireError for an answer that is not a list)."""
    records: list[dict[str, bytes]] = []
    while True:
        reply = term._exchange(
            NetworkRequest(
                tid=term.tid,
                mid=term.mid,
                stan=term.store.next_stan(),
                batch=term.batch,
                netcode=netcode,
                data=emvparams.list_query(len(records)),
            )
        )
        m = reply.msg
        if not isinstance(m, NetworkResponse) or m.code != "00" or not m.data:
            code = getattr(m, "code", None)
            raise ValueError(f"{netcode} answered {code or 'nothing readable'}")
        page = emvparams.parse_list_answer(m.data)
        records += page.records
        if not page.more:
            return records


def _chip_parameters(
    term: Terminal, add: Callable[[Check], None], t: _Say, reachable: bool
) -> None:
    """The CA keys (RID + index, expiry) and AIDs held, against the host's lists."""
    keys = {(k.rid, k.index): k.expiry for k in term.store.chip_capks()}
    aids = {a.aid for a in term.store.chip_aids()}
    if not keys and not aids and not term.store.get("chip_terminal"):
        return  # no chip parameters and the host never asked for any: not a chip terminal
    held = ", ".join(f"{rid}/{idx} {exp}" for (rid, idx), exp in sorted(keys.items()))
    held_text = t(
        f"公钥{len(keys)}个（{held or '无'}），AID {len(aids)}个",
        f"{len(keys)} CA keys ({held or 'none'}), {len(aids)} AIDs",
    )
    today = datetime.now(term.tz).strftime("%Y%m%d")
    expired = sorted(f"{rid}/{idx}" for (rid, idx), exp in keys.items() if exp < today)
    download = t(
        "执行 clearpos pos ... download-chip 下载IC卡参数（或重新签到，终端会按主机要求下载）",
        "run clearpos pos ... download-chip (or sign on again: the terminal downloads what "
        "the host asks for)",
    )
    if not reachable or not term.signed_on:
        why = t("主机不可达", "host unreachable") if not reachable else t("未签到", "not signed on")
        add(Check("chip parameters", not expired, t(f"{held_text}；未与主机核对（{why}）",
                  f"{held_text}; not checked against the host ({why})"),
                  (download,) if expired else ()))  # fmt: skip
        return
    try:
        host_keys = {
            (r["9F06"].hex().upper(), r.get("9F22", b"").hex().upper()): r.get("DF05", b"")
            for r in _host_list(term, NetCode.CAPK_QUERY)
        }
        host_aids = {r["9F06"].hex().upper() for r in _host_list(term, NetCode.AID_QUERY)}
    except (LinkError, ValueError, WireError) as exc:
        if keys or aids:
            add(Check("chip parameters", not expired,
                      t(f"{held_text}；主机列表未取到：{exc}", f"{held_text}; host lists: {exc}")))  # fmt: skip
        return
    differences: list[str] = []
    missing = sorted(set(host_keys) - set(keys))
    extra = sorted(set(keys) - set(host_keys))
    changed = sorted(
        k for k in set(keys) & set(host_keys)
        if host_keys[k].decode("ascii", "replace") != keys[k]
    )  # fmt: skip
    if missing:
        differences.append(
            t("缺公钥 ", "CA keys missing ") + ", ".join(f"{r}/{i}" for r, i in missing)
        )
    if extra:
        differences.append(t("主机已无公钥 ", "CA keys the host no longer has ")
                           + ", ".join(f"{r}/{i}" for r, i in extra))  # fmt: skip
    if changed:
        differences.append(
            t("有效期不同 ", "expiry differs ") + ", ".join(f"{r}/{i}" for r, i in changed)
        )
    if host_aids - aids:
        differences.append(t("缺AID ", "AIDs missing ") + ", ".join(sorted(host_aids - aids)))
    if aids - host_aids:
        differences.append(t("主机已无AID ", "AIDs the host no longer has ")
                           + ", ".join(sorted(aids - host_aids)))  # fmt: skip
    if expired:
        differences.append(t("公钥已过期 ", "CA keys expired ") + ", ".join(expired))
    if differences:
        add(Check("chip parameters", False, f"{held_text}; " + "; ".join(differences), (download,)))
    else:
        add(
            Check(
                "chip parameters",
                True,
                t(f"{held_text}，与主机一致", f"{held_text}, as the host has"),
            )
        )
