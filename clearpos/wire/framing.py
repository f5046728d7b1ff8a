"""Framing: ``[length 2][TPDU 5][header 6][message]`` (spec/pos8583.md §1).

Sans-I/O. :class:`Framer` is fed bytes in any chunking and yields complete
:class:`Frame` objects; :func:`encode_frame` is the reverse.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from ..record import record
from .errors import FramingError

TPDU_ID = 0x60
HEADER_LEN = 6
TPDU_LEN = 5
MIN_BODY = 10  # MTI + bitmap
MIN_FRAME = TPDU_LEN + HEADER_LEN + MIN_BODY
DEFAULT_MAX_FRAME = 2048


class ProcessingRequirement:
    """Header processing requirement codes (host -> terminal)."""

    NONE = 0
    DOWNLOAD_PARAMETERS = 1
    UPLOAD_STATUS = 2
    SIGN_ON_AGAIN = 3
    UPDATE_CA_KEYS = 4
    DOWNLOAD_IC_PARAMETERS = 5
    DOWNLOAD_SOFTWARE = 6


#: a fleet sends a handful of TPDUs and headers: each written once, then looked up
#: (TPDU or Header -> raw bytes; reading is looked up per frame, ``_READ_HEADS``);
#: bounded against odd senders
_ENCODED: dict[Any, bytes] = {}
_REMEMBERED_MAX = 1024


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _REMEMBERED_MAX:
        cache.clear()
    cache[key] = value


@record
class TPDU:
    """Transport protocol data unit: ID ``60``, destination and source address."""

    destination: int = 0x0003
    source: int = 0x0000
    id: int = TPDU_ID

    def encode(self) -> bytes:
        raw = _ENCODED.get(self)
        if raw is None:
            raw = (
                bytes((self.id,))
                + self.destination.to_bytes(2, "big")
                + self.source.to_bytes(2, "big")
            )
            _remember(_ENCODED, self, raw)
        return raw

    def swapped(self) -> TPDU:
        """The TPDU of an answer: destination and source swapped."""
        return TPDU(self.source, self.destination, self.id)

    @classmethod
    def decode(cls, raw: bytes, offset: int = 0) -> TPDU:
        if len(raw) != TPDU_LEN:
            raise FramingError(f"TPDU must be {TPDU_LEN} bytes", offset=offset)
        if raw[0] != TPDU_ID:
            raise FramingError(f"TPDU must start with 60, got {raw[0]:02X}", offset=offset)
        return cls(int.from_bytes(raw[1:3], "big"), int.from_bytes(raw[3:5], "big"), raw[0])


@record
class Header:
    """The 6-byte message header: 12 BCD digits.

    application type N2, version N2, terminal status N1, processing
    requirement N1, reserved N6. The reserved digits carry nothing the host may
    rely on (spec §1): they are echoed, never interpreted. The application
    version comes from field 59 (:mod:`clearpos.wire.terminfo`).
    """

    app_type: str = "60"
    version: str = "31"
    terminal_status: int = 0
    processing: int = 0
    reserved: str = "000000"

    def __post_init__(self) -> None:
        if not (len(self.app_type) == 2 and self.app_type.isdecimal()):
            raise FramingError("header application type must be 2 digits")
        if not (len(self.version) == 2 and self.version.isdecimal()):
            raise FramingError("header version must be 2 digits")
        if not 0 <= self.terminal_status <= 9 or not 0 <= self.processing <= 9:
            raise FramingError("header status and processing requirement must be one digit")
        if not (len(self.reserved) == 6 and self.reserved.isdecimal()):
            raise FramingError("header reserved digits must be 6 digits")

    def encode(self) -> bytes:
        raw = _ENCODED.get(self)
        if raw is None:
            raw = bytes.fromhex(
                f"{self.app_type}{self.version}{self.terminal_status}{self.processing}{self.reserved}"
            )
            _remember(_ENCODED, self, raw)
        return raw

    def with_processing(self, requirement: int) -> Header:
        """The header of an answer: the request's, with the host's processing
        requirement (most answers ask for nothing: the request's header as it is)."""
        if requirement == self.processing:
            return self
        return replace(self, processing=requirement)

    @classmethod
    def decode(cls, raw: bytes, offset: int = 0) -> Header:
        h = raw.hex()
        if len(raw) != HEADER_LEN or not h.isdecimal():
            raise FramingError("header must be 12 BCD digits", offset=offset)
        return cls(h[0:2], h[2:4], int(h[4]), int(h[5]), h[6:12])


@record
class Frame:
    """One frame: TPDU, header and the message body (MTI onward)."""

    tpdu: TPDU
    header: Header
    body: bytes
    #: the TPDU and header as they were read (b"" for a frame made otherwise), from
    #: which :func:`encode_answer` makes an answer's once per shape
    head: bytes = field(default=b"", compare=False, repr=False)

    def encode(self) -> bytes:
        return encode_frame(self.tpdu, self.header, self.body)


def encode_frame(tpdu: TPDU, header: Header, body: bytes) -> bytes:
    """Length prefix + TPDU + header + body."""
    return _framed(tpdu.encode() + header.encode(), body)


#: (a request's TPDU and header as read, the answer's processing requirement) -> the
#: answer's TPDU and header, as encode_answer writes them
_ANSWER_HEADS: dict[tuple[bytes, int], bytes] = {}


def encode_answer(frame: Frame, processing: int, body: bytes) -> bytes:
    """The frame of an answer to ``frame``: its TPDU swapped, its header with the
    host's processing requirement, then ``body``. For a frame as read (``head``) the
    two are looked up by the bytes read: a fleet sends a handful of shapes, and the
    records' hashing and comparing is what made the answer's TPDU and header cost."""
    key = (frame.head, processing)
    head = _ANSWER_HEADS.get(key) if frame.head else None
    if head is None:
        head = frame.tpdu.swapped().encode() + frame.header.with_processing(processing).encode()
        if frame.head:
            _remember(_ANSWER_HEADS, key, head)
    return _framed(head, body)


def _framed(head: bytes, body: bytes) -> bytes:
    n = len(head) + len(body)
    if n > 0xFFFF:
        raise FramingError(f"frame of {n} bytes does not fit the 2-byte length prefix")
    return n.to_bytes(2, "big") + head + body


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one whole frame, length prefix included."""
    if len(data) < 2:
        raise FramingError("a frame needs a 2-byte length prefix", offset=0)
    n = int.from_bytes(data[:2], "big")
    if n != len(data) - 2:
        raise FramingError(f"length prefix says {n} bytes follow, but {len(data) - 2} do", offset=0)
    return _split(data[2:], 2)


def _split(payload: bytes, offset: int) -> Frame:
    if len(payload) < MIN_FRAME:
        raise FramingError(
            f"frame of {len(payload)} bytes is shorter than TPDU + header + MTI + bitmap "
            f"({MIN_FRAME})",
            offset=offset - 2,
        )
    head = payload[:_HEAD_LEN]
    read = _READ_HEADS.get(head)
    if read is None:  # raises on a bad TPDU or header: nothing remembered
        read = (
            TPDU.decode(payload[:TPDU_LEN], offset),
            Header.decode(payload[TPDU_LEN:_HEAD_LEN], offset + TPDU_LEN),
        )
        _remember(_READ_HEADS, head, read)
    return Frame(read[0], read[1], payload[_HEAD_LEN:], head)


_HEAD_LEN = TPDU_LEN + HEADER_LEN
#: the TPDU and header read from a frame's first 11 bytes, by those bytes
_READ_HEADS: dict[bytes, tuple[TPDU, Header]] = {}


class Framer:
    """Reassembles frames from a byte stream, fed in any chunking.

    ``feed`` returns the frames completed by the new bytes. A length prefix
    above ``max_frame`` or below the minimum raises :class:`FramingError`; the
    framer then refuses further input (the stream cannot be re-aligned).
    Frames whose TPDU or header is malformed are returned as errors by
    raising too, *after* the bytes were consumed, so the caller may answer
    and continue: see :meth:`feed_tolerant` for that use.
    """

    __slots__ = ("_broken", "_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self._broken = False
        self.max_frame = max_frame

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame they complete (raises on a bad frame)."""
        frames: list[Frame] = []
        for item in self.feed_tolerant(data):
            if isinstance(item, FramingError):
                raise item
            frames.append(item)
        return frames

    def feed_tolerant(self, data: bytes) -> list[Frame | FramingError]:
        """Like :meth:`feed`, but a frame with a bad TPDU or header comes back as
        a :class:`FramingError` in the list and the stream goes on. A bad length
        prefix still raises: alignment is lost."""
        if self._broken:
            raise FramingError("stream already failed framing; close the connection")
        buf = self._buf
        buf += data
        out: list[Frame | FramingError] = []
        pos = 0
        while len(buf) - pos >= 2:
            n = buf[pos] << 8 | buf[pos + 1]
            if n > self.max_frame or n < MIN_FRAME:
                self._broken = True
                del buf[:pos]
                raise FramingError(
                    f"length prefix {n} outside {MIN_FRAME}..{self.max_frame}", offset=0
                )
            if len(buf) - pos - 2 < n:
                break
            payload = bytes(buf[pos + 2 : pos + 2 + n])
            pos += 2 + n
            try:
                out.append(_split(payload, 2))
            except FramingError as exc:
                out.append(exc)
        del buf[:pos]
        return out
