"""Pure key primitives of the POS 8583 dialect (spec/pos8583.md §5).

Everything here works on clear key bytes and holds no state beyond one cipher
per engine; *where* clear keys may live is the business of
:mod:`clearpos.keys.hsm` (host) and :mod:`clearpos.keys.terminal` (terminal).

DES comes from ``cryptography`` (the decrepit ``TripleDES``, always with a
24-byte key: single-length keys become ``k|k|k`` and double-length keys
``k1|k2|k1``, which is the same cipher), PIN block format 0, check values and
IBM 3624 from ``psec``.

Nothing in this module ever puts key bytes, a PIN, a PAN or a PIN block into a
``repr``, a ``str`` or an exception message.

>>> check_value(bytes.fromhex("1A2B3C4D5E6F7081")).hex().upper()
'A2AFCD72'
"""

from __future__ import annotations

import hmac
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import xor
from typing import TypeVar

import psec
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes
from cryptography.utils import CryptographyDeprecationWarning

__all__ = [
    "FIELD62_LAYOUTS",
    "FIELD62_LENGTH",
    "KeyCheckError",
    "KeyScheme",
    "MacEngine",
    "PinBlockError",
    "PinEngine",
    "WorkingKeys",
    "check_value",
    "decrypt_pin_block",
    "encrypt_pin_block",
    "expand_des_key",
    "generate_des_key",
    "pack_field62",
    "pin_block",
    "pin_block_without_pan",
    "tdes_cipher",
    "tdes_decrypt",
    "tdes_encrypt",
    "unpack_field62",
]

FIELD62_LENGTH = 40
"""Field 62 of the sign-on response: PIK cipher 16 + KCV 4 + MAK cipher 8 + zeros 8 + KCV 4."""

_BLOCK = 8
_ZERO_BLOCK = bytes(_BLOCK)
#: the big-endian 64-bit words of a MAC block of n blocks, by n (a frame holds at most
#: 256): a struct compiled once, not a format string made and looked up per MAC
_WORDS = tuple(struct.Struct(f">{n}Q").unpack for n in range(257))
_KCV_LENGTH = 4

_T = TypeVar("_T")


class PinBlockError(ValueError):
    """A PIN block (or the PIN/PAN for one) is unusable: host answers 99 ``pin.format_error``.

    The message never contains the PIN, the PAN or the block.
    """


class KeyCheckError(ValueError):
    """Working keys refused: field 62 has the wrong length or a check value does not match."""


# -- 3DES ---------------------------------------------------------------------


def expand_des_key(key: bytes) -> bytes:
    """The 24-byte TripleDES key equivalent to an 8/16/24-byte DES key (k|k|k, k1|k2|k1)."""
    n = len(key)
    if n == 24:
        return bytes(key)
    if n == 16:
        return bytes(key) + bytes(key[:8])
    if n == 8:
        return bytes(key) * 3
    raise ValueError(f"DES key must be 8, 16 or 24 bytes, got {n}")


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(TripleDES(expand_des_key(key)), modes.ECB())


def tdes_cipher(key: bytes) -> Cipher[modes.ECB]:
    """A 3DES-ECB cipher under an 8/16/24-byte key, for callers that keep one."""
    return _cipher(key)


def _check_blocks(data: bytes) -> None:
    if not data or len(data) % _BLOCK:
        raise ValueError(f"3DES-ECB data must be a non-empty multiple of 8 bytes, got {len(data)}")


