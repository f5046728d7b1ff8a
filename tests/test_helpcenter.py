"""The merchant help center and docs/protocol.md: current, complete, and true.

- docs/help is exactly what ``clearpos docs build`` makes from the current catalog
  and guide (no stale page, a page for every reason key and field 39 code);
- every command a page or the manual names exists in the real ``clearpos`` parser,
  every ``doctor`` line a page names exists in the real terminal, every link lands;
- the console API (render_page, render_index, help_url, short_code, resolve);
- docs/protocol.md: its ``$`` examples print exactly what they show, its ``>>>``
  examples run, its field and reason tables match the code.
"""

from __future__ import annotations

import argparse
import doctest
import io
import re
import shlex
from collections.abc import Callable
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest

import clearpos.helpcenter
import clearpos.helpcenter.commands
import clearpos.helpcenter.doc
import clearpos.helpcenter.guide
from clearpos.cli import build_parser, main
from clearpos.helpcenter import (
    GuideError,
    help_url,
    load_guide,
    render_index,
    render_page,
    resolve,
    short_code,
    site,
    stale,
)
from clearpos.helpcenter.build import render_files
from clearpos.helpcenter.commands import Mention, check_mention, find_mentions
from clearpos.helpcenter.doc import Code, Heading, Items, Link, Para, Run, Strong
from clearpos.helpcenter.words import for_merchant
from clearpos.reasons import LANGS, Lang, catalog
from clearpos.wire import FIELDS

ROOT = Path(__file__).resolve().parents[1]
HELP = ROOT / "docs" / "help"
PROTOCOL = ROOT / "docs" / "protocol.md"
GUIDE = ROOT / "clearpos" / "helpcenter" / "guide.toml"


# ---------------------------------------------------------------------------
# The guide
# ---------------------------------------------------------------------------


def test_guide_has_an_entry_for_every_catalog_key() -> None:
    guide = load_guide()
    assert list(guide.reasons) == list(catalog().keys())
    assert list(guide.situations) == ["A", "B", "C", "D", "E"]
    for entry in guide.reasons.values():
        assert entry.causes and entry.dont and entry.scenarios


def _without_entry(text: str, key: str) -> str:
    start = text.index(f'[reasons."{key}"]')
    end = text.index("\n[reasons.", start + 1)
    kept = text[:start] + text[end + 1 :]
    return re.sub(rf'\n\[\[reasons\."{re.escape(key)}"\.\w+\]\]\n(?:[^\n]+\n)+', "\n", kept)


