"""The terminal's CA-key / chip-parameter download protocol with no host and no socket.

The answers are built with the host's own field-62 encoders (clearpos.wire.emvparams),
so the pages, statuses and TLVs are the ones a real host sends.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from clearpos.store.records import AidRec, CapkRec
from clearpos.terminal.chipdownload import (
    ChipDownload,
    ChipDownloadDone,
    ChipLoaded,
    StoredAid,
    StoredCapk,
    capk_check_value,
    kinds_for,
)
from clearpos.terminal.protocol import Send
from clearpos.wire import (
    NetCode,
    NetworkRequest,
    NetworkResponse,
    ParameterDownload,
    ParameterDownloadResponse,
    emvparams,
)

TID, MID = "10000011", "898310048161234"


def capk(index: int) -> CapkRec:
    modulus = bytes((index * 7 + i) % 256 for i in range(128)).hex().upper()
    cv = capk_check_value("A000000333", f"{index:02X}", modulus, "03")
    return CapkRec("A000000333", f"{index:02X}", modulus, "03", "20301231", cv)


AID = AidRec(
    "A000000333010101", "0030", 0, 100000, 100000, "D84000A800", "D84004F800", "0010000000"
)


class Host:
    """Answers the download messages the way the acquiring host does (its encoders)."""

    def __init__(self, keys: list[CapkRec], aids: list[AidRec]) -> None:
        self.keys, self.aids = keys, aids
        self.seen: list[str] = []
        self.ended: list[str] = []

    def answer(
        self, req: NetworkRequest | ParameterDownload
    ) -> NetworkResponse | ParameterDownloadResponse:
        self.seen.append(req.netcode)
        base = {"tid": req.tid, "mid": req.mid, "stan": req.stan, "code": "00"}
        if isinstance(req, NetworkRequest):
            received = emvparams.parse_list_query(req.data)
            data = (
                emvparams.capk_list_answer(self.keys, received)
                if req.netcode == NetCode.CAPK_QUERY
                else emvparams.aid_list_answer(self.aids, received)
            )
            return NetworkResponse(**base, batch=req.batch, netcode=req.netcode, data=data)  # type: ignore[arg-type]
        if req.netcode == NetCode.CAPK_DOWNLOAD:
            rid, index = emvparams.parse_capk_request(req.data or b"")
            key = next((k for k in self.keys if (k.rid, k.index) == (rid, index)), None)
            raw = emvparams.capk_answer(key)
        elif req.netcode == NetCode.AID_DOWNLOAD:
            aid = emvparams.parse_aid_request(req.data or b"")
            raw = emvparams.aid_answer(next((a for a in self.aids if a.aid == aid), None))
        else:
            self.ended.append(req.netcode)
            raw = None
        return ParameterDownloadResponse(**base, batch=req.batch, netcode=req.netcode, raw=raw)  # type: ignore[arg-type]


def run(
    proto: ChipDownload, host: Host, *, fail_at: int | None = None
) -> tuple[ChipDownloadDone, dict[str, tuple[StoredCapk, ...] | tuple[StoredAid, ...]]]:
    stored: dict[str, tuple[StoredCapk, ...] | tuple[StoredAid, ...]] = {}
    sent = 0
    while not isinstance(action := proto.next_action(), ChipDownloadDone):
        if isinstance(action, ChipLoaded):
            stored[action.kind] = action.items
            continue
        assert isinstance(action, Send)
        sent += 1
        if sent == fail_at:
            proto.on_link_error("no answer in 60 s")
            continue
        m = host.answer(action.message)  # type: ignore[arg-type]
        proto.on_answer(m.code, m)
    return action, stored


def download(kinds: tuple[str, ...]) -> ChipDownload:
    stans = (f"{n:06d}" for n in itertools.count(1))
    return ChipDownload(kinds, tid=TID, mid=MID, batch="000001", stans=lambda: next(stans))


def test_thirty_keys_come_in_two_pages_then_the_aids() -> None:
    host = Host([capk(i) for i in range(1, 31)], [AID])
    done, stored = run(download(("capk", "aid")), host)
    assert done.ok and done.loaded == ("capk", "aid") and done.counts == {"capk": 30, "aid": 1}
    # 372 twice (a page of 22 records fits 512 bytes, status '2', then the last 8)
    assert host.seen[:2] == ["372", "372"] and host.seen.count("370") == 30
    assert host.ended == ["371", "381"]
    keys = stored["capk"]
    assert [(k.rid, k.index) for k in keys] == [("A000000333", f"{i:02X}") for i in range(1, 31)]  # type: ignore[union-attr]
    assert keys[0] == StoredCapk(  # type: ignore[comparison-overlap]
        "A000000333", "01", "20301231", capk(1).modulus, "03", capk(1).check_value
    )
    (aid,) = stored["aid"]
    assert isinstance(aid, StoredAid) and aid.aid == AID.aid
    assert bytes.fromhex(aid.tlv) == emvparams.aid_record(AID)


def test_a_key_whose_check_value_is_wrong_is_not_stored_and_no_end_goes() -> None:
    bad = replace(capk(2), check_value="00" * 20)
    host = Host([capk(1), bad], [AID])
    done, stored = run(download(("capk", "aid")), host)
    assert not done.ok and done.failed == "capk" and done.key == "message.format_error"
    assert "check value" in done.error and stored == {} and host.ended == []


def test_no_answer_stops_where_it_was_and_keeps_what_finished() -> None:
    host = Host([capk(1)], [AID])
    # 372, 370, 371 answered; then the 382 gets no answer
    done, stored = run(download(("capk", "aid")), host, fail_at=4)
    assert done.loaded == ("capk",) and done.failed == "aid" and done.key == "network.timeout"
    assert set(stored) == {"capk"} and host.ended == ["371"]


def test_a_host_with_no_aids_still_gets_its_end_message() -> None:
    host = Host([], [])
    done, stored = run(download(("aid",)), host)
    assert done.ok and stored == {"aid": ()} and host.seen == ["382", "381"]


def test_a_refused_answer_carries_the_reason() -> None:
    proto = download(("capk",))
    action = proto.next_action()
    assert isinstance(action, Send)
    proto.on_answer("97", None, reason="terminal.unknown")
    done = proto.next_action()
    assert isinstance(done, ChipDownloadDone) and done.key == "terminal.unknown"
    with pytest.raises(RuntimeError):
        proto.on_answer("00", None)


def test_processing_requirements() -> None:
    assert kinds_for(4) == ("capk", "aid") and kinds_for(5) == ("aid",) and kinds_for(1) == ()
    with pytest.raises(ValueError, match="unknown download kind"):
        download(("keys",))
