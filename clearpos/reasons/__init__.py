"""The reason catalog: one key per outcome, with its codes and its words.

Every outcome the host, the issuer, the risk engine or the terminal can produce
has exactly one reason key (``card.frozen``, ``mac.invalid``...). The catalog is
data -- ``catalog.toml`` next to this module -- and this module loads it,
refuses a catalog that breaks the contract of ``spec/reasons.md``, and renders
its texts in Chinese or English::

    >>> from clearpos.reasons import catalog
    >>> reason = catalog()["card.wrong_pin"]
    >>> reason.code, reason.category
    ('55', 'C')
    >>> reason.screen_text("zh", tries_left=2)
    '密码错误，还可输2次'
    >>> reason.screen_text("en")
    'Wrong PIN'
    >>> catalog().code_text("51")
    '余额不足'
    >>> catalog().describe("Z9", "en")
    'Declined (code Z9)'

Texts may use run-time facts: ``{name}`` is replaced by the fact of that name.
Every placeholder sits in an optional segment ``[ ... ]`` that is left out when
a fact is missing, so a rendered text always reads well and rendering never
raises for missing facts.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from ..datafile import read_text

__all__ = [
    "CATEGORIES",
    "LANGS",
    "REQUIRED_CODES",
    "REQUIRED_KEYS",
    "SCREEN_LIMITS",
    "SPEC_CODES",
    "TERMINAL_ACTIONS",
    "Catalog",
    "CatalogError",
    "Lang",
    "Param",
    "Reason",
    "Sentence",
    "Sentences",
    "Text",
    "UnknownReasonError",
    "catalog",
    "load_catalog",
    "load_sentences",
]

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

SCREEN_LIMITS: Mapping[Lang, int] = MappingProxyType({"zh": 20, "en": 32})
"""Longest screen text, in characters (each Chinese character counts as 1)."""

CATEGORIES = frozenset({"A", "B", "C", "D", "E"})
"""A approved, B failed - may retry, C failed - do not retry, D operator must act, E fault."""

TERMINAL_ACTIONS = frozenset(
    {"print_receipt", "re_sign_on", "reverse", "batch_upload", "close_batch", "update_software"}
)
"""What a terminal does by itself after an outcome (``Reason.terminal_action``)."""

SPEC_CODES = frozenset(
    {
        "00", "03", "05", "06", "12", "14", "25", "30", "40", "41", "43", "45", "51", "54", "55", "58",
        "61", "62", "64", "65", "75", "77", "90", "91", "94", "96", "97", "98", "99", "A0",
    }
)  # fmt: skip
"""Every field 39 code in spec/reasons.md and spec/pos8583.md; each needs fallback text."""


@dataclass(frozen=True, slots=True)
class _Spec:
    """One row of the table in spec/reasons.md."""

    code: str | None
    category: str | None
    terminal_action: str | None = None
    reversal_code: str | None = None
    check_code: int | None = None


_SPEC: Mapping[str, _Spec] = MappingProxyType(
    {
        "approved": _Spec("00", "A", "print_receipt"),
        "card.unknown": _Spec("14", "C"),
        "card.insufficient_funds": _Spec("51", "C"),
        "card.frozen": _Spec("62", "C"),
        "card.closed": _Spec("62", "C"),
        "card.expired": _Spec("54", "C"),
        "card.lost": _Spec("41", "D"),
        "card.stolen": _Spec("43", "D"),
        "card.wrong_pin": _Spec("55", "C"),
        "card.pin_tries_exceeded": _Spec("75", "C"),
        "card.daily_limit": _Spec("61", "C"),
        "card.cryptogram_invalid": _Spec("05", "C"),
        "card.chip_required": _Spec("45", "C"),
        "card.pin_required": _Spec("55", "C"),
        "risk.card_velocity": _Spec("65", "C"),
        "issuer.unavailable": _Spec("91", "C"),
        "merchant.suspended.arrears": _Spec("03", "D"),
        "merchant.suspended.risk": _Spec("03", "D"),
        "merchant.closed": _Spec("03", "D"),
        "merchant.restricted": _Spec("58", "C"),
        "merchant.single_limit": _Spec("61", "C"),
        "terminal.unknown": _Spec("97", "D"),
        "terminal.suspended": _Spec("58", "D"),
        "terminal.update_required": _Spec("58", "D", "update_software"),
        "terminal.not_signed_on": _Spec("A0", "B", "re_sign_on"),
        "terminal.batch_mismatch": _Spec("77", "D", "re_sign_on"),
        "mac.invalid": _Spec("A0", "B", "re_sign_on"),
        "pin.format_error": _Spec("99", "B", "re_sign_on"),
        "message.format_error": _Spec("30", "C"),
        "transaction.duplicate": _Spec("94", "C"),
        "transaction.original_not_found": _Spec("25", "C"),
        "transaction.original_amount_mismatch": _Spec("64", "C"),
        "transaction.already_voided": _Spec("12", "C"),
        "transaction.not_supported": _Spec("40", "C"),
        "terminal.single_des_refused": _Spec("40", "D"),
        "host.maintenance": _Spec("96", "C"),
        "host.cutover": _Spec("90", "C"),
        "host.error": _Spec("96", "E"),
        "network.timeout": _Spec(None, "B", "reverse", reversal_code="98"),
        "operator.wrong_password": _Spec(None, None),
        "operator.not_signed_in": _Spec(None, None),
        "settlement.balanced": _Spec(None, "A", "close_batch", check_code=1),
        "settlement.unbalanced": _Spec(None, None, "batch_upload", check_code=2),
    }
)

REQUIRED_KEYS: frozenset[str] = frozenset(_SPEC)
"""The reason keys spec/reasons.md requires."""

REQUIRED_CODES: dict[str, str | None] = {key: spec.code for key, spec in _SPEC.items()}
"""Field 39 code of each required key (None: the outcome carries no field 39)."""


# ---------------------------------------------------------------------------
# Texts and their placeholders
# ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _fact_text(value: object, lang: Lang) -> str:
    """Render one run-time fact: ``Text`` in the display language, times to the minute."""
    if isinstance(value, Text):
        return value.get(lang)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


def _render(template: str, lang: Lang, facts: Mapping[str, object], segments: bool = True) -> str:
    """Fill ``{name}`` from facts; keep an optional ``[...]`` segment only when all its facts exist.

    A fact that is None or renders empty counts as missing. A placeholder outside any
    segment whose fact is missing stays as ``{name}`` (the packaged catalog has none).
    """
    values = {
        name: text
        for name, value in facts.items()
        if value is not None and (text := _fact_text(value, lang))
    }

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    def segment(match: re.Match[str]) -> str:
        inner = match.group(1)
        needed = _PLACEHOLDER.findall(inner)
        if segments and all(name in values for name in needed):
            return fill(inner)
        return ""

    return fill(_SEGMENT.sub(segment, template))


def _placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


@dataclass(frozen=True, slots=True)
class Text:
    """The same text in Chinese and English."""

    zh: str
    en: str

    def get(self, lang: Lang) -> str:
        """The text in ``lang``; ValueError for a language the catalog does not have."""
        if lang == "zh":
            return self.zh
        if lang == "en":
            return self.en
        raise ValueError(f"unknown language {lang!r}: use 'zh' or 'en'")


@dataclass(frozen=True, slots=True)
class Param:
    """A run-time fact the texts may use: its meaning and a typical value."""

    name: str
    meaning: Text
    example: str


@dataclass(frozen=True, slots=True)
class Reason:
    """One outcome: its codes, who acts, what the terminal does, and its words."""

    key: str
    code: str | None
    """Field 39 of the response; None when the outcome carries none."""
    reversal_code: str | None
    """Field 39 of the reversal (0400) the terminal sends; only ``network.timeout``."""
    check_code: int | None
    """Settlement check code in field 48 (1 balanced, 2 unbalanced, 3 error)."""
    category: str | None
    """A approved, B may retry, C do not retry, D operator must act, E system fault."""
    actor: Text
    terminal_action: str | None
    screen: Text
    cause: Text
    remedy: tuple[Text, ...]
    params: tuple[str, ...] = ()

    def screen_text(self, lang: Lang = "zh", **facts: object) -> str:
        """The POS screen text, with the facts it has.

        If a fact would push the text over ``SCREEN_LIMITS``, the optional parts are left
        out; the loader has checked that the text without them fits.
        """
        text = _render(self.screen.get(lang), lang, facts)
        if len(text) > SCREEN_LIMITS[lang]:
            text = _render(self.screen.get(lang), lang, facts, segments=False)
        return text

    def cause_text(self, lang: Lang = "zh", **facts: object) -> str:
        """What really happened, with the facts it has."""
        return _render(self.cause.get(lang), lang, facts)

    def remedy_steps(self, lang: Lang = "zh", **facts: object) -> list[str]:
        """The ordered remedy steps, with the facts they have."""
        return [_render(step.get(lang), lang, facts) for step in self.remedy]

    @property
    def approved(self) -> bool:
        """True for a successful outcome (category A): approved, stored offline, balanced."""
        return self.category == "A"

    @property
    def retryable(self) -> bool:
        """True when the same operation may be tried again (category B)."""
        return self.category == "B"

    @property
    def operator_must_act(self) -> bool:
        """True when someone must act before the terminal can go on (category D)."""
        return self.category == "D"

    @property
    def system_fault(self) -> bool:
        """True for a fault of the system itself (category E)."""
        return self.category == "E"


# ---------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------


class UnknownReasonError(KeyError):
    """A reason key the catalog does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown reason key"


