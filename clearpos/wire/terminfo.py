"""Field 59, terminal information: ASCII TLV of tag an2 + length + value (spec §3).

The spec writes the length as n2, and so does the real frame F3 of
``shared/vectors/real-frames.md``; the public PAX template and Easy8583Ans
write 3 digits (``"A2" + "%03d"``). A host reads both: the whole field is read
with 2-digit lengths, and if that does not fit, with 3 (docs/protocol.md).

Tag ``A2`` holds sub-TLVs of the same form: 01 device type, 02 hardware serial
number, 03 encryption random factor, 04 serial-number ciphertext, 05
application version (an..8). Other top-level tags (12 SIM ICCID, 13 terminal
model, 14 time stamp, 15, 17 latitude,longitude …) are kept as they came.

>>> info = TerminalInfo.decode("1311HFT17080301A2180102020508H7062801")
>>> info.app_version, info.tags["13"], info.device["01"]
('H7062801', 'HFT17080301', '02')
>>> TerminalInfo.build(app_version="0.2.0", serial="CP00000001").encode()
'A2290102010210CP0000000105050.2.0'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..versions import normalise_version, version_at_least, version_key
from .errors import DecodeError

DEVICE = "A2"
APP_VERSION = "05"
SERIAL = "02"
DEVICE_TYPE = "01"


def _tlv(text: str, *, where: str, width: int = 2) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    head_len = 2 + width
    while pos < len(text):
        head = text[pos : pos + head_len]
        if len(head) < head_len or not head[2:].isdecimal():
            raise DecodeError(
                f"{where}: expected tag an2 + length n{width} at character {pos}", field=59
            )
        n = int(head[2:])
        value = text[pos + head_len : pos + head_len + n]
        if len(value) != n:
            raise DecodeError(
                f"{where}: tag {head[:2]} says {n} characters, {len(value)} follow", field=59
            )
        out[head[:2]] = value
        pos += head_len + n
    return out


def _read(text: str) -> tuple[dict[str, str], dict[str, str]]:
    last: DecodeError | None = None
    for width in (2, 3):
        try:
            tags = _tlv(text, where="terminal information", width=width)
            device = (
                _tlv(tags[DEVICE], where="terminal information A2", width=width)
                if DEVICE in tags
                else {}
            )
            return tags, device
        except DecodeError as exc:
            last = last or exc
    assert last is not None
    raise last


def _put(tags: dict[str, str]) -> str:
    parts = []
    for tag, value in tags.items():
        if len(value) > 99:
            raise ValueError(f"field 59 tag {tag}: value longer than 99 characters")
        parts.append(f"{tag}{len(value):02d}{value}")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    """Field 59 read into its tags; ``device`` holds the sub-tags of ``A2``."""

    tags: dict[str, str] = field(default_factory=dict)
    device: dict[str, str] = field(default_factory=dict)

    @property
    def app_version(self) -> str | None:
        """The terminal application version (A2/05), if the terminal reported one
        (PAX pads it with spaces to 8 characters: the padding is not part of it)."""
        return self.device.get(APP_VERSION, "").rstrip() or None

    @property
    def serial(self) -> str | None:
        return self.device.get(SERIAL) or None

    @classmethod
    def decode(cls, text: str) -> TerminalInfo:
        """Field 59 read with 2-digit lengths (spec), else 3-digit ones (PAX).

        >>> TerminalInfo.decode("A201305008320001  ").app_version
        '320001'
        """
        tags, device = _read(text)
        return cls(tags, device)

    @classmethod
    def build(cls, *, app_version: str, serial: str = "", device_type: str = "01") -> TerminalInfo:
        device = {DEVICE_TYPE: device_type}
        if serial:
            device[SERIAL] = serial
        device[APP_VERSION] = app_version
        return cls({DEVICE: _put(device)}, device)

    def encode(self) -> str:
        tags = dict(self.tags)
        if self.device:
            tags[DEVICE] = _put(self.device)
        return _put(tags)


__all__ = ["TerminalInfo", "normalise_version", "version_at_least", "version_key"]