@pytest.mark.parametrize(
    ("change", "entry", "problem"),
    [
        (lambda t: _without_entry(t, "card.frozen"), 'reasons."card.frozen"', "missing"),
        (
            lambda t: t + '\n[reasons."card.melted"]\nscenarios = ["A2"]\n',
            'reasons."card.melted"',
            "no such reason key",
        ),
        (
            lambda t: t.replace('scenarios = ["A1"]', 'scenarios = ["A12"]'),
            'reasons."card.insufficient_funds"',
            "not a row of SCENARIOS.md",
        ),
        (
            lambda t: t.replace(
                'meaning.zh = "这张卡的可用余额不够支付本次金额，本笔没有扣款。"',
                'meaning.zh = "余额不够。本笔没有扣款。"',
            ),
            'reasons."card.insufficient_funds"',
            "one sentence",
        ),
        (
            lambda t: t.replace('doctor = "clock"', 'doctor = "Clock!"'),
            'reasons."card.expired"',
            "doctor must name a doctor line",
        ),
        (lambda t: t.replace("[situations.E]", "[situations.F]"), "situations.F", "unknown"),
        (lambda t: t.replace('[codes."06"]', '[codes."Z9"]'), 'codes."Z9"', "no such field 39"),
    ],
)
def test_guide_refuses_what_does_not_fit_the_catalog(
    tmp_path: Path, change: Callable[[str], str], entry: str, problem: str
) -> None:
    path = tmp_path / "guide.toml"
    path.write_text(change(GUIDE.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(GuideError) as info:
        load_guide(path)
    assert any(e == entry and problem in p for e, p in info.value.problems), info.value
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# The generated pages are current and complete
# ---------------------------------------------------------------------------


def test_docs_help_is_regenerated_from_the_current_catalog() -> None:
    problems = stale(HELP)
    assert not problems, (
        "docs/help is not what the current catalog and guide produce; run "
        "`clearpos docs build`:\n" + "\n".join(problems[:20])
    )


@pytest.mark.parametrize("lang", LANGS)
def test_every_reason_key_and_field_39_code_has_a_page(lang: str) -> None:
    for ext in ("md", "html"):
        assert (HELP / lang / f"index.{ext}").is_file()
        for reason in catalog():
            assert (HELP / lang / "r" / f"{reason.key}.{ext}").is_file(), reason.key
        for code in catalog().codes:
            assert (HELP / lang / "c" / f"{code}.{ext}").is_file(), code


def test_docs_build_writes_checks_and_removes_stale_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "help"
    assert main(["docs", "build", "--out", str(out)]) == 0
    assert f"{len(render_files(site()))} written" in capsys.readouterr().out
    assert main(["docs", "build", "--out", str(out), "--check"]) == 0
    (out / "zh" / "r" / "card.frozen.md").write_text("edited by hand\n", encoding="utf-8")
    (out / "en" / "r" / "card.melted.html").write_text("<p>old</p>\n", encoding="utf-8")
    (out / "en" / "c" / "51.md").unlink()
    (out / "notes.txt").write_text("not ours\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["docs", "build", "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "zh/r/card.frozen.md: differs" in err
    assert "en/r/card.melted.html: not generated any more" in err
    assert "en/c/51.md: missing" in err
    assert main(["docs", "build", "--out", str(out), "--json"]) == 0
    assert '"removed": ["en/r/card.melted.html"]' in capsys.readouterr().out
    assert stale(out) == []
    assert (out / "notes.txt").is_file()  # only generated-looking files are touched


def test_output_is_deterministic() -> None:
    first = render_files(site())
    again = render_files(
        clearpos.helpcenter.HelpSite(
            catalog(), load_guide(), clearpos.helpcenter.packaged_contact()
        )
    )
    assert first == again
    assert list(first) == sorted(first)


# ---------------------------------------------------------------------------
# Every command, doctor line and link a page names exists
# ---------------------------------------------------------------------------


def _texts(run: Run) -> list[str]:
    out: list[str] = []
    for part in run:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Code | Strong | Link):
            out.append(part.text)
    return out


@cache
def _page_texts() -> tuple[tuple[str, str], ...]:
    """(page, text) for every text of every page, both languages."""
    out: list[tuple[str, str]] = []
    for page in site().pages():
        where = f"{page.lang}/{page.slug}"
        for block in page.blocks:
            runs = block.items if isinstance(block, Items) else (block.run,)
            for run in runs:
                out += [(where, "".join(_texts(run)))]
    return tuple(out)


@cache
def _mentions() -> dict[str, tuple[Mention, list[str]]]:
    """Every distinct command named by a page or docs/protocol.md, with where."""
    found: dict[str, tuple[Mention, list[str]]] = {}
    # merchant pages name no command (test_no_merchant_page_names_a_command); the catalog
    # and the guide still do (terminal screens, the console, the provider's words)
    sources = [
        *_page_texts(),
        ("docs/protocol.md", PROTOCOL.read_text(encoding="utf-8")),
        *(  # the guide's texts, not its comments
            ("clearpos/helpcenter/guide.toml", line)
            for line in GUIDE.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        ),
        *(
            (f"catalog {r.key}", step)
            for r in catalog()
            for lang in LANGS
            for step in r.remedy_steps(lang)
        ),
    ]
    for where, text in sources:
        for mention in find_mentions(text):
            found.setdefault(mention.text, (mention, []))[1].append(where)
    return dict(sorted(found.items()))


@cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


@pytest.mark.parametrize("text", list(_mentions()))
def test_every_command_a_page_names_exists(text: str) -> None:
    """Walks the real parser: a command that is not registered yet fails here."""
    mention, where = _mentions()[text]
    problem = check_mention(_parser(), mention)
    pages = sorted(set(where))
    assert problem is None, f"{problem}; named on {len(pages)} pages, e.g. {pages[:5]}"


def test_commands_are_found_in_catalog_remedies() -> None:
    """The mention finder sees every command the catalog's steps name."""
    texts = {m for m in _mentions()}
    assert "clearpos pos ... doctor" in texts
    assert "clearpos pos ... refund AMOUNT --rrn RRN" in texts
    assert "clearpos pos ... login --operator 01 --password PASSWORD" in texts
    assert any(t.startswith("clearpos diagnose --rrn") for t in texts)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("run clearpos pos ... doctor now", None),
        ("clearpos wire decode --json HEX", None),
        ("clearpos pos --tid 10000001 ... signon", None),
        ("clearpos pos ... teleport", "clearpos pos has no command 'teleport'"),
        ("clearpos pos ... settle --force", "clearpos pos settle has no option --force"),
        ("clearpos bake --rrn RRN", "clearpos has no command 'bake'"),
        ("clearpos wire decode stuff", "clearpos wire decode takes no command 'stuff'"),
    ],
)
def test_check_mention(text: str, problem: str | None) -> None:
    (mention,) = find_mentions(text)
    got = check_mention(_parser(), mention)
    assert got == problem or (problem is not None and got is not None and got.startswith(problem))


