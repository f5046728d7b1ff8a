"""Field 62 of the CA-key and chip-parameter downloads (spec §8), both sides.

Pure functions over bytes; the layouts are those of the public terminal and
acquirer code named in ``docs/emv.md``:

=========================  ==============================================  =========================
message                    request 62                                      answer 62
=========================  ==============================================  =========================
0820 ``372`` CA key list   ``'1'`` + NN (records already received)         status + 23-byte records
0800 ``370`` one CA key    9F06 RID + 9F22 index                           status + the key's TLV
0820 ``382`` AID list      ``'1'`` + NN                                    status + 9F06 per AID
0800 ``380`` one AID       9F06 AID                                        status + the AID's TLV
=========================  ==============================================  =========================

Status characters: list answers ``'0'`` nothing (more) to download, ``'1'`` the
whole list is in this answer, ``'2'`` a page and more follows (the terminal asks
again with the new count), ``'3'`` the last page of a list sent in pages; item
answers ``'0'`` no such key / AID, ``'1'`` the data follows.

CA-key list records are fixed 23 bytes: ``9F06 05 RID`` + ``9F22 01 index`` +
``DF05 08 expiry`` (YYYYMMDD in ASCII). A whole key adds DF06 (hash algorithm
01 = SHA-1), DF07 (key algorithm 01 = RSA), DF02 modulus, DF04 exponent and DF03
check value. An AID's parameters are 9F06, DF01, 9F08 (application version,
see below), DF11-DF13 (TACs), 9F1B, DF15-DF17, DF14, DF18, 9F7B and DF19-DF21.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from .errors import DecodeError, EncodeError
from .tlv import decode, encode, flatten

__all__ = [
    "FIELD62_MAX",
    "LIST_ALL",
    "LIST_LAST",
    "LIST_MORE",
    "LIST_NONE",
    "AidLike",
    "CapkLike",
    "ListAnswer",
    "aid_answer",
    "aid_list_answer",
    "aid_record",
    "aid_request",
    "capk_answer",
    "capk_list_answer",
    "capk_record",
    "capk_request",
    "list_query",
    "parse_aid_request",
    "parse_capk_request",
    "parse_item_answer",
    "parse_list_answer",
    "parse_list_query",
]

LIST_NONE: Final = b"0"
LIST_ALL: Final = b"1"
LIST_MORE: Final = b"2"
LIST_LAST: Final = b"3"
ITEM_NONE: Final = b"0"
ITEM_FOLLOWS: Final = b"1"

#: Field 62 is b..512 (LLLVAR): a list answer is cut into pages that fit.
FIELD62_MAX: Final = 512

#: DF06 hash algorithm indicator 01 = SHA-1; DF07 public key algorithm 01 = RSA.
HASH_SHA1: Final = b"\x01"
KEY_RSA: Final = b"\x01"

#: Application selection indicator (DF01): 00 = partial name match allowed, as
#: the public terminal SDK's UnionPay AID list has it.
ASI_PARTIAL: Final = b"\x00"
#: Default DDOL (DF14): the unpredictable number.
DEFAULT_DDOL: Final = bytes.fromhex("9F3704")
#: Terminal supports online PIN (DF18 = 01).
ONLINE_PIN: Final = b"\x01"


class CapkLike(Protocol):
    """A CA key as the store or the world holds it (hex text)."""

    @property
    def rid(self) -> str: ...
    @property
    def index(self) -> str: ...
    @property
    def modulus(self) -> str: ...
    @property
    def exponent(self) -> str: ...
    @property
    def expiry(self) -> str: ...
    @property
    def check_value(self) -> str: ...


class AidLike(Protocol):
    """An AID's chip parameters as the store or the world holds them."""

    @property
    def aid(self) -> str: ...
    @property
    def app_version(self) -> str: ...
    @property
    def floor_limit_fen(self) -> int: ...
    @property
    def contactless_limit_fen(self) -> int: ...
    @property
    def contactless_cvm_limit_fen(self) -> int: ...
    @property
    def tac_default(self) -> str: ...
    @property
    def tac_online(self) -> str: ...
    @property
    def tac_denial(self) -> str: ...


# --------------------------------------------------------------------------- list queries


