"""The reason catalog: the contract of spec/reasons.md, the screen limits, the loader's refusals."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from clearpos.reasons import (
    REQUIRED_CODES,
    REQUIRED_KEYS,
    SCREEN_LIMITS,
    SPEC_CODES,
    Catalog,
    CatalogError,
    Lang,
    Reason,
    Text,
    catalog,
    load_catalog,
)

# ---------------------------------------------------------------------------
# The contract, copied from spec/reasons.md: key, field 39, category, terminal action
# ("" = none). Reversal and check codes follow.
# ---------------------------------------------------------------------------

SPEC: list[tuple[str, str, str, str]] = [
    ("approved", "00", "A", "print_receipt"),
    ("card.unknown", "14", "C", ""),
    ("card.insufficient_funds", "51", "C", ""),
    ("card.frozen", "62", "C", ""),
    ("card.closed", "62", "C", ""),
    ("card.expired", "54", "C", ""),
    ("card.lost", "41", "D", ""),
    ("card.stolen", "43", "D", ""),
    ("card.wrong_pin", "55", "C", ""),
    ("card.pin_tries_exceeded", "75", "C", ""),
    ("card.daily_limit", "61", "C", ""),
    ("card.cryptogram_invalid", "05", "C", ""),
    ("card.chip_required", "45", "C", ""),
    ("card.pin_required", "55", "C", ""),
    ("risk.card_velocity", "65", "C", ""),
    ("issuer.unavailable", "91", "C", ""),
    ("merchant.suspended.arrears", "03", "D", ""),
    ("merchant.suspended.risk", "03", "D", ""),
    ("merchant.closed", "03", "D", ""),
    ("merchant.restricted", "58", "C", ""),
    ("merchant.single_limit", "61", "C", ""),
    ("terminal.unknown", "97", "D", ""),
    ("terminal.suspended", "58", "D", ""),
    ("terminal.update_required", "58", "D", "update_software"),
    ("terminal.not_signed_on", "A0", "B", "re_sign_on"),
    ("terminal.batch_mismatch", "77", "D", "re_sign_on"),
    ("mac.invalid", "A0", "B", "re_sign_on"),
    ("pin.format_error", "99", "B", "re_sign_on"),
    ("message.format_error", "30", "C", ""),
    ("transaction.duplicate", "94", "C", ""),
    ("transaction.original_not_found", "25", "C", ""),
    ("transaction.original_amount_mismatch", "64", "C", ""),
    ("transaction.already_voided", "12", "C", ""),
    ("transaction.not_supported", "40", "C", ""),
    ("terminal.single_des_refused", "40", "D", ""),
    ("host.maintenance", "96", "C", ""),
    ("host.cutover", "90", "C", ""),
    ("host.error", "96", "E", ""),
    ("network.timeout", "", "B", "reverse"),
    ("operator.wrong_password", "", "", ""),
    ("operator.not_signed_in", "", "", ""),
    ("settlement.balanced", "", "A", "close_batch"),
    ("settlement.unbalanced", "", "", "batch_upload"),
]
SPEC_REVERSAL_CODES = {"network.timeout": "98"}
SPEC_CHECK_CODES = {"settlement.balanced": 1, "settlement.unbalanced": 2}

# Keys the virtual terminal and host add: key, field 39, category, terminal action, check code.
EXTRAS: list[tuple[str, str, str, str, int | None]] = [
    ("network.unreachable", "", "B", "", None),
    ("merchant.suspended.manual", "03", "D", "", None),
    ("offline.stored", "", "A", "print_receipt", None),
    ("reversal.pending", "", "B", "reverse", None),
    ("terminal.key_check_failed", "", "D", "", None),
    ("settlement.error", "", "E", "", 3),
    ("transaction.invalid_amount", "13", "C", "", None),
    ("terminal.signon_rate_limited", "65", "B", "", None),
    ("card.refused_after_approval", "", "B", "reverse", None),
    ("card.cryptogram_replayed", "05", "C", "", None),
]

# Every field 39 code in spec/reasons.md and spec/pos8583.md (06: reversal reason "other").
ALL_CODES = [
    "00", "03", "05", "06", "12", "14", "25", "30", "40", "41", "43", "45", "51", "54", "55", "58",
    "61", "62", "64", "65", "75", "77", "90", "91", "94", "96", "97", "98", "99", "A0",
]  # fmt: skip

LANGS: tuple[Lang, ...] = ("zh", "en")
CATALOG = catalog()
ALL_KEYS = [reason.key for reason in CATALOG]


def none_if_empty(value: str) -> str | None:
    return value or None


# ---------------------------------------------------------------------------
# The packaged catalog keeps the contract
# ---------------------------------------------------------------------------


def test_required_tables_agree_with_spec() -> None:
    assert {key: none_if_empty(code) for key, code, _, _ in SPEC} == REQUIRED_CODES
    assert frozenset(key for key, *_ in SPEC) == REQUIRED_KEYS
    assert set(ALL_CODES) == SPEC_CODES


@pytest.mark.parametrize(("key", "code", "category", "action"), SPEC, ids=[r[0] for r in SPEC])
def test_required_key_has_spec_code(key: str, code: str, category: str, action: str) -> None:
    reason = CATALOG[key]
    assert reason.key == key
    assert reason.code == none_if_empty(code)
    assert reason.category == none_if_empty(category)
    assert reason.terminal_action == none_if_empty(action)
    assert reason.reversal_code == SPEC_REVERSAL_CODES.get(key)
    assert reason.check_code == SPEC_CHECK_CODES.get(key)


@pytest.mark.parametrize(
    ("key", "code", "category", "action", "check_code"), EXTRAS, ids=[r[0] for r in EXTRAS]
)
def test_extra_key(key: str, code: str, category: str, action: str, check_code: int | None) -> None:
    reason = CATALOG[key]
    assert reason.code == none_if_empty(code)
    assert reason.category == none_if_empty(category)
    assert reason.terminal_action == none_if_empty(action)
    assert reason.check_code == check_code
    # the card refusing an approved chip sale is the one extra outcome a reversal follows
    assert reason.reversal_code == ("06" if key == "card.refused_after_approval" else None)


def test_catalog_has_exactly_the_spec_keys_and_the_extras() -> None:
    assert set(ALL_KEYS) == REQUIRED_KEYS | {key for key, *_ in EXTRAS}
    assert len(CATALOG) == len(ALL_KEYS) == len(REQUIRED_KEYS) + len(EXTRAS)


@pytest.mark.parametrize("key", ALL_KEYS)
@pytest.mark.parametrize("lang", LANGS)
def test_screen_text_within_limits(key: str, lang: Lang) -> None:
    reason = CATALOG[key]
    examples = {name: CATALOG.params[name].example for name in reason.params}
    long_facts = {name: "9" * 40 for name in reason.params}
    for facts in ({}, examples, long_facts):
        text = reason.screen_text(lang, **facts)
        assert 0 < len(text) <= SCREEN_LIMITS[lang], text
        assert "\n" not in text
    if lang == "en":
        assert reason.screen_text("en").isascii()


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_reason_is_complete(key: str) -> None:
    reason = CATALOG[key]
    assert reason.remedy, "every reason says what to do"
    for text in (reason.actor, reason.screen, reason.cause, *reason.remedy):
        assert text.zh.strip()
        assert text.en.strip()
        assert re.search(r"[\u4e00-\u9fff]", text.zh), f"zh text is not Chinese: {text.zh!r}"


@pytest.mark.parametrize("key", ALL_KEYS)
@pytest.mark.parametrize("lang", LANGS)
def test_rendered_texts_have_no_markup(key: str, lang: Lang) -> None:
    reason = CATALOG[key]
    examples = {name: CATALOG.params[name].example for name in reason.params}
    for facts in ({}, examples):
        texts = [
            reason.screen_text(lang, **facts),
            reason.cause_text(lang, **facts),
            *reason.remedy_steps(lang, **facts),
        ]
        for text in texts:
            assert not re.search(r"[{}\[\]]", text), text
        if facts:
            joined = "".join(texts)
            assert all(value in joined for value in examples.values())


def test_every_code_used_has_fallback_text() -> None:
    used = {r.code for r in CATALOG} | {r.reversal_code for r in CATALOG}
    used.discard(None)
    assert used <= set(CATALOG.codes)
    assert set(ALL_CODES) <= set(CATALOG.codes)
    for code, text in CATALOG.codes.items():
        assert len(text.zh) <= SCREEN_LIMITS["zh"], code
        assert len(text.en) <= SCREEN_LIMITS["en"], code


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        ("00", "交易成功", "Approved"),
        ("03", "商户已停机，请联系服务商", "Merchant stopped - call provider"),
        ("51", "余额不足", "Insufficient funds"),
        ("54", "卡已过期", "Card expired"),
        ("55", "密码错误", "Incorrect PIN"),
        ("94", "重复交易", "Duplicate transaction"),
        ("A0", "MAC校验错，请重新签到", "MAC error - sign on again"),
    ],
)
def test_code_text(code: str, zh: str, en: str) -> None:
    assert CATALOG.code_text(code) == zh
    assert CATALOG.code_text(code, "en") == en


@pytest.mark.parametrize("code", ["77", "99", "A0"])
def test_re_sign_on_codes_say_so(code: str) -> None:
    assert "重新签到" in CATALOG.code_text(code)
    assert "sign on" in CATALOG.code_text(code, "en")


def test_unknown_code_has_generic_text() -> None:
    assert CATALOG.code_text("Z9") == "交易失败（应答码Z9）"
    assert CATALOG.code_text("Z9", "en") == "Declined (code Z9)"
    assert CATALOG.code_text("a0") == CATALOG.code_text("A0")
    assert "--" in CATALOG.code_text("")


# Every command a remedy names must exist in spec/world.md.
POS_COMMANDS = {"login", "signon", "signoff", "echo", "purchase", "balance", "void", "refund"}
POS_COMMANDS |= {"preauth", "complete", "settle", "doctor"}


@pytest.mark.parametrize("key", ALL_KEYS)
def test_remedies_name_real_commands_and_who(key: str) -> None:
    reason = CATALOG[key]
    for step in reason.remedy:
        for command in re.findall(r"\bclearpos ([a-z]\w*)", step.zh + " " + step.en):
            assert command in {"pos", "diagnose", "admin"}, step.en
        for sub in re.findall(r"clearpos pos \.\.\. (\w+)", step.zh + " " + step.en):
            assert sub in POS_COMMANDS, step.en
        if "联系" in step.zh:
            assert re.search("服务商|发卡行|厂商|客户经理|风控部门", step.zh), step.zh
        if re.search(r"\b(contact|call)\b", step.en):
            assert re.search("provider|bank|vendor|police", step.en), step.en


# ---------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------


def test_lookup() -> None:
    assert "card.frozen" in CATALOG
    assert "card.unfrozen" not in CATALOG
    assert CATALOG.get("card.unfrozen") is None
    assert isinstance(CATALOG.get("card.frozen"), Reason)
    assert all(isinstance(reason, Reason) for reason in CATALOG)
    assert CATALOG.keys() == tuple(ALL_KEYS)
    assert catalog() is CATALOG


def test_unknown_key_raises_a_clear_key_error() -> None:
    with pytest.raises(KeyError) as caught:
        CATALOG["card.frozn"]
    message = str(caught.value)
    assert "card.frozn" in message
    assert "card.frozen" in message  # the suggestion


def test_keys_for_code() -> None:
    assert [r.key for r in CATALOG.keys_for_code("62")] == ["card.frozen", "card.closed"]
    assert {r.key for r in CATALOG.keys_for_code("03")} == {
        "merchant.suspended.arrears",
        "merchant.suspended.risk",
        "merchant.suspended.manual",
        "merchant.closed",
    }
    assert {r.key for r in CATALOG.keys_for_code("a0")} == {"terminal.not_signed_on", "mac.invalid"}
    assert CATALOG.keys_for_code("98") == []  # 98 is network.timeout's reversal code only
    assert CATALOG.keys_for_code("Z9") == []


def test_describe() -> None:
    assert CATALOG.describe("card.frozen") == "卡已冻结，请联系发卡行"
    assert CATALOG.describe("card.frozen", "en") == "Card frozen - call issuing bank"
    assert CATALOG.describe("card.wrong_pin", tries_left=1) == "密码错误，还可输1次"
    assert CATALOG.describe("51") == "余额不足"
    assert CATALOG.describe("XX", "en") == "Declined (code XX)"


def test_category_helpers() -> None:
    assert CATALOG["approved"].approved
    assert CATALOG["offline.stored"].approved
    assert not CATALOG["card.frozen"].approved
    assert CATALOG["network.timeout"].retryable
    assert CATALOG["mac.invalid"].retryable
    assert not CATALOG["card.insufficient_funds"].retryable
    assert CATALOG["card.lost"].operator_must_act
    assert CATALOG["host.error"].system_fault


def test_text_get() -> None:
    text = Text(zh="交易成功", en="Approved")
    assert text.get("zh") == "交易成功"
    assert text.get("en") == "Approved"
    with pytest.raises(ValueError, match="fr"):
        text.get("fr")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Placeholders
# ---------------------------------------------------------------------------


def test_wrong_pin_tries_left() -> None:
    reason = CATALOG["card.wrong_pin"]
    assert reason.params == ("tries_left",)
    assert reason.screen_text("zh", tries_left=2) == "密码错误，还可输2次"
    assert reason.screen_text("en", tries_left=2) == "Wrong PIN (tries left: 2)"
    assert reason.screen_text("zh") == "密码错误"
    assert reason.screen_text("en", tries_left=None) == "Wrong PIN"
    assert "还可输错2次" in reason.cause_text("zh", tries_left=2)
    assert reason.cause_text("zh").endswith("本笔未扣款。")


def test_velocity_lock_until_formats_datetimes() -> None:
    reason = CATALOG["risk.card_velocity"]
    until = datetime(2026, 11, 23, 4, 0, 59, tzinfo=timezone(timedelta(hours=8)))
    assert "解锁时间：2026-11-23 04:00" in reason.cause_text("zh", until=until)
    assert "(until 2026-11-23 04:00)" in reason.cause_text("en", until=until)
    assert "until" not in reason.cause_text("en")


def test_arrears_owed() -> None:
    reason = CATALOG["merchant.suspended.arrears"]
    assert "欠费金额（元）：1280.00" in reason.cause_text("zh", owed="1280.00")
    steps = reason.remedy_steps("en", owed="1280.00")
    assert any("(CNY 1280.00)" in step for step in steps)
    assert all("{" not in step and "CNY" not in step for step in reason.remedy_steps("en"))
    assert any("clearpos admin merchant resume" in step for step in steps)


def test_maintenance_notice_in_the_display_language() -> None:
    reason = CATALOG["host.maintenance"]
    notice = Text(zh="系统维护 02:00–04:00，期间暂停交易", en="Maintenance 02:00–04:00")
    zh = reason.cause_text("zh", notice=notice, until="2026-11-23 04:00")
    en = reason.cause_text("en", notice=notice)
    assert "公告：系统维护 02:00–04:00" in zh
    assert "维护结束时间：2026-11-23 04:00" in zh
    assert "Notice: Maintenance 02:00–04:00" in en
    assert "Maintenance ends" not in en  # no until given


def test_missing_unknown_and_empty_facts_never_raise() -> None:
    for reason in CATALOG:
        for lang in LANGS:
            reason.screen_text(lang, nonsense=1, tries_left="", until=None)
            reason.cause_text(lang, owed=object())
            reason.remedy_steps(lang, **{"x": 1})


def test_screen_drops_a_fact_that_would_not_fit() -> None:
    reason = CATALOG["card.wrong_pin"]
    assert reason.screen_text("zh", tries_left="很多很多很多很多很多很多") == "密码错误"


def test_placeholder_outside_a_segment_stays_readable() -> None:
    text = Text(zh="锁定至{until}", en="locked until {until}")
    reason = Reason(
        key="x.y",
        code=None,
        reversal_code=None,
        check_code=None,
        category=None,
        actor=text,
        terminal_action=None,
        screen=text,
        cause=text,
        remedy=(text,),
        params=("until",),
    )
    assert reason.cause_text("en") == "locked until {until}"
    assert reason.cause_text("en", until="04:00") == "locked until 04:00"


# ---------------------------------------------------------------------------
# The loader refuses bad catalogs
# ---------------------------------------------------------------------------

PACKAGED = resources.files("clearpos.reasons").joinpath("catalog.toml").read_text("utf-8")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(value)


def dump(data: dict[str, Any]) -> str:
    """A tiny TOML writer for catalogs: a table per entry, values inline."""
    lines: list[str] = []
    for section, entries in data.items():
        if not isinstance(entries, dict):
            lines.append(f"{_toml_key(section)} = {_toml_value(entries)}")
            continue
        lines.append(f"[{_toml_key(section)}]")
        lines += [
            f"{_toml_key(k)} = {_toml_value(v)}"
            for k, v in entries.items()
            if not isinstance(v, dict)
        ]
        for name, body in entries.items():
            if isinstance(body, dict):
                lines.append(f"[{_toml_key(section)}.{_toml_key(name)}]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def base() -> dict[str, Any]:
    return copy.deepcopy(tomllib.loads(PACKAGED))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_written_copy_of_the_packaged_catalog_loads(tmp_path: Path) -> None:
    loaded = load_catalog(write(tmp_path, dump(base())))
    assert isinstance(loaded, Catalog)
    assert loaded.keys() == CATALOG.keys()
    assert [r for r in loaded] == [r for r in CATALOG]
    assert load_catalog(str(write(tmp_path, PACKAGED))).codes == CATALOG.codes


Mutation = Callable[[dict[str, Any]], object]
R = "reasons"


def _add_mystery(d: dict[str, Any]) -> None:
    d[R]["card.mystery"] = copy.deepcopy(d[R]["card.frozen"]) | {"code": "N1"}


def _add_case_duplicate(d: dict[str, Any]) -> None:
    d[R]["Card.Frozen"] = copy.deepcopy(d[R]["card.frozen"])


BAD: list[tuple[str, Mutation, list[str]]] = [
    ("missing key", lambda d: d[R].pop("card.frozen"), ['reasons."card.frozen"', "missing"]),
    (
        "code changed",
        lambda d: d[R]["card.frozen"].update(code="61"),
        ['reasons."card.frozen"', "code is '61'", "requires '62'"],
    ),
    (
        "code removed",
        lambda d: d[R]["card.frozen"].pop("code"),
        ["card.frozen", "code is ''", "requires '62'"],
    ),
    (
        "reversal code changed",
        lambda d: d[R]["network.timeout"].update(reversal_code="06"),
        ["network.timeout", "reversal_code", "requires '98'"],
    ),
    (
        "check code changed",
        lambda d: d[R]["settlement.balanced"].update(check_code=2),
        ["settlement.balanced", "check_code"],
    ),
    (
        "check code not an integer",
        lambda d: d[R]["settlement.balanced"].update(check_code="1"),
        ["settlement.balanced", "check_code must be an integer"],
    ),
    (
        "category changed",
        lambda d: d[R]["card.lost"].update(category="C"),
        ["card.lost", "category is 'C'", "requires 'D'"],
    ),
    (
        "terminal action changed",
        lambda d: d[R]["mac.invalid"].update(terminal_action=""),
        ["mac.invalid", "terminal_action", "'re_sign_on'"],
    ),
    (
        "zh screen too long",
        lambda d: d[R]["card.frozen"]["screen"].update(zh="卡" * 21),
        ["card.frozen", "screen.zh is 21 characters", "limit is 20"],
    ),
    (
        "en screen too long",
        lambda d: d[R]["card.frozen"]["screen"].update(en="x" * 33),
        ["card.frozen", "screen.en is 33 characters", "limit is 32"],
    ),
    (
        "screen too long once the fact is in",
        lambda d: d[R]["risk.card_velocity"].update(
            screen={"zh": "卡片已被锁定[，解锁时间{until}]", "en": "Card locked"}
        ),
        ["risk.card_velocity", "screen.zh is 27 characters"],
    ),
    (
        "screen on two lines",
        lambda d: d[R]["card.frozen"]["screen"].update(zh="卡已冻结\n请联系发卡行"),
        ["card.frozen", "screen.zh must be one line"],
    ),
    (
        "missing en",
        lambda d: d[R]["card.frozen"]["cause"].pop("en"),
        ["card.frozen", "cause.en is missing"],
    ),
    (
        "missing zh",
        lambda d: d[R]["card.frozen"]["actor"].pop("zh"),
        ["card.frozen", "actor.zh is missing"],
    ),
    (
        "missing zh in a remedy step",
        lambda d: d[R]["card.frozen"]["remedy"][1].pop("zh"),
        ["card.frozen", "remedy step 2.zh is missing"],
    ),
    (
        "empty text",
        lambda d: d[R]["card.closed"]["screen"].update(en="  "),
        ["card.closed", "screen.en is empty"],
    ),
    (
        "missing screen",
        lambda d: d[R]["host.error"].pop("screen"),
        ["host.error", "screen is missing"],
    ),
    (
        "unknown language",
        lambda d: d[R]["card.frozen"]["screen"].update(ja="カード"),
        ["card.frozen", "unknown language 'ja'"],
    ),
    (
        "unknown field",
        lambda d: d[R]["card.frozen"].update(colour="red"),
        ['reasons."card.frozen"', "unknown field 'colour'"],
    ),
    ("empty remedy", lambda d: d[R]["card.frozen"].update(remedy=[]), ["card.frozen", "remedy"]),
    ("code without text", _add_mystery, ['reasons."card.mystery"', "'N1'", "[codes]"]),
    (
        "spec code without text",
        lambda d: d["codes"].pop("62"),
        ['reasons."card.frozen"', "'62' has no fallback text", 'codes."62"'],
    ),
    (
        "malformed code",
        lambda d: d[R]["card.frozen"].update(code="6"),
        ["card.frozen", "code must be two characters"],
    ),
    (
        "unknown category",
        lambda d: d[R]["card.frozen"].update(category="F"),
        ["card.frozen", "category 'F' is unknown"],
    ),
    (
        "unknown terminal action",
        lambda d: d[R]["card.unknown"].update(terminal_action="dance"),
        ["card.unknown", "terminal_action 'dance' is unknown"],
    ),
    (
        "case-insensitive duplicate key",
        _add_case_duplicate,
        ['reasons."Card.Frozen"', "duplicate of 'card.frozen'"],
    ),
    (
        "case-insensitive duplicate code",
        lambda d: d["codes"].update(a0={"zh": "校验错", "en": "MAC error"}),
        ['codes."a0"', "duplicate of code 'A0'"],
    ),
    (
        "bad key syntax",
        lambda d: d[R].update({"card..x": d[R]["card.frozen"]}),
        ['reasons."card..x"', "lower-case words joined by dots"],
    ),
    (
        "placeholder not in params",
        lambda d: d[R]["card.frozen"]["cause"].update(zh="卡已冻结[，解冻时间：{until}]。"),
        ["card.frozen", "uses {until}, which params lacks"],
    ),
    (
        "placeholder outside a segment",
        lambda d: d[R]["card.wrong_pin"]["cause"].update(zh="密码错误，还可输{tries_left}次。"),
        ["card.wrong_pin", "outside an optional segment"],
    ),
    (
        "param not used",
        lambda d: d[R]["card.frozen"].update(params=["until"]),
        ["card.frozen", "'until' is listed but no text uses it"],
    ),
    (
        "param not declared",
        lambda d: (
            d[R]["card.frozen"]["cause"].update(zh="卡已冻结[（{bank}）]")
            or d[R]["card.frozen"].update(params=["bank"])
        ),
        ["card.frozen", "'bank' is not declared under [params]"],
    ),
    (
        "unbalanced bracket",
        lambda d: d[R]["card.wrong_pin"]["screen"].update(zh="密码错误[，还可输{tries_left}次"),
        ["card.wrong_pin", "unbalanced or nested"],
    ),
    (
        "segment without placeholder",
        lambda d: d[R]["card.frozen"]["cause"].update(en="Frozen[ really]."),
        ["card.frozen", "optional segment without a placeholder"],
    ),
    (
        "reason not a table",
        lambda d: d[R].update({"card.frozen": "62"}),
        ['reasons."card.frozen"', "must be a table"],
    ),
    (
        "code text too long",
        lambda d: d["codes"]["00"].update(zh="交" * 21),
        ['codes."00"', "text.zh is 21 characters"],
    ),
    (
        "param without example",
        lambda d: d["params"]["until"].pop("example"),
        ["params.until", "example"],
    ),
    ("unknown top-level table", lambda d: d.update(meta={"v": 1}), ["meta", "unknown top-level"]),
    ("no codes table", lambda d: d.pop("codes"), ["codes", "missing"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_loader_refuses(tmp_path: Path, mutate: Mutation, expected: list[str]) -> None:
    data = base()
    mutate(data)
    path = write(tmp_path, dump(data))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_loader_reports_every_problem_at_once(tmp_path: Path) -> None:
    data = base()
    data[R]["card.frozen"]["code"] = "61"
    data[R]["card.closed"]["screen"]["en"] = "x" * 40
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, dump(data)))
    error = caught.value
    assert isinstance(error, ValueError)
    assert len(error.problems) == 2
    assert error.entry == 'reasons."card.frozen"'
    assert "requires '62'" in error.problem
    assert "card.closed" in str(error)


RAW_BAD = [
    ("duplicate table", PACKAGED + '\n[reasons."approved"]\ncode = "00"\n', ["approved", "TOML"]),
    (
        "unquoted dotted key",
        PACKAGED + '\n[reasons.card.frozen2]\ncode = "62"\n',
        ["unknown field 'frozen2'", 'quote dotted keys: [reasons."card.frozen2"]'],
    ),
    ("not TOML", "this is not = = toml\n", ["not valid TOML"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [b[1:] for b in RAW_BAD], ids=[b[0] for b in RAW_BAD]
)
def test_loader_refuses_raw_text(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_loader_refuses_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(binary)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("codes"), "the [codes] table is missing"),
        (lambda d: d["params"]["until"].pop("example"), "example must be a non-empty string"),
        (
            lambda d: d[R]["card.wrong_pin"]["screen"].update(zh="密码错误[，还可输{tries_left}次"),
            "unbalanced or nested",
        ),
    ],
    ids=["no codes table", "param without example", "unbalanced bracket"],
)
def test_one_mistake_is_one_problem(tmp_path: Path, mutate: Mutation, expected: str) -> None:
    data = base()
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, dump(data)))
    assert len(caught.value.problems) == 1, str(caught.value)
    assert expected in caught.value.problem


# --------------------------------------------------------------------------- diagnosis sentences

DIAGNOSIS = Path(__file__).resolve().parent.parent / "clearpos" / "diagnosis"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _sentences_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sentences.toml"
    path.write_text(body, "utf-8")
    return path


def test_the_packaged_sentences_load_with_both_languages() -> None:
    from clearpos.diagnosis.sentences import sentences

    loaded = sentences()
    assert len(loaded) > 150
    for s in loaded:
        assert s.text.zh.strip() and s.text.en.strip(), s.id
    assert loaded.words("status")["suspended"].zh == "停机"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[sentence.a]\nfacts = ["x"]\nzh = "{x}"\n', "text.en is missing"),
        ('[sentence.a]\nfacts = ["x"]\nzh = "{x}"\nen = ""\n', "text.en is empty"),
        ('[sentence.a]\nzh = "{x}"\nen = "{x}"\n', "zh uses {x}, which is not declared"),
        ('[sentence.a]\nfacts = ["x"]\nzh = "{x}"\nen = "x"\n', "en lacks {x}, a required fact"),
        (
            '[sentence.a]\nzh_facts = ["x"]\nzh = "{x}"\nen = "{x}"\n',
            "en uses {x}, which is not declared (it is declared for the other language only)",
        ),
        ('[sentence.a]\noptional = ["x"]\nzh = "{x}"\nen = "[{x}]"\n', "optional fact {x}"),
        ('[sentence.a]\nfacts = ["x"]\nzh = "[{x}]"\nen = "{x}"\n', "sits in an optional segment"),
        ('[sentence.a]\nzh = "a"\nen = "b"\nscreen = "c"\n', "unknown field 'screen'"),
        ('[sentence.a]\nzh = "a [b"\nen = "b"\n', "unbalanced"),
        ('[sentence.a]\nzh = "a"\nen = "b"\n[other]\nx = 1\n', "unknown top-level table"),
        ('[words.status]\nactive = { zh = "正常" }\n', "word.en is missing"),
    ],
)
def test_a_broken_sentence_is_a_load_error(tmp_path: Path, body: str, problem: str) -> None:
    from clearpos.reasons import load_sentences

    with pytest.raises(CatalogError) as err:
        load_sentences(_sentences_file(tmp_path, body), package="clearpos.diagnosis")
    assert problem in str(err.value), str(err.value)


def test_a_sentence_renders_as_an_f_string_and_checks_its_facts(tmp_path: Path) -> None:
    from clearpos.reasons import load_sentences

    body = (
        '[sentence."m.a"]\nfacts = ["n", "who"]\nzh_facts = ["w"]\noptional = ["owed"]\n'
        'zh = "{who}{w} {n} 次[，欠费 ¥{owed}]"\nen = "{who} {n} times[, owing ¥{owed}]"\n'
    )
    s = load_sentences(_sentences_file(tmp_path, body), package="clearpos.diagnosis")
    assert s.render("m.a", "en", n=3, who="", w="x", owed=None) == " 3 times"
    assert s.render("m.a", "zh", n=3, who="li", w="停", owed="5.00") == "li停 3 次，欠费 ¥5.00"
    assert s.render("m.a", "en", n=None, who="li", w="") == "li None times"  # as f"{n}"
    with pytest.raises(TypeError, match="missing w"):
        s.render("m.a", "en", n=3, who="li")
    with pytest.raises(TypeError, match="undeclared extra"):
        s.render("m.a", "en", n=3, who="li", w="", extra=1)
    with pytest.raises(KeyError, match=r"did you mean m\.a"):
        s.render("m.b", "en")


def _literal_ids(node: Any) -> list[str]:
    """The sentence ids an argument can be: a literal, or either branch of ``a if c else b``."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literal_ids(node.body), _literal_ids(node.orelse)
        return body + orelse if body and orelse else []
    return []


