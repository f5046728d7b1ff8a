"""Track data encryption with the track data key (TDK), field 53.3 = 1 (spec §5).

The scheme of the public terminal and acquirer code that sends 53 = ``xx1…``
(see ``docs/protocol.md``): take the track's digits as BCD, the separator ``=``
as the nibble ``D``, an odd-length track with its trailing pad nibble (so the
pad belongs to the last byte); take the 8 bytes that end at the track's
second-to-last byte, 3DES-ECB them with the TDK and put them back. A track of
fewer than 9 bytes is sent in clear. The length prefix still counts the
track's digits.

Sans-I/O and key-free: the caller passes the 8-byte block cipher, so the TDK
never leaves the security module.

>>> flip = lambda block: bytes(b ^ 0xFF for b in block)  # a stand-in block cipher
>>> t = "6222021234567890123=28122010000000000"
>>> enc = encrypt_track(t, flip)
>>> enc.hex().upper()
'6222021234567890123DD7EDDFEFFFFFFFFF00'
>>> decrypt_track(enc, flip, field=35)
'6222021234567890123=28122010000000000'
>>> decrypt_track("6222021234567890123", flip, field=35)  # 10 bytes: the block is decrypted
Traceback (most recent call last):
...
clearpos.wire.errors.DecodeError: field 35: TDK-encrypted track does not decrypt to a well-formed track (digits 0-9 and one separator D)
"""

from __future__ import annotations

from collections.abc import Callable

from .codec import RawTrack, Value
from .errors import DecodeError

Cipher8 = Callable[[bytes], bytes]

BLOCK = 8


def _nibbles(value: Value) -> tuple[str, int]:
    """The track as hex nibbles (pad included) and its digit count."""
    if isinstance(value, RawTrack):
        return value.hex(), value.ndigits
    if isinstance(value, bytes):
        raise TypeError("a raw track must be a RawTrack (it carries its digit count)")
    h = value.replace("=", "d").lower()
    n = len(h)
    return (h + "0" if n & 1 else h), n


def encrypt_track(track: str, encrypt8: Cipher8) -> RawTrack:
    """The field value of ``track`` (digits and ``=``) encrypted with the TDK."""
    h, ndigits = _nibbles(track)
    raw = bytearray.fromhex(h)
    if len(raw) >= BLOCK + 1:
        end = len(raw) - 1
        raw[end - BLOCK : end] = encrypt8(bytes(raw[end - BLOCK : end]))
    return RawTrack(bytes(raw), ndigits)


def decrypt_track(value: Value, decrypt8: Cipher8, *, field: int) -> str:
    """The clear track of an encrypted field value; :class:`DecodeError` naming
    ``field`` when it does not decrypt to digits with one separator."""
    h, ndigits = _nibbles(value)
    raw = bytearray.fromhex(h)
    if len(raw) >= BLOCK + 1:
        end = len(raw) - 1
        raw[end - BLOCK : end] = decrypt8(bytes(raw[end - BLOCK : end]))
    clear = raw.hex()
    if ndigits & 1:
        if clear[-1] not in "0f":
            raise DecodeError(
                "TDK-encrypted track: the pad nibble does not decrypt to 0 or F", field=field
            )
        clear = clear[:-1]
    text = clear.replace("d", "=")
    if not (text.count("=") == 1 and text.replace("=", "").isdecimal()):
        raise DecodeError(
            "TDK-encrypted track does not decrypt to a well-formed track "
            "(digits 0-9 and one separator D)",
            field=field,
        )
    return text


__all__ = ["decrypt_track", "encrypt_track"]
