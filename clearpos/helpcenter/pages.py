"""The help pages, built from the reason catalog and the guide.

Page slugs (the same in both languages):

- ``index`` -- every screen message grouped by the situations of SCENARIOS.md,
  then every field 39 code;
- ``s/<slug>`` -- one situation (``s/sign-on-again`` is “请重新签到”);
- ``r/<key>`` -- one reason key: one screen message a merchant can see;
- ``c/<code>`` -- one field 39 code, for terminals that show only the code.

Nothing here reads the clock or the file system: the same catalog and guide
always give the same pages, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from ..reasons import LANGS, Catalog, Lang, Reason
from ..terminal.screens import doctor_label
from .doc import Block, Code, Heading, Inline, Items, Link, Page, Para, Run, Strong, prose
from .guide import GROUPS, Entry, Guide, Situation
from .words import for_merchant

__all__ = ["Contact", "HelpSite", "page_title", "short_code"]


@dataclass(frozen=True, slots=True)
class Contact:
    """Who the merchant calls: the world's ``[acquirer]`` company, hotline and hours."""

    company: str = ""
    hotline: str = ""
    hours: str = ""

    def site_name(self, lang: Lang) -> str:
        base = "帮助中心" if lang == "zh" else "Help Center"
        if not self.company:
            return "POS机帮助中心" if lang == "zh" else "POS Help Center"
        return f"{self.company} {base}"

    def sentence(self, lang: Lang) -> str:
        """``联系 Demo Acquiring：客服热线 95516（每天 8:00–22:00）``."""
        who = self.company or ("服务商" if lang == "zh" else "the provider")
        if not self.hotline:
            return f"请联系{who}。" if lang == "zh" else f"Contact {who}."
        hours = (f"（{self.hours}）" if lang == "zh" else f" ({self.hours})") if self.hours else ""
        if lang == "zh":
            return f"联系{who}：客服热线 {self.hotline}{hours}。"
        return f"Contact {who}: service hotline {self.hotline}{hours}."