def _say_calls() -> list[tuple[str, int, list[str], set[str], bool]]:
    """Every ``say(...)`` in clearpos/diagnosis: (file, line, ids, keywords, has **)."""
    import ast

    out = []
    for path in sorted(DIAGNOSIS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say"):
                continue
            ids = _literal_ids(node.args[0])
            words = {k.arg for k in node.keywords if k.arg is not None}
            star = any(k.arg is None for k in node.keywords)
            out.append((path.name, node.lineno, ids, words, star))
    return out


def test_every_say_call_passes_exactly_the_facts_of_its_sentence() -> None:
    from clearpos.diagnosis.sentences import sentences

    loaded = sentences()
    used: set[str] = set()
    calls = _say_calls()
    assert len(calls) > 150
    for name, line, ids, words, star in calls:
        assert ids, f"{name}:{line}: the sentence id must be a literal"
        for sid in ids:
            assert sid in loaded, f"{name}:{line}: no sentence {sid!r}"
            s = loaded[sid]
            used.add(sid)
            if star:
                continue
            assert set(s.required) <= words, f"{name}:{line}: {sid} needs {s.required}"
            assert words <= set(s.required) | set(s.optional), f"{name}:{line}: {sid}"
    # the separators the chip sentences join words with are said by name
    assert {s.id for s in loaded} - used == set(), "sentences no code says"


def test_no_chinese_text_is_left_in_the_diagnosis_code() -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(DIAGNOSIS.glob("*.py"))
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if CJK.search(line)
    ]
    assert found == [], "words belong in clearpos/diagnosis/sentences.toml:\n" + "\n".join(found)