def tdes_encrypt(key: bytes, data: bytes) -> bytes:
    """3DES-ECB encrypt ``data`` (a multiple of 8 bytes) under an 8/16/24-byte key.

    >>> tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    >>> tdes_encrypt(tmk, bytes.fromhex("1A2B3C4D5E6F7081")).hex().upper()
    '41B1F3D154C3079A'
    """
    _check_blocks(data)
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_decrypt(key: bytes, data: bytes) -> bytes:
    """3DES-ECB decrypt ``data`` (a multiple of 8 bytes) under an 8/16/24-byte key."""
    _check_blocks(data)
    decryptor = _cipher(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _call_psec(func: Callable[..., _T], *args: object) -> _T:
    """Call a psec function that builds its cipher from the pre-decrepit ``TripleDES`` name.

    psec 1.3 still imports ``TripleDES`` from its old place, which makes
    cryptography 50 warn on every call. We always hand psec 24-byte keys (so
    the key-length deprecation does not apply) and silence exactly the
    "has been moved" warning, nothing else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="TripleDES has been moved",
            category=CryptographyDeprecationWarning,
        )
        return func(*args)


def check_value(key: bytes) -> bytes:
    """Key check value (spec §5): first 4 bytes of the key encrypting 8 zero bytes.

    3DES for a double-length key, single DES for an 8-byte key (the same thing
    once the key is expanded to 24 bytes).

    >>> check_value(bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718")).hex().upper()
    'CEBD4274'
    """
    kcv: bytes = _call_psec(psec.des.generate_kcv, expand_des_key(key), _KCV_LENGTH)
    return kcv


def _kcv_hex(key: bytes) -> str:
    return check_value(key).hex().upper()


# -- MAC ----------------------------------------------------------------------


class MacEngine:
    """The UnionPay "ECB" MAC (spec §5) under one MAC key.

    Holds one reused DES encryptor (ECB keeps no chaining state between
    ``update`` calls), so a MAC costs two block encryptions and an XOR fold.
    A single-length key is what this host issues; a double-length key (sent by
    other acquirers in bytes 20-35 of field 62) runs the same two steps with
    3DES, as the public terminal code does (``docs/protocol.md``).

    >>> engine = MacEngine(bytes.fromhex("1A2B3C4D5E6F7081"))
    >>> engine
    MacEngine(kcv=A2AFCD72)
    """

    __slots__ = ("_encrypt", "_kcv")

    def __init__(self, mac_key: bytes) -> None:
        if len(mac_key) not in (_BLOCK, 16, 24):
            raise ValueError(f"MAC key must be 8, 16 or 24 bytes, got {len(mac_key)}")
        encryptor: CipherContext = _cipher(mac_key).encryptor()
        self._encrypt = encryptor.update
        self._kcv = self._encrypt(_ZERO_BLOCK)[:_KCV_LENGTH].hex().upper()

    @property
    def kcv(self) -> str:
        """Check value of the MAC key, hex (safe to display)."""
        return self._kcv

    def mac(self, block: bytes) -> bytes:
        """Field 64 for a MAC block (MTI up to, not including, field 64): 8 ASCII bytes."""
        size = len(block)
        padding = -size % _BLOCK
        if padding:
            block = bytes(block) + bytes(padding)
        count = (size + padding) // _BLOCK
        words = _WORDS[count] if count < len(_WORDS) else struct.Struct(f">{count}Q").unpack
        folded = reduce(xor, words(block), 0)
        hexed = folded.to_bytes(_BLOCK, "big").hex().upper().encode("ascii")
        first = int.from_bytes(self._encrypt(hexed[:_BLOCK]), "big")
        mixed = (first ^ int.from_bytes(hexed[_BLOCK:], "big")).to_bytes(_BLOCK, "big")
        return self._encrypt(mixed)[:4].hex().upper().encode("ascii")

    def verify(self, block: bytes, mac: bytes) -> bool:
        """True when ``mac`` is field 64 of ``block`` (constant-time compare)."""
        return hmac.compare_digest(self.mac(block), bytes(mac))

    def __repr__(self) -> str:
        return f"MacEngine(kcv={self._kcv})"


# -- PIN blocks ---------------------------------------------------------------


def _is_digits(text: str, low: int, high: int) -> bool:
    return low <= len(text) <= high and text.isascii() and text.isdigit()


def pin_block(pin: str, pan: str) -> bytes:
    """Clear ISO 9564 format 0 PIN block (8 bytes) for a 4–12 digit PIN and a 13–19 digit PAN.

    >>> pin_block("123456", "6222021234567890123").hex().upper()
    '06122662A9876FED'
    """
    if not _is_digits(pin, 4, 12):
        raise PinBlockError("PIN must be 4 to 12 digits")
    if not _is_digits(pan, 13, 19):
        raise PinBlockError("PAN must be 13 to 19 digits")
    block: bytes = psec.pinblock.encode_pinblock_iso_0(pin, pan)
    return block


def pin_block_without_pan(pin: str) -> bytes:
    """Clear ANSI X9.8 block without the PAN (53.1 = 1): ``0L`` + PIN + ``F`` padding.

    >>> pin_block_without_pan("123456").hex().upper()
    '06123456FFFFFFFF'
    """
    if not _is_digits(pin, 4, 12):
        raise PinBlockError("PIN must be 4 to 12 digits")
    return bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))


def _decode_without_pan(clear_block: bytes) -> str | None:
    n = clear_block[0]  # control nibble 0 and the PIN length 4-12: the byte 0x04-0x0C
    if not 4 <= n <= 12:
        return None
    h = clear_block.hex().upper()
    pin = h[2 : 2 + n]
    if not pin.isdigit() or h[2 + n :].strip("F"):  # digits, then F padding only
        return None
    return pin


def _decode_with_pan(clear_block: bytes, pan: str) -> str | None:
    """ISO 9564 format 0: the block XOR the PAN field (``0000`` and the 12 rightmost
    PAN digits before the check digit), then the same checks as without the PAN.
    What ``psec.pinblock.decode_pinblock_iso_0`` does (a test holds the two equal on
    random blocks), in three integer operations instead of its Python byte loop:
    it runs on every purchase with a PIN.

    >>> _decode_with_pan(bytes.fromhex("041277CDDEEFF669"), "5544332211009966")
    '1234'
    """
    # 12 decimal digits read as hex are their own BCD nibbles
    folded = int.from_bytes(clear_block, "big") ^ int(pan[-13:-1], 16)
    return _decode_without_pan(folded.to_bytes(8, "big"))


def _decode_pin_block(clear_block: bytes, pan: str, *, with_pan: bool = True) -> str:
    """Decode a clear format 0 block; no error quotes PIN digits."""
    if not _is_digits(pan, 13, 19):
        raise PinBlockError("PAN must be 13 to 19 digits")
    pin = _decode_with_pan(clear_block, pan) if with_pan else _decode_without_pan(clear_block)
    if pin is None:
        raise PinBlockError("PIN block does not decode as ISO 9564 format 0 for this PAN")
    return pin


class PinEngine:
    """PIN blocks under one PIN key, with one reused encryptor and decryptor.

    Field 53 says how a block was made and the engine decodes what it says:
    53.1 = 2 format 0 with the PAN, 1 without; 53.2 = 6 3DES under the key, 0
    single DES (the first half of a double-length key).
    """

    __slots__ = ("_decrypt", "_decrypt1", "_encrypt", "_encrypt1", "_kcv")

    def __init__(self, pik: bytes) -> None:
        if len(pik) not in (8, 16, 24):
            raise ValueError(f"PIN key must be 8, 16 or 24 bytes, got {len(pik)}")
        cipher = _cipher(pik)
        single = _cipher(pik[:_BLOCK])
        self._encrypt = cipher.encryptor().update
        self._decrypt = cipher.decryptor().update
        self._encrypt1 = single.encryptor().update
        self._decrypt1 = single.decryptor().update
        self._kcv = self._encrypt(_ZERO_BLOCK)[:_KCV_LENGTH].hex().upper()

    @property
    def kcv(self) -> str:
        """Check value of the PIN key, hex (safe to display)."""
        return self._kcv

    def encrypt(self, pin: str, pan: str, *, pin_format: str = "2", algorithm: str = "6") -> bytes:
        """Field 52: the block for ``pin``/``pan`` (53.1 ``pin_format``) encrypted
        under the PIN key (53.2 ``algorithm``)."""
        clear = pin_block(pin, pan) if pin_format == "2" else pin_block_without_pan(pin)
        return (self._encrypt if algorithm == "6" else self._encrypt1)(clear)

    def decrypt(
        self, block: bytes, pan: str, *, pin_format: str = "2", algorithm: str = "6"
    ) -> str:
        """The PIN inside field 52; :class:`PinBlockError` when it does not decode."""
        if len(block) != _BLOCK:
            raise PinBlockError(f"PIN block must be 8 bytes, got {len(block)}")
        if pin_format not in ("1", "2") or algorithm not in ("0", "6"):
            raise PinBlockError("field 53 names a PIN block format or algorithm not supported")
        clear = (self._decrypt if algorithm == "6" else self._decrypt1)(bytes(block))
        return _decode_pin_block(clear, pan, with_pan=pin_format == "2")

    def __repr__(self) -> str:
        return f"PinEngine(kcv={self._kcv})"


def encrypt_pin_block(pik: bytes, pin: str, pan: str) -> bytes:
    """Field 52: format 0 PIN block 3DES-encrypted under the PIN key."""
    return PinEngine(pik).encrypt(pin, pan)


def decrypt_pin_block(pik: bytes, block: bytes, pan: str) -> str:
    """The PIN inside field 52, or :class:`PinBlockError` when the block does not decode."""
    return PinEngine(pik).decrypt(block, pan)


# -- Working keys and field 62 ------------------------------------------------


def generate_des_key(length: int) -> bytes:
    """A random single (8) or double-length (16) DES key with odd parity."""
    if length not in (8, 16):
        raise ValueError(f"DES key length must be 8 or 16, got {length}")
    while True:
        key: bytes = psec.des.adjust_key_parity(os.urandom(length))
        # A double-length key with equal halves is single DES in disguise.
        if length == _BLOCK or key[:_BLOCK] != key[_BLOCK : 2 * _BLOCK]:
            return key


class KeyScheme:
    """Field 60.3 of a sign-on: the working keys the terminal asks for (spec §4, §5)."""

    SINGLE = "001"  # single-length PIN and MAC keys: 62 = 24 bytes
    DOUBLE = "003"  # double-length PIN key, single MAC key: 62 = 40 bytes
    WITH_TDK = "004"  # as 003 plus a track data key (TDK): 62 = 60 bytes

    ALL = (SINGLE, DOUBLE, WITH_TDK)


@dataclass(frozen=True, slots=True)
class WorkingKeys:
    """The clear working keys of one sign-on: PIN key, MAC key and, for 004, a TDK.

    This host issues a double-length PIN key and a single-length MAC key (003,
    004), or two single-length keys (001); a terminal also accepts what other
    acquirers send (a double-length MAC key).

    >>> WorkingKeys(bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718"),
    ...             bytes.fromhex("1A2B3C4D5E6F7081"))
    WorkingKeys(pik_kcv=CEBD4274, mak_kcv=A2AFCD72)
    """

    pik: bytes = field(repr=False)
    mak: bytes = field(repr=False)
    tdk: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.pik) not in (_BLOCK, 16, 24):
            raise ValueError(f"PIN key must be 8, 16 or 24 bytes, got {len(self.pik)}")
        if len(self.mak) not in (_BLOCK, 16, 24):
            raise ValueError(f"MAC key must be 8, 16 or 24 bytes, got {len(self.mak)}")
        if self.tdk is not None and len(self.tdk) not in (16, 24):
            raise ValueError(f"track data key must be 16 or 24 bytes, got {len(self.tdk)}")

    @classmethod
    def generate(cls, scheme: str = KeyScheme.DOUBLE) -> WorkingKeys:
        """Fresh random keys with odd parity, in the layout of ``scheme`` (60.3)."""
        if scheme not in KeyScheme.ALL:
            raise ValueError(f"sign-on key scheme must be one of {KeyScheme.ALL}, got {scheme!r}")
        single = scheme == KeyScheme.SINGLE
        return cls(
            pik=generate_des_key(_BLOCK if single else 16),
            mak=generate_des_key(_BLOCK),
            tdk=generate_des_key(16) if scheme == KeyScheme.WITH_TDK else None,
        )

    @property
    def pik_kcv(self) -> str:
        """PIN key check value, hex."""
        return _kcv_hex(self.pik)

    @property
    def mak_kcv(self) -> str:
        """MAC key check value, hex."""
        return _kcv_hex(self.mak)

    @property
    def tdk_kcv(self) -> str | None:
        """Track data key check value, hex (None without a TDK)."""
        return _kcv_hex(self.tdk) if self.tdk is not None else None

    def __repr__(self) -> str:
        tdk = f", tdk_kcv={self.tdk_kcv}" if self.tdk is not None else ""
        return f"WorkingKeys(pik_kcv={self.pik_kcv}, mak_kcv={self.mak_kcv}{tdk})"

    __str__ = __repr__


def _check_tmk(tmk: bytes) -> None:
    if len(tmk) != 16:
        raise ValueError(f"TMK must be 16 bytes (double-length 3DES), got {len(tmk)}")


def pack_field62(tmk: bytes, keys: WorkingKeys, scheme: str | None = None) -> bytes:
    """Field 62 of the sign-on response carrying ``keys`` under the TMK, in the
    layout of ``scheme`` (default: 004 when there is a TDK, else 003):

    - 001 (24 bytes): PIK 8 + KCV 4, MAK 8 + KCV 4;
    - 003 (40 bytes): PIK 16 + KCV 4, MAK 8 + zeros 8 + KCV 4;
    - 004 (60 bytes): the 40 of 003, then TDK 16 + KCV 4.
    """
    _check_tmk(tmk)
    if scheme is None:
        scheme = KeyScheme.WITH_TDK if keys.tdk is not None else KeyScheme.DOUBLE
    encrypt = _cipher(tmk).encryptor().update
    if scheme == KeyScheme.SINGLE:
        if len(keys.pik) != _BLOCK or len(keys.mak) != _BLOCK:
            raise ValueError("001 carries single-length PIN and MAC keys")
        return b"".join(
            (encrypt(keys.pik), check_value(keys.pik), encrypt(keys.mak), check_value(keys.mak))
        )
    if len(keys.pik) != 16 or len(keys.mak) != _BLOCK:
        raise ValueError("003/004 carry a double-length PIN key and a single-length MAC key")
    parts = [
        encrypt(keys.pik),
        check_value(keys.pik),
        encrypt(keys.mak),
        _ZERO_BLOCK,
        check_value(keys.mak),
    ]
    if scheme == KeyScheme.WITH_TDK:
        if keys.tdk is None:
            raise ValueError("004 carries a track data key")
        parts += [encrypt(keys.tdk), check_value(keys.tdk)]
    elif scheme != KeyScheme.DOUBLE:
        raise ValueError(f"unknown sign-on key scheme {scheme!r}")
    return b"".join(parts)


#: field 62 lengths a terminal accepts, and where each key sits: (name, offset,
#: key slot, check-value offset). 24/40/60 are what this host sends (spec §5) and
#: what the public terminal code parses; 56 and 84 are named by the CUP field text
#: and the PAX template but parsed by no public code: read here as triple-length
#: keys (24 + 4 per key), the only arithmetic that fits (docs/protocol.md).
FIELD62_LAYOUTS: dict[int, tuple[tuple[str, int, int, int], ...]] = {
    24: (("PIN", 0, 8, 8), ("MAC", 12, 8, 20)),
    40: (("PIN", 0, 16, 16), ("MAC", 20, 16, 36)),
    56: (("PIN", 0, 24, 24), ("MAC", 28, 24, 52)),
    60: (("PIN", 0, 16, 16), ("MAC", 20, 16, 36), ("TDK", 40, 16, 56)),
    84: (("PIN", 0, 24, 24), ("MAC", 28, 24, 52), ("TDK", 56, 24, 80)),
}


def _mac_key(decrypt: Callable[[bytes], bytes], slot: bytes, sent: bytes) -> bytes:
    """The MAC key of a 16/24-byte MAC key slot, as the public terminal code uses it.

    Second half zero (this host, spec §5): a single-length key. Otherwise every
    public *terminal* (PAX, Newland, Easy8583) MACs with the left half only and
    checks it with single DES; some SDKs run 3DES with the whole key. The check
    value tells which one the sending host meant: left half first, then the whole.
    """
    if slot[8:] == bytes(len(slot) - 8):
        return decrypt(slot[:8])
    clear = decrypt(slot)
    if hmac.compare_digest(check_value(clear[:8]), sent):
        return clear[:8]
    return clear


def unpack_field62(tmk: bytes, data: bytes) -> WorkingKeys:
    """Working keys from field 62, refused (:class:`KeyCheckError`) unless every
    check value matches (the MAC key slot: see :func:`_mac_key`)."""
    _check_tmk(tmk)
    layout = FIELD62_LAYOUTS.get(len(data))
    if layout is None:
        raise KeyCheckError(
            f"field 62 must be one of {sorted(FIELD62_LAYOUTS)} bytes, got {len(data)}"
        )
    data = bytes(data)
    decrypt = _cipher(tmk).decryptor().update
    keys: dict[str, bytes] = {}
    for name, at, size, kcv_at in layout:
        slot = data[at : at + size]
        sent = data[kcv_at : kcv_at + _KCV_LENGTH]
        key = _mac_key(decrypt, slot, sent) if name == "MAC" and size > 8 else decrypt(slot)
        got = check_value(key)
        if not hmac.compare_digest(got, sent):
            raise KeyCheckError(
                f"{name} key check value mismatch: field 62 says {sent.hex().upper()}, "
                f"key decrypts to {got.hex().upper()} (wrong TMK?)"
            )
        keys[name] = key
    return WorkingKeys(pik=keys["PIN"], mak=keys["MAC"], tdk=keys.get("TDK"))
