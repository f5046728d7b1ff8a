"""Masking for logs, errors, pages and exports.

A PAN is shown as its first 6 and last 4 digits; tracks, PIN blocks, chip
data, keys and MACs are never shown. :func:`render` is the one way to print a
decoded message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .dialect import FIELDS

#: digits in groups joined by one space, dash or dot: how people write numbers
_RUN = re.compile(r"(?<![\d*])\d+(?:[ .\-]\d+)*(?![\d*])")
#: what follows a PAN in track data: 2's ``=``/``D`` + expiry, service code and
#: discretionary data, or 1's ``^NAME^`` + the same (up to the end sentinel)
_GROUP = re.compile(r"\d+")
#: a track's start sentinel: ``%B`` (track 1) or ``;`` (track 2), right before the PAN
_TRACK_START = re.compile(r"(?:%B|;)$")
_TRACK_TAIL = re.compile(r"(?:[=D]\d{4,}|\^[^^?\n]{0,26}\^[\d ]*)\??")
#: first digit of a payment card (ISO/IEC 7812 major industry identifier): 3 travel
#: (Amex, JCB, Diners), 4-5 banking (Visa, Mastercard), 6 (UnionPay, Discover)
_CARD_MII = frozenset("3456")
TRACK_HIDDEN = "[track data hidden]"


def mask_pan(pan: str) -> str:
    """``6222021234567890123`` -> ``622202*********0123``; short values fully hidden."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def luhn_ok(digits: str) -> bool:
    """The ISO/IEC 7812 check digit (Luhn mod 10) of ``digits`` is right."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(digits: str, *, separated: bool) -> bool:
    """Whether a 13-19 digit string written in free text is to be taken for a PAN.

    * 16-19 digits in one piece: always (what the host has always masked; a test
      card need not pass Luhn, and nothing else people type is that long);
    * 16-19 digits in groups: a card's first digit (3-6) or a good Luhn digit;
    * 13-15 digits: a card's first digit and a good Luhn digit -- so that merchant
      ids (15 digits, starting 8) and other ids stay readable.
    """
    n = len(digits)
    if not 13 <= n <= 19:
        return False
    if n >= 16:
        return not separated or digits[0] in _CARD_MII or luhn_ok(digits)
    return digits[0] in _CARD_MII and luhn_ok(digits)


@dataclass(frozen=True, slots=True)
class PanMatch:
    """A card number found in text: ``text[start:end]`` (track data included)."""

    start: int
    end: int
    pan: str
    track: bool


#: ``(digits, separated) -> bool``: whether a candidate is a card number
PanTest = Callable[[str, bool], bool]


def _is_card(digits: str, separated: bool) -> bool:
    return is_card_number(digits, separated=separated)


def find_pans(text: str, is_pan: PanTest = _is_card) -> Iterator[PanMatch]:
    """Every card number in ``text``, written in one piece or in groups of digits
    joined by single spaces, dashes or dots (``6222 0212 3456 7890 123``,
    ``3782-822463-10005``), with the track data that follows one (``=2812101...``).

    A run of groups longer than 19 digits is searched at group boundaries, longest
    candidate first: ``6222021234567890123 12`` holds a PAN and a 12. ``is_pan``
    decides which candidates count (default :func:`is_card_number`; the leak scan
    asks "is it one of the test data's PANs?").
    """
    done = 0  # track data already taken with its PAN is not searched again
    for run in _RUN.finditer(text):
        if run.start() < done:
            continue
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(text, run.start(), run.end())]
        for i, j, digits in _best_windows(text, groups, is_pan):
            start, end = groups[i][0], groups[j][1]
            tail = _TRACK_TAIL.match(text, end) if j == len(groups) - 1 else None
            if tail is not None:
                done = tail.end()
                sentinel = _TRACK_START.search(text, 0, start)
                yield PanMatch(sentinel.start() if sentinel else start, done, digits, True)
            else:
                yield PanMatch(start, end, digits, False)


def _best_windows(
    text: str, groups: list[tuple[int, int]], is_pan: PanTest
) -> list[tuple[int, int, str]]:
    """Non-overlapping runs of whole groups ``(first, last, digits)`` that are card
    numbers, in text order; where candidates overlap, the one that looks most like a
    card wins (a card's first digit, then a good Luhn digit, then the longest)."""
    found: list[tuple[int, int, str]] = []
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 12 and is_pan(digits, j > i):
                found.append((i, j, digits))
    if len(found) <= 1:
        return found
    found.sort(key=lambda w: (w[2][0] not in _CARD_MII, not luhn_ok(w[2]), -len(w[2]), w[0]))
    taken: list[tuple[int, int, str]] = []
    for w in found:
        if all(w[1] < t[0] or w[0] > t[1] for t in taken):
            taken.append(w)
    return sorted(taken)


def scrub(text: str) -> str:
    """Free text with every card number (see :func:`find_pans`) shown as its first 6
    and last 4 digits, and any track data after one dropped.

    >>> scrub("card 6222 0212 3456 7890 123 at 898310048161234")
    'card 622202*********0123 at 898310048161234'
    >>> scrub("swiped 6225880000001017=28121011234567")
    'swiped 622588******1017 [track data hidden]'
    """
    out: list[str] = []
    at = 0
    for m in find_pans(text):
        out.append(text[at : m.start])
        out.append(mask_pan(m.pan) + (" " + TRACK_HIDDEN if m.track else ""))
        at = m.end
    out.append(text[at:])
    return "".join(out)


def _track_summary(track: str) -> str:
    pan = re.split(r"[=D^]", track.lstrip("%B;"), maxsplit=1)[0]
    return f"[track, PAN {mask_pan(pan)}]"


def render_value(field: int, value: str | bytes, mti: str = "") -> str:
    """One field's value, safe to log."""
    spec = FIELDS.get(field)
    if spec is not None and spec.sensitive and field not in (2, 35, 36, 52, 55, 62, 64):
        return f"[card data, {len(value)} {'bytes' if isinstance(value, bytes) else 'characters'} hidden]"
    if field == 2 and isinstance(value, str):
        return mask_pan(value)
    if field in (35, 36) and isinstance(value, str):
        return _track_summary(value)
    if field == 52:
        return "[PIN block hidden]"
    if field == 55:
        return f"[chip data, {len(value)} bytes hidden]"
    if field == 64:
        return "[MAC]"
    if field == 62:
        if mti == "0810" and isinstance(value, bytes) and value[:2].isdigit():
            # parameter records are public text (host name, notices)
            try:
                return repr(value.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        return f"[keys/parameters, {len(value)} bytes hidden]"
    if field == 48 and mti == "0320" and isinstance(value, str) and len(value) > 4:
        return repr(_batch_records(value))
    if isinstance(value, bytes):
        return value.hex().upper()
    return repr(scrub(value) if field in (44, 63) else value)


def _batch_records(value: str) -> str:
    """Batch-upload records (count N2 + N40 each) with their PANs masked."""
    out = [value[:2]]
    for i in range(2, len(value) - 39, 40):
        rec = value[i : i + 40]
        pan = rec[8:28].lstrip("0")
        out.append(f"{rec[:2]}/{rec[2:8]}/{mask_pan(pan)}/{rec[28:40]}")
    return " ".join(out)


def render(mti: str, fields: Mapping[int, str | bytes]) -> str:
    """A multi-line, masked description of a message."""
    lines = [f"MTI {mti}"]
    for n in sorted(fields):
        spec = FIELDS.get(n)
        meaning = spec.meaning if spec else "?"
        lines.append(f"  {n:>3} {meaning:<48} {render_value(n, fields[n], mti)}")
    return "\n".join(lines)


def render_dict(mti: str, fields: Mapping[int, str | bytes]) -> dict[str, str]:
    """Masked fields as a JSON-friendly dict (field number -> safe text)."""
    out = {"mti": mti}
    for n in sorted(fields):
        v = render_value(n, fields[n], mti)
        out[str(n)] = v[1:-1] if v.startswith("'") and v.endswith("'") else v
    return out
