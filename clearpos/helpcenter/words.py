"""The merchant's words for what the catalog and the guide say in commands.

The reason catalog and the guide are written for everyone who handles a decline,
so their steps name commands (``clearpos pos ... doctor``, ``clearpos admin
merchant resume --mid MID``). A merchant does not type those: the terminal has
a menu, and the provider acts on its side. :func:`for_merchant` rewrites each
command as the thing it does — the terminal's self-check, a sign-on, the
provider's diagnosis — and the product's name as "this terminal" or "the
system". The provider handbook (docs/provider-handbook.md) keeps the commands.

>>> for_merchant("run clearpos pos ... doctor to see whether the host is reachable", "en")
"run the terminal's self-check to see whether the host is reachable"
>>> for_merchant("运行 clearpos pos ... doctor 查看主机是否可达。", "zh")
'运行终端自检查看主机是否可达。'
>>> for_merchant("ask the provider: clearpos admin merchant resume --mid MID", "en")
'ask the provider: the provider resumes the merchant'
"""

from __future__ import annotations

import re

from ..reasons import Lang

__all__ = ["for_merchant"]

_POS = r"clearpos pos \.\.\. "

#: (pattern, Chinese, English), tried in order; the first that matches a spot wins
_RULES: tuple[tuple[str, str, str], ...] = (
    (_POS + r"doctor", "终端自检", "the terminal's self-check"),
    (_POS + r"signon with the new --tmk", "", "sign-on with the new master key"),
    (_POS + r"signon", "签到", "sign-on"),
    (_POS + r"signoff", "签退", "sign-off"),
    (_POS + r"echo", "回响测试", "the connection test"),
    (_POS + r"journal", "终端的交易流水", "the terminal's journal"),
    (
        _POS + r"login --operator \S+ --password(?: PASSWORD)?",
        "操作员签到",
        "operator sign-in",
    ),
    (
        _POS + r"refund AMOUNT --rrn RRN",
        "退货（凭原交易参考号）",
        "a refund (with the original RRN)",
    ),
    (_POS + r"void STAN", "撤销（凭流水号）", "a void (with its STAN)"),
    (_POS + r"balance", "余额查询", "a balance inquiry"),
    (_POS + r"settle", "结算", "settlement"),
    (_POS + r"[a-z_-]+", "终端上的相应功能", "the matching function of the terminal"),
    (
        r"clearpos admin (?:merchant|terminal) resume --(?:mid|tid) [A-Z0-9]+",
        "服务商为商户复机",
        "the provider resumes the merchant",
    ),
    (
        r"clearpos admin(?: [a-z_-]+)*(?: --[a-z-]+ [A-Z0-9]+)*",
        "服务商的管理台",
        "the provider's console",
    ),
    (
        r"clearpos diagnose(?: --[a-z]+ [A-Za-z0-9.]+)+",
        "服务商的诊断工具",
        "the provider's diagnosis tool",
    ),
    (r"clearpos diagnose", "服务商的诊断工具", "the provider's diagnosis tool"),
    (r"clearpos wire decode", "报文解析工具", "a frame decoder"),
    (r"clearpos docs build", "帮助页生成工具", "the help page generator"),
    (r"--tmk", "主密钥", "master key"),
    (r"clearpos POS 8583 ", "收单机构的 POS 8583 ", "the acquirer's POS 8583 "),
    (r"[Tt]he clearpos POS terminal", "本终端", "This POS terminal"),
    (r"clearpos POS", "本终端", "this POS"),
    (r"clearpos 的终端", "本系统的终端", ""),
    (r"clearpos 终端", "本终端", ""),
    (r"clearpos 主机", "收单主机", ""),
    (r"clearpos ", "本系统", "the system "),
    (r"clearpos", "本系统", "the system"),
)

_COMPILED = tuple((re.compile(p), zh, en) for p, zh, en in _RULES)


def for_merchant(text: str, lang: Lang) -> str:
    """``text`` with every ``clearpos`` command said in words (see the module doc)."""
    out, pos = [], 0
    while True:
        hits = [(m, zh, en) for rx, zh, en in _COMPILED if (m := rx.search(text, pos))]
        hits = [h for h in hits if (h[1] if lang == "zh" else h[2])]
        if not hits:
            out.append(text[pos:])
            break
        m, zh, en = min(hits, key=lambda h: (h[0].start(), -len(h[0].group(0))))
        words = zh if lang == "zh" else en
        before = text[pos : m.start()]
        if lang == "zh":  # Chinese runs on without spaces around a term
            before = before.rstrip(" ")
            text = text[: m.end()] + text[m.end() :].lstrip(" ")
        out.append(before + words)
        pos = m.end()
    return "".join(out)
