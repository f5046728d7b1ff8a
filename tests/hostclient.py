"""A plain test client for the host, built only on the wire layer and terminal keys.

It is deliberately not the virtual terminal: host tests must be able to send
anything, including what a well-behaved terminal never would.
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
from dataclasses import dataclass, field

from clearpos.keys import TerminalKeys, WorkingKeys
from clearpos.wire import (
    TPDU,
    Card,
    FinancialRequest,
    Framer,
    Header,
    Kind,
    Message,
    SignOn,
    build,
    encode_frame,
    needs_mac,
    parse,
)
from clearpos.wire.framing import Frame
from clearpos.wire.terminfo import TerminalInfo

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TID = "10000001"
MID = "898310048161234"
PAN = "6222021234567890123"

# Real terminals persist their STAN; test clients share one counter so two
# clients of the same TID never reuse a (TID, batch, STAN).
_STAN = itertools.count(1)


@dataclass
class Reply:
    frame: Frame
    msg: Message
    mac_ok: bool | None

    @property
    def code(self) -> str | None:
        return getattr(self.msg, "code", None)

    @property
    def reason(self) -> str:
        return str(getattr(self.msg, "reason", ""))

    @property
    def processing(self) -> int:
        return self.frame.header.processing


@dataclass
class Client:
    host: str
    port: int
    tid: str = TID
    mid: str = MID
    tmk: bytes = TMK
    #: the application version reported in field 59 A2/05 (every request carries it)
    software: str = "0.1.0"
    timeout: float = 5.0
    stan: int = 0
    batch: str = "000001"
    keys: TerminalKeys = field(init=False)
    sock: socket.socket | None = None
    working: WorkingKeys | None = None
    framer: Framer = field(default_factory=Framer)

    def __post_init__(self) -> None:
        self.keys = TerminalKeys(self.tmk)

    def connect(self) -> Client:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return self

    def close(self) -> None:
        if self.sock:
            self.sock.close()
            self.sock = None

    def next_stan(self) -> str:
        self.stan = next(_STAN) % 999999 + 1
        return f"{self.stan:06d}"

    def send_raw(self, data: bytes) -> None:
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(data)

    def recv_frame(self) -> Frame:
        assert self.sock is not None
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("host closed the connection")
            frames = self.framer.feed(data)
            if frames:
                return frames[0]

    def recv(self) -> Reply:
        f = self.recv_frame()
        msg, block, mac = parse(f.body)
        mac_ok = None
        if mac is not None and block is not None and self.keys.signed_on:
            mac_ok = self.keys.verify_mac(block, mac)
        return Reply(f, msg, mac_ok)

    def frame(self, msg: Message, *, mac: bool | None = None, corrupt_mac: bool = False) -> bytes:
        use_mac = needs_mac(msg) if mac is None else mac
        fn = None
        if use_mac:
            if corrupt_mac:
                fn = lambda _b: b"00000000"  # noqa: E731
            else:
                fn = self.keys.mac if self.keys.signed_on else (lambda _b: b"00000000")
        if self.software and getattr(msg, "info", "") is None:
            info = TerminalInfo.build(app_version=self.software).encode()
            msg = dataclasses.replace(msg, info=info)  # type: ignore[type-var]
        tdk = self.keys.track_encryptor() if self.keys.has_tdk else None
        body = build(msg, mac=fn, tdk=tdk)
        # the header's reserved digits carry nothing (spec §1): a stock terminal's 000000
        return encode_frame(TPDU(0x0003, 0x0000), Header(), body)

    def send(self, msg: Message, **kw: bool) -> Reply:
        self.send_raw(self.frame(msg, **kw))
        return self.recv()

    def sign_on(self, operator: str = "01 ", scheme: str = "003") -> Reply:
        r = self.send(
            SignOn(
                tid=self.tid,
                mid=self.mid,
                stan=self.next_stan(),
                batch=self.batch,
                operator=operator,
                netcode=scheme,
            )
        )
        if r.code == "00":
            keys = getattr(r.msg, "keys", None)
            assert keys is not None
            self.working = self.keys.accept_field62(keys)
            self.batch = getattr(r.msg, "batch", self.batch)
        return r

    def card(
        self, pan: str = PAN, expiry: str = "2812", pin: str | None = "123456", keyed: bool = False
    ) -> Card:
        block = self.keys.pin_block(pin, pan) if pin is not None else None
        if keyed:
            return Card.keyed(pan, expiry, pin_block=block)
        return Card.swiped(pan, expiry, pin_block=block)

    def request(
        self, kind: Kind, amount_fen: int | None, card: Card | None = None, **kw: object
    ) -> FinancialRequest:
        return FinancialRequest(
            kind=kind,
            tid=self.tid,
            mid=self.mid,
            stan=str(kw.pop("stan", None) or self.next_stan()),
            batch=str(kw.pop("batch", None) or self.batch),
            amount_fen=amount_fen,
            card=card if card is not None else self.card(),
            **kw,  # type: ignore[arg-type]
        )

    def purchase(self, amount_fen: int, **kw: object) -> Reply:
        card = kw.pop("card", None)
        return self.send(self.request(Kind.PURCHASE, amount_fen, card, **kw))  # type: ignore[arg-type]
