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
    "FIELD62_LENGTH",
    "KeyCheckError",
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
    "tdes_decrypt",
    "tdes_encrypt",
    "unpack_field62",
]

FIELD62_LENGTH = 40
"""Field 62 of the sign-on response: PIK cipher 16 + KCV 4 + MAK cipher 8 + zeros 8 + KCV 4."""

_BLOCK = 8
_ZERO_BLOCK = bytes(_BLOCK)
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
    """The UnionPay "ECB" MAC (spec §5) under one single-length MAC key.

    Holds one reused DES encryptor (ECB keeps no chaining state between
    ``update`` calls), so a MAC costs two block encryptions and an XOR fold.

    >>> engine = MacEngine(bytes.fromhex("1A2B3C4D5E6F7081"))
    >>> engine
    MacEngine(kcv=A2AFCD72)
    """

    __slots__ = ("_encrypt", "_kcv")

    def __init__(self, mac_key: bytes) -> None:
        if len(mac_key) != _BLOCK:
            raise ValueError(f"MAC key must be 8 bytes (single-length DES), got {len(mac_key)}")
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
        folded = reduce(xor, struct.unpack(f">{count}Q", block), 0)
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


def _decode_pin_block(clear_block: bytes, pan: str) -> str:
    """Decode a clear format 0 block; the psec error (which quotes PIN digits) never escapes."""
    if not _is_digits(pan, 13, 19):
        raise PinBlockError("PAN must be 13 to 19 digits")
    pin: str | None
    try:
        pin = psec.pinblock.decode_pinblock_iso_0(clear_block, pan)
    except ValueError:
        pin = None
    # Raised outside the ``except`` so the psec exception is not even kept as __context__.
    if pin is None:
        raise PinBlockError("PIN block does not decode as ISO 9564 format 0 for this PAN")
    return pin


class PinEngine:
    """Format 0 PIN blocks under one PIN key, with one reused encryptor and decryptor."""

    __slots__ = ("_decrypt", "_encrypt", "_kcv")

    def __init__(self, pik: bytes) -> None:
        if len(pik) not in (16, 24):
            raise ValueError(f"PIN key must be 16 or 24 bytes, got {len(pik)}")
        cipher = _cipher(pik)
        self._encrypt = cipher.encryptor().update
        self._decrypt = cipher.decryptor().update
        self._kcv = self._encrypt(_ZERO_BLOCK)[:_KCV_LENGTH].hex().upper()

    @property
    def kcv(self) -> str:
        """Check value of the PIN key, hex (safe to display)."""
        return self._kcv

    def encrypt(self, pin: str, pan: str) -> bytes:
        """Field 52: the format 0 block for ``pin``/``pan`` encrypted under the PIN key."""
        return self._encrypt(pin_block(pin, pan))

    def decrypt(self, block: bytes, pan: str) -> str:
        """The PIN inside field 52; :class:`PinBlockError` when it does not decode."""
        if len(block) != _BLOCK:
            raise PinBlockError(f"PIN block must be 8 bytes, got {len(block)}")
        return _decode_pin_block(self._decrypt(bytes(block)), pan)

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


@dataclass(frozen=True, slots=True)
class WorkingKeys:
    """The clear working keys of one sign-on: a double-length PIN key and a single-length MAC key.

    >>> WorkingKeys(bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718"),
    ...             bytes.fromhex("1A2B3C4D5E6F7081"))
    WorkingKeys(pik_kcv=CEBD4274, mak_kcv=A2AFCD72)
    """

    pik: bytes = field(repr=False)
    mak: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.pik) != 16:
            raise ValueError(f"PIN key must be 16 bytes (double-length), got {len(self.pik)}")
        if len(self.mak) != _BLOCK:
            raise ValueError(f"MAC key must be 8 bytes (single-length), got {len(self.mak)}")

    @classmethod
    def generate(cls) -> WorkingKeys:
        """Fresh random keys with odd parity."""
        return cls(pik=generate_des_key(16), mak=generate_des_key(_BLOCK))

    @property
    def pik_kcv(self) -> str:
        """PIN key check value, hex."""
        return _kcv_hex(self.pik)

    @property
    def mak_kcv(self) -> str:
        """MAC key check value, hex."""
        return _kcv_hex(self.mak)

    def __repr__(self) -> str:
        return f"WorkingKeys(pik_kcv={self.pik_kcv}, mak_kcv={self.mak_kcv})"

    __str__ = __repr__


def _check_tmk(tmk: bytes) -> None:
    if len(tmk) != 16:
        raise ValueError(f"TMK must be 16 bytes (double-length 3DES), got {len(tmk)}")


def pack_field62(tmk: bytes, keys: WorkingKeys) -> bytes:
    """Field 62 of the sign-on response (40 bytes) carrying ``keys`` under the TMK."""
    _check_tmk(tmk)
    encrypt = _cipher(tmk).encryptor().update
    return b"".join(
        (
            encrypt(keys.pik),
            check_value(keys.pik),
            encrypt(keys.mak),
            _ZERO_BLOCK,
            check_value(keys.mak),
        )
    )


def unpack_field62(tmk: bytes, data: bytes) -> WorkingKeys:
    """Working keys from field 62, refused (:class:`KeyCheckError`) unless both check values match.

    The 8 bytes after the MAC key ciphertext are ignored (spec: zeros; a
    double-length MAC key there would fail the MAC key check value anyway).
    """
    _check_tmk(tmk)
    if len(data) != FIELD62_LENGTH:
        raise KeyCheckError(f"field 62 must be {FIELD62_LENGTH} bytes, got {len(data)}")
    data = bytes(data)
    decrypt = _cipher(tmk).decryptor().update
    pik = decrypt(data[0:16])
    mak = decrypt(data[20:28])
    for name, key, sent in (("PIN", pik, data[16:20]), ("MAC", mak, data[36:40])):
        got = check_value(key)
        if not hmac.compare_digest(got, sent):
            raise KeyCheckError(
                f"{name} key check value mismatch: field 62 says {sent.hex().upper()}, "
                f"key decrypts to {got.hex().upper()} (wrong TMK?)"
            )
    return WorkingKeys(pik=pik, mak=mak)