def list_query(received: int) -> bytes:
    """The terminal's 62 of 0820 372/382: ``'1'`` + how many records it has so far.

    >>> list_query(0), list_query(8)
    (b'100', b'108')
    """
    if not 0 <= received <= 99:
        raise EncodeError("a list query counts 0 to 99 records received", field=62)
    return b"1" + f"{received:02d}".encode("ascii")


def parse_list_query(field62: bytes | None) -> int:
    """How many records the terminal already has (0 when 62 is absent or empty).

    >>> parse_list_query(b"108"), parse_list_query(None)
    (8, 0)
    """
    if not field62:
        return 0
    if len(field62) != 3 or field62[:1] != b"1" or not field62[1:].isdigit():
        raise DecodeError("a list query is '1' and 2 digits (records received)", field=62, offset=0)
    return int(field62[1:])


def _paged(records: Sequence[bytes], received: int, limit: int) -> bytes:
    if received >= len(records):
        return LIST_NONE
    page = bytearray()
    taken = 0
    for record in records[received:]:
        if 1 + len(page) + len(record) > limit:
            break
        page += record
        taken += 1
    if taken == 0:
        raise EncodeError(f"a record of {len(records[received])} bytes does not fit field 62")
    more = received + taken < len(records)
    if more:
        return LIST_MORE + bytes(page)
    return (LIST_ALL if received == 0 else LIST_LAST) + bytes(page)


# --------------------------------------------------------------------------- CA keys


def capk_record(key: CapkLike) -> bytes:
    """The 23-byte list record of a key: 9F06 RID, 9F22 index, DF05 expiry (ASCII)."""
    return encode(
        [
            ("9F06", bytes.fromhex(key.rid)),
            ("9F22", bytes.fromhex(key.index)),
            ("DF05", key.expiry.encode("ascii")),
        ]
    )


def capk_list_answer(keys: Sequence[CapkLike], received: int, *, limit: int = FIELD62_MAX) -> bytes:
    """62 of the 0830 to 372: status + the records from ``received`` on, as many as fit."""
    return _paged([capk_record(k) for k in keys], received, limit)


def capk_request(rid: str, index: str) -> bytes:
    """The terminal's 62 of 0800 370: 9F06 + 9F22 (the first 12 bytes of a list record)."""
    return encode([("9F06", bytes.fromhex(rid)), ("9F22", bytes.fromhex(index))])


def parse_capk_request(field62: bytes) -> tuple[str, str]:
    """(RID, index) as uppercase hex from 62 of a 0800 370; records after 9F22
    (a terminal that echoes the whole list record) are ignored."""
    tags = flatten(decode(field62, field=62))
    for tag, length in (("9F06", 5), ("9F22", 1)):
        if tag not in tags:
            raise DecodeError(f"tag {tag} missing: 370 names the key by 9F06 and 9F22", field=62)
        if len(tags[tag]) != length:
            raise DecodeError(f"tag {tag} must be {length} bytes, got {len(tags[tag])}", field=62)
    return tags["9F06"].hex().upper(), tags["9F22"].hex().upper()


def capk_answer(key: CapkLike | None) -> bytes:
    """62 of the 0810 to 370: ``'1'`` + the key's eight tags, or ``'0'`` (no such key)."""
    if key is None:
        return ITEM_NONE
    return ITEM_FOLLOWS + encode(
        [
            ("9F06", bytes.fromhex(key.rid)),
            ("9F22", bytes.fromhex(key.index)),
            ("DF05", key.expiry.encode("ascii")),
            ("DF06", HASH_SHA1),
            ("DF07", KEY_RSA),
            ("DF02", bytes.fromhex(key.modulus)),
            ("DF04", bytes.fromhex(key.exponent)),
            ("DF03", bytes.fromhex(key.check_value)),
        ]
    )


# --------------------------------------------------------------------------- AIDs


def _n12(fen: int) -> bytes:
    return bytes.fromhex(f"{fen:012d}")


