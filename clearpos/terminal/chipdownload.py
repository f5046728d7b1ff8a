"""The CA-key and chip-parameter downloads as a sans-I/O protocol (spec §8, docs/emv.md §4).

For each kind asked for (``"capk"`` then ``"aid"``):

1. the list query, 0820 ``372`` / ``382`` with 62 = ``'1'`` + the records received
   so far, again while the host answers status ``'2'`` (a page, more follows);
2. one 0800 ``370`` (9F06 RID + 9F22 index) / ``380`` (9F06 AID) per listed item;
   a CA key whose DF03 is not the SHA-1 over RID ‖ index ‖ modulus ‖ exponent
   stops the download (a terminal must not trust it);
3. :class:`ChipLoaded` -- the driver replaces what it holds of that kind with
   the items, in one write -- and only then the end, 0800 ``371`` / ``381``, after
   which the host stops asking (processing requirement 4 / 5).

Nothing here touches a socket or the device store; ``tests/test_chip_download.py``
drives it with no host.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clearpos.wire import (
    Message,
    NetCode,
    NetworkRequest,
    NetworkResponse,
    ParameterDownload,
    ParameterDownloadResponse,
    WireError,
    emvparams,
)

from .protocol import Send

__all__ = [
    "KINDS",
    "ChipDownload",
    "ChipDownloadDone",
    "ChipLoaded",
    "StoredAid",
    "StoredCapk",
    "capk_check_value",
    "kinds_for",
]

#: the kinds in the order a terminal downloads them
KINDS = ("capk", "aid")
_QUERY = {"capk": NetCode.CAPK_QUERY, "aid": NetCode.AID_QUERY}
_ITEM = {"capk": NetCode.CAPK_DOWNLOAD, "aid": NetCode.AID_DOWNLOAD}
_END = {"capk": NetCode.CAPK_END, "aid": NetCode.AID_END}


def kinds_for(requirement: int) -> tuple[str, ...]:
    """What a processing requirement asks for: 4 the CA keys (and then the chip
    parameters, which the host asks for next anyway), 5 the chip parameters."""
    return {4: KINDS, 5: ("aid",)}.get(requirement, ())


def capk_check_value(rid: str, index: str, modulus: str, exponent: str) -> str:
    """DF03 of a CA key: SHA-1 over RID ‖ index ‖ modulus ‖ exponent (uppercase hex)."""
    data = bytes.fromhex(rid + index + modulus + exponent)
    return hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True, slots=True)
class StoredCapk:
    """One CA public key as the terminal keeps it (hex text; expiry YYYYMMDD)."""

    rid: str
    index: str
    expiry: str
    modulus: str
    exponent: str
    check_value: str


@dataclass(frozen=True, slots=True)
class StoredAid:
    """One AID's chip parameters: the AID and the whole parameter TLV of the 380 answer."""

    aid: str
    tlv: str


@dataclass(frozen=True, slots=True)
class ChipLoaded:
    """Store: the terminal now holds exactly ``items`` of ``kind`` (then the end goes)."""

    kind: str
    items: tuple[StoredCapk, ...] | tuple[StoredAid, ...]


@dataclass(frozen=True, slots=True)
class ChipDownloadDone:
    """The download is over: ``loaded`` the kinds finished (end message answered 00),
    ``failed`` the kind it stopped at, with ``key`` (a reason) and ``error``."""

    loaded: tuple[str, ...]
    failed: str | None = None
    key: str = "approved"
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed is None


def _expiry(raw: bytes) -> str:
    """DF05 as YYYYMMDD: 8 ASCII digits (clearpos, the Newland-style C code) or
    4 BCD bytes (the PAX template reads both)."""
    text = raw.decode("ascii", "replace")
    if len(raw) == 8 and text.isdigit():
        return text
    if len(raw) == 4 and raw.hex().isdigit():
        return raw.hex()
    raise ValueError(f"DF05 {raw.hex().upper()} is neither YYYYMMDD nor 4 BCD bytes")


