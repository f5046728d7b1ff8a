"""The fault lab's world: generated cards and terminals, and the lab's seed-derived KEK."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from clearpos.keys import KeyEncryptionKey
from clearpos.money import fen_yuan
from clearpos.terminal.machine import DEFAULT_SOFTWARE
from clearpos.versions import version_at_least
from clearpos.wire.mask import mask_pan
from clearpos.world import World, load_world

__all__ = [
    "DEMO_WORLD",
    "MID",
    "SUPERVISOR",
    "LabCard",
    "LabTerminal",
    "LabWorld",
    "lab_kek",
    "lab_kek_hex",
    "lab_world",
]

MID = "898310048161234"
SUPERVISOR = "123456"
DEMO_WORLD = Path(__file__).resolve().parent.parent / "data" / "world.toml"


def lab_kek_hex(seed: int) -> str:
    """The lab's key-encryption key as 64 hex digits, derived from the seed (lab data only)."""
    return hashlib.sha256(f"clearpos-lab-kek:{seed}".encode()).hexdigest()


def lab_kek(seed: int) -> KeyEncryptionKey:
    """The lab's key-encryption key (:func:`lab_kek_hex`)."""
    return KeyEncryptionKey(bytes.fromhex(lab_kek_hex(seed)))


# ---------------------------------------------------------------------------- the lab world


@dataclass(frozen=True)
class LabCard:
    """A card of the lab world (test data: the PIN and PAN are known to the leak scan)."""

    pan: str
    expiry: str
    pin: str
    balance_fen: int
    status: str = "normal"
    organisation: str = "CUP"
    #: a chip card: (PAN sequence number, cryptogram version, service code)
    chip: tuple[str, str, str] | None = None

    @property
    def masked(self) -> str:
        return mask_pan(self.pan)

    @property
    def good(self) -> bool:
        """A card the issuer approves (normal, not expired, funded)."""
        return self.status == "normal" and self.expiry >= "2612" and self.balance_fen > 10**6

    def __repr__(self) -> str:
        return f"LabCard({self.masked}, {self.status})"


@dataclass(frozen=True)
class LabTerminal:
    """A terminal of the lab world."""

    tid: str
    mid: str
    tmk: str = field(repr=False)
    chip: bool = False  # reads chip cards (contact and QuickPass)


@dataclass(frozen=True)
class LabWorld:
    """The generated world: its TOML text, terminals and cards."""

    toml: str = field(repr=False)
    terminals: tuple[LabTerminal, ...]
    cards: tuple[LabCard, ...]

    def card_by_masked(self) -> dict[str, LabCard]:
        return {c.masked: c for c in self.cards}


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def lab_world(seed: int, terminals: int = 4, extra_cards: int = 24) -> LabWorld:
    """The lab world for ``seed``: deterministic, so the leak scan can rebuild it.

    Cards: the demo world's normal cards with a balance of ¥10,000,000 and no
    daily limit (its normal chip cards keep their chip), ``extra_cards``
    generated Luhn-valid CUP cards like them, and three that decline (frozen,
    ¥5.00 left, expired). Terminals: the demo's active terminals 10000001,
    10000007 and the chip terminal 10000011, then generated ones (TMKs from the
    seed; every other one reads chips), all on the demo's everyday merchant. The
    demo's ``[issuer]`` keys and QuickPass no-PIN limit come along.
    """
    if terminals < 1:
        raise ValueError("the lab needs at least one terminal")
    rnd = random.Random(f"clearpos-lab-world:{seed}")
    demo = load_world(DEMO_WORLD)
    cards = _lab_cards(demo, rnd, extra_cards)
    terms: list[LabTerminal] = []
    for dt in demo.terminals:
        if (
            dt.status == "active"
            and dt.mid == MID
            and dt.dialect == "clearpos"
            and version_at_least(DEFAULT_SOFTWARE, dt.min_software)
        ):
            terms.append(LabTerminal(dt.tid, dt.mid, dt.tmk.hex().upper(), dt.chip))
    terms = terms[:terminals]
    n = 1
    while len(terms) < terminals:
        terms.append(LabTerminal(f"2{n:07d}", MID, rnd.randbytes(16).hex().upper(), n % 2 == 1))
        n += 1
    return LabWorld(_world_toml(demo, terms, cards), tuple(terms), tuple(cards))