class _Unreachable:
    """A link to a host that is not there: doctor still prints every line."""

    def connect(self) -> float:
        from clearpos.terminal import Unreachable

        raise Unreachable("connection refused (test)")

    def exchange(self, frame: bytes, accept: object) -> object:
        return self.connect()

    def close(self) -> None:
        pass


def test_every_doctor_line_a_page_names_exists(tmp_path: Path) -> None:
    from clearpos.keys import KeyEncryptionKey
    from clearpos.terminal import Terminal

    terminal = Terminal(
        tmp_path / "pos",
        link=_Unreachable(),  # type: ignore[arg-type]
        tid="10000001",
        mid="898310048161234",
        tmk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
        kek=KeyEncryptionKey(bytes(range(32))),
    )
    try:
        names = {check["name"] for check in terminal.doctor().to_json()["checks"]}
    finally:
        terminal.close()
    named = {
        cause.doctor
        for entry in load_guide().reasons.values()
        for cause in entry.causes
        if cause.doctor
    }
    named |= {"signed on"}  # situation C's steps
    assert named <= names, f"doctor has no line {sorted(named - names)}; it has {sorted(names)}"


def test_console_paths_on_pages_lead_to_pages() -> None:
    path = re.compile(r"(?:^|\s)(/[A-Za-z][\w./-]*)")
    for where, text in _page_texts():
        for m in path.finditer(text):
            assert resolve(m.group(1)) is not None, f"{where}: {m.group(1)} is not a page"


