"""The security module boundary: the only place on the host where clear working keys and PINs exist.

Everything crossing this boundary is safe to store or log: sealed keys
(:mod:`clearpos.keys.kek` text bound to ``"tmk:TID"``, ``"pik:TID"``,
``"mak:TID"``), field 62 (keys under the TMK), check values, MACs, encrypted
PIN blocks and PIN verification values (IBM 3624 offsets). Clear keys stay
inside cached engines; a clear PIN only ever lives in a local variable of
:meth:`SecurityModule.verify_pin`.

Engines are cached per ``(tid, sealed key)`` in a bounded LRU, so the AES-GCM
unseal happens once per sign-on, not once per message.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import psec

from clearpos.keys.crypto import (
    KeyScheme,
    MacEngine,
    PinEngine,
    WorkingKeys,
    _cipher,
    check_value,
    expand_des_key,
    generate_des_key,
    pack_field62,
    tdes_cipher,
)
from clearpos.keys.kek import KeyEncryptionKey

__all__ = ["IssuedKeys", "SecurityModule"]

PVV_SCHEME = "3624"
"""Prefix of :meth:`SecurityModule.pin_verification_value` text: ``3624:<length>:<offset>``."""

_DECIMALIZATION = "0123456789012345"
_PVK_INFO = b"clearpos/pvk/v1"
_MIN_PIN, _MAX_PIN = 4, 12

_K = TypeVar("_K")
_V = TypeVar("_V")


class _Lru(Generic[_K, _V]):
    """A small thread-safe LRU map."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("cache capacity must be at least 1")
        self._capacity = capacity
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_create(self, key: _K, create: Callable[[], _V]) -> _V:
        items = self._items
        value = items.get(key)  # one C call, atomic under the GIL: no lock for a hit
        if value is not None:
            try:  # noqa: SIM105 (contextlib.suppress costs a context manager per hit)
                items.move_to_end(key)
            except KeyError:  # evicted by another thread in between: still a valid engine
                pass
            return value
        value = create()  # outside the lock: may raise, and unsealing need not serialise
        self.put(key, value)
        return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def discard_where(self, predicate: Callable[[_K], bool]) -> int:
        with self._lock:
            doomed = [key for key in self._items if predicate(key)]
            for key in doomed:
                del self._items[key]
            return len(doomed)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class IssuedKeys:
    """A sign-on's result: field 62 for the 0810, and the working keys sealed for storage."""

    field62: bytes = field(repr=False)
    sealed_pik: str = field(repr=False)
    sealed_mak: str = field(repr=False)
    pik_kcv: str
    mak_kcv: str
    sealed_tdk: str | None = field(default=None, repr=False)
    tdk_kcv: str | None = field(default=None, repr=False)


def _check_tid(tid: str) -> None:
    if not tid or not tid.isprintable():
        raise ValueError("terminal id must be a non-empty printable string")


def _check_issuer_key_name(name: str) -> None:
    if name not in ("ac", "smi", "smc"):
        raise ValueError(f"issuer master key name must be ac, smi or smc, got {name!r}")


#: IBM 3624 offset digits, (p - n) mod 10 for each PIN digit p and natural digit n,
#: for all digits at once: a natural hex digit h becomes the byte 10 - dec(h)
#: (1-10), which added to the PIN's ASCII digit byte (0x30 + p) gives 0x30 + 10 + p - n
#: (0x31-0x43: no carry into the next byte, so one integer addition adds every
#: digit); _MOD10 then maps each such byte back to the ASCII digit of (p - n) mod 10
_COMPLEMENT = bytes.maketrans(b"0123456789abcdef", bytes(10 - int(d) for d in _DECIMALIZATION))
_MOD10 = bytes.maketrans(bytes(range(0x31, 0x44)), bytes(0x30 + k % 10 for k in range(1, 20)))


#: "3624:<length>:<offset>", ASCII digits only (``\d`` would take other scripts' digits)
_PVV = re.compile(rf"{PVV_SCHEME}:([0-9]{{1,2}}):([0-9]{{{_MIN_PIN},{_MAX_PIN}}})", re.ASCII)


def _parse_pvv(pvv: str) -> tuple[int, str]:
    """(PIN length, offset) of a stored PIN verification value.

    >>> _parse_pvv("3624:6:123456")
    (6, '123456')
    >>> _parse_pvv("3624:5:123456")
    Traceback (most recent call last):
    ValueError: malformed PIN verification value (expected '3624:<length>:<offset>')
    """
    m = _PVV.fullmatch(pvv)
    if m is None or int(m[1]) != len(m[2]):
        raise ValueError("malformed PIN verification value (expected '3624:<length>:<offset>')")
    offset = m[2]
    return len(offset), offset


