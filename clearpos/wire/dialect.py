"""The clearpos POS 8583 dialect, declared once (spec/pos8583.md §3).

Each field is one row: number, format, length type, maximum length (digits for
n/z, bytes for an/ans/b), justification and meaning. The codec compiles this
table into per-field readers and writers; nothing else in clearpos restates a
field's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Fmt(Enum):
    """Data formats of the dialect."""

    N = "n"  # BCD digits
    Z = "z"  # BCD track data, '=' written as nibble D
    AN = "an"  # ASCII alphanumeric
    ANS = "ans"  # ASCII printable
    B = "b"  # binary


class Len(Enum):
    """Length types: fixed, 1-byte BCD prefix, 2-byte BCD prefix."""

    FIXED = 0
    LLVAR = 1
    LLLVAR = 2


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the dialect.

    ``length`` counts digits for n and z fields and bytes for an, ans and b
    fields; for variable fields it is the maximum. ``left`` marks a fixed
    numeric field that is left-justified (field 22). ``sensitive`` fields are
    never rendered in clear by :mod:`clearpos.wire.mask`.
    """

    number: int
    fmt: Fmt
    len_type: Len
    length: int
    meaning: str
    left: bool = False
    sensitive: bool = False
    #: text encoding of an/ans fields: ``ascii`` (printable only) or ``gbk`` (the
    #: Chinese text stock terminals and hosts put in 63; ASCII is a subset of it)
    charset: str = "ascii"

    @property
    def label(self) -> str:
        """The format as the spec writes it, e.g. ``n..19 LLVAR``."""
        dots = "" if self.len_type is Len.FIXED else ".."
        bits = self.length * 8 if self.fmt is Fmt.B and self.len_type is Len.FIXED else self.length
        suffix = "" if self.len_type is Len.FIXED else f" {self.len_type.name}"
        return f"{self.fmt.value}{dots}{bits}{suffix}"


_N, _Z, _AN, _ANS, _B = Fmt.N, Fmt.Z, Fmt.AN, Fmt.ANS, Fmt.B
_FIX, _LL, _LLL = Len.FIXED, Len.LLVAR, Len.LLLVAR

#: The dialect: field number -> spec. Fields 1 (secondary bitmap) and those not
#: listed here are not part of it.
FIELDS: dict[int, FieldSpec] = {
    f.number: f
    for f in (
        FieldSpec(2, _N, _LL, 19, "primary account number (keyed or chip)", sensitive=True),
        FieldSpec(3, _N, _FIX, 6, "processing code"),
        FieldSpec(4, _N, _FIX, 12, "amount in fen"),
        FieldSpec(11, _N, _FIX, 6, "system trace audit number (STAN)"),
        FieldSpec(12, _N, _FIX, 6, "host local time hhmmss"),
        FieldSpec(13, _N, _FIX, 4, "host local date MMDD"),
        FieldSpec(14, _N, _FIX, 4, "card expiry YYMM"),
        FieldSpec(15, _N, _FIX, 4, "settlement date MMDD"),
        FieldSpec(22, _N, _FIX, 3, "POS entry mode", left=True),
        FieldSpec(23, _N, _FIX, 3, "card sequence number"),
        FieldSpec(25, _N, _FIX, 2, "POS condition code"),
        FieldSpec(26, _N, _FIX, 2, "PIN capture code"),
        FieldSpec(32, _N, _LL, 11, "acquiring institution code"),
        FieldSpec(35, _Z, _LL, 37, "track 2", sensitive=True),
        FieldSpec(36, _Z, _LLL, 104, "track 3", sensitive=True),
        FieldSpec(37, _AN, _FIX, 12, "retrieval reference number (RRN)"),
        FieldSpec(38, _AN, _FIX, 6, "authorisation code"),
        FieldSpec(39, _AN, _FIX, 2, "response code / reversal reason"),
        FieldSpec(41, _ANS, _FIX, 8, "terminal id (TID)"),
        FieldSpec(42, _ANS, _FIX, 15, "merchant id (MID)"),
        FieldSpec(44, _AN, _LL, 25, "issuer and acquirer codes"),
        FieldSpec(48, _N, _LLL, 322, "settlement totals / batch upload records"),
        FieldSpec(49, _AN, _FIX, 3, "currency code"),
        FieldSpec(52, _B, _FIX, 8, "PIN block", sensitive=True),
        FieldSpec(53, _N, _FIX, 16, "security control information"),
        FieldSpec(54, _AN, _LLL, 20, "balance"),
        FieldSpec(55, _B, _LLL, 255, "chip data (TLV)", sensitive=True),
        FieldSpec(59, _ANS, _LLL, 999, "terminal information (ASCII TLV)", charset="gbk"),
        FieldSpec(60, _N, _LLL, 17, "transaction type, batch, network management code"),
        FieldSpec(61, _N, _LLL, 29, "original transaction"),
        FieldSpec(62, _B, _LLL, 512, "working keys / parameter records", sensitive=True),
        FieldSpec(
            63, _ANS, _LLL, 163, "operator / card organisation and reason key", charset="gbk"
        ),
        FieldSpec(64, _B, _FIX, 8, "MAC", sensitive=True),
    )
}

MAC_FIELD = 64


# --------------------------------------------------------------------------- private fields