# Fixed words of the pages, per language.
_W: Mapping[Lang, Mapping[str, str]] = {
    "zh": {
        "index_title": "POS机屏幕提示帮助中心",
        "index_intro": "在下面找到POS机屏幕上显示的那句话，点开就能看到它是什么意思、真正的原因、谁来处理、按什么顺序处理、不要做什么，以及什么时候提交工单。",
        "index_codes_hint": "屏幕只显示数字应答码时，见本页最后的“按应答码查找”。终端屏幕和每个页面都显示一个帮助码（例如 H51 或 H62A），在上面的搜索框输入它即可找到对应页面；联系服务商时也请报上它。",
        "by_code": "按应答码查找",
        "shows": "POS机显示 {}",
        "shows_code": "POS机显示 应答码{} {}",
        "help_code": "帮助码",
        "code": "应答码（39域）",
        "code_short": "应答码",
        "reversal_code": "冲正原因码（39域）",
        "check_code": "结算校验码（48域）",
        "no_code": "终端本地提示，不带应答码",
        "category": "类别",
        "variant": "屏幕上可能还带有具体信息，例如：",
        "code_only": "只显示应答码的终端上显示：",
        "meaning": "这是什么意思",
        "detail": "详细原因：",
        "causes_one": "怎么确认是这个原因",
        "causes_many": "可能的原因，以及怎么判断是哪一种",
        "tell": "怎么判断：",
        "doctor": "运行 clearpos pos ... doctor，看“{}”一行：",
        "actor": "谁需要处理",
        "auto": "终端会自动：{}。",
        "steps": "处理步骤",
        "dont": "不要这样做",
        "ticket": "什么时候提交工单",
        "ticket_code": "提交工单或联系服务商时，请报上帮助码 {}。",
        "related": "相关页面",
        "contact": "联系服务商",
        "owed_where": "欠费金额显示在终端屏幕的提示里；缴清后由服务商审批复机。",
        "code_page": "应答码{}的所有可能原因",
        "home": "帮助中心首页",
        "code_cases": "可能是哪种情况",
        "code_one": "应答码{}只对应一种情况：",
        "code_many": "应答码{}在 clearpos 中对应 {} 种不同的情况，处理方法各不相同。clearpos 终端会在屏幕上直接显示准确的原因；只显示数字的终端，用下面的方法分辨。",
        "code_none": "没有哪种拒绝会以应答码{}作答。",
        "code_how": "怎么分辨是哪一种",
        "code_how_screen": "看屏幕提示的文字，对照上面的列表。",
        "code_how_journal": "在终端上运行 clearpos pos ... journal，这一笔的 reason（原因）列就是准确的原因键。",
        "code_how_wire": "主机应答的63域在卡组织代码后面带有原因键；终端厂商可以用 clearpos wire decode 解开截获的报文查看。",
        "code_how_diagnose": "服务商可以用 clearpos diagnose --code {} 列出带这个应答码的交易及其原因。",
        "in_reversal": "冲正报文里的 {}",
        "situation_list": "屏幕上可能显示的准确提示",
        "first_steps": "先做这几步",
        "category_A": "成功",
        "category_B": "失败，可以重试",
        "category_C": "失败，不要用同样的方式重试",
        "category_D": "失败，需要有人处理后才能继续",
        "category_E": "系统故障",
        "action_print_receipt": "打印签购单",
        "action_re_sign_on": "重新签到",
        "action_reverse": "发送冲正",
        "action_batch_upload": "批上送",
        "action_close_batch": "关闭批次",
        "action_update_software": "要求升级软件",
        "sep": "：",
        "dash": " — ",
    },
    "en": {
        "index_title": "Help for POS screen messages",
        "index_intro": "Find the words your POS screen shows below. Each page says what they mean, the real cause, who must act, the steps in order, what not to do, and when to open a ticket.",
        "index_codes_hint": "If the screen shows only a number, see “Find by response code” at the end. The terminal's screen and every page show a help code (such as H51 or H62A): type it into the search box above to find its page, and give it when you contact the provider.",
        "by_code": "Find by response code",
        "shows": "POS shows “{}”",
        "shows_code": "POS shows code {} “{}”",
        "help_code": "Help code",
        "code": "Response code (field 39)",
        "code_short": "code",
        "reversal_code": "Reversal reason (field 39)",
        "check_code": "Settlement check code (field 48)",
        "no_code": "shown by the terminal itself, no response code",
        "category": "Category",
        "variant": "The screen may add the details, for example: ",
        "code_only": "A terminal that shows only the code shows: ",
        "meaning": "What it means",
        "detail": "In detail: ",
        "causes_one": "How to confirm the cause",
        "causes_many": "The possible causes, and how to tell which one",
        "tell": "How to tell: ",
        "doctor": "Run clearpos pos ... doctor and read the “{}” line: ",
        "actor": "Who must act",
        "auto": "The terminal does this by itself: {}.",
        "steps": "Steps",
        "dont": "Do not",
        "ticket": "When to open a ticket",
        "ticket_code": "When you open a ticket or call the provider, give the help code {}.",
        "related": "Related pages",
        "contact": "Contact the provider",
        "owed_where": "The amount owed is on the terminal's screen; once it is paid, the provider approves the resumption. ",
        "code_page": "Every reason for code {}",
        "home": "Help center home",
        "code_cases": "Which case it can be",
        "code_one": "Code {} has one meaning: ",
        "code_many": "In clearpos, code {} covers {} different cases, each handled differently. The clearpos POS terminal shows the exact reason on screen; on a terminal that shows only the number, tell them apart as follows.",
        "code_none": "No decline is answered with code {}.",
        "code_how": "How to tell which one",
        "code_how_screen": "Read the words on the screen and compare them with the list above.",
        "code_how_journal": "Run clearpos pos ... journal on the terminal: the reason column of the row is the exact reason key.",
        "code_how_wire": "Field 63 of the host's answer carries the reason key after the card organisation; terminal vendors can read a captured frame with clearpos wire decode.",
        "code_how_diagnose": "The provider lists the transactions with this code, and their reasons, with clearpos diagnose --code {}.",
        "in_reversal": "{} in a reversal",
        "situation_list": "What the screen may say exactly",
        "first_steps": "First steps",
        "category_A": "success",
        "category_B": "failed, may be retried",
        "category_C": "failed, do not retry the same way",
        "category_D": "failed, someone must act before it can go on",
        "category_E": "system fault",
        "action_print_receipt": "print the receipt",
        "action_re_sign_on": "sign on again",
        "action_reverse": "send a reversal",
        "action_batch_upload": "upload the batch",
        "action_close_batch": "close the batch",
        "action_update_software": "ask for a software update",
        "sep": ": ",
        "dash": " — ",
    },
}