class Catalog:
    """The loaded reasons, in file order, and the fallback text of each field 39 code.

    Build one with ``load_catalog`` (which validates) or use ``catalog()``.
    """

    __slots__ = ("_codes", "_help", "_params", "_path", "_reasons")

    def __init__(
        self,
        reasons: Mapping[str, Reason],
        codes: Mapping[str, Text],
        params: Mapping[str, Param] | None = None,
        path: str = "<memory>",
    ) -> None:
        self._reasons: Mapping[str, Reason] = MappingProxyType(dict(reasons))
        self._codes: Mapping[str, Text] = MappingProxyType(dict(codes))
        self._params: Mapping[str, Param] = MappingProxyType(dict(params or {}))
        self._path = path
        self._help: dict[str, str] | None = None

    @property
    def path(self) -> str:
        """The file the catalog was loaded from."""
        return self._path

    @property
    def codes(self) -> Mapping[str, Text]:
        """Fallback text of each field 39 code (read-only)."""
        return self._codes

    @property
    def params(self) -> Mapping[str, Param]:
        """The run-time facts texts may use, with their meaning (read-only)."""
        return self._params

    def __getitem__(self, key: str) -> Reason:
        reason = self._reasons.get(key)
        if reason is None:
            close = difflib.get_close_matches(key, list(self._reasons), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownReasonError(f"unknown reason key {key!r} in {self._path}{hint}")
        return reason

    def get(self, key: str) -> Reason | None:
        """The reason for ``key``, or None."""
        return self._reasons.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._reasons

    def __iter__(self) -> Iterator[Reason]:
        return iter(self._reasons.values())

    def __len__(self) -> int:
        return len(self._reasons)

    def __repr__(self) -> str:
        return f"<Catalog {self._path}: {len(self)} reasons, {len(self._codes)} codes>"

    def keys(self) -> tuple[str, ...]:
        """All reason keys, in file order."""
        return tuple(self._reasons)

    def help_codes(self) -> Mapping[str, str]:
        """Reason key -> its short help code, what a merchant reads off the screen and types
        to find the help page: ``H`` + field 39 when that code has one reason (``H51``);
        ``H`` + code + a letter in file order when several share it (``H03A``, ``H03B``);
        ``HL`` + a number in file order for outcomes the terminal decides alone, which
        carry no field 39 (``HL01``)."""
        if self._help is None:
            out: dict[str, str] = {}
            local = 0
            for reason in self._reasons.values():
                if reason.code:
                    same = self.keys_for_code(reason.code)
                    letter = "" if len(same) == 1 else chr(ord("A") + same.index(reason))
                    out[reason.key] = f"H{reason.code}{letter}"
                else:
                    local += 1
                    out[reason.key] = f"HL{local:02d}"
            self._help = out
        return MappingProxyType(self._help)

    def help_code(self, key: str) -> str:
        """The short help code of reason ``key`` (KeyError for an unknown key)."""
        return self.help_codes()[key]

    def for_help_code(self, text: str) -> str | None:
        """The reason key a short help code names (``h03a`` -> ``merchant.suspended...``)."""
        wanted = text.strip().upper()
        return next((k for k, c in self.help_codes().items() if c == wanted), None)

    def keys_for_code(self, code: str) -> list[Reason]:
        """The reasons whose field 39 is ``code``, in file order (reversal codes not included)."""
        wanted = code.strip().upper()
        return [reason for reason in self._reasons.values() if reason.code == wanted]

    def code_text(self, code: str, lang: Lang = "zh") -> str:
        """Fallback screen text for a field 39 code; a generic decline for an unknown code."""
        wanted = code.strip().upper()
        text = self._codes.get(wanted)
        if text is not None:
            return text.get(lang)
        shown = wanted or "--"
        return Text(zh=f"交易失败（应答码{shown}）", en=f"Declined (code {shown})").get(lang)

    def describe(self, key_or_code: str, lang: Lang = "zh", **facts: object) -> str:
        """Screen text for a known reason key, else the fallback text of the code."""
        reason = self._reasons.get(key_or_code)
        if reason is not None:
            return reason.screen_text(lang, **facts)
        return self.code_text(key_or_code, lang)


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------


class CatalogError(ValueError):
    """A catalog that cannot be used: names the file, the entry and each problem."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        if len(problems) == 1:
            entry, problem = problems[0]
            message = f"{path}: {entry}: {problem}"
        else:
            lines = [f"  {entry}: {problem}" for entry, problem in problems]
            message = f"{path}: {len(problems)} problems\n" + "\n".join(lines)
        super().__init__(message)

    @property
    def entry(self) -> str:
        """The entry of the first problem, e.g. ``reasons."card.frozen"``."""
        return self.problems[0][0] if self.problems else ""

    @property
    def problem(self) -> str:
        """The first problem."""
        return self.problems[0][1] if self.problems else ""


_TOP_LEVEL = frozenset({"reasons", "codes", "params"})
_FIELDS = frozenset(
    {
        "code",
        "reversal_code",
        "check_code",
        "category",
        "actor",
        "terminal_action",
        "screen",
        "cause",
        "remedy",
        "params",
    }
)
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_CODE = re.compile(r"^[0-9A-Z]{2}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Loader:
    """Validates the parsed TOML and builds a Catalog; collects every problem it finds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[tuple[str, str]] = []
        self.check_codes = True

    def fail(self, entry: str, problem: str) -> None:
        self.problems.append((entry, problem))

    # -- building blocks ---------------------------------------------------

    def table(self, value: object, entry: str, what: str) -> dict[str, object] | None:
        if not isinstance(value, dict):
            self.fail(entry, f"{what} must be a table, not {_show(value)}")
            return None
        return {str(k): v for k, v in value.items()}

    def text(self, value: object, entry: str, field: str, *, screen: bool = False) -> Text | None:
        table = self.table(value, entry, field)
        if table is None:
            return None
        for extra in sorted(set(table) - set(LANGS)):
            self.fail(entry, f"{field} has unknown language {extra!r} (use zh and en)")
        parts: dict[str, str] = {}
        for lang in LANGS:
            raw = table.get(lang)
            if raw is None:
                self.fail(entry, f"{field}.{lang} is missing")
            elif not isinstance(raw, str):
                self.fail(entry, f"{field}.{lang} must be a string, not {_show(raw)}")
            elif not raw.strip():
                self.fail(entry, f"{field}.{lang} is empty")
            elif screen and "\n" in raw:
                self.fail(entry, f"{field}.{lang} must be one line")
            else:
                parts[lang] = raw
        if len(parts) != len(LANGS):
            return None
        return Text(zh=parts["zh"], en=parts["en"])

    def code(self, value: object, entry: str, field: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _CODE.match(value):
            self.fail(entry, f"{field} must be two characters 0-9/A-Z, not {_show(value)}")
            return None
        return value

    def choice(self, value: object, entry: str, field: str, allowed: frozenset[str]) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value not in allowed:
            self.fail(
                entry,
                f'{field} {_show(value)} is unknown; use one of {", ".join(sorted(allowed))} or ""',
            )
            return None
        return value

    def within_limit(self, entry: str, field: str, text: Text, examples: dict[str, str]) -> None:
        for lang in LANGS:
            limit = SCREEN_LIMITS[lang]
            template = text.get(lang)
            if re.search(r"[\[\]]", _SEGMENT.sub("", template)):
                continue  # malformed markup, reported by template()
            for rendered in (_render(template, lang, {}), _render(template, lang, examples)):
                if len(rendered) > limit:
                    self.fail(
                        entry,
                        f"{field}.{lang} is {len(rendered)} characters, the limit is {limit}: "
                        f"{rendered!r}",
                    )
                    break

    def template(self, entry: str, field: str, template: str) -> list[str]:
        """Check the segment syntax of one text; return the placeholders it uses."""
        stripped = _SEGMENT.sub("", template)
        if "[" in stripped or "]" in stripped:
            self.fail(
                entry,
                f"{field} has an unbalanced or nested '[' ']' (brackets mark optional "
                "segments; write 【】 for visible brackets)",
            )
            return _placeholders(template)
        for inner in _SEGMENT.findall(template):
            if not _placeholders(inner):
                self.fail(
                    entry, f"{field} has an optional segment without a placeholder: {inner!r}"
                )
        outside = _placeholders(stripped)
        if outside:
            self.fail(
                entry,
                f"{field} uses {', '.join('{' + n + '}' for n in outside)} outside an optional "
                "segment '[...]', which would show raw when the fact is missing",
            )
        return _placeholders(template)

    # -- sections ----------------------------------------------------------

    def load_params(self, section: object) -> dict[str, Param]:
        params: dict[str, Param] = {}
        table = self.table(section if section is not None else {}, "params", "[params]")
        if table is None:
            return params
        for name, value in table.items():
            entry = f"params.{name}"
            if not _NAME.match(name):
                self.fail(entry, "a placeholder name must be a Python identifier")
                continue
            body = self.table(value, entry, "a placeholder")
            if body is None:
                continue
            for extra in sorted(set(body) - {"zh", "en", "example"}):
                self.fail(entry, f"unknown field {extra!r} (allowed: zh, en, example)")
            meaning = self.text({k: body.get(k) for k in LANGS}, entry, "meaning")
            example = body.get("example")
            if not isinstance(example, str) or not example:
                self.fail(entry, "example must be a non-empty string (a typical value)")
                example = ""
            if meaning is not None:
                params[name] = Param(name=name, meaning=meaning, example=example)
        return params

    def load_codes(self, section: object) -> dict[str, Text]:
        codes: dict[str, Text] = {}
        if section is None:
            return codes  # reported as a missing table
        table = self.table(section, "codes", "[codes]")
        if table is None:
            return codes
        seen: dict[str, str] = {}
        for code, value in table.items():
            entry = f'codes."{code}"'
            folded = code.casefold()
            if folded in seen:
                self.fail(entry, f"duplicate of code {seen[folded]!r} (codes ignore case)")
                continue
            seen[folded] = code
            if not _CODE.match(code):
                self.fail(entry, "a field 39 code is two characters 0-9/A-Z")
                continue
            text = self.text(value, entry, "text", screen=True)
            if text is not None:
                self.within_limit(entry, "text", text, {})
                codes[code] = text
        for code in sorted(SPEC_CODES - set(codes)):
            if code.casefold() not in seen:
                self.fail(f'codes."{code}"', "missing: every field 39 code of the spec needs text")
        return codes

    def load_reason(
        self, key: str, value: object, params: Mapping[str, Param], codes: Mapping[str, Text]
    ) -> Reason | None:
        entry = f'reasons."{key}"'
        body = self.table(value, entry, "a reason")
        if body is None:
            return None
        before = len(self.problems)
        for extra in sorted(set(body) - _FIELDS):
            hint = ""
            nested = body[extra]
            if isinstance(nested, dict) and _FIELDS & set(nested):
                hint = f' -- quote dotted keys: [reasons."{key}.{extra}"]'
            self.fail(entry, f"unknown field {extra!r}{hint}")
            if hint:
                return None  # the entry is a misparsed key, not a reason

        code = self.code(body.get("code"), entry, "code")
        reversal_code = self.code(body.get("reversal_code"), entry, "reversal_code")
        raw_check = body.get("check_code")
        check_code: int | None = None
        if raw_check is not None:
            if isinstance(raw_check, bool) or not isinstance(raw_check, int):
                self.fail(entry, f"check_code must be an integer, not {_show(raw_check)}")
            elif not 0 <= raw_check <= 9:
                self.fail(entry, f"check_code must be one digit, not {raw_check}")
            else:
                check_code = raw_check
        category = self.choice(body.get("category"), entry, "category", CATEGORIES)
        action = self.choice(
            body.get("terminal_action"), entry, "terminal_action", TERMINAL_ACTIONS
        )

        texts: dict[str, Text] = {}
        for field in ("actor", "screen", "cause"):
            if field not in body:
                self.fail(entry, f"{field} is missing")
                continue
            text = self.text(body[field], entry, field, screen=field == "screen")
            if text is not None:
                texts[field] = text

        remedy: list[Text] = []
        raw_remedy = body.get("remedy")
        if not isinstance(raw_remedy, list) or not raw_remedy:
            self.fail(entry, "remedy must be a non-empty list of steps, each with zh and en")
        else:
            for number, step in enumerate(raw_remedy, start=1):
                text = self.text(step, entry, f"remedy step {number}")
                if text is not None:
                    remedy.append(text)

        names: list[str] = []
        raw_params = body.get("params", [])
        if not isinstance(raw_params, list) or not all(isinstance(p, str) for p in raw_params):
            self.fail(entry, "params must be a list of placeholder names")
        else:
            names = [str(p) for p in raw_params]
            for name in sorted({n for n in names if names.count(n) > 1}):
                self.fail(entry, f"params lists {name!r} twice")
            for name in names:
                if name not in params:
                    self.fail(entry, f"param {name!r} is not declared under [params]")

        used: set[str] = set()
        labelled = [(field, text) for field, text in texts.items() if field != "actor"]
        labelled += [(f"remedy step {n}", text) for n, text in enumerate(remedy, start=1)]
        for field, text in labelled:
            for lang in LANGS:
                for name in self.template(entry, f"{field}.{lang}", text.get(lang)):
                    used.add(name)
                    if name not in names:
                        self.fail(entry, f"{field}.{lang} uses {{{name}}}, which params lacks")
        for name in names:
            if name not in used:
                self.fail(entry, f"param {name!r} is listed but no text uses it")
        if "actor" in texts:
            for lang in LANGS:
                if _placeholders(texts["actor"].get(lang)) or "[" in texts["actor"].get(lang):
                    self.fail(entry, f"actor.{lang} cannot use placeholders")
        if "screen" in texts:
            examples = {n: params[n].example for n in names if n in params}
            self.within_limit(entry, "screen", texts["screen"], examples)

        for field, value_code in (("code", code), ("reversal_code", reversal_code)):
            if self.check_codes and value_code is not None and value_code not in codes:
                self.fail(entry, f"{field} {value_code!r} has no fallback text in [codes]")

        spec = _SPEC.get(key)
        if spec is not None:
            wanted = (
                ("code", code, spec.code),
                ("reversal_code", reversal_code, spec.reversal_code),
                ("check_code", check_code, spec.check_code),
                ("category", category, spec.category),
                ("terminal_action", action, spec.terminal_action),
            )
            for field, got, expected in wanted:
                if got is None and body.get(field) not in (None, ""):
                    continue  # malformed, already reported
                if got != expected:
                    self.fail(
                        entry,
                        f"{field} is {_show(got or '')}, but spec/reasons.md requires "
                        f"{_show(expected or '')}",
                    )

        if len(self.problems) != before or set(texts) != {"actor", "screen", "cause"}:
            return None
        return Reason(
            key=key,
            code=code,
            reversal_code=reversal_code,
            check_code=check_code,
            category=category,
            actor=texts["actor"],
            terminal_action=action,
            screen=texts["screen"],
            cause=texts["cause"],
            remedy=tuple(remedy),
            params=tuple(names),
        )

    def load(self, data: Mapping[str, object]) -> Catalog:
        for extra in sorted(set(data) - _TOP_LEVEL):
            self.fail(extra, "unknown top-level table (allowed: reasons, codes, params)")
        for required in ("reasons", "codes"):
            if required not in data:
                self.fail(required, f"the [{required}] table is missing")
        params = self.load_params(data.get("params"))
        codes = self.load_codes(data.get("codes"))
        self.check_codes = "codes" in data

        reasons: dict[str, Reason] = {}
        section = self.table(data.get("reasons", {}), "reasons", "[reasons]") or {}
        seen: dict[str, str] = {}
        for key, value in section.items():
            entry = f'reasons."{key}"'
            folded = key.casefold()
            if folded in seen:
                self.fail(entry, f"duplicate of {seen[folded]!r} (reason keys ignore case)")
                continue
            seen[folded] = key
            if not _KEY.match(key):
                self.fail(
                    entry, "a reason key is lower-case words joined by dots, e.g. card.frozen"
                )
                continue
            reason = self.load_reason(key, value, params, codes)
            if reason is not None:
                reasons[key] = reason
        for key in sorted(REQUIRED_KEYS - set(seen)):
            self.fail(f'reasons."{key}"', "missing: spec/reasons.md requires this key")

        if self.problems:
            raise CatalogError(self.path, self.problems)
        return Catalog(reasons, codes, params, self.path)


def _parse(name: str, text: str) -> Mapping[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(name, [("(file)", f"not valid TOML: {exc}")]) from exc


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file; ``None`` loads the packaged ``catalog.toml``.

    Raises CatalogError, naming the file, the entry and the problem, when the file
    cannot be read or parsed, lacks or changes a key of spec/reasons.md, repeats a
    key (ignoring case), has a screen text over ``SCREEN_LIMITS``, lacks zh or en
    in a text, has an unknown field, category or terminal action, or uses a code
    without fallback text.
    """
    name, text = read_text(
        __name__,
        "catalog.toml",
        path,
        lambda name, message: CatalogError(name, [("(file)", message)]),
    )
    return _Loader(name).load(_parse(name, text))


@cache
def catalog() -> Catalog:
    """The packaged catalog, loaded and validated once."""
    return load_catalog()


# ---------------------------------------------------------------------------
# Sentences: fact texts that are not a reason (the diagnosis' case sentences)
# ---------------------------------------------------------------------------

_SENTENCE_FIELDS = frozenset({"zh", "en", "facts", "zh_facts", "en_facts", "optional"})


def _fill(
    template: str, lang: Lang, required: Mapping[str, object], optional: Mapping[str, object]
) -> str:
    """A sentence filled in: a required fact as an f-string shows it (``format(value)``,
    a ``Text`` in ``lang``); an optional segment kept only when its facts are there."""

    def shown(name: str) -> str:
        if name in required:
            value = required[name]
            return value.get(lang) if isinstance(value, Text) else format(value)
        return _fact_text(optional[name], lang)

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: shown(m.group(1)), text)

    def segment(match: re.Match[str]) -> str:
        inner = match.group(1)
        present = all(
            optional.get(n) is not None and _fact_text(optional[n], lang)
            for n in _placeholders(inner)
        )
        return fill(inner) if present else ""

    return fill(_SEGMENT.sub(segment, template))


@dataclass(frozen=True, slots=True)
class Sentence:
    """One fact sentence in Chinese and English, and the facts it needs.

    ``facts`` appear in both languages, ``zh_facts`` / ``en_facts`` in one only (a
    word one language needs and the other does not); all are required, and
    rendering without one is an error of the caller. ``optional`` facts sit in
    ``[...]`` segments, left out when the fact is missing, like the catalog's texts.
    """

    id: str
    text: Text
    facts: tuple[str, ...]
    optional: tuple[str, ...] = ()
    zh_facts: tuple[str, ...] = ()
    en_facts: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        """Every required fact, of either language."""
        return (*self.facts, *self.zh_facts, *self.en_facts)

    def render(self, lang: Lang, **facts: object) -> str:
        """The sentence in ``lang`` with ``facts`` filled in.

        TypeError when a required fact is not passed or a fact is passed that the
        sentence does not declare: the caller and the data disagree.
        """
        missing = [n for n in self.required if n not in facts]
        unknown = sorted(set(facts) - set(self.required) - set(self.optional))
        if missing or unknown:
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"undeclared {', '.join(unknown)}"] if unknown else []
            raise TypeError(f"sentence {self.id!r}: {'; '.join(problems)}")
        required = {n: facts[n] for n in self.required}
        optional = {n: facts[n] for n in self.optional if n in facts}
        return _fill(self.text.get(lang), lang, required, optional)


class Sentences:
    """The loaded sentences by id, and the word tables (build with :func:`load_sentences`)."""

    __slots__ = ("_path", "_sentences", "_words")

    def __init__(
        self,
        sentences: Mapping[str, Sentence],
        path: str = "<memory>",
        words: Mapping[str, Mapping[str, Text]] | None = None,
    ) -> None:
        self._sentences: Mapping[str, Sentence] = MappingProxyType(dict(sentences))
        self._words: Mapping[str, Mapping[str, Text]] = MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in (words or {}).items()}
        )
        self._path = path

    @property
    def path(self) -> str:
        """The file the sentences were loaded from."""
        return self._path

    def __getitem__(self, sid: str) -> Sentence:
        sentence = self._sentences.get(sid)
        if sentence is None:
            close = difflib.get_close_matches(sid, list(self._sentences), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown sentence {sid!r} in {self._path}{hint}")
        return sentence

    def __contains__(self, sid: object) -> bool:
        return sid in self._sentences

    def __iter__(self) -> Iterator[Sentence]:
        return iter(self._sentences.values())

    def __len__(self) -> int:
        return len(self._sentences)

    def render(self, sid: str, lang: Lang, **facts: object) -> str:
        """Sentence ``sid`` in ``lang`` (see :meth:`Sentence.render`)."""
        return self[sid].render(lang, **facts)

    def words(self, table: str) -> Mapping[str, Text]:
        """Word table ``[words.<table>]``: key -> the word in both languages."""
        found = self._words.get(table)
        if found is None:
            raise KeyError(f"no word table {table!r} in {self._path}")
        return found


def _names(loader: _Loader, entry: str, body: dict[str, object], field: str) -> list[str]:
    raw = body.get(field, [])
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        loader.fail(entry, f"{field} must be a list of fact names")
        return []
    names = [str(n) for n in raw]
    for name in names:
        if not _NAME.match(name):
            loader.fail(entry, f"{field}: {name!r} is not a Python identifier")
    for name in sorted({n for n in names if names.count(n) > 1}):
        loader.fail(entry, f"{field} lists {name!r} twice")
    return names


def _load_sentence(loader: _Loader, sid: str, value: object) -> Sentence | None:
    entry = f"sentence.{sid}"
    before = len(loader.problems)
    if not _KEY.match(sid):
        loader.fail(entry, "a sentence id is lower-case words joined by dots or underscores")
        return None
    body = loader.table(value, entry, "a sentence")
    if body is None:
        return None
    for extra in sorted(set(body) - _SENTENCE_FIELDS):
        loader.fail(
            entry, f"unknown field {extra!r} (allowed: {', '.join(sorted(_SENTENCE_FIELDS))})"
        )
    text = loader.text({lang: body.get(lang) for lang in LANGS}, entry, "text")
    both = _names(loader, entry, body, "facts")
    only = {lang: _names(loader, entry, body, f"{lang}_facts") for lang in LANGS}
    optional = _names(loader, entry, body, "optional")
    groups = [both, only["zh"], only["en"], optional]
    every = [n for g in groups for n in g]
    for name in sorted({n for n in every if every.count(n) > 1}):
        loader.fail(
            entry, f"{name!r} is declared in more than one of facts, zh_facts, en_facts, optional"
        )
    if text is None:
        return None
    for lang in LANGS:
        template = text.get(lang)
        stripped = _SEGMENT.sub("", template)
        if "[" in stripped or "]" in stripped:
            loader.fail(
                entry,
                f"{lang} has an unbalanced or nested '[' ']' (brackets mark optional segments; "
                "write 【】 for visible brackets)",
            )
            continue
        for inner in _SEGMENT.findall(template):
            if not _placeholders(inner):
                loader.fail(
                    entry, f"{lang} has an optional segment without a placeholder: {inner!r}"
                )
        used = _placeholders(template)
        required = [*both, *only[lang]]
        other = only["en" if lang == "zh" else "zh"]
        for name in sorted(set(used) - set(required) - set(optional)):
            hint = " (it is declared for the other language only)" if name in other else ""
            loader.fail(entry, f"{lang} uses {{{name}}}, which is not declared{hint}")
        for name in required:
            if name not in used:
                loader.fail(entry, f"{lang} lacks {{{name}}}, a required fact")
        in_segments = {n for inner in _SEGMENT.findall(template) for n in _placeholders(inner)}
        for name in optional:
            if name in used and name not in in_segments:
                loader.fail(entry, f"{lang}: optional fact {{{name}}} must sit in a '[...]'")
        for name in sorted(set(required) & in_segments):
            loader.fail(entry, f"{lang}: required fact {{{name}}} sits in an optional segment")
    for name in optional:
        if not any(name in _placeholders(text.get(lang)) for lang in LANGS):
            loader.fail(entry, f"optional fact {name!r} is declared but no language uses it")
    if len(loader.problems) != before:
        return None
    return Sentence(sid, text, tuple(both), tuple(optional), tuple(only["zh"]), tuple(only["en"]))


def _load_words(loader: _Loader, section: object) -> dict[str, dict[str, Text]]:
    out: dict[str, dict[str, Text]] = {}
    tables = loader.table(section, "words", "[words]") or {}
    for name, table in tables.items():
        body = loader.table(table, f"words.{name}", "a word table")
        if body is None:
            continue
        words: dict[str, Text] = {}
        for key, value in body.items():
            word = loader.text(value, f'words.{name}."{key}"', "word")
            if word is not None:
                words[key] = word
        out[name] = words
    return out


def load_sentences(path: str | Path | None = None, *, package: str) -> Sentences:
    """Load and validate a sentences file: ``[sentence.<id>]`` tables with ``zh``, ``en``,
    ``facts`` (placeholders both languages use), ``zh_facts`` / ``en_facts`` (used by one
    language only), ``optional`` (placeholders in ``[...]``); ``[words.<table>]`` word
    tables, each key with ``zh`` and ``en``.

    ``None`` loads ``sentences.toml`` packaged in ``package``. Raises CatalogError naming
    the file, the entry and each problem: a missing or empty language, a placeholder that
    is not declared, a declared fact a language does not use, an unknown field.
    """
    name, text = read_text(
        package,
        "sentences.toml",
        path,
        lambda name, message: CatalogError(name, [("(file)", message)]),
    )
    data = _parse(name, text)
    loader = _Loader(name)
    for extra in sorted(set(data) - {"sentence", "words"}):
        loader.fail(extra, "unknown top-level table (allowed: sentence, words)")
    section = loader.table(data.get("sentence", {}), "sentence", "[sentence]") or {}
    sentences: dict[str, Sentence] = {}
    for sid, value in section.items():
        sentence = _load_sentence(loader, sid, value)
        if sentence is not None:
            sentences[sid] = sentence
    words = _load_words(loader, data.get("words", {}))
    if loader.problems:
        raise CatalogError(name, loader.problems)
    return Sentences(sentences, name, words)