def aid_record(params: AidLike, *, version_tag: Literal["9F08", "9F09"] = "9F08") -> bytes:
    """An AID's parameter TLV (the 380 answer after its status character).

    The application version goes in ``9F08`` by default: the public terminal code
    that reads 380 answers (PAX ``writeAidParam``, the Newland-style C terminal)
    reads 9F08; spec §8 names 9F09 (the terminal's own version tag). Pass
    ``version_tag="9F09"`` for a terminal that wants that.
    """
    return encode(
        [
            ("9F06", bytes.fromhex(params.aid)),
            ("DF01", ASI_PARTIAL),
            (version_tag, bytes.fromhex(params.app_version)),
            ("DF11", bytes.fromhex(params.tac_default)),
            ("DF12", bytes.fromhex(params.tac_online)),
            ("DF13", bytes.fromhex(params.tac_denial)),
            ("9F1B", params.floor_limit_fen.to_bytes(4, "big")),
            ("DF15", bytes(4)),  # threshold for biased random selection
            ("DF16", b"\x00"),  # maximum target percentage
            ("DF17", b"\x00"),  # target percentage
            ("DF14", DEFAULT_DDOL),
            ("DF18", ONLINE_PIN),
            ("9F7B", _n12(0)),  # electronic cash terminal limit: none, every sale online
            ("DF19", _n12(params.floor_limit_fen)),  # contactless offline floor limit
            ("DF20", _n12(params.contactless_limit_fen)),  # contactless transaction limit
            ("DF21", _n12(params.contactless_cvm_limit_fen)),  # CVM required above
        ]
    )


def aid_list_answer(aids: Sequence[AidLike], received: int, *, limit: int = FIELD62_MAX) -> bytes:
    """62 of the 0830 to 382: status + ``9F06 LL AID`` per AID from ``received`` on."""
    return _paged([encode([("9F06", bytes.fromhex(a.aid))]) for a in aids], received, limit)


def aid_request(aid: str) -> bytes:
    """The terminal's 62 of 0800 380: one 9F06."""
    return encode([("9F06", bytes.fromhex(aid))])


def parse_aid_request(field62: bytes) -> str:
    """The AID (uppercase hex) that 62 of a 0800 380 names."""
    tags = flatten(decode(field62, field=62))
    aid = tags.get("9F06")
    if aid is None:
        raise DecodeError("tag 9F06 missing: 380 names the AID by 9F06", field=62)
    if not 5 <= len(aid) <= 16:
        raise DecodeError(f"tag 9F06 must be 5 to 16 bytes, got {len(aid)}", field=62)
    return aid.hex().upper()


def aid_answer(params: AidLike | None, *, version_tag: Literal["9F08", "9F09"] = "9F08") -> bytes:
    """62 of the 0810 to 380: ``'1'`` + :func:`aid_record`, or ``'0'`` (no such AID)."""
    return (
        ITEM_NONE if params is None else ITEM_FOLLOWS + aid_record(params, version_tag=version_tag)
    )


# --------------------------------------------------------------------------- terminal side


@dataclass(frozen=True, slots=True)
class ListAnswer:
    """A decoded 372/382 answer: its status character and one tag map per record."""

    status: bytes
    records: tuple[dict[str, bytes], ...]

    @property
    def more(self) -> bool:
        """The terminal must ask again (status ``'2'``)."""
        return self.status == LIST_MORE


def parse_list_answer(field62: bytes) -> ListAnswer:
    """Split a list answer into records, each starting at its 9F06."""
    if not field62 or field62[:1] not in (LIST_NONE, LIST_ALL, LIST_MORE, LIST_LAST):
        raise DecodeError(
            "a list answer starts with status '0', '1', '2' or '3'", field=62, offset=0
        )
    records: list[dict[str, bytes]] = []
    for item in decode(field62[1:], field=62, base=1):
        if item.tag == "9F06":
            records.append({})
        elif not records:
            raise DecodeError(f"tag {item.tag} before the first 9F06", field=62)
        records[-1][item.tag] = item.value
    return ListAnswer(field62[:1], tuple(records))


def parse_item_answer(field62: bytes) -> dict[str, bytes] | None:
    """The tags of a 370/380 answer, or None for ``'0'`` (the host has no such item)."""
    if field62[:1] == ITEM_NONE:
        return None
    if field62[:1] != ITEM_FOLLOWS:
        raise DecodeError("an item answer starts with status '0' or '1'", field=62, offset=0)
    return flatten(decode(field62[1:], field=62, base=1))
