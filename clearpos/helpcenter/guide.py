"""The hand-written half of the help pages: ``guide.toml`` and its loader.

The reason catalog says what the screen shows, the code, who acts, the cause
and the remedy steps. The guide adds what a merchant needs on top of that and
the catalog does not hold: the situation of SCENARIOS.md each key belongs to,
its meaning in one sentence, the causes clearpos tells apart and how to know
which applies (with the ``doctor`` line that shows it), what not to do, and
when to open a ticket. :func:`load_guide` refuses a guide that lacks a catalog
key, names a key or code the catalog does not have, or breaks the format, and
names the file, the entry and each problem::

    >>> from clearpos.helpcenter.guide import guide
    >>> entry = guide().reasons["card.frozen"]
    >>> entry.scenarios, entry.groups
    (('A2',), ('A',))
    >>> guide().situations["C"].link.zh
    '请重新签到'
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

from ..datafile import read_text
from ..reasons import LANGS, Catalog, Text, catalog

__all__ = [
    "GROUPS",
    "SCENARIO_ROWS",
    "Cause",
    "CodeNote",
    "Entry",
    "Guide",
    "GuideError",
    "Situation",
    "guide",
    "load_guide",
]

GROUPS: tuple[str, ...] = ("A", "B", "C", "D", "E")
"""The situations of SCENARIOS.md, in index order."""

SCENARIO_ROWS: Mapping[str, int] = MappingProxyType({"A": 11, "B": 8, "C": 6, "D": 6, "E": 0})
"""How many numbered rows each situation of SCENARIOS.md has (E has none: write ``"E"``)."""

_SCENARIO = re.compile(r"^([A-E])([1-9][0-9]?)?$")
_SLUG = re.compile(r"^[a-z][a-z0-9-]*$")
_DOCTOR = re.compile(r"^[a-z][a-z ]*[a-z]$")


@dataclass(frozen=True, slots=True)
class Situation:
    """One situation of SCENARIOS.md (A-E): a page ``s/<slug>`` and a group of the index."""

    letter: str
    slug: str
    title: Text
    """Page title: the words a merchant searches for."""
    link: Text
    """Visible text of the index link to the page."""
    summary: Text
    steps: tuple[Text, ...] = ()
    dont: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class Cause:
    """One cause clearpos tells apart, and how to know it is the one."""

    text: Text
    tell: Text
    doctor: str | None = None
    """The ``clearpos pos ... doctor`` line that shows it (its name, e.g. ``signed on``)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """What the guide says about one reason key."""

    key: str
    scenarios: tuple[str, ...]
    meaning: Text
    causes: tuple[Cause, ...]
    dont: tuple[Text, ...]
    ticket: Text

    @property
    def groups(self) -> tuple[str, ...]:
        """The situations (A-E) of the key's scenarios, first mention first, each once."""
        seen: list[str] = []
        for scenario in self.scenarios:
            if scenario[0] not in seen:
                seen.append(scenario[0])
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class CodeNote:
    """Extra words for the page of a field 39 code."""

    code: str
    meaning: Text | None = None
    """What the code means, when its reasons do not say it (06, 98)."""
    reversal: Text | None = None
    """What the code means as the reason of a reversal (0400 field 39)."""


@dataclass(frozen=True, slots=True)
class Guide:
    """The loaded guide: situations by letter, entries by reason key, notes by code."""

    situations: Mapping[str, Situation]
    reasons: Mapping[str, Entry]
    codes: Mapping[str, CodeNote]
    path: str


