"""Help pages for merchants (issue 17, item 7).

The pages speak to the merchant: no ``clearpos`` command on any of them (the
provider's actions in words), the hotline, hours and company of the world,
short help codes that the terminal's screen shows and the search finds, and an
offline search box, tried in real Chromium on ``file://`` pages built by the CLI.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_fixture import EXAMPLE_WORLD, ROOT, env

from clearpos import helpcenter
from clearpos.helpcenter.build import render_files
from clearpos.reasons import LANGS, catalog
from clearpos.terminal.screens import Outcome, finish
from clearpos.world import WorldError, parse_world

HELP = ROOT / "docs" / "help"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def clearpos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearpos.cli", *args],
        capture_output=True, text=True, env=env(), timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def test_no_merchant_page_contains_clearpos_commands() -> None:
    """The acceptance check: generated files, the committed docs/help and served pages."""
    for rel, data in render_files(helpcenter.site()).items():
        assert b"clearpos " not in data, rel
    committed = [p for p in HELP.rglob("*") if p.is_file()]
    assert len(committed) > 300
    for path in committed:
        assert "clearpos " not in path.read_text("utf-8"), path
    for lang in LANGS:
        for slug in helpcenter.site().slugs():
            html = helpcenter.render_page(lang, slug)
            assert html is not None and "clearpos " not in html, (lang, slug)


def test_the_provider_handbook_keeps_the_commands() -> None:
    handbook = (ROOT / "docs" / "provider-handbook.md").read_text("utf-8")
    assert "clearpos admin" in handbook and "clearpos diagnose" in handbook


def test_provider_actions_are_described_in_words() -> None:
    page = helpcenter.site().page("zh", "r/merchant.suspended.arrears")
    assert page is not None
    text = json.dumps([str(b) for b in page.blocks], ensure_ascii=False)
    assert "服务商" in text and "--mid" not in text and "MID" not in text
    en = helpcenter.render_page("en", "r/terminal.not_signed_on")
    assert en is not None and "the terminal's self-check" in en and "sign-on" in en


def test_hotline_hours_and_company_come_from_the_world(tmp_path: Path) -> None:
    a = parse_world(EXAMPLE_WORLD.read_text("utf-8"), "w").acquirer
    for lang in LANGS:
        for slug in ("index", "r/card.frozen", "c/62", "s/sign-on-again"):
            html = helpcenter.render_page(lang, slug)
            assert html is not None
            assert a.hotline in html and a.hours in html and a.company_name in html, slug
    arrears = helpcenter.render_page("zh", "r/merchant.suspended.arrears")
    assert arrears is not None and "欠费金额" in arrears
    world = tmp_path / "other.toml"
    world.write_text(
        EXAMPLE_WORLD.read_text("utf-8")
        .replace('hotline = "400-820-0000"', 'hotline = "95516"')
        .replace("演示收单服务有限公司 Demo Acquiring Services", "某某支付"),
        "utf-8",
    )
    out = tmp_path / "help"
    r = clearpos("docs", "build", "--out", str(out), "--world", str(world))
    assert r.returncode == 0, r.stderr
    page = (out / "zh" / "r" / "card.frozen.html").read_text("utf-8")
    assert "95516" in page and "某某支付 帮助中心" in page and "400-820-0000" not in page


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('hotline = "call us"', "must be a phone number"),
        ('hours = "' + "x" * 61 + '"', "at most 60 characters"),
        ('company = "a\\tb"', "control characters"),
        ("hotline = 95516", "must be a string"),
    ],
)
def test_world_validates_the_contact(line: str, problem: str) -> None:
    text = EXAMPLE_WORLD.read_text("utf-8")
    key = line.split(" ", 1)[0]
    text = re.sub(rf"^{key} = .*$", line, text, count=1, flags=re.M)
    with pytest.raises(WorldError) as err:
        parse_world(text, "w.toml")
    assert "[acquirer]" in str(err.value) and key in str(err.value) and problem in str(err.value)


def test_help_codes_are_short_unique_and_on_the_screen() -> None:
    codes = catalog().help_codes()
    assert len(set(codes.values())) == len(codes)
    assert all(len(c) <= 4 for c in codes.values())
    out = finish(Outcome("purchase", "card.frozen", "62", False, "卡已冻结，请联系发卡行"), "zh")
    assert "帮助码: H62A" in out.render("zh") and out.to_json()["help_code"] == "H62A"
    assert helpcenter.resolve("h62a") == "/help/zh/r/card.frozen"
    index = helpcenter.render_page("zh", "index")
    assert index is not None and "H62A" in index and "card.frozen）" not in index


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("help") / "help"
    r = clearpos("docs", "build", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_search_index_covers_every_page_and_help_code(built: Path) -> None:
    text = (built / "search-index.js").read_text("utf-8")
    assert text.startswith("window.HELP_INDEX = [")
    entries = json.loads(text[text.index("[") : text.rindex("]") + 1])
    assert {e["h"] for e in entries} == {
        p.relative_to(built).as_posix() for p in built.rglob("*.html")
    }
    assert set(catalog().help_codes().values()) <= {e["c"] for e in entries}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_offline_search_in_chromium(built: Path, chromium: Any) -> None:
    page = chromium.new_context(offline=True).new_page()
    page.goto((built / "zh" / "index.html").as_uri())
    box = page.locator("#help-search")
    box.fill("冻结")
    results = page.locator("#search-results a")
    results.first.wait_for()
    hrefs = [a.get_attribute("href") for a in results.all()]
    assert any(h and h.endswith("zh/r/card.frozen.html") for h in hrefs), hrefs
    box.fill("H03A")  # the help code the terminal's screen showed
    box.press("Enter")
    page.wait_for_url("**/zh/r/merchant.suspended.arrears.html")
    assert "商户" in page.locator("h1").inner_text()
    deeper = page.locator("#help-search")  # the box is on every page, its links still land
    deeper.fill("余额不足")
    page.locator("#search-results a").first.click()
    page.wait_for_url("**/zh/r/card.insufficient_funds.html")
    deeper = page.locator("#help-search")
    deeper.fill("完全无关的话")
    assert "没有找到" in page.locator("#search-results").inner_text()
