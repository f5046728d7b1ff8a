"""PAN tokens: the store finds cards by a keyed hash, never by the clear PAN."""

from __future__ import annotations

import hashlib

from .kek import KeyEncryptionKey


class PanTokenizer:
    """HMAC-SHA256 of the PAN under a key derived from the KEK.

    HMAC as RFC 2104 defines it, with the inner and outer SHA-256 states of the
    key computed once and copied per token (every purchase makes one; a fresh
    ``hmac.new`` or ``hmac.digest`` sets the key up again each time, about twice
    the work):

    >>> import hashlib, hmac
    >>> t = PanTokenizer(KeyEncryptionKey(bytes(range(32))))
    >>> t.token("6222021234567890123") == hmac.new(
    ...     t._key, b"6222021234567890123", hashlib.sha256).hexdigest()
    True
    """

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self._key = kek.derive(b"clearpos pan token v1", 32)
        block = self._key.ljust(64, b"\0")  # SHA-256's block; the key is 32 bytes
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def token(self, pan: str) -> str:
        inner = self._inner.copy()
        inner.update(pan.encode("ascii"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return "PanTokenizer(<key hidden>)"