class GuideError(ValueError):
    """A guide that cannot be used: names the file, the entry and each problem."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        if len(problems) == 1:
            entry, problem = problems[0]
            message = f"{path}: {entry}: {problem}"
        else:
            lines = "\n".join(f"  {entry}: {problem}" for entry, problem in problems)
            message = f"{path}: {len(problems)} problems\n{lines}"
        super().__init__(message)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Loader:
    """Validates one parsed guide against a catalog, collecting every problem."""

    def __init__(self, path: str, cat: Catalog) -> None:
        self.path = path
        self.catalog = cat
        self.problems: list[tuple[str, str]] = []

    def fail(self, entry: str, problem: str) -> None:
        self.problems.append((entry, problem))

    def table(self, value: object, entry: str, what: str) -> dict[str, object] | None:
        if not isinstance(value, dict):
            self.fail(entry, f"{what} must be a table, not {_show(value)}")
            return None
        return {str(k): v for k, v in value.items()}

    def fields(self, body: Mapping[str, object], entry: str, allowed: set[str]) -> None:
        for extra in sorted(set(body) - allowed):
            self.fail(entry, f"unknown field {extra!r} (allowed: {', '.join(sorted(allowed))})")

    def text(self, value: object, entry: str, field: str) -> Text | None:
        if value is None:
            self.fail(entry, f"{field} is missing")
            return None
        table = self.table(value, entry, field)
        if table is None:
            return None
        for extra in sorted(set(table) - set(LANGS)):
            self.fail(entry, f"{field} has unknown language {extra!r} (use zh and en)")
        parts: dict[str, str] = {}
        for lang in LANGS:
            raw = table.get(lang)
            if not isinstance(raw, str) or not raw.strip():
                self.fail(entry, f"{field}.{lang} must be a non-empty string")
            elif raw != raw.strip() or "\n" in raw:
                self.fail(entry, f"{field}.{lang} must be one line without outer spaces")
            else:
                parts[lang] = raw
        if len(parts) != len(LANGS):
            return None
        return Text(zh=parts["zh"], en=parts["en"])

    def texts(self, value: object, entry: str, field: str, *, required: bool) -> tuple[Text, ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list) or (required and not value):
            need = "a non-empty list" if required else "a list"
            self.fail(entry, f"{field} must be {need} of {{zh, en}} tables")
            return ()
        out: list[Text] = []
        for number, item in enumerate(value, start=1):
            text = self.text(item, entry, f"{field} {number}")
            if text is not None:
                out.append(text)
        return tuple(out)

    def one_sentence(self, entry: str, field: str, text: Text) -> None:
        zh = text.zh.rstrip("。")
        if re.search(r"[。！？]", zh):
            self.fail(entry, f"{field}.zh must be one sentence: {text.zh!r}")
        if re.search(r"[.!?]\s+[A-Z]", text.en):
            self.fail(entry, f"{field}.en must be one sentence: {text.en!r}")

    # -- sections --------------------------------------------------------------

    def situations(self, section: object) -> dict[str, Situation]:
        out: dict[str, Situation] = {}
        table = self.table(section, "situations", "[situations]")
        if table is None:
            return out
        slugs: dict[str, str] = {}
        for letter, value in table.items():
            entry = f"situations.{letter}"
            if letter not in GROUPS:
                self.fail(entry, f"unknown situation (SCENARIOS.md has {', '.join(GROUPS)})")
                continue
            body = self.table(value, entry, "a situation")
            if body is None:
                continue
            self.fields(body, entry, {"slug", "title", "link", "summary", "steps", "dont"})
            slug = body.get("slug")
            if not isinstance(slug, str) or not _SLUG.match(slug):
                self.fail(entry, f"slug must be lower-case words joined by '-', not {_show(slug)}")
                slug = None
            elif slug in slugs:
                self.fail(entry, f"slug {slug!r} is also used by situations.{slugs[slug]}")
            else:
                slugs[slug] = letter
            title = self.text(body.get("title"), entry, "title")
            link = self.text(body.get("link"), entry, "link")
            summary = self.text(body.get("summary"), entry, "summary")
            steps = self.texts(body.get("steps"), entry, "steps", required=False)
            dont = self.texts(body.get("dont"), entry, "dont", required=False)
            if slug and title and link and summary:
                out[letter] = Situation(letter, slug, title, link, summary, steps, dont)
        for letter in GROUPS:
            if letter not in table:
                self.fail(f"situations.{letter}", "missing: every situation of SCENARIOS.md")
        return out

    def cause(self, value: object, entry: str, number: int) -> Cause | None:
        body = self.table(value, entry, f"cause {number}")
        if body is None:
            return None
        self.fields(body, f"{entry} cause {number}", {"zh", "en", "tell", "doctor"})
        text = self.text({k: body.get(k) for k in LANGS}, entry, f"cause {number}")
        tell = self.text(body.get("tell"), entry, f"cause {number} tell")
        doctor = body.get("doctor")
        if doctor is not None and (not isinstance(doctor, str) or not _DOCTOR.match(doctor)):
            self.fail(entry, f"cause {number} doctor must name a doctor line, not {_show(doctor)}")
            doctor = None
        if text is None or tell is None:
            return None
        return Cause(text, tell, doctor if isinstance(doctor, str) else None)

    def entry(self, key: str, value: object) -> Entry | None:
        entry = f'reasons."{key}"'
        body = self.table(value, entry, "an entry")
        if body is None:
            return None
        before = len(self.problems)
        self.fields(body, entry, {"scenarios", "meaning", "causes", "dont", "ticket"})
        scenarios: list[str] = []
        raw = body.get("scenarios")
        if not isinstance(raw, list) or not raw:
            self.fail(entry, 'scenarios must be a non-empty list such as ["A2"]')
        else:
            for item in raw:
                m = _SCENARIO.match(item) if isinstance(item, str) else None
                if m is None or (m.group(2) is None) != (SCENARIO_ROWS[m.group(1)] == 0):
                    self.fail(entry, f"scenario {_show(item)} is not a row of SCENARIOS.md")
                elif m.group(2) is not None and int(m.group(2)) > SCENARIO_ROWS[m.group(1)]:
                    self.fail(entry, f"scenario {item!r} is not a row of SCENARIOS.md")
                elif item in scenarios:
                    self.fail(entry, f"scenario {item!r} is listed twice")
                else:
                    scenarios.append(item)
        meaning = self.text(body.get("meaning"), entry, "meaning")
        if meaning is not None:
            self.one_sentence(entry, "meaning", meaning)
        causes: list[Cause] = []
        raw_causes = body.get("causes")
        if not isinstance(raw_causes, list) or not raw_causes:
            self.fail(entry, 'causes must be a non-empty list ([[reasons."key".causes]])')
        else:
            for number, item in enumerate(raw_causes, start=1):
                cause = self.cause(item, entry, number)
                if cause is not None:
                    causes.append(cause)
        dont = self.texts(body.get("dont"), entry, "dont", required=True)
        ticket = self.text(body.get("ticket"), entry, "ticket")
        if len(self.problems) != before or meaning is None or ticket is None:
            return None
        return Entry(key, tuple(scenarios), meaning, tuple(causes), dont, ticket)

    def code_note(self, code: str, value: object) -> CodeNote | None:
        entry = f'codes."{code}"'
        body = self.table(value, entry, "a code note")
        if body is None:
            return None
        self.fields(body, entry, {"meaning", "reversal"})
        if code not in self.catalog.codes:
            self.fail(entry, "the catalog has no such field 39 code")
            return None
        meaning = self.text(body["meaning"], entry, "meaning") if "meaning" in body else None
        reversal = self.text(body["reversal"], entry, "reversal") if "reversal" in body else None
        if meaning is None and reversal is None:
            self.fail(entry, "a code note needs meaning, reversal or both")
            return None
        return CodeNote(code, meaning, reversal)

    def load(self, data: Mapping[str, object]) -> Guide:
        for extra in sorted(set(data) - {"situations", "reasons", "codes"}):
            self.fail(extra, "unknown top-level table (allowed: situations, reasons, codes)")
        situations = self.situations(data.get("situations", {}))
        entries: dict[str, Entry] = {}
        section = self.table(data.get("reasons", {}), "reasons", "[reasons]") or {}
        for key, value in section.items():
            if key not in self.catalog:
                self.fail(f'reasons."{key}"', "the catalog has no such reason key")
                continue
            item = self.entry(key, value)
            if item is not None:
                entries[key] = item
        for key in self.catalog.keys():  # noqa: SIM118 (a Catalog iterates Reasons)
            if key not in section:
                self.fail(
                    f'reasons."{key}"',
                    "missing: every catalog key needs an entry (scenarios, meaning, causes, "
                    "dont, ticket)",
                )
        notes: dict[str, CodeNote] = {}
        codes = self.table(data.get("codes", {}), "codes", "[codes]") or {}
        for code, value in codes.items():
            note = self.code_note(code, value)
            if note is not None:
                notes[code] = note
        for code in sorted(self.catalog.codes):
            answered = self.catalog.keys_for_code(code)
            reversal = [r for r in self.catalog if r.reversal_code == code]
            note = notes.get(code)
            if not answered and not reversal and (note is None or note.meaning is None):
                self.fail(
                    f'codes."{code}"',
                    "no reason key answers with this code: its page needs a meaning here",
                )
        if self.problems:
            raise GuideError(self.path, self.problems)
        ordered = {key: entries[key] for key in self.catalog.keys()}  # noqa: SIM118
        return Guide(
            MappingProxyType({k: situations[k] for k in GROUPS}),
            MappingProxyType(ordered),
            MappingProxyType(dict(sorted(notes.items()))),
            self.path,
        )


def load_guide(path: str | Path | None = None, cat: Catalog | None = None) -> Guide:
    """Load and validate a guide against ``cat`` (default: the packaged catalog).

    ``None`` loads the packaged ``guide.toml``. Raises :class:`GuideError` naming
    the file, the entry and every problem: a catalog key without an entry, a key
    or code the catalog lacks, a situation of SCENARIOS.md missing, a scenario
    that is not a row of SCENARIOS.md, a meaning of more than one sentence, a
    text without zh or en, an unknown field.
    """
    cat = cat if cat is not None else catalog()
    name, text = read_text(
        __package__ or "clearpos.helpcenter",
        "guide.toml",
        path,
        lambda name, message: GuideError(name, [("(file)", message)]),
    )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GuideError(name, [("(file)", f"not valid TOML: {exc}")]) from exc
    return _Loader(name, cat).load(data)


@cache
def guide() -> Guide:
    """The packaged guide, validated against the packaged catalog once."""
    return load_guide()