def _lab_cards(demo: World, rnd: random.Random, extra_cards: int) -> list[LabCard]:
    rich = 1_000_000_000
    cards: list[LabCard] = []
    declining = {"6225880000001025", "6225880000001017", "6225880000001066"}
    for dc in demo.cards:
        if dc.status == "normal" and dc.expiry >= "2612" and dc.pan not in declining:
            chip = None if dc.chip is None else (dc.chip.psn, dc.chip.cvn, dc.chip.service_code)
            cards.append(LabCard(dc.pan, dc.expiry, dc.pin, rich, "normal", dc.organisation, chip))
    for dc in demo.cards:
        if dc.pan in declining:
            cards.append(
                LabCard(dc.pan, dc.expiry, dc.pin, dc.balance_fen, dc.status, dc.organisation)
            )
    masked = {c.masked for c in cards}
    made = 0
    while made < extra_cards:
        pan = _luhn_complete("621799" + "".join(str(rnd.randrange(10)) for _ in range(9)))
        if mask_pan(pan) in masked:
            continue
        masked.add(mask_pan(pan))
        pin = "".join(str(rnd.randrange(10)) for _ in range(6))
        # every fourth one a chip card (CVN 18 and 10 in turn)
        chip = ("01", "18" if made % 8 == 3 else "10", "220") if made % 4 == 3 else None
        cards.append(LabCard(pan, "2912", pin, rich, chip=chip))
        made += 1
    return cards


def _world_toml(demo: World, terms: list[LabTerminal], cards: list[LabCard]) -> str:
    lines = [
        "# The fault lab's world (generated by clearpos.lab.campaign.lab_world; test data only).",
        "[acquirer]",
        'institution = "48020000"',
        'name = "clearpos fault lab"',
        "",
    ]
    if demo.issuer is not None:
        lines += [
            "[issuer]",
            f'imk_ac = "{demo.issuer.imk_ac.hex().upper()}"',
            f'imk_smi = "{demo.issuer.imk_smi.hex().upper()}"',
            f'imk_smc = "{demo.issuer.imk_smc.hex().upper()}"',
            "",
        ]
    lines += [
        "[risk]",
        f'quickpass_no_pin_limit = "{fen_yuan(demo.risk.quickpass_no_pin_limit_fen)}"',
        "",
        "[[merchants]]",
        f'mid = "{MID}"',
        'name = "Fault lab merchant"',
        'status = "active"',
        "",
    ]
    for t in terms:
        lines += [
            "[[terminals]]",
            f'tid = "{t.tid}"',
            f'mid = "{t.mid}"',
            f'tmk = "{t.tmk}"',
            'min_software = "0.1.0"',
            'dialect = "clearpos"',
            *(["chip = true"] if t.chip else []),
            'operators = [ { no = "01", password = "0000" }, '
            f'{{ no = "99", password = "{SUPERVISOR}", supervisor = true }} ]',
            "",
        ]
    for c in cards:
        lines += [
            "[[cards]]",
            f'pan = "{c.pan}"',
            f'expiry = "{c.expiry}"',
            f'pin = "{c.pin}"',
            f'balance = "{fen_yuan(c.balance_fen)}"',
            f'status = "{c.status}"',
            f'organisation = "{c.organisation}"',
        ]
        if c.chip is not None:
            psn, cvn, service_code = c.chip
            lines.append(
                f'chip = {{ psn = "{psn}", cvn = "{cvn}", service_code = "{service_code}" }}'
            )
        lines.append("")
    return "\n".join(lines)
