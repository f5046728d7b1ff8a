"""Keys at rest: one key-encryption key (KEK) seals every stored key.

A sealed key is text, ``"v1:" + urlsafe-base64(nonce 12 | AES-256-GCM ciphertext+tag)``,
with a *context* such as ``"tmk:10000001"`` bound in as associated data, so a
sealed TMK cannot be replayed as another terminal's TMK or as a MAC key.

The KEK comes from ``CLEARPOS_KEK`` (64 hex characters) or from a file
(``CLEARPOS_KEK_FILE``, default ``~/.clearpos/kek``, mode 0600 in a 0700
directory). The host's KEK is made on purpose, once, with ``clearpos admin kek
new``: a host that silently made a new one would seal fresh keys no other
machine can open. A caller that owns a state directory (a virtual terminal, the
demo) names its own file, which is created on first use.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ENV_KEK",
    "ENV_KEK_FILE",
    "KekError",
    "KeyEncryptionKey",
    "SealedKeyError",
    "create_key_file",
    "default_kek_path",
    "missing_kek_help",
    "new_kek_file",
]

ENV_KEK = "CLEARPOS_KEK"
ENV_KEK_FILE = "CLEARPOS_KEK_FILE"

_PREFIX = "v1:"
_NONCE = 12
_TAG = 16
_KEY_BYTES = 32


class KekError(RuntimeError):
    """The KEK cannot be loaded (unreadable, malformed or unsafe file, bad environment value)."""


class SealedKeyError(ValueError):
    """A sealed key does not open: tampered, wrong context, wrong KEK or not sealed text."""


def default_kek_path() -> Path:
    """``$CLEARPOS_KEK_FILE`` if set, else ``~/.clearpos/kek``."""
    configured = os.environ.get(ENV_KEK_FILE)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".clearpos" / "kek"


def _parse_hex_key(text: str, source: str) -> bytes:
    text = text.strip()
    if len(text) != 2 * _KEY_BYTES:
        raise KekError(f"{source}: expected {2 * _KEY_BYTES} hex characters, found {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise KekError(f"{source}: expected {2 * _KEY_BYTES} hex characters") from None


def missing_kek_help(path: Path) -> str:
    """What to say when there is no KEK: where it was looked for and how to make one."""
    return (
        f"no KEK: ${ENV_KEK} is not set and {path} does not exist. Make one with "
        f"`clearpos admin kek new --out {path}` (or set ${ENV_KEK_FILE} to the file "
        "of the KEK this store was sealed with)"
    )


def create_key_file(path: Path) -> KeyEncryptionKey:
    """A new random KEK written to ``path`` (0600; a missing directory is made 0700).

    :class:`KekError` when ``path`` exists: a KEK is never overwritten, since every
    key sealed under the old one would be lost with it.
    """
    path = path.expanduser()
    if path.exists():
        raise KekError(f"{path} already exists: a KEK is never overwritten")
    try:
        _create_key_file(path)
    except OSError as error:
        raise KekError(f"cannot create KEK file {path}: {error.strerror}") from None
    return KeyEncryptionKey(_read_key_file(path))


def _create_key_file(path: Path) -> None:
    """Write a fresh KEK to ``path`` atomically; a concurrent creator's file wins."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".kek-", dir=directory)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(os.urandom(_KEY_BYTES).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # os.link fails if the file appeared meanwhile: then the other creator's key wins.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except PermissionError:
        raise KekError(f"KEK file {path} is not readable by this user") from None
    except UnicodeDecodeError:
        raise KekError(f"KEK file {path} is malformed: expected 64 hex characters") from None
    except OSError as error:
        raise KekError(f"KEK file {path} cannot be read: {error.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KekError(
            f"KEK file {path} is accessible to group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    return _parse_hex_key(text, f"KEK file {path} is malformed")


def new_kek_file(path: Path | None = None) -> KeyEncryptionKey:
    """:func:`create_key_file` at ``path``, by default :func:`default_kek_path`."""
    return create_key_file(path or default_kek_path())


class KeyEncryptionKey:
    """A 32-byte AES-256-GCM key that seals other keys for storage.

    >>> kek = KeyEncryptionKey(bytes(32))
    >>> kek.open(kek.seal(b"secret", "tmk:10000001"), "tmk:10000001")
    b'secret'
    >>> kek
    KeyEncryptionKey(fingerprint=66687aad)
    """

    __slots__ = ("_aead", "_fingerprint", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"KEK must be {_KEY_BYTES} bytes, got {len(key)}")
        self._key = bytes(key)
        self._aead = AESGCM(self._key)
        self._fingerprint = hashlib.sha256(self._key).hexdigest()[:8]

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        """A fresh random KEK (tests, tools); not persisted."""
        return cls(os.urandom(_KEY_BYTES))

    @classmethod
    def load(cls, path: Path | None = None, *, create: bool | None = None) -> KeyEncryptionKey:
        """The KEK from ``$CLEARPOS_KEK``, else from ``path`` / :func:`default_kek_path`.

        The environment variable wins over any file. A missing file is created
        (0600, directory 0700) only when ``create`` is true, which it is by default
        for an explicit ``path`` (a caller's own state directory) and never for the
        shared default: then :class:`KekError` says how to make one
        (:func:`missing_kek_help`). :class:`KekError` too when the file is
        unreadable, malformed or readable by group or others.
        """
        from_env = os.environ.get(ENV_KEK)
        if from_env:
            return cls(_parse_hex_key(from_env, f"${ENV_KEK} is malformed"))
        if create is None:
            create = path is not None
        path = (path or default_kek_path()).expanduser()
        try:
            exists = path.exists()
        except OSError as error:
            raise KekError(f"KEK file {path} cannot be reached: {error.strerror}") from None
        if not exists and not create:
            raise KekError(missing_kek_help(path))
        if not exists:
            try:
                _create_key_file(path)
            except OSError as error:
                raise KekError(f"cannot create KEK file {path}: {error.strerror}") from None
        return cls(_read_key_file(path))

    def fingerprint(self) -> str:
        """First 8 hex digits of SHA-256 of the key: identifies the KEK, safe to show."""
        return self._fingerprint

    def seal(self, clear: bytes, context: str) -> str:
        """Encrypt ``clear`` bound to ``context`` (e.g. ``"tmk:10000001"``) as ``v1:`` text."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, bytes(clear), context.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> bytes:
        """The clear bytes of ``sealed``, or :class:`SealedKeyError` (tampered / context / KEK)."""
        if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
            raise SealedKeyError(f"{context}: not a sealed key (expected '{_PREFIX}...' text)")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise SealedKeyError(f"{context}: sealed key is not valid base64") from None
        if len(raw) < _NONCE + _TAG:
            raise SealedKeyError(f"{context}: sealed key is too short")
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
        except InvalidTag:
            raise SealedKeyError(
                f"{context}: sealed key does not open under KEK {self._fingerprint} "
                "(tampered, sealed for another context, or sealed under another KEK)"
            ) from None

    def derive(self, info: bytes, length: int) -> bytes:
        """A stable sub-key for ``info`` (HKDF-SHA256); never the KEK itself."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
            self._key
        )

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(fingerprint={self._fingerprint})"

    __str__ = __repr__
