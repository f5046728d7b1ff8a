"""Masking for logs, errors, pages and exports.

A PAN is shown as its first 6 and last 4 digits; tracks, PIN blocks, chip
data, keys and MACs are never shown. :func:`render` is the one way to print a
decoded message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .dialect import FIELDS

_PAN_RE = re.compile(r"(?<!\d)(\d{6})(\d{3,9})(\d{4})(?!\d)")


def mask_pan(pan: str) -> str:
    """``6222021234567890123`` -> ``622202*********0123``; short values fully hidden."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a 13-19 digit PAN."""
    return _PAN_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def _track_summary(track: str) -> str:
    pan = track.split("=", 1)[0]
    return f"[track, {len(track)} digits, PAN {mask_pan(pan)}]"


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
