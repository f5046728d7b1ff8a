"""Key hierarchy of the POS 8583 dialect: check values, MAC, PIN blocks, keys at rest.

- :mod:`clearpos.keys.crypto` -- pure primitives (3DES, KCV, MAC, PIN block, field 62);
- :mod:`clearpos.keys.kek` -- the key-encryption key that seals keys at rest;
- :mod:`clearpos.keys.hsm` -- the host's security module boundary;
- :mod:`clearpos.keys.terminal` -- the keys a terminal holds;
- :mod:`clearpos.keys.tokens` -- PAN tokens, the keyed hash the store finds cards by.
"""

from clearpos.keys.crypto import (
    FIELD62_LENGTH,
    KeyCheckError,
    MacEngine,
    PinBlockError,
    PinEngine,
    WorkingKeys,
    check_value,
    decrypt_pin_block,
    encrypt_pin_block,
    pack_field62,
    pin_block,
    tdes_decrypt,
    tdes_encrypt,
    unpack_field62,
)
from clearpos.keys.hsm import IssuedKeys, SecurityModule
from clearpos.keys.kek import KekError, KeyEncryptionKey, SealedKeyError
from clearpos.keys.terminal import NotSignedOnError, TerminalKeys
from clearpos.keys.tokens import PanTokenizer

__all__ = [
    "FIELD62_LENGTH",
    "IssuedKeys",
    "KekError",
    "KeyCheckError",
    "KeyEncryptionKey",
    "MacEngine",
    "NotSignedOnError",
    "PanTokenizer",
    "PinBlockError",
    "PinEngine",
    "SealedKeyError",
    "SecurityModule",
    "TerminalKeys",
    "WorkingKeys",
    "check_value",
    "decrypt_pin_block",
    "encrypt_pin_block",
    "pack_field62",
    "pin_block",
    "tdes_decrypt",
    "tdes_encrypt",
    "unpack_field62",
]