def _w(lang: Lang, name: str) -> str:
    return _W[lang][name]


def short_code(key_or_code: str, cat: Catalog) -> str:
    """The code a merchant reads off the screen and types to find a page: the reason's
    help code, or ``H`` + a field 39 code.

    ``"card.frozen"`` -> ``"H62A"``; ``"62"`` or ``"code.62"`` -> ``"H62"``.
    ValueError when the catalog has neither.
    """
    text = key_or_code.strip()
    if text in cat:
        return cat.help_code(text)
    code = text[5:] if text.startswith("code.") else text
    if code.upper() in cat.codes:
        return "H" + code.upper()
    raise ValueError(f"no help page for {key_or_code!r}: not a reason key or a field 39 code")


def page_title(reason: Reason, lang: Lang) -> str:
    """The title of a reason's page: the exact screen text, as a merchant searches for it."""
    return _w(lang, "shows").format(reason.screen_text(lang))


@dataclass(frozen=True, slots=True)
class _Topic:
    """A reason with its guide entry."""

    reason: Reason
    entry: Entry


class HelpSite:
    """Every help page of one catalog and guide, in both languages."""

    def __init__(self, cat: Catalog, guide: Guide, contact: Contact | None = None) -> None:
        self.catalog = cat
        self.guide = guide
        self.contact = contact or Contact()
        self.topics = {r.key: _Topic(r, guide.reasons[r.key]) for r in cat}
        self.situations = {s.slug: s for s in guide.situations.values()}
        self._keys = frozenset(cat.keys())

    # -- what exists -----------------------------------------------------------

    def slugs(self) -> list[str]:
        """Every page slug, in a fixed order: index, situations, reasons, codes."""
        out = ["index"]
        out += [f"s/{self.guide.situations[g].slug}" for g in GROUPS]
        out += [f"r/{key}" for key in sorted(self.topics)]
        out += [f"c/{code}" for code in sorted(self.catalog.codes)]
        return out

    def normalise(self, slug: str) -> str | None:
        """The canonical slug for ``slug`` (``""`` -> ``index``, ``c/a0`` -> ``c/A0``), or None."""
        slug = slug.strip().strip("/")
        if slug in ("", "index"):
            return "index"
        kind, _, name = slug.partition("/")
        if kind == "r" and name in self.topics:
            return slug
        if kind == "c" and name.upper() in self.catalog.codes:
            return f"c/{name.upper()}"
        if kind == "s" and name in self.situations:
            return slug
        return None

    def page(self, lang: Lang, slug: str) -> Page | None:
        """The page ``slug`` in ``lang``, or None when there is no such page."""
        canonical = self.normalise(slug)
        if canonical is None or lang not in LANGS:
            return None
        if canonical == "index":
            return self._for_merchant(self._index(lang))
        kind, _, name = canonical.partition("/")
        if kind == "r":
            return self._for_merchant(self._reason(lang, self.topics[name]))
        if kind == "c":
            return self._for_merchant(self._code(lang, name))
        return self._for_merchant(self._situation(lang, self.situations[name]))

    # -- in the merchant's words -----------------------------------------------

    def _for_merchant(self, page: Page) -> Page:
        """The page with commands said in words (:mod:`.words`) and who to call at the end."""
        lang = page.lang

        def run(parts: Run) -> Run:
            out: list[Inline] = []
            buffer = ""
            for part in parts:
                if isinstance(part, str):
                    buffer += part
                elif isinstance(part, Code) and part.text.startswith("clearpos"):
                    buffer += part.text
                else:
                    if buffer:
                        out.append(for_merchant(buffer, lang))
                        buffer = ""
                    if isinstance(part, Strong):
                        part = Strong(for_merchant(part.text, lang))
                    elif isinstance(part, Link):
                        part = Link(for_merchant(part.text, lang), part.slug, part.lang)
                    out.append(part)
            if buffer:
                out.append(for_merchant(buffer, lang))
            return tuple(out)

        blocks: list[Block] = []
        for b in page.blocks:
            if isinstance(b, Heading | Para):
                blocks.append(replace(b, run=run(b.run)))
            else:
                blocks.append(replace(b, items=tuple(run(i) for i in b.items)))
        contact = [self.contact.sentence(lang)]
        if page.slug.startswith("r/") and "owed" in self.topics[page.slug[2:]].reason.params:
            contact.insert(0, _w(lang, "owed_where"))
        blocks += [Heading(2, (_w(lang, "contact"),), anchor="contact"), Para(tuple(contact))]
        return replace(
            page,
            title=for_merchant(page.title, lang),
            description=for_merchant(page.description, lang),
            blocks=tuple(blocks),
            site=self.contact.site_name(lang),
        )

    def pages(self) -> Iterator[Page]:
        """Every page in both languages, in a fixed order."""
        for lang in LANGS:
            for slug in self.slugs():
                page = self.page(lang, slug)
                assert page is not None
                yield page

    # -- pieces ----------------------------------------------------------------

    def _prose(self, text: str) -> Run:
        return prose(text, self._keys)

    def _members(self, letter: str) -> list[_Topic]:
        """The reasons of one situation: by scenario row, then catalog order."""

        def row(topic: _Topic) -> int:
            rows = [int(s[1:]) for s in topic.entry.scenarios if s[0] == letter and s[1:]]
            return min(rows, default=0)

        members = [t for t in self.topics.values() if letter in t.entry.groups]
        return sorted(members, key=row)  # sorted() is stable: catalog order within a row

    def _screen_link(self, lang: Lang, topic: _Topic) -> Link:
        return Link(topic.reason.screen_text(lang), f"r/{topic.reason.key}", lang)

    def _code_label(self, lang: Lang, code: str) -> str:
        return f"{code} {self.catalog.code_text(code, lang)}"

    # -- the index -------------------------------------------------------------

    def _index(self, lang: Lang) -> Page:
        blocks: list[Block] = [
            Heading(1, (_w(lang, "index_title"),)),
            Para(self._prose(_w(lang, "index_intro"))),
            Para(self._prose(_w(lang, "index_codes_hint")), note=True),
        ]
        for letter in GROUPS:
            situation = self.guide.situations[letter]
            link = Link(situation.link.get(lang), f"s/{situation.slug}", lang)
            blocks.append(Heading(2, (link,), anchor=situation.slug))
            items: list[Run] = []
            for topic in self._members(letter):
                run: list[Inline] = [self._screen_link(lang, topic)]
                if topic.reason.code:
                    run.append(f"{_w(lang, 'dash')}{_w(lang, 'code_short')} {topic.reason.code}")
                items.append(tuple(run))
            blocks.append(Items(tuple(items)))
        blocks.append(Heading(2, (_w(lang, "by_code"),), anchor="codes"))
        blocks.append(
            Items(
                tuple(
                    (Link(self._code_label(lang, code), f"c/{code}", lang),)
                    for code in sorted(self.catalog.codes)
                )
            )
        )
        return Page(lang, "index", _w(lang, "index_title"), _w(lang, "index_intro"), tuple(blocks))

    # -- a situation -----------------------------------------------------------

    def _situation(self, lang: Lang, situation: Situation) -> Page:
        title = situation.title.get(lang)
        blocks: list[Block] = [
            Heading(1, (title,)),
            Para(self._prose(situation.summary.get(lang))),
            Heading(2, (_w(lang, "situation_list"),)),
            Items(
                tuple(
                    (
                        self._screen_link(lang, t),
                        _w(lang, "dash") + t.entry.meaning.get(lang),
                    )
                    for t in self._members(situation.letter)
                )
            ),
        ]
        if situation.steps:
            blocks.append(Heading(2, (_w(lang, "first_steps"),)))
            blocks.append(
                Items(tuple(self._prose(s.get(lang)) for s in situation.steps), ordered=True)
            )
        if situation.dont:
            blocks.append(Heading(2, (_w(lang, "dont"),)))
            blocks.append(Items(tuple(self._prose(s.get(lang)) for s in situation.dont)))
        blocks.append(Heading(2, (_w(lang, "related"),)))
        blocks.append(Items(((Link(_w(lang, "home"), "index", lang),),)))
        return Page(lang, f"s/{situation.slug}", title, situation.summary.get(lang), tuple(blocks))

    # -- a reason --------------------------------------------------------------

    def _reason(self, lang: Lang, topic: _Topic) -> Page:
        reason, entry = topic.reason, topic.entry
        key = reason.key
        title = page_title(reason, lang)
        w = _W[lang]

        meta: list[Inline] = [f"{w['help_code']}{w['sep']}", Code(self.catalog.help_code(key))]
        if reason.code:
            meta += ["　" if lang == "zh" else " · ", f"{w['code']}{w['sep']}"]
            meta.append(Link(reason.code, f"c/{reason.code}", lang))
        elif reason.reversal_code:
            meta += ["　" if lang == "zh" else " · ", f"{w['reversal_code']}{w['sep']}"]
            meta.append(Link(reason.reversal_code, f"c/{reason.reversal_code}", lang))
        elif reason.check_code is not None:
            meta += ["　" if lang == "zh" else " · ", f"{w['check_code']}{w['sep']}"]
            meta.append(Code(str(reason.check_code)))
        else:
            meta += ["　" if lang == "zh" else " · ", w["no_code"]]
        if reason.category:
            meta += [
                "　" if lang == "zh" else " · ",
                f"{w['category']}{w['sep']}{reason.category} {w['category_' + reason.category]}",
            ]
        blocks: list[Block] = [Heading(1, (title,)), Para(tuple(meta), note=True)]

        examples = {n: self.catalog.params[n].example for n in reason.params}
        variant = reason.screen_text(lang, **examples)
        if variant != reason.screen_text(lang):
            blocks.append(Para((w["variant"], Strong(variant))))
        if reason.code:
            blocks.append(Para((w["code_only"], Strong(self._code_label(lang, reason.code)))))

        blocks.append(Heading(2, (w["meaning"],)))
        blocks.append(Para(self._prose(entry.meaning.get(lang))))
        blocks.append(Para((w["detail"], *self._prose(reason.cause_text(lang)))))

        blocks.append(Heading(2, (w["causes_many" if len(entry.causes) > 1 else "causes_one"],)))
        causes: list[Run] = []
        for cause in entry.causes:
            run: list[Inline] = [Strong(cause.text.get(lang)), " ", w["tell"]]
            if cause.doctor:
                run += self._prose(w["doctor"].format(doctor_label(cause.doctor, lang)))
            run += self._prose(cause.tell.get(lang))
            causes.append(tuple(run))
        blocks.append(Items(tuple(causes)))

        blocks.append(Heading(2, (w["actor"],)))
        actor = reason.actor.get(lang)
        actor = actor[:1].upper() + actor[1:]
        actor_run: list[Inline] = [actor + ("。" if lang == "zh" else ".")]
        if reason.terminal_action:
            actor_run.append(" " + w["auto"].format(w["action_" + reason.terminal_action]))
        blocks.append(Para(tuple(actor_run)))

        blocks.append(Heading(2, (w["steps"],)))
        blocks.append(
            Items(tuple(self._prose(step) for step in reason.remedy_steps(lang)), ordered=True)
        )
        blocks.append(Heading(2, (w["dont"],)))
        blocks.append(Items(tuple(self._prose(d.get(lang)) for d in entry.dont)))
        blocks.append(Heading(2, (w["ticket"],)))
        blocks.append(Para(self._prose(entry.ticket.get(lang))))
        blocks.append(Para((*self._prose(w["ticket_code"].format(self.catalog.help_code(key))),)))

        related: list[Run] = []
        code = reason.code or reason.reversal_code
        if code:
            related.append((Link(w["code_page"].format(code), f"c/{code}", lang),))
        for letter in entry.groups:
            s = self.guide.situations[letter]
            related.append((Link(s.title.get(lang), f"s/{s.slug}", lang),))
        related.append((Link(w["home"], "index", lang),))
        blocks.append(Heading(2, (w["related"],)))
        blocks.append(Items(tuple(related)))
        return Page(
            lang, f"r/{key}", title, entry.meaning.get(lang), tuple(blocks),
            self.catalog.help_code(key),
        )  # fmt: skip

    # -- a field 39 code -------------------------------------------------------

    def _code(self, lang: Lang, code: str) -> Page:
        w = _W[lang]
        text = self.catalog.code_text(code, lang)
        title = w["shows_code"].format(code, text)
        answered = [self.topics[r.key] for r in self.catalog.keys_for_code(code)]
        reversed_by = [self.topics[r.key] for r in self.catalog if r.reversal_code == code]
        note = self.guide.codes.get(code)
        short = "H" + code
        blocks: list[Block] = [
            Heading(1, (title,)),
            Para((f"{w['help_code']}{w['sep']}", Code(short)), note=True),
            Heading(2, (w["meaning"],)),
        ]
        if note is not None and note.meaning is not None:
            description = note.meaning.get(lang)
            blocks.append(Para(self._prose(description)))
        elif len(answered) == 1:
            description = answered[0].entry.meaning.get(lang)
            blocks.append(Para((w["code_one"].format(code), self._screen_link(lang, answered[0]))))
            blocks.append(Para(self._prose(description)))
        elif answered:
            description = w["code_many"].format(code, len(answered))
            blocks.append(Para(self._prose(description)))
        else:
            description = w["code_none"].format(code)
            blocks.append(Para((description,)))

        if len(answered) > 1:
            blocks.append(Heading(2, (w["code_cases"],)))
            blocks.append(
                Items(
                    tuple(
                        (self._screen_link(lang, t), w["dash"] + t.entry.meaning.get(lang))
                        for t in answered
                    )
                )
            )
            blocks.append(Heading(2, (w["code_how"],)))
            how = [
                w["code_how_screen"],
                w["code_how_journal"],
                w["code_how_wire"],
                w["code_how_diagnose"].format(code),
            ]
            blocks.append(Items(tuple(self._prose(h) for h in how)))
        elif len(answered) == 1:
            only = answered[0]
            blocks.append(Heading(2, (w["steps"],)))
            blocks.append(
                Items(
                    tuple(self._prose(s) for s in only.reason.remedy_steps(lang)),
                    ordered=True,
                )
            )
        if note is not None and note.reversal is not None:
            blocks.append(Heading(2, (w["in_reversal"].format(code),)))
            blocks.append(Para(self._prose(note.reversal.get(lang))))
            if reversed_by:
                blocks.append(Items(tuple((self._screen_link(lang, t),) for t in reversed_by)))
        blocks.append(Heading(2, (w["related"],)))
        blocks.append(Items(((Link(w["home"], "index", lang),),)))
        return Page(lang, f"c/{code}", title, description, tuple(blocks), short)
