"""The one error family of the wire layer.

Every error names *where* (field number and byte offset, counted from the first
byte of what the caller handed in) and *what was expected*. No error ever
carries field content: a PAN, a track, a PIN block or a key cannot leak through
an exception message or a log line built from one.
"""

from __future__ import annotations


class WireError(ValueError):
    """A message or frame that does not follow the clearpos POS 8583 dialect.

    ``field`` is the ISO field number (0 for the MTI, 1 for the bitmap, None
    when the problem is in framing), ``offset`` the byte offset from the start
    of the caller's input (None when encoding), ``expected`` what the dialect
    requires there.
    """

    def __init__(self, expected: str, *, field: int | None = None, offset: int | None = None):
        self.field = field
        self.offset = offset
        self.expected = expected
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.field is not None:
            where.append("MTI" if self.field == 0 else f"field {self.field}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        return f"{' '.join(where)}: {self.expected}" if where else self.expected


class DecodeError(WireError):
    """Bytes that cannot be read as a message of the dialect.

    ``mti`` and ``partial`` (the fields read before the fault) let a host answer
    a format error to the right terminal; they are never part of the message.
    """

    mti: str | None = None
    partial: dict[int, str | bytes] | None = None


class EncodeError(WireError):
    """Values that cannot be written as a message of the dialect."""


class FramingError(WireError):
    """A length prefix, TPDU or header that is not acceptable.

    After a framing error the byte stream has lost its alignment: the only safe
    reaction is to close the connection.
    """