class ChipDownload:
    """Which message goes next for the downloads of ``kinds`` (see the module)."""

    def __init__(
        self,
        kinds: Sequence[str],
        *,
        tid: str,
        mid: str,
        batch: str,
        stans: Callable[[], str],
    ) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown download kind {unknown[0]!r}")
        self.tid, self.mid, self.batch, self._stans = tid, mid, batch, stans
        self._kinds = deque(k for k in KINDS if k in kinds)
        self._loaded: list[str] = []
        self._counts: dict[str, int] = {}
        self._phase = "list"  # list | items | store | end
        self._listed: list[dict[str, bytes]] = []
        self._queue: deque[dict[str, bytes]] = deque()
        self._got: list[StoredCapk | StoredAid] = []
        self._waiting = False
        self._done: ChipDownloadDone | None = None

    @property
    def kind(self) -> str | None:
        return self._kinds[0] if self._kinds else None

    def next_action(self) -> Send | ChipLoaded | ChipDownloadDone:
        if self._waiting:
            raise RuntimeError("waiting for an answer")
        if self._done is not None:
            return self._done
        kind = self.kind
        if kind is None:
            self._done = ChipDownloadDone(tuple(self._loaded), counts=dict(self._counts))
            return self._done
        if self._phase == "list":
            return self._send(
                NetworkRequest(
                    tid=self.tid,
                    mid=self.mid,
                    stan=self._stans(),
                    batch=self.batch,
                    netcode=_QUERY[kind],
                    data=emvparams.list_query(len(self._listed)),
                ),
                f"{kind} list",
            )
        if self._phase == "items" and self._queue:
            record = self._queue[0]
            data = (
                emvparams.capk_request(record["9F06"].hex(), record.get("9F22", b"").hex())
                if kind == "capk"
                else emvparams.aid_request(record["9F06"].hex())
            )
            return self._send(self._download(_ITEM[kind], data), f"{kind} item")
        if self._phase in ("items", "store"):
            self._phase = "end"
            self._counts[kind] = len(self._got)
            items = tuple(self._got)
            return ChipLoaded(kind, items)  # type: ignore[arg-type]
        return self._send(self._download(_END[kind], None), f"{kind} end")

    def on_answer(
        self, code: str | None, message: Message | None, *, reason: str | None = None
    ) -> None:
        """The answer to the last :class:`Send`: its field 39, the parsed response
        and, when it is not 00, the reason the driver read from it."""
        if not self._waiting:
            raise RuntimeError("an answer when nothing was sent")
        self._waiting = False
        kind = self.kind
        assert kind is not None
        if code != "00":
            key = reason or ("message.format_error" if code is None else "host.error")
            self._fail(key, f"answered {code or 'nothing readable'}")
            return
        try:
            if self._phase == "list":
                self._list_answer(message)
            elif self._phase == "items":
                self._item_answer(kind, message)
            else:  # the end was answered: this kind is done
                self._loaded.append(kind)
                self._kinds.popleft()
                self._phase, self._listed, self._got = "list", [], []
                self._queue.clear()
        except (WireError, ValueError, KeyError) as exc:
            self._fail("message.format_error", str(exc))

    def on_link_error(self, error: str) -> None:
        if not self._waiting:
            raise RuntimeError("a link error when nothing was sent")
        self._waiting = False
        self._fail("network.timeout", error)

    # -------------------------------------------------------------- internals

    def _send(self, message: NetworkRequest | ParameterDownload, purpose: str) -> Send:
        self._waiting = True
        return Send(message, purpose)

    def _download(self, netcode: str, data: bytes | None) -> ParameterDownload:
        return ParameterDownload(
            tid=self.tid, mid=self.mid, stan=self._stans(), batch=self.batch, netcode=netcode,
            data=data,
        )  # fmt: skip

    def _fail(self, key: str, error: str) -> None:
        self._done = ChipDownloadDone(
            tuple(self._loaded), self.kind, key, error, counts=dict(self._counts)
        )

    def _list_answer(self, message: Message | None) -> None:
        if not isinstance(message, NetworkResponse) or not message.data:
            raise ValueError("the list answer carries no field 62")
        page = emvparams.parse_list_answer(message.data)
        self._listed.extend(page.records)
        if page.more:
            return  # ask again with the new count
        self._queue = deque(self._listed)
        self._phase = "items" if self._queue else "store"

    def _item_answer(self, kind: str, message: Message | None) -> None:
        if not isinstance(message, ParameterDownloadResponse) or not message.raw:
            raise ValueError("the item answer carries no field 62")
        record = self._queue.popleft()
        tags = emvparams.parse_item_answer(message.raw)
        if tags is None:
            raise ValueError(f"the host has no {kind} {record['9F06'].hex().upper()} it listed")
        if kind == "aid":
            self._got.append(StoredAid(tags["9F06"].hex().upper(), message.raw[1:].hex().upper()))
            return
        key = StoredCapk(
            rid=tags["9F06"].hex().upper(),
            index=tags["9F22"].hex().upper(),
            expiry=_expiry(tags["DF05"]),
            modulus=tags["DF02"].hex().upper(),
            exponent=tags["DF04"].hex().upper(),
            check_value=tags["DF03"].hex().upper(),
        )
        want = capk_check_value(key.rid, key.index, key.modulus, key.exponent)
        if want != key.check_value:
            raise ValueError(
                f"CA key {key.rid}/{key.index}: check value {key.check_value} is not the "
                f"SHA-1 of the key ({want})"
            )
        self._got.append(key)
