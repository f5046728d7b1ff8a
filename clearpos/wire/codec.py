"""Encode and decode the body of a POS 8583 message: MTI, bitmap, fields.

Pure functions over bytes and ``dict[int, str | bytes]``. The field table of
:mod:`clearpos.wire.dialect` is compiled once into one reader and one writer per
field. n/z/an/ans values are ``str`` (tracks use ``=`` as the separator), b
values are ``bytes``.

>>> body = encode("0800", {11: "000001", 41: "10000001"})
>>> body.hex().upper()
'080000200000008000000000013130303030303031'
>>> decode(body).fields
{11: '000001', 41: '10000001'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..record import record
from .dialect import FIELDS, MAC_FIELD, FieldSpec, Fmt, Len
from .errors import DecodeError, EncodeError

Value = str | bytes
Fields = dict[int, Value]
Reader = Callable[[bytes, int, int], tuple[Value, int]]
Writer = Callable[[Value], bytes]

_HEX_DIGITS = frozenset("0123456789")


class RawTrack(bytes):
    """A track field (35/36) whose nibbles are not all track digits: the BCD bytes
    as received, with the digit count of its length prefix.

    Only a message whose field 53 says the tracks are encrypted with the TDK
    (53.3 = 1) may carry one: :func:`decode` raises the track's own
    :class:`DecodeError` otherwise. :mod:`clearpos.wire.tracks` turns it back into
    a track once decrypted, and makes one when encrypting.
    """

    ndigits: int
    error: DecodeError | None

    def __new__(cls, raw: bytes, ndigits: int, error: DecodeError | None = None) -> RawTrack:
        obj = super().__new__(cls, raw)
        obj.ndigits = ndigits
        obj.error = error
        return obj

    def __repr__(self) -> str:
        return f"RawTrack({len(self)} bytes, {self.ndigits} digits)"


def tracks_encrypted(fields: Mapping[int, Value]) -> bool:
    """True when field 53 (security control) says tracks are TDK-encrypted (53.3 = 1)."""
    sec = fields.get(53)
    return isinstance(sec, str) and len(sec) >= 3 and sec[2] == "1"


@record
class Decoded:
    """A decoded message body.

    ``mac_block`` is the exact byte range the MAC is computed over (MTI up to,
    not including, field 64) when field 64 is present, else ``None``.
    """

    mti: str
    fields: Fields
    mac_block: bytes | None = None


# --------------------------------------------------------------------------- readers


def _need(data: bytes, pos: int, n: int, field: int, base: int) -> None:
    if pos + n > len(data):
        raise DecodeError(
            f"expected {n} byte(s), only {len(data) - pos} left in the message",
            field=field,
            offset=base + pos,
        )


def _bcd_length(data: bytes, pos: int, nbytes: int, spec: FieldSpec, base: int) -> int:
    _need(data, pos, nbytes, spec.number, base)
    digits = data[pos : pos + nbytes].hex()
    if not digits.isdecimal():
        raise DecodeError(
            f"length prefix must be BCD digits, got {digits.upper()}",
            field=spec.number,
            offset=base + pos,
        )
    n = int(digits)
    if n > spec.length:
        unit = "digits" if spec.fmt in (Fmt.N, Fmt.Z) else "bytes"
        raise DecodeError(
            f"length {n} exceeds the maximum of {spec.length} {unit} ({spec.label})",
            field=spec.number,
            offset=base + pos,
        )
    return n


def _digits(h: str, ndigits: int, left: bool, spec: FieldSpec, pos: int) -> str:
    """Strip the pad nibble of an odd-length BCD value and validate the digits."""
    if ndigits & 1:
        pad, value = (h[-1], h[:-1]) if left else (h[0], h[1:])
        if pad not in "0f":
            raise DecodeError(
                "pad nibble must be 0 or F",
                field=spec.number,
                offset=pos + (len(h) // 2 - 1 if left else 0),
            )
    else:
        value = h
    if spec.fmt is Fmt.Z:
        value = value.replace("d", "=")
        ok = not value or value.replace("=", "").isdecimal() or set(value) == {"="}
    else:
        ok = not value or value.isdecimal()
    if not ok:
        what = "track digits 0-9 and separator D" if spec.fmt is Fmt.Z else "BCD digits 0-9"
        bad = next(i for i, c in enumerate(value) if not (c.isdecimal() or c == "="))
        raise DecodeError(
            f"expected {what}, found a non-digit nibble at digit {bad + 1}",
            field=spec.number,
            offset=pos + (bad + (0 if left or not ndigits & 1 else 1)) // 2,
        )
    return value


def _ascii(raw: bytes, spec: FieldSpec, pos: int) -> str:
    if raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable():  # for ASCII: exactly 0x20-0x7E, in one C call
            return text
    gbk = spec.charset == "gbk"
    for i, b in enumerate(raw):
        # DEL (7F) is no GBK byte either: never the second byte of a character
        if b < 0x20 or b == 0x7F or (b > 0x7E and not gbk):
            raise DecodeError(
                f"expected printable ASCII ({spec.fmt.value}), got byte {b:02X}",
                field=spec.number,
                offset=pos + i,
            )
    if raw.isascii():
        return raw.decode("ascii")
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"expected ASCII or GBK text, byte {raw[exc.start]:02X} starts no GBK character",
            field=spec.number,
            offset=pos + exc.start,
        ) from None
    if not text.isprintable():  # e.g. GBK's user-defined area: what the writer refuses
        bad = next(i for i, c in enumerate(text) if not c.isprintable())
        at = len(text[:bad].encode("gbk"))
        raise DecodeError(
            f"expected printable text, bytes from {raw[at]:02X} are no printable character",
            field=spec.number,
            offset=pos + at,
        )
    return text


def _make_reader(spec: FieldSpec) -> Reader:
    num = spec.number
    if spec.len_type is Len.FIXED:
        if spec.fmt in (Fmt.N, Fmt.Z):
            nbytes = (spec.length + 1) // 2
            ndig = spec.length
            left = spec.left

            def read_fixed_bcd(data: bytes, pos: int, base: int) -> tuple[Value, int]:
                end = pos + nbytes
                if end > len(data):
                    _need(data, pos, nbytes, num, base)
                h = data[pos:end].hex()
                if ndig & 1 or not h.isdecimal():
                    return _digits(h, ndig, left, spec, base + pos), end
                return h, end

            return read_fixed_bcd
        n = spec.length
        if spec.fmt is Fmt.B:

            def read_fixed_bin(data: bytes, pos: int, base: int) -> tuple[Value, int]:
                _need(data, pos, n, num, base)
                return data[pos : pos + n], pos + n

            return read_fixed_bin

        def read_fixed_ascii(data: bytes, pos: int, base: int) -> tuple[Value, int]:
            _need(data, pos, n, num, base)
            return _ascii(data[pos : pos + n], spec, base + pos), pos + n

        return read_fixed_ascii

    prefix = 1 if spec.len_type is Len.LLVAR else 2
    if spec.fmt in (Fmt.N, Fmt.Z):
        track = spec.fmt is Fmt.Z

        def read_var_bcd(data: bytes, pos: int, base: int) -> tuple[Value, int]:
            ndig = _bcd_length(data, pos, prefix, spec, base)
            pos += prefix
            nbytes = (ndig + 1) // 2
            _need(data, pos, nbytes, num, base)
            raw = data[pos : pos + nbytes]
            try:
                return _digits(raw.hex(), ndig, True, spec, base + pos), pos + nbytes
            except DecodeError as exc:
                if not track:
                    raise
                # maybe TDK-encrypted (53.3 = 1, read later): decode() decides
                return RawTrack(raw, ndig, exc), pos + nbytes

        return read_var_bcd

    binary = spec.fmt is Fmt.B

    def read_var_bytes(data: bytes, pos: int, base: int) -> tuple[Value, int]:
        n = _bcd_length(data, pos, prefix, spec, base)
        pos += prefix
        _need(data, pos, n, num, base)
        raw = data[pos : pos + n]
        return (raw if binary else _ascii(raw, spec, base + pos)), pos + n

    return read_var_bytes


# --------------------------------------------------------------------------- writers


def _bcd_prefix(n: int, prefix: int) -> bytes:
    return bytes.fromhex(f"{n:0{prefix * 2}d}")


def _make_writer(spec: FieldSpec) -> Writer:
    num = spec.number

    def fail(expected: str) -> EncodeError:
        return EncodeError(expected, field=num)

    if spec.fmt in (Fmt.N, Fmt.Z):
        is_track = spec.fmt is Fmt.Z
        fixed = spec.len_type is Len.FIXED
        prefix = 1 if spec.len_type is Len.LLVAR else 2
        left = spec.left or not fixed

        even_fixed = fixed and not spec.length & 1 and not is_track
        flen = spec.length

        def write_fixed_even(value: Value) -> bytes:
            # the common case first: exactly the digits of an even-length fixed field
            if type(value) is str and len(value) == flen and value.isdecimal() and value.isascii():
                return bytes.fromhex(value)
            return write_bcd(value)

        def write_bcd(value: Value) -> bytes:
            if is_track and isinstance(value, RawTrack):  # an encrypted track
                if value.ndigits > spec.length or len(value) != (value.ndigits + 1) // 2:
                    raise fail(f"encrypted track of {value.ndigits} digits does not fit")
                return _bcd_prefix(value.ndigits, prefix) + bytes(value)
            if not isinstance(value, str):
                raise fail(f"expected a string of digits ({spec.label})")
            digits = value.replace("=", "D") if is_track else value
            check = digits.replace("D", "") if is_track else digits
            if check and not (check.isdecimal() and check.isascii()):
                what = "digits and '='" if is_track else "digits only"
                raise fail(f"expected {what} ({spec.label})")
            n = len(digits)
            if fixed and n != spec.length:
                raise fail(f"expected exactly {spec.length} digits, got {n}")
            if n > spec.length:
                raise fail(f"expected at most {spec.length} digits, got {n}")
            if n & 1:
                digits = digits + "0" if left else "0" + digits
            body = bytes.fromhex(digits)
            return body if fixed else _bcd_prefix(n, prefix) + body

        return write_fixed_even if even_fixed else write_bcd

    if spec.len_type is Len.FIXED:
        n = spec.length
        if spec.fmt is Fmt.B:

            def write_fixed_bin(value: Value) -> bytes:
                if not isinstance(value, bytes | bytearray) or len(value) != n:
                    raise fail(f"expected exactly {n} bytes ({spec.label})")
                return bytes(value)

            return write_fixed_bin

        def write_fixed_ascii(value: Value) -> bytes:
            if type(value) is str and len(value) == n and value.isascii() and value.isprintable():
                return value.encode("ascii")
            if not isinstance(value, str):
                raise fail(f"expected text ({spec.label})")
            if len(value) > n:
                raise fail(f"expected at most {n} characters, got {len(value)}")
            raw = _encode_ascii(value, num)
            return raw.ljust(n, b" ")

        return write_fixed_ascii

    prefix = 1 if spec.len_type is Len.LLVAR else 2
    binary = spec.fmt is Fmt.B

    def write_var_bytes(value: Value) -> bytes:
        if binary:
            if not isinstance(value, bytes | bytearray):
                raise fail(f"expected bytes ({spec.label})")
            raw = bytes(value)
        else:
            if not isinstance(value, str):
                raise fail(f"expected text ({spec.label})")
            raw = _encode_ascii(value, num)
        if len(raw) > spec.length:
            raise fail(f"expected at most {spec.length} bytes, got {len(raw)}")
        return _bcd_prefix(len(raw), prefix) + raw

    return write_var_bytes


def _encode_ascii(value: str, field: int) -> bytes:
    if not value.isascii() or not value.isprintable():
        spec = FIELDS.get(field)
        if spec is not None and spec.charset == "gbk" and value.isprintable():
            try:
                return value.encode("gbk")
            except UnicodeEncodeError:
                raise EncodeError("expected text GBK can write", field=field) from None
        raise EncodeError("expected printable ASCII text", field=field)
    return value.encode("ascii")


_READERS: dict[int, Reader] = {n: _make_reader(s) for n, s in FIELDS.items()}
_WRITERS: dict[int, Writer] = {n: _make_writer(s) for n, s in FIELDS.items()}

# Bitmaps repeat: a countertop fleet sends a handful of shapes. Cache the field
# list per bitmap (bounded).
_BITMAP_CACHE: dict[bytes, tuple[int, ...]] = {}
_BITMAP_CACHE_MAX = 4096

#: private fields declared at start-up (:func:`extend`), kept apart for the journal
PRIVATE: dict[int, FieldSpec] = {}


def extend(specs: tuple[FieldSpec, ...]) -> None:
    """Add an acquirer's private fields (declared with
    :func:`clearpos.wire.dialect.private_fields`) to the dialect of this process:
    the codec then reads and writes them, and masking hides those marked card data.
    A field of the clearpos dialect itself cannot be redefined."""
    for spec in specs:
        current = FIELDS.get(spec.number)
        if current is not None and spec.number not in PRIVATE:
            raise ValueError(f"field {spec.number} is part of the clearpos dialect")
        FIELDS[spec.number] = spec
        PRIVATE[spec.number] = spec
        _READERS[spec.number] = _make_reader(spec)
        _WRITERS[spec.number] = _make_writer(spec)
    _BITMAP_CACHE.clear()
    _SHAPES.clear()
    _FAST.clear()
    _SEEN.clear()


def _fields_of(bitmap: bytes, base: int) -> tuple[int, ...]:
    cached = _BITMAP_CACHE.get(bitmap)
    if cached is not None:
        return cached
    bits = int.from_bytes(bitmap, "big")
    present = tuple(i for i in range(1, 65) if bits >> (64 - i) & 1)
    if present and present[0] == 1:
        raise DecodeError(
            "secondary bitmap (bit 1) is not part of the dialect: fields 1-64 only",
            field=1,
            offset=base,
        )
    for f in present:
        if f not in FIELDS:
            raise DecodeError(
                f"bitmap announces field {f}, which is not part of the clearpos dialect",
                field=1,
                offset=base + (f - 1) // 8,
            )
    if len(_BITMAP_CACHE) >= _BITMAP_CACHE_MAX:
        _BITMAP_CACHE.clear()
    _BITMAP_CACHE[bitmap] = present
    return present


# --------------------------------------------------------------------------- API


def decode(data: bytes, *, base: int = 0) -> Decoded:
    """Decode a message body (MTI, bitmap, fields).

    ``base`` is added to every byte offset in errors, so a caller that strips a
    frame header can report offsets within the whole frame.

    A bitmap seen often is read by a decoder compiled for it (:func:`_compile`);
    anything that one finds amiss is read again by the field-by-field decoder,
    which names the field and byte.
    """
    bitmap = data[2:10]
    fast = _FAST.get(bitmap)
    if fast is not None:
        mti = data[:2].hex()
        if mti.isdecimal():
            try:
                fields, mac_block = fast(data)
            except Exception:  # the exact error comes from the generic decoder
                pass
            else:
                return Decoded(mti, fields, mac_block)
    elif len(data) >= 10:
        seen = _SEEN.get(bitmap, 0) + 1
        if seen < _COMPILE_AFTER:
            _SEEN[bitmap] = seen
        else:
            _SEEN.pop(bitmap, None)
            try:
                present = _fields_of(bitmap, base + 2)
            except DecodeError:
                pass
            else:
                if len(_FAST) >= _BITMAP_CACHE_MAX:
                    _FAST.clear()
                _FAST[bitmap] = _compile(present)
        if len(_SEEN) >= _BITMAP_CACHE_MAX:
            _SEEN.clear()
    return _decode_fields(data, base)


def _decode_fields(data: bytes, base: int) -> Decoded:
    """The field-by-field decoder: every error names its field and byte."""
    if len(data) < 10:
        raise DecodeError(
            f"a message needs at least 10 bytes (MTI 2 + bitmap 8), got {len(data)}",
            field=0,
            offset=base,
        )
    mti = data[:2].hex()
    if not mti.isdecimal():
        raise DecodeError("MTI must be 4 BCD digits", field=0, offset=base)
    present = _fields_of(data[2:10], base + 2)
    fields: Fields = {}
    pos = 10
    mac_block = None
    readers = _READERS
    try:
        for f in present:
            if f == MAC_FIELD:
                mac_block = data[:pos]
            fields[f], pos = readers[f](data, pos, base)
    except DecodeError as exc:
        exc.mti, exc.partial = mti, fields  # what could be read, for a 30 answer
        raise
    for n in (35, 36):
        v = fields.get(n)
        if isinstance(v, RawTrack) and v.error is not None and not tracks_encrypted(fields):
            err = v.error
            err.mti, err.partial = mti, {k: x for k, x in fields.items() if k < n}
            raise err
    if pos != len(data):
        last = f"field {present[-1]}" if present else "the bitmap"
        raise DecodeError(
            f"{len(data) - pos} unexpected byte(s) after {last}",
            field=present[-1] if present else 1,
            offset=base + pos,
        )
    return Decoded(mti, fields, mac_block)


# --------------------------------------------------------------------------- compiled decoders

#: compiled decoders by bitmap, and how often other bitmaps were seen (a bitmap is
#: compiled on its _COMPILE_AFTER-th message: a fleet's few shapes, not a fuzzer's)
_FAST: dict[bytes, Callable[[bytes], tuple[Fields, bytes | None]]] = {}
_SEEN: dict[bytes, int] = {}
_COMPILE_AFTER = 4


class _Amiss(Exception):
    """The compiled decoder found something to report: the generic one will."""


#: a BCD length-prefix byte -> its two digits' value; any other byte -> more than any
#: field's maximum, so the compiled decoder's length check refuses it
_BCD = tuple(
    10 * (b >> 4) + (b & 15) if b >> 4 < 10 and b & 15 < 10 else 1_000_000 for b in range(256)
)


def _compile(present: tuple[int, ...]) -> Callable[[bytes], tuple[Fields, bytes | None]]:
    """Straight-line Python for one bitmap: each run of fixed-length fields between
    variable ones is one slice, its consecutive digit fields one hex() and its text
    fields one decode(), each checked at once; a length prefix is read from a table
    (:data:`_BCD`); the values stay locals until one dict display makes the fields
    (in bitmap order, sized once). Any doubt raises :class:`_Amiss`."""
    env: dict[str, object] = {"_Amiss": _Amiss, "RawTrack": RawTrack, "bcd": _BCD}
    env["tracks_encrypted"] = tracks_encrypted
    body = ["n = len(data)", "pos = 10"]
    if MAC_FIELD not in present:
        body.append("mac_block = None")
    run: list[FieldSpec] = []

    def size(spec: FieldSpec) -> int:
        return (spec.length + 1) // 2 if spec.fmt is Fmt.N else spec.length

    def flush() -> None:
        if not run:
            return
        total = sum(size(sp) for sp in run)
        body.extend([f"end = pos + {total}", "if end > n: raise _Amiss", "c = data[pos:end]"])
        # consecutive fields of one format (digits, text, bytes) are read as one
        groups: list[list[tuple[FieldSpec, int]]] = []
        off = 0
        for sp in run:
            if groups and _run_kind(groups[-1][0][0]) == _run_kind(sp):
                groups[-1].append((sp, off))
            else:
                groups.append([(sp, off)])
            off += size(sp)
        for group in groups:
            start, stop = group[0][1], group[-1][1] + size(group[-1][0])
            part = _cut("c", start, stop, total)
            kind = _run_kind(group[0][0])
            if kind == "b":
                for sp, o in group:
                    body.append(f"v{sp.number} = {_cut('c', o, o + sp.length, total)}")
            elif kind == "a":
                # decode() raises on a non-ASCII byte; isprintable() is 0x20-0x7E then
                body.append(f"t = {part}.decode('ascii')")
                body.append("if not t.isprintable(): raise _Amiss")
                for sp, o in group:
                    a = o - start
                    body.append(f"v{sp.number} = {_cut('t', a, a + sp.length, stop - start)}")
            else:
                body.append(f"h = {part}.hex()")
                nibbles = 2 * (stop - start)
                digits: list[tuple[int, int]] = []  # nibble ranges of digits, pads left out
                for sp, o in group:
                    a = 2 * (o - start)
                    if sp.length & 1 and sp.left:  # the pad nibble follows the digits
                        body.append(f"if h[{a + sp.length}] not in '0f': raise _Amiss")
                    elif sp.length & 1:  # the pad nibble comes first
                        body.append(f"if h[{a}] not in '0f': raise _Amiss")
                        a += 1
                    body.append(f"v{sp.number} = {_cut('h', a, a + sp.length, nibbles)}")
                    if digits and digits[-1][1] == a:
                        digits[-1] = (digits[-1][0], a + sp.length)
                    else:
                        digits.append((a, a + sp.length))
                checks = " and ".join(f"{_cut('h', a, b, nibbles)}.isdecimal()" for a, b in digits)
                body.append(f"if not ({checks}): raise _Amiss")
        body.append("pos = end")
        run.clear()

    tracks = []
    for k in present:
        spec = FIELDS[k]
        if k == MAC_FIELD:
            flush()
            body.append("mac_block = data[:pos]")
        if spec.len_type is Len.FIXED and spec.fmt is not Fmt.Z and spec.charset == "ascii":
            run.append(spec)
            continue
        flush()
        env[f"read{k}"] = _READERS[k]
        if spec.len_type is Len.FIXED:
            body.append(f"v{k}, pos = read{k}(data, pos, 0)")
            if spec.fmt is Fmt.Z:
                tracks.append(k)
            continue
        # a variable field inline: its BCD length prefix (from the table: past the end of
        # the data, data[pos] raises), then digits, a track, text or bytes
        if spec.len_type is Len.LLVAR:
            body += ["k = bcd[data[pos]]", f"if k > {spec.length}: raise _Amiss", "e = pos + 1"]
        else:
            body += [
                "k = 100 * bcd[data[pos]] + bcd[data[pos + 1]]",
                f"if k > {spec.length}: raise _Amiss",
                "e = pos + 2",
            ]
        if spec.fmt is Fmt.Z:
            # a track inline when it is one (digits and '='); anything else (a
            # TDK-encrypted track, a bad pad) is read by the field's own reader
            body += [
                "end = e + (k + 1) // 2",
                "if end > n: raise _Amiss",
                "v = data[e:end].hex()",
                "if k & 1:",
                "    v = v[:-1] if v[-1] in '0f' else None",
                "if v is not None:",
                "    v = v.replace('d', '=')",
                "    if not v.replace('=', '').isdecimal(): v = None",
                "if v is None:",
                f"    v{k}, pos = read{k}(data, pos, 0)",
                "else:",
                f"    v{k} = v",
                "    pos = end",
            ]
            tracks.append(k)
            continue
        if spec.fmt is Fmt.N:
            body += [
                "end = e + (k + 1) // 2",
                "if end > n: raise _Amiss",
                "v = data[e:end].hex()",
                "if k & 1:",
                "    if v[-1] not in '0f': raise _Amiss",
                "    v = v[:-1]",
                "if v and not v.isdecimal(): raise _Amiss",
                f"v{k} = v",
            ]
        elif spec.fmt is Fmt.B:
            body += ["end = e + k", "if end > n: raise _Amiss", f"v{k} = data[e:end]"]
        else:
            body += [
                "end = e + k",
                "if end > n: raise _Amiss",
                "v = data[e:end].decode('ascii')",
                "if not v.isprintable(): raise _Amiss",
                f"v{k} = v",
            ]
        body.append("pos = end")
    flush()
    body.append("if pos != n: raise _Amiss")
    body.append("f = {" + ", ".join(f"{k}: v{k}" for k in present) + "}")
    for k in tracks:  # a track that is no track is fine only when 53 says it is encrypted
        body.append(
            f"if type(v{k}) is RawTrack and v{k}.error is not None "
            "and not tracks_encrypted(f): raise _Amiss"
        )
    body.append("return f, mac_block")
    src = "def fast(data):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(src, f"<decoder {','.join(map(str, present))}>", "exec"), env)
    fast = env["fast"]
    return fast  # type: ignore[return-value]


def _cut(name: str, a: int, b: int, size: int) -> str:
    """``name[a:b]`` in generated code, or ``name`` when that is all of it."""
    return name if (a, b) == (0, size) else f"{name}[{a}:{b}]"


def _run_kind(spec: FieldSpec) -> str:
    """How the compiled decoder reads a fixed field: digits (n), bytes (b), text (a)."""
    return "n" if spec.fmt is Fmt.N else "b" if spec.fmt is Fmt.B else "a"


def salvage(data: bytes) -> tuple[str | None, Fields]:
    """Read what can be read of a malformed body: the MTI and every field
    reachable without guessing. A bad fixed-length field is skipped (its size is
    known); a bad length prefix ends the walk. Used only to address a format
    error answer to the right terminal."""
    mti = data[:2].hex() if len(data) >= 2 else ""
    if len(data) < 10 or not mti.isdecimal():
        return (mti if mti.isdecimal() and len(mti) == 4 else None), {}
    bits = int.from_bytes(data[2:10], "big")
    fields: Fields = {}
    pos = 10
    for f in range(2, 65):
        if not bits >> (64 - f) & 1:
            continue
        spec = FIELDS.get(f)
        if spec is None:
            break
        try:
            fields[f], pos = _READERS[f](data, pos, 0)
        except DecodeError:
            if spec.len_type is not Len.FIXED:
                break
            pos += (spec.length + 1) // 2 if spec.fmt in (Fmt.N, Fmt.Z) else spec.length
            if pos > len(data):
                break
    return mti, fields


#: encode's plan per (field numbers in the caller's order, with MAC): the bitmap and
#: the writers in field order (a host sends a handful of shapes; bounded)
_Plan = tuple[tuple[int, Writer], ...]
_SHAPES: dict[
    tuple[tuple[int, ...], bool], tuple[bytes, _Plan, Callable[[Mapping[int, Value]], bytes]]
] = {}
_MTI_RAW: dict[str, bytes] = {}


def _shape(
    fields: Mapping[int, Value], with_mac: bool
) -> tuple[bytes, _Plan, Callable[[Mapping[int, Value]], bytes]]:
    numbers = sorted(f for f in fields if f != MAC_FIELD or not with_mac)
    if with_mac:
        numbers.append(MAC_FIELD)
    bits = 0
    for f in numbers:
        if f not in _WRITERS:
            raise EncodeError("not part of the clearpos dialect", field=f)
        bits |= 1 << (64 - f)
    plan = tuple((f, _WRITERS[f]) for f in numbers if not (with_mac and f == MAC_FIELD))
    shape = (bits.to_bytes(8, "big"), plan, _compile_writer(plan))
    if len(_SHAPES) >= _BITMAP_CACHE_MAX:
        _SHAPES.clear()
    _SHAPES[(tuple(fields), with_mac)] = shape
    return shape


#: BCD length prefixes by length: one byte (LLVAR), two bytes (LLLVAR)
_PREFIX1 = tuple(_bcd_prefix(n, 1) for n in range(100))
_PREFIX2 = tuple(_bcd_prefix(n, 2) for n in range(1000))


def _compile_writer(plan: _Plan) -> Callable[[Mapping[int, Value]], bytes]:
    """Straight-line Python for one field shape: each run of fixed even-length
    numeric fields is one bytes.fromhex() of its values joined (by one str.join,
    which raises unless each is text, from three values on), each run of fixed
    text fields one encode(), both checked at once; other fields use their
    writers. A value of another length or type raises, and encode() then runs the
    writers, which name the field."""
    env: dict[str, object] = {"fromhex": bytes.fromhex, "join": "".join}
    body: list[str] = []
    parts: list[str] = []
    run: list[str] = []
    run_kind = ""

    def flush() -> None:
        nonlocal run_kind
        if run:
            joined = " + ".join(run) if len(run) < 3 else f"join(({', '.join(run)}))"
            body.append(f"s = {joined}")
            if run_kind == "n":
                body.append("if not (s.isdecimal() and s.isascii()): raise ValueError")
                body.append(f"p{len(parts)} = fromhex(s)")
            else:
                body.append("if not (s.isascii() and s.isprintable()): raise ValueError")
                body.append(f"p{len(parts)} = s.encode()")
            parts.append(f"p{len(parts)}")
            run.clear()
        run_kind = ""

    for f, write in plan:
        spec = FIELDS[f]
        fixed = spec.len_type is Len.FIXED
        kind = ""
        if fixed and spec.fmt is Fmt.N and not spec.length & 1:
            kind = "n"
        elif fixed and spec.fmt in (Fmt.AN, Fmt.ANS) and spec.charset == "ascii":
            kind = "a"
        if kind != run_kind:
            flush()
        if kind:
            body.append(f"v{f} = fields[{f}]")
            body.append(f"if len(v{f}) != {spec.length}: raise ValueError")
            run.append(f"v{f}")
            run_kind = kind
        elif not fixed and spec.fmt is not Fmt.Z:
            # a variable field inline: its BCD length prefix from a table, then the value
            out = f"p{len(parts)}"
            env["prefix1"], env["prefix2"] = _PREFIX1, _PREFIX2
            prefix = "prefix1" if spec.len_type is Len.LLVAR else "prefix2"
            body += [f"v = fields[{f}]", "m = len(v)", f"if m > {spec.length}: raise ValueError"]
            if spec.fmt is Fmt.N:
                body += [
                    "if v and not (v.isdecimal() and v.isascii()): raise ValueError",
                    f"{out} = {prefix}[m] + fromhex(v + '0' if m & 1 else v)",
                ]
            elif spec.fmt is Fmt.B:
                body += ["if type(v) is not bytes: raise ValueError", f"{out} = {prefix}[m] + v"]
            else:
                body += [
                    "if not (v.isascii() and v.isprintable()): raise ValueError",
                    f"{out} = {prefix}[m] + v.encode()",
                ]
            parts.append(out)
        else:
            env[f"write{f}"] = write
            body.append(f"p{len(parts)} = write{f}(fields[{f}])")
            parts.append(f"p{len(parts)}")
    flush()
    body.append(f"return b''.join(({', '.join(parts)}{',' if len(parts) == 1 else ''}))")
    src = "def fast(fields):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(src, f"<encoder {','.join(str(f) for f, _ in plan)}>", "exec"), env)
    return env["fast"]  # type: ignore[return-value]


def encode(
    mti: str,
    fields: Mapping[int, Value],
    *,
    mac: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """Encode a message body. The input mapping is not modified.

    With ``mac``, bit 64 is set and field 64 is computed by calling ``mac``
    with the MAC block (every byte before field 64); any field 64 in
    ``fields`` is ignored.
    """
    shape = _SHAPES.get((tuple(fields), mac is not None))
    if shape is None:
        shape = _shape(fields, mac is not None)
    mti_raw = _MTI_RAW.get(mti)
    if mti_raw is None:
        if len(mti) != 4 or not mti.isdecimal():
            raise EncodeError("MTI must be 4 digits", field=0)
        mti_raw = _MTI_RAW[mti] = bytes.fromhex(mti)
    bitmap, plan, fast = shape
    try:
        body = mti_raw + bitmap + fast(fields)
    except Exception:  # the writers say which field is wrong, and how
        parts = [mti_raw, bitmap]
        for f, write in plan:
            parts.append(write(fields[f]))
        body = b"".join(parts)
    if mac is not None:
        code = mac(body)
        if len(code) != 8:
            raise EncodeError("MAC function must return 8 bytes", field=MAC_FIELD)
        body += code
    return body
