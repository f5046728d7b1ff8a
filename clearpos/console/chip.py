"""A transaction's chip data as the console shows it (issue 19).

The host journals field 55 masked (``chip_data``: ``{tag: hex}``, the PAN as first
6 / last 4, track 2 equivalent and cardholder name as ``[n bytes hidden]``) and
what the issuer's cryptogram check found (``chip``: CVN, ATC, last ATC, ARQC
result). This module reads those two facts into a :class:`ChipView`: the TVR's
five bytes decoded bit by bit (EMV Book 3 annex C5), the CVM results (9F34), the
AID (4F / 84 / 9F06) and its name, the application label (50), ATC, CVN, the
cryptogram type (9F27), the TSI (9B, annex C6) and every tag by name.

Card data is masked again here, whatever the journal holds: a 5A is shown as
first 6 / last 4, and the tags of :data:`clearpos.wire.tlv.CARD_DATA_TAGS` (57,
9F1F, 5F20...) only by their length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..reasons import Lang
from ..store import JournalRec
from ..wire.emvtags import AID_NAMES, TAG_NAMES, cryptogram_type, cvm_text, tvr_words
from ..wire.mask import mask_pan
from ..wire.tlv import CARD_DATA_TAGS
from .i18n import text

__all__ = ["ChipView", "TagLine", "TvrByte", "chip_view", "tsi_words"]

#: TSI (9B) byte 1, bit 8 down to bit 3 (EMV Book 3 annex C6); the rest is RFU
_TSI: Final[tuple[str, ...]] = (
    "chip.tsi.oda",
    "chip.tsi.cvm",
    "chip.tsi.crm",
    "chip.tsi.issuer_auth",
    "chip.tsi.trm",
    "chip.tsi.script",
)


@dataclass(frozen=True, slots=True)
class TvrByte:
    """One byte of the TVR: its number (1-5), its hex and the words of its set bits."""

    number: int
    hex: str
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TagLine:
    """One tag of field 55: its name and its value as it may be shown."""

    tag: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ChipView:
    """What the chip data of one transaction says; every text in the page's language."""

    aid: str
    aid_tag: str
    application: str
    label: str
    atc: str
    last_atc: str
    cvn: str
    cryptogram: str
    cryptogram_words: str
    arqc_check: str
    tvr: str
    tvr_bytes: tuple[TvrByte, ...]
    cvm: str
    cvm_words: str
    tsi: str
    tsi_words: tuple[str, ...]
    pan: str
    tags: tuple[TagLine, ...]


def _hex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _shown(tag: str, value: str, lang: Lang) -> str:
    """A tag's value safe to show: PAN first 6 / last 4, card data by length only."""
    raw = _hex(value)
    if tag == "5A":
        if raw is None:  # already masked by the journal
            return value if "*" in value else text("chip.hidden", lang, n="?")
        digits = raw.hex().upper().rstrip("F")
        return mask_pan(digits) if digits.isdigit() else text("chip.hidden", lang, n=len(raw))
    if tag in CARD_DATA_TAGS:
        n = len(raw) if raw is not None else value.split(" ", 1)[0].lstrip("[")
        return text("chip.hidden", lang, n=n if str(n).isdigit() else "?")
    return value


def tsi_words(tsi: bytes, lang: Lang) -> list[str]:
    """The set bits of a TSI (tag 9B) in words.

    >>> tsi_words(bytes.fromhex("E800"), "en")
    ['offline data authentication was performed', 'cardholder verification was performed', \
'card risk management was performed', 'terminal risk management was performed']
    """
    words: list[str] = []
    for index, byte in enumerate(tsi[:2]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                if index == 0 and bit < len(_TSI):
                    words.append(text(_TSI[bit], lang))
                else:
                    words.append(f"TSI byte {index + 1} bit {8 - bit} (RFU)")
    return words


def _tvr_bytes(tvr: bytes, lang: Lang) -> tuple[TvrByte, ...]:
    out = []
    for index, byte in enumerate(tvr[:5]):
        alone = bytes(index) + bytes([byte]) + bytes(4 - index)
        out.append(TvrByte(index + 1, f"{byte:02X}", tuple(tvr_words(alone, lang))))
    return tuple(out)


def chip_view(rec: JournalRec, lang: Lang) -> ChipView | None:
    """The chip data of journal row ``rec``, or None when it carried none."""
    data = rec.facts.get("chip_data")
    check: dict[str, Any] = rec.facts.get("chip") or {}
    if not isinstance(check, dict):
        check = {}
    tags: dict[str, str] = (
        {str(k).upper(): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    )
    if not tags and not check:
        return None
    dash = "–"

    def raw(tag: str) -> bytes | None:
        value = tags.get(tag)
        return _hex(value) if value is not None else None

    aid_tag = next((t for t in ("4F", "84", "9F06") if raw(t)), "")
    aid = tags[aid_tag] if aid_tag else str(check.get("aid") or "")
    label_raw = raw("50")
    label = label_raw.decode("ascii", "replace") if label_raw else ""
    atc_raw = raw("9F36")
    atc = str(int.from_bytes(atc_raw, "big")) if atc_raw else str(check.get("atc", dash))
    cid = raw("9F27")
    cryptogram = cryptogram_type(cid) if cid else ""
    tvr = raw("95")
    if tvr is None and isinstance(check.get("tvr"), str):
        tvr = _hex(check["tvr"])
    tvr = tvr if tvr is not None and len(tvr) == 5 else None
    cvm = raw("9F34")
    tsi = raw("9B")
    arqc = str(check.get("arqc") or "")
    pan = _shown("5A", tags["5A"], lang) if "5A" in tags else rec.pan_masked
    return ChipView(
        aid=aid or dash,
        aid_tag=aid_tag,
        application=AID_NAMES.get(aid.upper(), "") if aid else "",
        label=label or dash,
        atc=atc,
        last_atc=str(check["last_atc"]) if check.get("last_atc") is not None else dash,
        cvn=str(check["cvn"]) if check.get("cvn") else dash,
        cryptogram=cryptogram or dash,
        cryptogram_words=text(f"chip.cid.{cryptogram}", lang) if cryptogram else "",
        arqc_check=text(f"chip.arqc.{arqc.replace(' ', '_')}", lang)
        if arqc in ("verified", "does not verify")
        else dash,
        tvr=tvr.hex().upper() if tvr else dash,
        tvr_bytes=_tvr_bytes(tvr, lang) if tvr else (),
        cvm=cvm.hex().upper() if cvm else dash,
        cvm_words=cvm_text(cvm, lang) if cvm else "",
        tsi=tsi.hex().upper() if tsi else dash,
        tsi_words=tuple(tsi_words(tsi, lang)) if tsi else (),
        pan=pan or dash,
        tags=tuple(
            TagLine(tag, TAG_NAMES.get(tag.split("#", 1)[0], ""), _shown(tag, value, lang))
            for tag, value in sorted(tags.items())
        ),
    )
