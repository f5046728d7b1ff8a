"""The console's own words, in Chinese and English.

Reason texts (screen, cause, remedy, who acts) come from the reason catalog;
this table holds only the console's labels. ``text(key, lang)`` raises on a key
that is missing, so a typo in a template fails its test instead of showing a
blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..reasons import Lang

__all__ = ["LANGS", "STRINGS", "pick_lang", "text"]

LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

STRINGS: Final[Mapping[str, tuple[str, str]]] = {
    # frame
    "brand": ("clearpos 运营控制台", "clearpos console"),
    "nav.dashboard": ("总览", "Dashboard"),
    "nav.transactions": ("交易", "Transactions"),
    "nav.merchants": ("商户", "Merchants"),
    "nav.terminals": ("终端", "Terminals"),
    "nav.cards": ("卡片", "Cards"),
    "nav.maintenance": ("维护", "Maintenance"),
    "nav.tickets": ("工单", "Tickets"),
    "nav.users": ("用户", "Users"),
    "nav.help": ("帮助", "Help"),
    "lang.other": ("English", "中文"),
    "role.operator": ("操作员", "operator"),
    "role.supervisor": ("主管", "supervisor"),
    "role.admin": ("管理员", "admin"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "logout": ("退出", "Sign out"),
    "skip": ("跳到正文", "Skip to content"),
    # states of merchants, terminals, cards, requests, transactions
    "state.active": ("正常", "active"),
    "state.restricted": ("受限", "restricted"),
    "state.suspended": ("停机", "suspended"),
    "state.closed": ("已关闭", "closed"),
    "state.replaced": ("已替换", "replaced"),
    "state.normal": ("正常", "normal"),
    "state.frozen": ("冻结", "frozen"),
    "state.lost": ("挂失", "lost"),
    "state.stolen": ("被盗", "stolen"),
    "state.expired": ("过期", "expired"),
    "state.pending": ("待审批", "pending"),
    "state.approved": ("已批准", "approved"),
    "state.rejected": ("已驳回", "rejected"),
    "state.declined": ("已拒绝", "declined"),
    "state.reversed": ("已冲正", "reversed"),
    "state.voided": ("已撤销", "voided"),
    "state.completed": ("已完成", "completed"),
    "cause.arrears": ("欠费", "arrears"),
    "cause.risk": ("风控", "risk"),
    "cause.manual": ("人工", "manual"),
    "state.open": ("待处理", "open"),
    "state.in_progress": ("处理中", "in progress"),
    "state.resolved": ("已解决", "resolved"),
    "state.cancelled": ("已取消", "cancelled"),
    "state.scheduled": ("已排期", "scheduled"),
    "state.unbalanced": ("对账不平", "unbalanced"),
    "state.balanced": ("对账平", "balanced"),
    # entry modes (field 22, first two digits) and PIN capability (third digit)
    "entry.01": ("手输", "keyed"),
    "entry.02": ("刷卡", "swiped"),
    "entry.05": ("插卡", "chip"),
    "entry.07": ("挥卡", "tapped"),
    "entry.80": ("降级刷卡", "fallback swipe"),
    "entry.90": ("刷卡", "swiped"),
    "entry.98": ("挥卡（磁条）", "tapped (stripe)"),
    "pin.1": ("可输密码", "PIN capable"),
    "pin.2": ("不能输密码", "no PIN pad"),
    "pin.0": ("密码能力未知", "PIN capability unknown"),
    # arrears ledger events
    "event.fee": ("服务费", "fee"),
    "event.fine": ("罚款", "fine"),
    "event.payment": ("缴费", "payment"),
    # the diagnosis on merchant and terminal pages
    "times.zone": (
        "本控制台的时间均为北京时间（UTC+08:00）。",
        "All times are China time (UTC+08:00).",
    ),
    "dx.title": ("诊断", "Diagnosis"),
    "dx.fix": ("最可能要处理的", "Most likely fix"),
    "dx.nothing": (
        "无。没有阻断状态；上一笔成功交易之后没有需要商户、服务商或终端处理的失败。",
        "Nothing now. No blocking state, and no failure since the last approved transaction "
        "that the merchant, provider or terminal must act on.",
    ),
    "dx.actor": ("谁来处理", "Who acts"),
    "dx.chart": ("失败与成功笔数（按时间）", "Approved and failed over time"),
    "dx.window": ("近 7 天", "last 7 days"),
    "dx.failures": ("失败（按原因）", "Failures by reason"),
    "dx.actions": ("操作", "Actions"),
    # sign-in
    "login.title": ("登录", "Sign in"),
    "login.username": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.refused": ("用户名或密码错误。", "Wrong user name or password."),
    "login.locked": (
        "登录失败次数过多，该账号已暂时锁定，请于 {until} 后再试。",
        "Too many failed sign-ins: signing in as this user is locked until {until}.",
    ),
    "login.signed_out": ("您已安全退出。", "You are signed out."),
    "login.expired": ("请先登录。", "Please sign in first."),
    "login.help": ("不登录也可查看帮助中心", "The help centre is open without signing in"),
    # generic
    "search": ("查询", "Search"),
    "reset": ("清空", "Clear"),
    "save": ("保存", "Save"),
    "none": ("无", "none"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "all": ("全部", "all"),
    "more": ("更多", "more"),
    "back": ("返回", "Back"),
    "status": ("状态", "Status"),
    "since": ("起始", "Since"),
    "by": ("操作人", "By"),
    "why": ("原因", "Why"),
    "time": ("时间", "Time"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "note": ("备注", "Note"),
    "amount": ("金额", "Amount"),
    "actions": ("操作", "Actions"),
    "history": ("历史记录", "History"),
    "action": ("动作", "Action"),
    "detail": ("详情", "Detail"),
    "results": ("条结果", "results"),
    "results.capped": (
        "仅显示最新 {n} 条，请缩小查询范围。",
        "Showing the newest {n}; narrow the search.",
    ),
    "nothing": ("没有记录。", "Nothing here."),
    "forbidden.title": ("无权操作", "Not allowed"),
    "forbidden.body": ("您的角色（{role}）不能执行此操作。", "Your role ({role}) may not do this."),
    "csrf.title": ("表单已失效", "Form expired"),
    "csrf.body": (
        "表单缺少有效的安全令牌（可能已退出或页面过期）。请返回、刷新页面后重试。",
        "The form did not carry a valid security token (signed out, or the page is old). Go back, reload the page and try again.",
    ),
    "notfound.title": ("找不到", "Not found"),
    "notfound.body": ("没有这条记录：{what}", "No such record: {what}"),
    "error.title": ("操作未完成", "Not done"),
    "done": ("已完成。", "Done."),
    "ops.missing": (
        "此功能所需的运营模块尚未安装（clearpos.ops）。",
        "The operations module this needs (clearpos.ops) is not installed.",
    ),
    "yuan": ("元", "yuan"),
    "help.reason": ("帮助说明", "Help page"),
    # dashboard
    "dash.title": ("运营总览", "Operations dashboard"),
    "dash.per_minute": ("每分钟批准笔数（近 30 分钟）", "Approvals per minute (last 30 minutes)"),
    "dash.rate": ("批准率（近 60 分钟）", "Approval rate (last 60 minutes)"),
    "dash.rate_day": ("今日批准率", "Approval rate today"),
    "dash.volume": ("近 60 分钟交易笔数", "Transactions in the last 60 minutes"),
    "dash.top_declines": ("主要拒绝原因（近 24 小时）", "Top decline reasons (last 24 hours)"),
    "dash.terminals": ("离线或未签到的终端", "Terminals offline or not signed on"),
    "dash.offline": ("离线（{minutes} 分钟无通讯）", "offline (silent {minutes} min)"),
    "dash.never_seen": ("从未通讯", "never seen"),
    "dash.not_signed_on": ("未签到", "not signed on"),
    "dash.maintenance": ("即将进行的维护", "Maintenance coming up"),
    "dash.tickets": ("未关闭工单", "Open tickets"),
    "dash.approved": ("批准", "approved"),
    "dash.declined": ("拒绝", "declined"),
    "dash.live": ("页面自动刷新", "refreshes by itself"),
    "dash.updated": ("更新于", "updated"),
    "dash.no_traffic": ("暂无交易", "no transactions yet"),
    "dash.active_now": ("维护进行中", "in progress"),
    # transactions
    "tx.title": ("交易查询", "Transactions"),
    "tx.rrn": ("检索参考号 RRN", "RRN"),
    "tx.tid": ("终端号 TID", "TID"),
    "tx.mid": ("商户号 MID", "MID"),
    "tx.pan": ("卡号（前6后4）", "Card (first 6 / last 4)"),
    "tx.pan_hint": ("如 622202 0123，或 622202****0123", "e.g. 622202 0123, or 622202****0123"),
    "tx.pan_full_refused": (
        "请勿输入完整卡号：已按前6后4位查询，完整卡号不会被保存或显示。",
        "Do not type full card numbers: searched by first 6 / last 4 only; the full number is neither kept nor shown.",
    ),
    "tx.reason": ("原因", "Reason"),
    "tx.kind": ("类型", "Type"),
    "tx.outcome": ("结果", "Outcome"),
    "tx.approved_only": ("仅批准", "approved only"),
    "tx.declined_only": ("仅拒绝", "declined only"),
    "tx.stan": ("流水号", "STAN"),
    "tx.batch": ("批次", "Batch"),
    "tx.code": ("应答码", "Code"),
    "tx.card": ("卡号", "Card"),
    "tx.auth_code": ("授权码", "Auth code"),
    "tx.entry": ("输入方式", "Entry mode"),
    "tx.software": ("终端软件版本", "Terminal software"),
    "tx.latency": ("主机处理耗时", "Host time"),
    "tx.trail": ("处理链路", "Decision trail"),
    "tx.facts": ("记录的事实", "Recorded facts"),
    "tx.page_title": ("交易 {rrn}", "Transaction {rrn}"),
    "tx.diagnosis": ("诊断", "Diagnosis"),
    "tx.cause": ("原因", "Cause"),
    "tx.actor": ("由谁处理", "Who must act"),
    "tx.remedy": ("处理办法", "Remedy"),
    "tx.found": ("查明的情况", "What was found"),
    "tx.screen": ("终端屏幕显示", "Terminal screen"),
    "tx.related": ("关联交易", "Related transactions"),
    "tx.original": ("原交易", "Original"),
    "tx.ticket": ("为此交易开工单", "Open a ticket for this"),
    "tx.when": ("时间（北京时间）", "Time (Beijing)"),
    "tx.settlement": ("结算", "Settlement"),
    "tx.unsettled": ("未结算", "not settled"),
    "tx.evidence": ("证据", "Evidence"),
    # merchants
    "m.title": ("商户", "Merchants"),
    "m.name": ("名称", "Name"),
    "m.arrears": ("欠费", "Arrears"),
    "m.single_limit": ("单笔限额", "Single-transaction cap"),
    "m.restricted": ("受限交易类型", "Restricted types"),
    "m.terminals": ("终端", "Terminals"),
    "m.cause": ("停机原因", "Suspension cause"),
    "m.ledger": ("欠费与缴费", "Arrears and payments"),
    "m.voucher": ("凭证号", "Voucher"),
    "m.balance": ("余额", "Balance"),
    "m.requests": ("复机申请", "Resumption requests"),
    "m.suspend": ("停机", "Suspend"),
    "m.suspend_cause": ("停机原因", "Cause"),
    "m.cause.arrears": ("欠费", "arrears"),
    "m.cause.risk": ("风控", "risk"),
    "m.pay": ("登记缴费", "Record a payment"),
    "m.charge": ("登记欠费/罚款", "Record a fee or fine"),
    "m.request": ("提交复机申请", "Request resumption"),
    "m.approve": ("批准复机", "Approve"),
    "m.reject": ("驳回", "Reject"),
    "m.resume": ("直接复机", "Resume"),
    "m.restrict": ("限制交易", "Restrictions"),
    "m.lift": ("解除限制", "Lift the restriction"),
    "m.restrict_types": ("禁止的交易类型", "Types refused"),
    "m.workflow": ("停机 / 复机", "Suspend / resume"),
    "m.requested_by": ("申请人", "Requested by"),
    "m.decided": ("处理", "Decision"),
    # terminals
    "t.title": ("终端", "Terminals"),
    "t.merchant": ("所属商户", "Merchant"),
    "t.signed_on": ("已签到", "Signed on"),
    "t.last_seen": ("最近通讯", "Last seen"),
    "t.software": ("软件版本", "Software"),
    "t.min_software": ("最低版本要求", "Minimum software"),
    "t.batch": ("当前批次", "Batch"),
    "t.tmk_kcv": ("主密钥校验值（KCV）", "TMK check value (KCV)"),
    "t.keys_issued": ("工作密钥签发于", "Working keys issued"),
    "t.keys_note": ("密钥从不显示，仅显示校验值。", "Keys are never shown; only check values."),
    "t.rotate": ("轮换主密钥（TMK）", "Rotate TMK"),
    "t.rotate_confirm": (
        "输入的新主密钥须与密钥保管员提供的校验值一致；密钥加密保存，从不显示。终端须重新灌装该主密钥后签到。",
        "The new TMK typed here must match the key custodian's check value; it is sealed and never shown. The terminal must have it loaded and sign on again.",
    ),
    "t.replace": ("换机", "Replace terminal"),
    "t.new_tid": ("新终端号", "New TID"),
    "t.replace_note": (
        "旧终端停用（不可恢复），新终端号归同一商户、沿用最低版本要求；新机灌装此主密钥后签到即可交易。旧机尚能使用时，请先结算其未结批次。",
        "The old terminal is retired (final); the new TID belongs to the same merchant with the same minimum software and trades once this TMK is loaded and it signs on. If the old device still works, settle its open batch first.",
    ),
    "t.recent": ("最近交易", "Recent transactions"),
    "t.replaced_by": ("已由新终端替换", "Replaced by"),
    # cards
    "c.title": ("卡片", "Cards"),
    "c.pan": ("卡号", "Card"),
    "c.org": ("卡组织", "Scheme"),
    "c.balance": ("余额", "Balance"),
    "c.available": ("可用", "Available"),
    "c.holds": ("冻结金额", "Holds"),
    "c.daily": ("日累计 / 日限额", "Used today / daily limit"),
    "c.pin": ("密码状态", "PIN"),
    "c.pin_locked": ("已锁定", "locked"),
    "c.wrong_pin": ("错误次数 {n}", "{n} wrong"),
    "c.velocity": ("频率锁定至", "Velocity lock until"),
    "c.expiry": ("有效期", "Expiry"),
    "c.unlock_pin": ("解除密码锁定", "Unlock the PIN"),
    "c.set_status": ("变更状态", "Change status"),
    # maintenance
    "mt.title": ("维护日历与公告", "Maintenance calendar and notices"),
    "mt.who": ("系统", "System"),
    "mt.who.host": ("收单主机", "acquiring host"),
    "mt.who.issuer": ("发卡行", "issuer"),
    "mt.start": ("开始", "Start"),
    "mt.end": ("结束", "End"),
    "mt.notice_zh": ("中文公告", "Notice (Chinese)"),
    "mt.notice_en": ("英文公告", "Notice (English)"),
    "mt.schedule": ("安排维护", "Schedule maintenance"),
    "mt.cancel": ("取消", "Cancel"),
    "mt.upcoming": ("即将进行", "Coming up"),
    "mt.month": ("维护日历", "Maintenance calendar"),
    "mt.this_month": ("本月", "This month"),
    "mt.wd0": ("一", "Mon"),
    "mt.wd1": ("二", "Tue"),
    "mt.wd2": ("三", "Wed"),
    "mt.wd3": ("四", "Thu"),
    "mt.wd4": ("五", "Fri"),
    "mt.wd5": ("六", "Sat"),
    "mt.wd6": ("日", "Sun"),
    "mt.past": ("已结束", "Past"),
    "mt.times": ("时间为北京时间。", "Times are Beijing time."),
    "mt.created_by": ("创建人", "Created by"),
    # tickets
    "tk.title": ("工单", "Tickets"),
    "tk.new": ("新建工单", "New ticket"),
    "tk.subject": ("主题", "Subject"),
    "tk.title_field": ("标题", "Title"),
    "tk.body": ("问题描述", "Description"),
    "tk.opened": ("创建", "Opened"),
    "tk.owner": ("负责人", "Owner"),
    "tk.updated": ("更新", "Updated"),
    "tk.comments": ("处理记录", "Comments"),
    "tk.comment": ("添加记录", "Add a comment"),
    "tk.close": ("关闭工单", "Close ticket"),
    "tk.resolution": ("处理结果", "Resolution"),
    "tk.assign": ("指派", "Assign"),
    "tk.evidence": ("自动附带的证据", "Evidence gathered automatically"),
    "tk.open_only": ("仅未关闭", "open only"),
    "tk.created": ("工单 #{id} 已创建。", "Ticket #{id} created."),
    "tk.refs": ("关联（任填其一）", "About (any of)"),
    "tk.status.open": ("待处理", "open"),
    "tk.status.in_progress": ("处理中", "in progress"),
    "tk.status.resolved": ("已解决", "resolved"),
    "tk.status.closed": ("已关闭", "closed"),
    "tk.mine": ("我负责的", "mine"),
    "tk.not_closed": ("未关闭", "not closed"),
    "tk.about": ("关于", "About"),
    "tk.action.comment": ("添加记录", "Add comment"),
    "tk.action.assign": ("指派给", "Assign to"),
    "tk.action.resolve": ("标记已解决", "Resolve"),
    "tk.action.close": ("关闭", "Close"),
    "tk.action.reopen": ("重新打开", "Reopen"),
    "tk.snapshot": ("开单时的快照", "Snapshot taken when opened"),
    "tk.raw": ("完整证据（JSON）", "Full evidence (JSON)"),
    "tk.fix": ("最可能的处理办法", "Most likely fix"),
    "tk.owner_hint": ("留空则暂不指派", "leave empty to assign later"),
    # users
    "u.title": ("用户", "Users"),
    "u.username": ("用户名", "User name"),
    "u.role": ("角色", "Role"),
    "u.created": ("创建", "Created"),
    "u.disabled": ("已停用", "disabled"),
    "u.active": ("启用", "active"),
    "u.add": ("添加用户", "Add a user"),
    "u.password": ("初始密码", "Initial password"),
    "u.set_role": ("修改角色", "Change role"),
    "u.disable": ("停用", "Disable"),
    "u.enable": ("启用", "Enable"),
    # audit
    "audit.title": ("审计记录", "Audit trail"),
}


def text(key: str, lang: Lang, **facts: object) -> str:
    """The label ``key`` in ``lang``, with ``{name}`` filled from ``facts``.

    >>> text("tx.page_title", "en", rrn="000000000042")
    'Transaction 000000000042'
    """
    zh, en = STRINGS[key]
    out = zh if lang == "zh" else en
    return out.format(**facts) if facts else out


def pick_lang(query: str | None, cookie: str | None, accept: str | None) -> Lang:
    """The display language: ``?lang=``, else the cookie, else Accept-Language, else Chinese.

    >>> pick_lang(None, None, "en-GB,en;q=0.9")
    'en'
    >>> pick_lang(None, "en", None), pick_lang("zh", "en", None), pick_lang(None, None, None)
    ('en', 'zh', 'zh')
    """
    for choice in (query, cookie):
        if choice == "zh":
            return "zh"
        if choice == "en":
            return "en"
    if accept:
        first = accept.split(",", 1)[0].strip().lower()
        if first.startswith("en"):
            return "en"
    return "zh"