class SecurityModule:
    """A software security module over one KEK (and one PIN verification key).

    ``pvk`` is a 16-byte DES key for IBM 3624 PIN offsets; without one it is
    derived from the KEK (HKDF-SHA256), stable across restarts **but not across
    a KEK rotation** -- pass an explicit ``pvk`` when the KEK may change.
    """

    __slots__ = ("_kek", "_mac_engines", "_pin_engines", "_pvk", "_pvk_cipher")

    def __init__(
        self, kek: KeyEncryptionKey, pvk: bytes | None = None, *, cache_size: int = 4096
    ) -> None:
        self._kek = kek
        if pvk is None:
            pvk = psec.des.adjust_key_parity(kek.derive(_PVK_INFO, 16))
        elif len(pvk) != 16:
            raise ValueError(f"PIN verification key must be 16 bytes, got {len(pvk)}")
        self._pvk = expand_des_key(pvk)
        self._pvk_cipher = _cipher(self._pvk).encryptor()
        self._mac_engines: _Lru[tuple[str, str], MacEngine] = _Lru(cache_size)
        self._pin_engines: _Lru[tuple[str, str], PinEngine] = _Lru(cache_size)

    @classmethod
    def load(cls) -> SecurityModule:
        """The security module over this machine's KEK (:meth:`KeyEncryptionKey.load`)."""
        return cls(KeyEncryptionKey.load())

    # -- terminal master keys ---------------------------------------------

    def seal_tmk(self, tid: str, tmk_clear: bytes) -> str:
        """Seal a clear double-length TMK (injected out of band) for terminal ``tid``."""
        _check_tid(tid)
        if len(tmk_clear) != 16:
            raise ValueError(f"TMK must be 16 bytes (double-length 3DES), got {len(tmk_clear)}")
        return self._kek.seal(tmk_clear, f"tmk:{tid}")

    def generate_tmk(self, tid: str) -> str:
        """A fresh random TMK for ``tid``, sealed (to be exported to the terminal out of band)."""
        return self.seal_tmk(tid, generate_des_key(16))

    def tmk_check_value(self, tid: str, sealed_tmk: str) -> str:
        """Hex check value of the terminal's TMK (safe to display)."""
        return check_value(self._kek.open(sealed_tmk, f"tmk:{tid}")).hex().upper()

    def rewrap_tmk(self, tid: str, sealed_tmk: str, new_kek: KeyEncryptionKey) -> str:
        """The TMK sealed under ``new_kek`` instead (KEK rotation)."""
        return new_kek.seal(self._kek.open(sealed_tmk, f"tmk:{tid}"), f"tmk:{tid}")

    # -- the simulated issuer's chip master keys --------------------------

    def seal_issuer_key(self, name: str, clear: bytes) -> str:
        """Seal one issuer master key (``name``: ``ac``, ``smi`` or ``smc``), bound to
        ``imk:<name>`` so a sealed AC key cannot be opened as the SMI key."""
        _check_issuer_key_name(name)
        if len(clear) != 16:
            raise ValueError(f"issuer master key imk_{name} must be 16 bytes, got {len(clear)}")
        return self._kek.seal(clear, f"imk:{name}")

    def open_issuer_key(self, name: str, sealed: str) -> bytes:
        """The clear issuer master key, for the simulated issuer's EMV engine
        (:mod:`clearpos.issuer.emv`): the issuer is another party played in this
        process, and its keys leave this boundary only to it."""
        _check_issuer_key_name(name)
        return self._kek.open(sealed, f"imk:{name}")

    # -- sign-on ----------------------------------------------------------

    def issue_working_keys(
        self, tid: str, sealed_tmk: str, scheme: str = KeyScheme.DOUBLE
    ) -> IssuedKeys:
        """Fresh working keys for a sign-on in the layout of ``scheme`` (60.3 001,
        003 or 004): field 62 under the TMK, and the keys sealed."""
        _check_tid(tid)
        tmk = self._kek.open(sealed_tmk, f"tmk:{tid}")
        keys = WorkingKeys.generate(scheme)
        sealed_pik = self._kek.seal(keys.pik, f"pik:{tid}")
        sealed_mak = self._kek.seal(keys.mak, f"mak:{tid}")
        sealed_tdk = self._kek.seal(keys.tdk, f"tdk:{tid}") if keys.tdk is not None else None
        mac_engine = MacEngine(keys.mak)
        pin_engine = PinEngine(keys.pik)
        self._mac_engines.put((tid, sealed_mak), mac_engine)
        self._pin_engines.put((tid, sealed_pik), pin_engine)
        return IssuedKeys(
            field62=pack_field62(tmk, keys, scheme),
            sealed_pik=sealed_pik,
            sealed_mak=sealed_mak,
            pik_kcv=pin_engine.kcv,
            mak_kcv=mac_engine.kcv,
            sealed_tdk=sealed_tdk,
            tdk_kcv=keys.tdk_kcv,
        )

    def track_decryptor(self, tid: str, sealed_tdk: str) -> Callable[[bytes], bytes]:
        """The 8-byte 3DES-ECB decryption under the terminal's TDK (spec §5 track
        encryption). The clear TDK stays inside the returned cipher."""
        cipher = tdes_cipher(self._kek.open(sealed_tdk, f"tdk:{tid}"))
        return cipher.decryptor().update

    def forget(self, tid: str) -> int:
        """Drop the cached engines of ``tid`` (sign-off, key change); returns how many."""
        return self._mac_engines.discard_where(
            lambda key: key[0] == tid
        ) + self._pin_engines.discard_where(lambda key: key[0] == tid)

    # -- MAC --------------------------------------------------------------

    def _mac_engine(self, tid: str, sealed_mak: str) -> MacEngine:
        return self._mac_engines.get_or_create(
            (tid, sealed_mak), lambda: MacEngine(self._kek.open(sealed_mak, f"mak:{tid}"))
        )

    def generate_mac(self, tid: str, sealed_mak: str, block: bytes) -> bytes:
        """Field 64 (8 ASCII bytes) for a MAC block under the terminal's MAC key."""
        return self._mac_engine(tid, sealed_mak).mac(block)

    def verify_mac(self, tid: str, sealed_mak: str, block: bytes, mac: bytes) -> bool:
        """True when ``mac`` is the field 64 of ``block`` under the terminal's MAC key."""
        return self._mac_engine(tid, sealed_mak).verify(block, mac)

    # -- PIN --------------------------------------------------------------

    def _pin_engine(self, tid: str, sealed_pik: str) -> PinEngine:
        return self._pin_engines.get_or_create(
            (tid, sealed_pik), lambda: PinEngine(self._kek.open(sealed_pik, f"pik:{tid}"))
        )

    def _ibm3624_offset(self, pan: str, pin: str) -> str:
        """IBM 3624 offset (same result as ``psec.pin.generate_ibm3624_offset``,
        which a test checks), with one cached PVK cipher instead of a new one per
        call: PIN verification is on every purchase's path."""
        # Validation data: the rightmost (up to 16) PAN digits before the check digit, F-padded.
        data = bytes.fromhex(pan[-17:-1].ljust(16, "F"))
        natural = self._pvk_cipher.update(data).hex()[: len(pin)].encode().translate(_COMPLEMENT)
        total = int.from_bytes(pin.encode(), "big") + int.from_bytes(natural, "big")
        return total.to_bytes(len(pin), "big").translate(_MOD10).decode()

    def pin_verification_value(self, pan: str, pin: str) -> str:
        """``"3624:<length>:<offset>"``: an IBM 3624 offset as long as the PIN (never the PIN).

        The offset covers every PIN digit and the length is stored, so exactly
        one PIN verifies against it.
        """
        if not (_MIN_PIN <= len(pin) <= _MAX_PIN and pin.isascii() and pin.isdigit()):
            raise ValueError("PIN must be 4 to 12 digits")
        if not (13 <= len(pan) <= 19 and pan.isascii() and pan.isdigit()):
            raise ValueError("PAN must be 13 to 19 digits")
        return f"{PVV_SCHEME}:{len(pin)}:{self._ibm3624_offset(pan, pin)}"

    def verify_pin(
        self,
        tid: str,
        sealed_pik: str,
        pin_block: bytes,
        pan: str,
        pvv: str,
        *,
        pin_format: str = "2",
        algorithm: str = "6",
    ) -> bool:
        """True when field 52 (under the terminal's PIN key) holds the PIN behind ``pvv``.

        ``pin_format`` and ``algorithm`` are 53.1 and 53.2 as the terminal sent them.
        :class:`~clearpos.keys.crypto.PinBlockError` when the block does not
        decode (host answers 99 ``pin.format_error``); ``ValueError`` for a
        malformed ``pvv``.
        """
        length, offset = _parse_pvv(pvv)
        pin = self._pin_engine(tid, sealed_pik).decrypt(
            pin_block, pan, pin_format=pin_format, algorithm=algorithm
        )
        if len(pin) != length:
            return False
        return hmac.compare_digest(self._ibm3624_offset(pan, pin), offset)

    def __repr__(self) -> str:
        return (
            f"SecurityModule(kek={self._kek.fingerprint()}, "
            f"mac_engines={len(self._mac_engines)}, pin_engines={len(self._pin_engines)})"
        )
