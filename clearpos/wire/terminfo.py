"""Field 59, terminal information: ASCII TLV of tag an2 + length n2 + value (spec §3).

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

from .errors import DecodeError

DEVICE = "A2"
APP_VERSION = "05"
SERIAL = "02"
DEVICE_TYPE = "01"


def _tlv(text: str, *, where: str, base: int = 0) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        head = text[pos : pos + 4]
        if len(head) < 4 or not head[2:].isdecimal():
            raise DecodeError(
                f"{where}: expected tag an2 + length n2 at character {base + pos}", field=59
            )
        n = int(head[2:])
        value = text[pos + 4 : pos + 4 + n]
        if len(value) != n:
            raise DecodeError(
                f"{where}: tag {head[:2]} says {n} characters, {len(value)} follow", field=59
            )
        out[head[:2]] = value
        pos += 4 + n
    return out


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
        """The terminal application version (A2/05), if the terminal reported one."""
        return self.device.get(APP_VERSION) or None

    @property
    def serial(self) -> str | None:
        return self.device.get(SERIAL) or None

    @classmethod
    def decode(cls, text: str) -> TerminalInfo:
        tags = _tlv(text, where="terminal information")
        device = _tlv(tags[DEVICE], where="terminal information A2") if DEVICE in tags else {}
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


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version compared part by part, numbers as numbers (``0.10.0`` > ``0.9.1``).

    >>> version_key("0.10.0") > version_key("0.9.1")
    True
    >>> version_key("H7062801") < version_key("H7062802")
    True
    """
    parts: list[tuple[int, int | str]] = []
    for part in version.replace("-", ".").split("."):
        parts.append((0, int(part)) if part.isdecimal() else (1, part))
    return tuple(parts)


def version_at_least(reported: str, minimum: str) -> bool:
    """True when ``reported`` is ``minimum`` or later (see :func:`version_key`)."""
    return version_key(reported) >= version_key(minimum)


__all__ = ["TerminalInfo", "version_at_least", "version_key"]
