"""The clearpos dialect expressed as a pyiso8583 spec, built from our own table.

Used as the benchmark baseline (bench/wire.py) and as an independent
cross-check of our codec in tests: two implementations, one table.
"""

from __future__ import annotations

from typing import Any

from clearpos.wire.dialect import FIELDS, Fmt, Len


def pyiso_spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {
        "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "none"},
        "t": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "MTI"},
        "p": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "bitmap"},
    }
    for n, f in FIELDS.items():
        len_type = {Len.FIXED: 0, Len.LLVAR: 1, Len.LLLVAR: 2}[f.len_type]
        entry: dict[str, Any] = {"len_enc": "bcd", "len_type": len_type, "desc": f.meaning}
        if f.fmt in (Fmt.N, Fmt.Z):
            entry.update(data_enc="b", len_count="nibbles", max_len=f.length)
            if f.length % 2 or f.len_type is not Len.FIXED:
                entry["right_pad" if (f.left or f.len_type is not Len.FIXED) else "left_pad"] = "0"
        elif f.fmt is Fmt.B:
            entry.update(data_enc="b", max_len=f.length)
        else:
            entry.update(data_enc="ascii", max_len=f.length)
        spec[str(n)] = entry
    return spec
