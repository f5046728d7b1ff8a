"""``clearpos wire decode HEX`` and ``clearpos wire encode`` (JSON on stdin)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .codec import Fields, decode, encode, extend
from .dialect import FIELDS, DialectError, Fmt, load_dialect_file
from .errors import WireError
from .framing import TPDU, Header, decode_frame, encode_frame
from .mask import render, render_dict
from .messages import from_fields


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="wire_command", metavar="ACTION")
    sub.required = True
    d = sub.add_parser(
        "decode",
        help="decode a frame or a bare message given in hex (masked output)",
        description="Decode a whole frame (length prefix, TPDU, header, message) or a bare "
        "message (MTI onward) given as hex. Card data is masked.",
    )
    d.add_argument("hex", help="hex digits; spaces allowed; '-' reads stdin")
    d.add_argument("--json", action="store_true", help="one JSON document on stdout")
    d.add_argument(
        "--dialect",
        metavar="FILE",
        help="TOML declaring an acquirer's private fields ([[dialect.fields]]), read and "
        "masked like the dialect's own",
    )
    d.set_defaults(run=_decode)
    e = sub.add_parser(
        "encode",
        help="encode JSON fields from stdin to hex",
        description='Read {"mti": "0200", "fields": {"3": "000000", "52": "<hex>", ...}, '
        '"tpdu": "6000030000", "header": "603100000100"} on stdin and print the hex. '
        "b fields (52, 55, 62, 64) are given as hex; with tpdu/header a whole frame is printed.",
    )
    e.add_argument("--json", action="store_true", help='print {"hex": ...} instead of bare hex')
    e.set_defaults(run=_encode)


def _fail(exc: WireError | ValueError, as_json: bool) -> int:
    if as_json:
        err: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, WireError):
            err.update(field=exc.field, offset=exc.offset, expected=exc.expected)
        print(json.dumps(err, ensure_ascii=False))
    else:
        print(f"clearpos wire: {exc}", file=sys.stderr)
    return 1


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)}): a byte is incomplete")
    for i, c in enumerate(cleaned):
        if c not in "0123456789abcdefABCDEF":
            raise ValueError(f"not a hex digit at position {i}: {c!r}")
    return bytes.fromhex(cleaned)


def _decode(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.hex == "-" else args.hex
    if args.dialect:
        try:
            extend(load_dialect_file(args.dialect))
        except DialectError as exc:
            print(f"clearpos wire: dialect refused:\n{exc}", file=sys.stderr)
            return 2
    try:
        data = _parse_hex(text)
        is_frame = len(data) >= 15 and int.from_bytes(data[:2], "big") == len(data) - 2
        frame = decode_frame(data) if is_frame else None
        body, base = (frame.body, 13) if frame else (data, 0)
        d = decode(body, base=base)
        try:
            typed = type(from_fields(d.mti, d.fields)).__name__
        except WireError as exc:
            typed = f"(not a valid clearpos message: {exc})"
    except (WireError, ValueError) as exc:
        return _fail(exc, args.json)
    if args.json:
        out: dict[str, Any] = {"message": typed, **render_dict(d.mti, d.fields)}
        if frame:
            h = frame.header
            out["tpdu"] = frame.tpdu.encode().hex().upper()
            out["header"] = {
                "app_type": h.app_type,
                "version": h.version,
                "terminal_status": h.terminal_status,
                "processing": h.processing,
                "reserved": h.reserved,
            }
        print(json.dumps(out, ensure_ascii=False))
    else:
        if frame:
            h = frame.header
            print(
                f"frame {len(data)} bytes  TPDU {frame.tpdu.encode().hex().upper()}  header "
                f"app {h.app_type} ver {h.version} status {h.terminal_status} "
                f"processing {h.processing} reserved {h.reserved}"
            )
        print(f"{typed}")
        print(render(d.mti, d.fields))
    return 0


def _encode(args: argparse.Namespace) -> int:
    try:
        doc = json.loads(sys.stdin.read())
        if not isinstance(doc, dict) or "mti" not in doc or not isinstance(doc.get("fields"), dict):
            raise ValueError('expected a JSON object {"mti": "...", "fields": {...}}')
        fields: Fields = {}
        for k, v in doc["fields"].items():
            if not str(k).isdecimal() or int(k) not in FIELDS:
                raise ValueError(f"field {k!r} is not part of the clearpos dialect")
            n = int(k)
            if not isinstance(v, str):
                raise ValueError(f"field {n}: value must be a string")
            fields[n] = _parse_hex(v) if FIELDS[n].fmt is Fmt.B else v
        body = encode(str(doc["mti"]), fields)
        if "tpdu" in doc or "header" in doc:
            tp = _parse_hex(doc.get("tpdu", "6000030000"))
            hd = _parse_hex(doc.get("header", "603100000100"))
            out = encode_frame(TPDU.decode(tp), Header.decode(hd), body)
        else:
            out = body
    except json.JSONDecodeError as exc:
        return _fail(ValueError(f"stdin is not JSON: {exc}"), args.json)
    except (WireError, ValueError) as exc:
        return _fail(exc, args.json)
    print(json.dumps({"hex": out.hex().upper()}) if args.json else out.hex().upper())
    return 0