class _Html(HTMLParser):
    """Checks that tags nest, and collects links and their texts."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text)))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)


def _parse(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    parser.close()
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser


@pytest.mark.parametrize("lang", LANGS)
def test_served_pages_are_well_formed_and_every_link_lands(lang: str) -> None:
    for slug in site().slugs():
        html = render_page(lang, slug)
        assert html is not None, slug
        parsed = _parse(html)
        assert {"main", "article", "h1", "nav"} <= set(parsed.tags)
        assert 'name="viewport"' in html
        for href, _ in parsed.links:
            assert href.startswith("/help/"), (slug, href)
            assert resolve(href) == href, (slug, href)
            rest = href.split("/", 3)
            assert render_page(rest[2], rest[3] if len(rest) > 3 else "") is not None


def test_generated_files_link_only_to_generated_files() -> None:
    files = render_files(site())
    md_link = re.compile(r"\]\(([^)\s]+)\)")
    for rel, data in files.items():
        if rel.endswith(".js"):  # the offline search's index and script
            continue
        text = data.decode("utf-8")
        here = Path(rel).parent
        targets = (
            [href for href, _ in _parse(text).links]
            if rel.endswith(".html")
            else md_link.findall(text)
        )
        assert targets, rel
        for target in targets:
            resolved = (here / target).as_posix()
            normal = Path(*[p for p in Path(resolved).parts]).as_posix()
            parts: list[str] = []
            for part in normal.split("/"):
                if part == "..":
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            assert "/".join(parts) in files, f"{rel} links to missing {target}"


# ---------------------------------------------------------------------------
# What the pages say
# ---------------------------------------------------------------------------


def _headings(page_blocks: tuple[object, ...]) -> list[str]:
    return ["".join(_texts(b.run)) for b in page_blocks if isinstance(b, Heading)]


@pytest.mark.parametrize("lang", LANGS)
def test_each_reason_page_has_every_part_of_the_issue(lang: Lang) -> None:
    want = {
        "zh": ["这是什么意思", "谁需要处理", "处理步骤", "不要这样做", "什么时候提交工单"],
        "en": ["What it means", "Who must act", "Steps", "Do not", "When to open a ticket"],
    }[lang]
    for reason in catalog():
        page = site().page(lang, f"r/{reason.key}")
        assert page is not None
        screen = reason.screen_text(lang)
        assert page.title == ("POS机显示 " + screen if lang == "zh" else f"POS shows “{screen}”")
        heads = _headings(page.blocks)
        assert heads[0] == page.title
        for part in want:
            assert part in heads, (reason.key, part)
        steps = next(
            b
            for i, b in enumerate(page.blocks)
            if isinstance(b, Items) and b.ordered and _headings(page.blocks[:i])[-1] == want[2]
        )
        assert ["".join(_texts(s)) for s in steps.items] == [
            for_merchant(s, lang) for s in reason.remedy_steps(lang)
        ]
        entry = load_guide().reasons[reason.key]
        body = "\n".join(t for w, t in _page_texts() if w == f"{lang}/r/{reason.key}")
        assert for_merchant(entry.meaning.get(lang), lang) in body
        assert for_merchant(entry.ticket.get(lang), lang) in body
        for cause in entry.causes:
            assert for_merchant(cause.tell.get(lang), lang) in body
        assert catalog().help_code(reason.key) in body  # the help code, as on the screen


def test_code_pages_list_every_reason_with_that_code() -> None:
    for code in catalog().codes:
        page = site().page("zh", f"c/{code}")
        assert page is not None and page.help_code == f"H{code}"
        linked = {
            part.slug
            for block in page.blocks
            for run in (block.items if isinstance(block, Items) else (block.run,))
            for part in run
            if isinstance(part, Link)
        }
        for reason in catalog().keys_for_code(code):
            assert f"r/{reason.key}" in linked, (code, reason.key)


def test_index_groups_by_situation_and_links_by_screen_text() -> None:
    index = _parse(render_index("zh"))
    links = dict((text, href) for href, text in index.links)
    for situation in load_guide().situations.values():
        assert links[situation.link.zh] == f"/help/zh/s/{situation.slug}"
    for reason in catalog():
        assert links[reason.screen_text("zh")] == f"/help/zh/r/{reason.key}"
    for code in catalog().codes:
        assert links[f"{code} {catalog().code_text(code, 'zh')}"] == f"/help/zh/c/{code}"


def test_a_merchant_finds_qing_chong_xin_qian_dao_from_the_index_and_reaches_the_steps() -> None:
    """What the console's browser test will do, on the HTML the console serves."""
    index = _parse(render_index("zh"))
    href = next(h for h, text in index.links if text == "请重新签到")
    page = render_page("zh", href.removeprefix("/help/zh/"))
    assert page is not None and "<h1>POS机显示 请重新签到</h1>" in page
    assert "<ol>" in page and "签到" in page and "clearpos " not in page
    reason_href = next(h for h, t in _parse(page).links if t == "MAC校验错，请重新签到")
    steps_page = render_page("zh", reason_href.removeprefix("/help/zh/"))
    assert steps_page is not None
    assert "<h2>处理步骤</h2>\n<ol>" in steps_page
    assert "终端会自动重新签到取得新密钥" in steps_page


def test_html_escapes_text() -> None:
    from clearpos.helpcenter.doc import Page
    from clearpos.helpcenter.render import ServedLinks, to_html, to_markdown

    page = Page("en", "r/x", "<b>&", 'd"', (Para(("<script>", Code("a<b"))),))
    html = to_html(page, ServedLinks())
    assert "<script>" not in html and "&lt;script&gt;" in html and "<code>a&lt;b</code>" in html
    assert "<title>&lt;b&gt;&amp; · POS Help Center</title>" in html
    assert 'content="d&quot;"' in html
    assert "\\<script\\>" in to_markdown(page)


# ---------------------------------------------------------------------------
# The console API
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "lang", "url"),
    [
        ("card.frozen", "zh", "/help/zh/r/card.frozen"),
        ("card.frozen", "en", "/help/en/r/card.frozen"),
        ("62", "zh", "/help/zh/c/62"),
        ("a0", "en", "/help/en/c/A0"),
        ("code.62", "zh", "/help/zh/c/62"),
        ("H62", "zh", "/help/zh/c/62"),
        ("h77", "zh", "/help/zh/c/77"),
        ("Z9", "zh", "/help/zh"),
        ("card.melted", "en", "/help/en"),
        ("card.frozen", "fr", "/help/zh/r/card.frozen"),
    ],
)
def test_help_url(given: str, lang: str, url: str) -> None:
    assert help_url(given, lang) == url


