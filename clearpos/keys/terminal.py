"""The terminal side of the key hierarchy: what a (virtual) POS holds.

A terminal has its TMK from injection; at each sign-on it accepts field 62,
checks both check values and from then on makes PIN blocks and MACs. Its keys
are persisted sealed under a :class:`~clearpos.keys.kek.KeyEncryptionKey`.
"""

from __future__ import annotations

from collections.abc import Callable

from clearpos.keys.crypto import (
    MacEngine,
    PinEngine,
    WorkingKeys,
    check_value,
    tdes_cipher,
    unpack_field62,
)
from clearpos.keys.kek import KeyEncryptionKey

__all__ = ["NotSignedOnError", "TerminalKeys"]


class NotSignedOnError(RuntimeError):
    """The terminal has no working keys yet: sign on (0800) first."""


def _context(name: str, tid: str) -> str:
    return f"terminal-{name}:{tid}"


class TerminalKeys:
    """TMK plus, once signed on, the working keys of one terminal.

    >>> keys = TerminalKeys(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    >>> keys
    TerminalKeys(tmk_kcv=08D7B4FB, signed_on=False)
    """

    __slots__ = ("_mac", "_pin", "_tdk", "_tmk", "_working")

    def __init__(self, tmk: bytes, working: WorkingKeys | None = None) -> None:
        if len(tmk) != 16:
            raise ValueError(f"TMK must be 16 bytes (double-length 3DES), got {len(tmk)}")
        self._tmk = bytes(tmk)
        self._working: WorkingKeys | None = None
        self._pin: PinEngine | None = None
        self._mac: MacEngine | None = None
        self._tdk: Callable[[bytes], bytes] | None = None
        if working is not None:
            self._install(working)

    def _install(self, working: WorkingKeys) -> None:
        self._pin = PinEngine(working.pik)
        self._mac = MacEngine(working.mak)
        self._tdk = tdes_cipher(working.tdk).encryptor().update if working.tdk else None
        self._working = working

    def accept_field62(self, data: bytes) -> WorkingKeys:
        """Install the working keys of a sign-on response; :class:`KeyCheckError` if refused.

        A refused field 62 leaves the previous keys (if any) in place.
        """
        working = unpack_field62(self._tmk, data)
        self._install(working)
        return working

    def sign_off(self) -> None:
        """Forget the working keys (sign-off, or the host asked to sign on again)."""
        self._working = self._pin = self._mac = self._tdk = None

    @property
    def signed_on(self) -> bool:
        """True once working keys are installed."""
        return self._working is not None

    def _engines(self) -> tuple[PinEngine, MacEngine]:
        if self._pin is None or self._mac is None:
            raise NotSignedOnError("no working keys: the terminal must sign on first")
        return self._pin, self._mac

    def pin_block(
        self, pin: str, pan: str, *, pin_format: str = "2", algorithm: str = "6"
    ) -> bytes:
        """Field 52: the PIN block (53.1 ``pin_format``: 2 with PAN, 1 without)
        encrypted under the PIN key (53.2 ``algorithm``: 6 3DES, 0 single DES)."""
        return self._engines()[0].encrypt(pin, pan, pin_format=pin_format, algorithm=algorithm)

    @property
    def has_tdk(self) -> bool:
        """True when the last sign-on (60.3 = 004) brought a track data key."""
        return self._tdk is not None

    def track_encryptor(self) -> Callable[[bytes], bytes]:
        """The 8-byte 3DES encryption under the TDK, for tracks (53.3 = 1)."""
        if self._tdk is None:
            raise NotSignedOnError("no track data key: sign on with 60.3 = 004 first")
        return self._tdk

    def mac(self, block: bytes) -> bytes:
        """Field 64 for a MAC block (MTI up to, not including, field 64)."""
        return self._engines()[1].mac(block)

    def verify_mac(self, block: bytes, mac: bytes) -> bool:
        """True when ``mac`` is field 64 of ``block`` (e.g. an approved 0210)."""
        return self._engines()[1].verify(block, mac)

    def check_values(self) -> dict[str, str]:
        """Hex check values: ``tmk`` always, ``pik`` and ``mak`` once signed on."""
        values = {"tmk": check_value(self._tmk).hex().upper()}
        if self._pin is not None and self._mac is not None:
            values["pik"] = self._pin.kcv
            values["mak"] = self._mac.kcv
        if self._working is not None and self._working.tdk_kcv:
            values["tdk"] = self._working.tdk_kcv
        return values

    def to_sealed(self, kek: KeyEncryptionKey, tid: str = "") -> dict[str, str]:
        """The keys sealed under ``kek`` for the terminal's state directory (bound to ``tid``)."""
        sealed = {"tmk": kek.seal(self._tmk, _context("tmk", tid))}
        if self._working is not None:
            sealed["pik"] = kek.seal(self._working.pik, _context("pik", tid))
            sealed["mak"] = kek.seal(self._working.mak, _context("mak", tid))
            if self._working.tdk is not None:
                sealed["tdk"] = kek.seal(self._working.tdk, _context("tdk", tid))
        return sealed

    @classmethod
    def from_sealed(
        cls, kek: KeyEncryptionKey, sealed: dict[str, str], tid: str = ""
    ) -> TerminalKeys:
        """Keys saved by :meth:`to_sealed`; :class:`SealedKeyError` if they do not open."""
        tmk = kek.open(sealed["tmk"], _context("tmk", tid))
        working = None
        if "pik" in sealed or "mak" in sealed:
            working = WorkingKeys(
                pik=kek.open(sealed["pik"], _context("pik", tid)),
                mak=kek.open(sealed["mak"], _context("mak", tid)),
                tdk=kek.open(sealed["tdk"], _context("tdk", tid)) if "tdk" in sealed else None,
            )
        return cls(tmk, working)

    def __repr__(self) -> str:
        values = self.check_values()
        text = f"TerminalKeys(tmk_kcv={values['tmk']}, signed_on={self.signed_on}"
        if self.signed_on:
            text += f", pik_kcv={values['pik']}, mak_kcv={values['mak']}"
        return text + ")"

    __str__ = __repr__