#: what a declaration's ``format`` and ``length_type`` may say
FORMATS = {f.value: f for f in Fmt}
LENGTH_TYPES = {"fixed": Len.FIXED, "llvar": Len.LLVAR, "lllvar": Len.LLLVAR}
_MAX_LENGTH = {Len.FIXED: 999, Len.LLVAR: 99, Len.LLLVAR: 999}
_DECLARATION_KEYS = ("number", "format", "length_type", "length", "meaning", "card_data")

#: the fields of the clearpos dialect itself: a declaration may not redefine them
STANDARD_FIELDS = frozenset(FIELDS)


class DialectError(ValueError):
    """A private-field declaration that cannot be used; each problem names the file,
    the entry, the field and the key. ``items`` holds them as (entry, key, text)."""

    def __init__(self, where: str, items: list[tuple[str, str, str]]) -> None:
        self.items = items
        self.problems = [
            f"{where}: [[dialect.fields]]" + "".join(f" {p}:" for p in (e, k) if p) + f" {t}"
            for e, k, t in items
        ]
        super().__init__("\n".join(self.problems))


def private_fields(entries: object, where: str) -> tuple[FieldSpec, ...]:
    """Private fields an acquirer adds (43, 46, 56, 57 …), declared once each, as
    jPOS's GenericPackager and moov-io's specs declare them:

    ``{ number = 43, format = "ans", length_type = "fixed", length = 40,
    meaning = "card acceptor name", card_data = false }``.

    ``format`` is n, z, an, ans or b; ``length_type`` fixed, llvar or lllvar;
    ``length`` counts digits for n/z and bytes otherwise (the maximum when
    variable); ``card_data`` true makes every rendering hide it. Raises
    :class:`DialectError` with every problem, nothing half-declared.

    >>> private_fields([{"number": 43, "format": "ans", "length_type": "fixed",
    ...                  "length": 40, "meaning": "card acceptor name"}], "x.toml")[0].label
    'ans40'
    >>> private_fields([{"number": 35, "format": "z", "length_type": "llvar", "length": 37,
    ...                  "meaning": "track"}], "x.toml")
    Traceback (most recent call last):
    ...
    clearpos.wire.dialect.DialectError: x.toml: [[dialect.fields]] #1 (field 35): number: field 35 is part of the clearpos dialect (track 2); private fields use numbers it leaves free
    """
    problems: list[tuple[str, str, str]] = []
    out: list[FieldSpec] = []
    if not isinstance(entries, list):
        raise DialectError(where, [("", "fields", "must be an array of tables")])
    seen: set[int] = set()
    for i, e in enumerate(entries, 1):
        head = f"#{i}"
        if not isinstance(e, dict):
            problems.append((head, "", "must be a table"))
            continue
        n = e.get("number")
        if isinstance(n, int) and not isinstance(n, bool):
            head += f" (field {n})"

        def bad(key: str, text: str, head: str = head) -> None:
            problems.append((head, key, text))

        for key in e:
            if key not in _DECLARATION_KEYS:
                bad(key, f"unknown key; use {', '.join(_DECLARATION_KEYS)}")
        if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 63:
            bad("number", "must be a field number 2-63 (64 is the MAC)")
            continue
        if n in STANDARD_FIELDS:
            bad(
                "number",
                f"field {n} is part of the clearpos dialect ({FIELDS[n].meaning}); "
                "private fields use numbers it leaves free",
            )
            continue
        if n in seen:
            bad("number", f"field {n} is declared twice")
            continue
        seen.add(n)
        fmt = FORMATS.get(str(e.get("format", "")))
        if fmt is None:
            bad("format", f"must be one of {' | '.join(FORMATS)}, got {e.get('format')!r}")
        lt = LENGTH_TYPES.get(str(e.get("length_type", "")).lower())
        if lt is None:
            bad(
                "length_type",
                f"must be one of {' | '.join(LENGTH_TYPES)}, got {e.get('length_type')!r}",
            )
        length = e.get("length")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            bad("length", "must be a positive integer (digits for n/z, bytes otherwise)")
            length = None
        elif lt is not None and length > _MAX_LENGTH[lt]:
            bad("length", f"{length} does not fit a {lt.name} field (at most {_MAX_LENGTH[lt]})")
            length = None
        meaning = e.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            bad("meaning", 'say what the field holds, e.g. "card acceptor name"')
        card = e.get("card_data", False)
        if not isinstance(card, bool):
            bad("card_data", "must be true or false")
        if fmt is None or lt is None or length is None or not isinstance(meaning, str):
            continue
        out.append(FieldSpec(n, fmt, lt, length, meaning.strip(), sensitive=card is True))
    if problems:
        raise DialectError(where, problems)
    return tuple(out)


def load_dialect_file(path: str) -> tuple[FieldSpec, ...]:
    """Private fields from a TOML file with a ``[[dialect.fields]]`` array (or a
    top-level ``[[fields]]`` one)."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise DialectError(path, [("", "", f"cannot read the file: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(path, [("", "", f"not TOML: {exc}")]) from None
    table = doc.get("dialect", doc)
    return private_fields(table.get("fields", []) if isinstance(table, dict) else None, path)


def declaration(spec: FieldSpec) -> dict[str, object]:
    """A private field as :func:`private_fields` reads it (for the store's meta)."""
    return {
        "number": spec.number,
        "format": spec.fmt.value,
        "length_type": spec.len_type.name.lower(),
        "length": spec.length,
        "meaning": spec.meaning,
        "card_data": spec.sensitive,
    }