def test_short_codes_lead_back_to_their_page() -> None:
    for reason in catalog():
        code = short_code(reason.key)
        assert code == catalog().help_code(reason.key) and re.fullmatch(
            r"H[0-9A-Z]{2}[A-Z]?|HL\d\d", code
        )
        alone = reason.code and len(catalog().keys_for_code(reason.code)) == 1
        want = f"/help/en/c/{reason.code}" if alone else f"/help/en/r/{reason.key}"
        assert resolve(code, "en") == want  # a code's only reason: the code page has its steps
        assert resolve(code.lower(), "en") == want
        assert resolve(reason.key, "en") == f"/help/en/r/{reason.key}"
    for code in catalog().codes:
        assert short_code(code) == f"H{code}"
        assert resolve(f"H{code}".lower()) == f"/help/zh/c/{code}"
    with pytest.raises(ValueError, match="no help page"):
        short_code("Z9")


@pytest.mark.parametrize(
    ("query", "lang", "url"),
    [
        ("请重新签到", "zh", "/help/zh/s/sign-on-again"),
        ("Sign on again", "en", "/help/en/s/sign-on-again"),
        ("用户状态异常", "zh", "/help/zh/s/user-status"),
        ("卡已冻结，请联系发卡行", "zh", "/help/zh/r/card.frozen"),
        ("Card frozen - call issuing bank", "zh", "/help/zh/r/card.frozen"),
        ("受限制的卡，请联系发卡行", "en", "/help/en/c/62"),
        ("/help/en/c/a0", "zh", "/help/en/c/A0"),
        ("/help/zh", "zh", "/help/zh"),
        ("/help/zh/r/card.melted", "zh", None),
        ("/help/fr/r/card.frozen", "zh", None),
        ("完全无关", "zh", None),
        ("  ", "zh", None),
    ],
)
def test_resolve(query: str, lang: str, url: str | None) -> None:
    assert resolve(query, lang) == url


def test_render_page_and_index() -> None:
    assert render_page("zh", "") == render_page("zh", "index") == render_index("zh")
    assert render_page("zh", "/c/a0/") == render_page("zh", "c/A0")
    assert render_page("fr", "index") is None
    assert render_page("zh", "r/card.melted") is None
    assert render_page("zh", "x/y") is None
    with pytest.raises(ValueError, match="no help pages in 'fr'"):
        render_index("fr")
    en = render_index("en")
    assert '<html lang="en">' in en and 'href="/help/zh"' in en


@pytest.mark.parametrize(
    "module",
    [
        clearpos.helpcenter,
        clearpos.helpcenter.commands,
        clearpos.helpcenter.doc,
        clearpos.helpcenter.guide,
    ],
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


# ---------------------------------------------------------------------------
# docs/protocol.md
# ---------------------------------------------------------------------------


def _console_examples() -> list[tuple[str, str]]:
    """(command, expected stdout) for every ``$`` line of a ```console block."""
    out: list[tuple[str, str]] = []
    block: list[str] | None = None
    for line in PROTOCOL.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```console"):
            block = []
        elif block is not None and line.startswith("```"):
            block = None
        elif block is not None:
            if line.startswith("$ "):
                out.append((line[2:], ""))
            else:
                command, expected = out[-1]
                out[-1] = (command, expected + line + "\n")
    return out


@pytest.mark.parametrize(("command", "expected"), _console_examples())
def test_protocol_console_examples_print_what_they_show(
    command: str, expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = ""
    piped = re.fullmatch(r"echo (.*?) \| (clearpos .*)", command)
    if piped:
        stdin = shlex.split(piped.group(1))[0] + "\n"
        command = piped.group(2)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    argv = shlex.split(command)
    assert argv[0] == "clearpos"
    main(argv[1:])
    assert capsys.readouterr().out == expected


def test_protocol_python_examples_run() -> None:
    result = doctest.testfile(str(PROTOCOL), module_relative=False)
    assert result.failed == 0 and result.attempted >= 20


def test_protocol_field_table_matches_the_dialect() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| ([a-z]+\.{0,2}\d+(?: LL+VAR)?) \| (.+) \|$", text, re.M)
    assert sorted(int(n) for n, _, _ in rows) == sorted(FIELDS)
    for number, fmt, meaning in rows:
        spec = FIELDS[int(number)]
        assert fmt == spec.label, number
        assert meaning.startswith(spec.meaning), number


def test_protocol_reason_table_matches_the_catalog() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| (\S+) \| (\S+) \| .+ \|$", text, re.M)
    assert [key for key, _, _ in rows] == list(catalog().keys())
    for key, code, category in rows:
        reason = catalog()[key]
        assert code == (reason.code or "–"), key
        assert category == (reason.category or "–"), key
