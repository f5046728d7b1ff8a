"""The fault lab: a seeded, reproducible campaign of network faults and crashes.

What one campaign does (``clearpos lab run``):

1. Writes a *lab world* (:func:`lab_world`): the demo world's normal cards
   with large balances plus generated ones, a few cards that decline (frozen,
   nearly empty, expired), N terminals on one merchant, no velocity rule and
   no maintenance window. The world file lives outside the output directory
   and is deleted once the host has loaded it.
2. Starts a real ``clearpos host`` process on a fixed port with a SQLite store
   in the output directory, and a :class:`~clearpos.lab.faultproxy.FaultProxy`
   in chaos mode in front of it.
3. Runs the terminals round-robin, one operation at a time: purchases (some
   keyed, some without PIN, some with cards that decline), voids, refunds,
   pre-authorisations, completions and their voids, balance inquiries and
   settlements. The proxy draws a fault for every request frame from
   ``(seed, frame number)``: dropped requests, dropped answers, answers
   delayed past the terminal's timeout, requests and answers cut mid-frame,
   duplicated requests and corrupted answers.
4. Crashes things: the host is SIGKILLed right after the proxy forwarded a
   request frame drawn from ``(seed, frame number)`` (so while that request is
   in flight) and now and then between operations; after a kill it is
   restarted at once, or left down (the proxy refusing connections) for a few
   operations so that terminals go offline. Some operations run as a
   ``clearpos pos`` subprocess on the terminal's state directory, SIGKILLed
   after its k-th request frame or at a random moment; the next operation
   reuses the same state directory.
5. At the end, with the network calm and a 2 s answer timeout (a slow answer
   is no fault there): every terminal signs on if needed,
   sends an echo (which delivers any pending reversal and offline sale) and
   settles. Then the checks (:func:`compare`), each of which must find nothing:

   - ``clearpos audit`` on the host's store;
   - per transaction: for every money-moving request in a terminal's journal
     (not balance inquiries), the
     terminal's view (applied / not applied) equals the host's journal row
     with the same TID, batch and STAN (applied = approved and not reversed);
     a sale the terminal shows voided is voided at the host, a pre-auth it
     shows completed is completed there, and the host holds no applied
     request the terminal never journaled;
   - money, from the terminals alone: for every card, opening balance minus
     what the terminals say was charged plus what they say was credited equals
     the card's balance at the host, and the holds of the pre-auths they
     show open equal the card's holds.

   A refund whose answer was lost is *unknown* to the terminal by design (a
   refund is never reversed, spec §4); the lab resolves each such refund from
   the host's row with its TID, batch and STAN -- what the help desk does --
   and counts them separately.

Same seed, same fault schedule: the fault for request frame n, the decision to
kill the host at frame n, and the operation chosen at step k depend only on
the seed and n (or k) and the terminals' own journals. Whether the host had
committed a request when it was killed is a race by nature, so two runs with
one seed may differ after the first in-flight kill.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clearpos.audit import FINANCIAL, run_audit
from clearpos.keys import KeyEncryptionKey
from clearpos.money import fen_yuan
from clearpos.private import private_open
from clearpos.store import CREDIT_KINDS, DEBIT_KINDS, open_database
from clearpos.store.pg import redact
from clearpos.store.queries import lab as lab_q
from clearpos.terminal import CardInput, HostLink, Terminal
from clearpos.terminal.machine import DEFAULT_SOFTWARE, TerminalError
from clearpos.terminal.screens import Outcome
from clearpos.terminal.store import JournalRow, Store
from clearpos.versions import version_at_least
from clearpos.wire.mask import mask_pan
from clearpos.world import World, load_world

from .faultproxy import Action, ChaosEvent, FaultProxy

__all__ = [
    "DEFAULT_RATES",
    "Discrepancy",
    "LabCard",
    "LabConfig",
    "LabTerminal",
    "LabWorld",
    "Report",
    "compare",
    "lab_kek",
    "lab_kek_hex",
    "lab_world",
    "run_campaign",
]

MID = "898310048161234"
SUPERVISOR = "123456"
DEMO_WORLD = Path(__file__).resolve().parent.parent / "data" / "world.toml"

DEFAULT_RATES: dict[Action, float] = {
    Action.DROP_REQUEST: 0.015,
    Action.DROP_RESPONSE: 0.02,
    Action.DELAY_RESPONSE: 0.015,
    Action.CUT_REQUEST: 0.01,
    Action.CUT_RESPONSE: 0.01,
    Action.DUPLICATE: 0.01,
    Action.CORRUPT_RESPONSE: 0.005,
}
"""Per-request-frame fault probabilities: 8.5 % of frames get a fault."""

APPLIED = ("approved", "offline_uploaded")
NOT_APPLIED = ("declined", "reversed", "local", "offline_declined")


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


# ---------------------------------------------------------------------------- configuration


@dataclass
class LabConfig:
    """One campaign. ``transactions`` counts financial operations (settlements excluded)."""

    out: Path
    seed: int = 1
    terminals: int = 4
    transactions: int = 1000
    extra_cards: int = 24
    port: int = 0  # the host's fixed port; 0 = pick a free one at the start
    timeout: float = 0.3  # the terminals' wait for each answer, seconds
    delay: float = 0.45  # how long a delayed answer is held (past the timeout)
    rates: dict[Action, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    host_kill_rate: float = 0.002  # per request frame: SIGKILL the host while it is in flight
    host_kill_between: float = 0.001  # per operation: SIGKILL the host between operations
    host_down_share: float = 0.3  # of kills: leave the host down (proxy refusing) a few ops
    cli_rate: float = 0.01  # share of operations run as a `clearpos pos` subprocess
    cli_kill_share: float = 0.6  # of those: SIGKILLed
    #: share of operations that are chip sales (contact or QuickPass) on the chip
    #: terminals; a chip terminal gets at most 0.8 of its operations as chip sales
    chip_share: float = 0.3
    settle_rate: float = 0.02  # per operation of a terminal: settle now
    floor_limit_fen: int = 5000  # offline floor limit of the terminals
    leak_scan: bool = True
    #: the host's store: None = a SQLite file in ``out``; or postgresql://... (wiped at start)
    db: str | None = None
    workers: int = 1  # host processes (--workers; PostgreSQL only)
    progress: Callable[[str], None] | None = None
    #: called with (transactions done, transactions wanted) after every operation
    tick: Callable[[int, int], None] | None = None


# ---------------------------------------------------------------------------- the host process


class HostRunner:
    """A ``clearpos host`` subprocess on a fixed port; logs under ``out/logs``."""

    def __init__(
        self,
        out: Path,
        port: int,
        env: dict[str, str],
        *,
        db: str | None = None,
        workers: int = 1,
    ) -> None:
        self.out = out
        self.port = port
        self.env = env
        self.db = out / "host.db"
        self.url = db or f"sqlite:///{self.db}"
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        with self._lock:
            return self.proc is not None and self.proc.poll() is None

    def start(self, world: Path | None = None) -> None:
        """Start the host (loading ``world`` into a wiped store when given); returns once it
        listens. A few tries: the port may still be held for a moment after a kill."""
        self.starts += 1
        log = self.out / "logs" / f"host-{self.starts:04d}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "clearpos.cli",
            "host",
            "--db",
            self.url,
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        if self.workers > 1:
            # a supervisor and its workers (kill() below takes the whole process group)
            cmd += ["--workers", str(self.workers)]
        if world is not None:
            cmd += ["--world", str(world), "--reset", "--yes"]
        for attempt in range(6):
            with open(log, "ab") as fh:
                # its own process group: a kill takes the supervisor and every worker down
                # at once (workers would otherwise get a graceful SIGTERM from the supervisor)
                proc = subprocess.Popen(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            if self._wait_listening(proc, log):
                with self._lock:
                    self.proc = proc
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            time.sleep(0.2 * (attempt + 1))  # e.g. the port is still held by the killed process
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the lab host did not start on port {self.port}:\n{tail}")

    @staticmethod
    def _wait_listening(proc: subprocess.Popen[bytes], log: Path) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                if b"listening on" in log.read_bytes()[-4096:]:
                    return True
            time.sleep(0.02)
        return False

    def kill(self) -> bool:
        """SIGKILL the host (every process of it); True when it was running."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        with self._lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Discrepancy:
    """One thing the final checks found: which check, which terminal/card, what."""

    check: str
    detail: str


@dataclass
class Report:
    """What a campaign did and found (``discrepancies`` must be empty)."""

    seed: int
    terminals: int
    transactions: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    reversals_sent: int = 0
    reversals_confirmed: int = 0
    host_restarts: int = 0
    host_kills_in_flight: int = 0
    host_kills_between: int = 0
    host_down_ops: int = 0
    cli_runs: int = 0
    terminal_kills: int = 0
    terminal_restarts: int = 0
    offline_stored: int = 0
    unknown_refunds: int = 0
    settlements: int = 0
    errors: list[str] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    audit: int = 0
    leak_hits: int = -1
    leak_files: int = 0
    seconds: float = 0.0
    command: str = ""

    @property
    def faults_injected(self) -> int:
        """Network faults drawn by the proxy (host and terminal kills not included)."""
        return sum(self.faults.values())

    @property
    def ok(self) -> bool:
        return not self.discrepancies and not self.errors and self.leak_hits <= 0

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Counter):
                value = dict(sorted(value.items()))
            elif name == "discrepancies":
                value = [asdict(d) for d in value]
            doc[name] = value
        doc["faults_injected"] = self.faults_injected
        doc["ok"] = self.ok
        return doc

    def text(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.operations.items()))
        res = ", ".join(f"{k} {v}" for k, v in sorted(self.results.items()))
        lines = [
            f"fault lab: seed {self.seed}, {self.terminals} terminals, {self.seconds:.0f} s",
            f"  transactions       {self.transactions} ({ops})",
            f"  outcomes           {res}",
            f"  request frames     {self.frames}",
            f"  faults injected    {self.faults_injected} ({faults})",
            f"  reversals          {self.reversals_sent} sent, {self.reversals_confirmed} confirmed",
            f"  host               {self.host_restarts} restarts after "
            f"{self.host_kills_in_flight} SIGKILLs in flight and {self.host_kills_between} "
            f"between operations; {self.host_down_ops} operations while it was down",
            f"  terminals          {self.cli_runs} subprocess operations, {self.terminal_kills} "
            f"SIGKILLed, {self.terminal_restarts} restarts",
            f"  offline sales      {self.offline_stored} stored",
            f"  unknown refunds    {self.unknown_refunds} (resolved from the host's row)",
            f"  settlements        {self.settlements}",
            f"  audit              {self.audit} discrepancies",
            "  leak scan          "
            + (
                "not run"
                if self.leak_hits < 0
                else f"{self.leak_hits} hits in {self.leak_files} files"
            ),
            f"  errors             {len(self.errors)}",
            f"  discrepancies      {len(self.discrepancies)}",
        ]
        for e in self.errors[:20]:
            lines.append(f"    error: {e}")
        for d in self.discrepancies[:50]:
            lines.append(f"    {d.check}: {d.detail}")
        if len(self.discrepancies) > 50:
            lines.append(f"    ... {len(self.discrepancies) - 50} more in report.json")
        lines.append("RESULT: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)


# ---------------------------------------------------------------------------- the campaign


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(["clearpos-lab", str(seed), *map(str, parts)]))


class _Op:
    """One operation: the terminal method to call, and the same as CLI arguments."""

    def __init__(
        self, name: str, call: Callable[[Terminal], Outcome], argv: list[str], financial: bool
    ) -> None:
        self.name = name
        self.call = call
        self.argv = argv
        self.financial = financial


def _card_argv(card: LabCard, *, pin: bool, keyed: bool = False) -> list[str]:
    out = ["--card", card.pan, "--expiry", card.expiry]
    if pin:
        out += ["--pin", card.pin]
    if keyed:
        out.append("--keyed")
    return out


def _void_in_batch(
    t: Terminal,
    rnd: random.Random,
    kind: str,
    name: str,
    verb: str,
    method: Callable[[Terminal], Callable[[str, str], Outcome]],
) -> _Op | None:
    """Void (supervisor) one of the latest 20 approved ``kind`` rows of the open batch."""
    rows = [
        r
        for r in t.store.journal()
        if r.kind == kind
        and r.status == "approved"
        and not r.voided
        and not r.settled
        and r.batch == t.batch
    ]
    if not rows:
        return None
    row = rnd.choice(rows[-20:])
    return _Op(
        name,
        lambda term: method(term)(row.stan, SUPERVISOR),
        ["--supervisor-password", SUPERVISOR, verb, row.stan],
        True,
    )


def _open_preauths(rows: list[JournalRow]) -> list[JournalRow]:
    """Approved pre-authorisations not voided, not settled and not yet completed."""
    completed = {
        (r.original_stan, r.original_batch)
        for r in rows
        if r.kind == "completion" and r.status == "approved"
    }
    return [
        r
        for r in rows
        if r.kind == "preauth"
        and r.status == "approved"
        and not r.voided
        and not r.settled
        and (r.stan, r.batch) not in completed
    ]


def _offline_stored(t: Terminal) -> list[JournalRow]:
    """Offline purchases the terminal still has to upload."""
    return [r for r in t.store.journal() if r.status == "offline_stored"]


class Campaign:
    """Runs one :class:`LabConfig`; see the module docstring."""

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.out = cfg.out
        self.world = lab_world(cfg.seed, cfg.terminals, cfg.extra_cards)
        self.cards = self.world.cards
        # chip cards are inserted or tapped (a swipe of one at a chip terminal is 45)
        self.good_cards = [c for c in self.cards if c.good and c.chip is None]
        self.chip_cards = [c for c in self.cards if c.good and c.chip is not None]
        self.card_files: dict[str, Path] = {}
        chip_terms = sum(1 for t in self.world.terminals if t.chip)
        self.chip_p = (
            min(0.8, cfg.chip_share * cfg.terminals / chip_terms)
            if chip_terms and self.chip_cards
            else 0.0
        )
        self.bad_cards = [c for c in self.cards if not c.good]
        self.by_masked = self.world.card_by_masked()
        self.kek = lab_kek(cfg.seed)
        self.report = Report(cfg.seed, cfg.terminals)
        self.env = dict(os.environ)
        self.env["CLEARPOS_KEK"] = lab_kek_hex(cfg.seed)  # the lab's own, seed-derived KEK
        self.env.pop("CLEARPOS_KEK_FILE", None)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.port = cfg.port or free_port()
        self.host = HostRunner(self.out, self.port, self.env, db=cfg.db, workers=cfg.workers)
        self.proxy: FaultProxy | None = None
        self.terms: dict[str, Terminal] = {}
        self.working_keys: set[bytes] = set()
        self._lock = threading.Lock()
        self._host_killed = False
        self._down_left = 0
        self._final = False
        self._cli_frames = 0
        self._cli_target = 0
        self._cli_hit = threading.Event()
        self._cli_active = False

    # -- plumbing

    def _say(self, text: str) -> None:
        if self.cfg.progress is not None:
            self.cfg.progress(text)

    def state_dir(self, tid: str) -> Path:
        return self.out / "terminals" / tid

    def _open(self, tid: str) -> Terminal:
        lt = next(t for t in self.world.terminals if t.tid == tid)
        assert self.proxy is not None
        return Terminal(
            self.state_dir(tid),
            link=HostLink("127.0.0.1", self.proxy.port, timeout=self._timeout()),
            tid=lt.tid,
            mid=lt.mid,
            tmk=bytes.fromhex(lt.tmk),
            floor_limit_fen=self.cfg.floor_limit_fen,
            lang="en",
            kek=self.kek,
        )

    def _timeout(self) -> float:
        """The terminals' answer timeout: the configured one, generous in the calm end phase
        (settling is reconciliation there, not fault injection; a slow answer is no fault)."""
        return max(2.0, self.cfg.timeout) if self._final else self.cfg.timeout

    def terminal(self, tid: str) -> Terminal:
        t = self.terms.get(tid)
        if t is None:
            t = self.terms[tid] = self._open(tid)
        return t

    def close_terminal(self, tid: str) -> None:
        t = self.terms.pop(tid, None)
        if t is not None:
            self._note_keys(t)
            t.close()

    def _note_keys(self, t: Terminal) -> None:
        """Remember the clear working keys (the leak scan looks for them)."""
        sealed = t.keys.to_sealed(self.kek, t.tid)
        for name in ("pik", "mak"):
            if name in sealed:
                self.working_keys.add(self.kek.open(sealed[name], f"terminal-{name}:{t.tid}"))

    # -- crashes, decided on the proxy's thread

    def _observe(self, event: ChaosEvent) -> None:
        if self._final:
            return
        if self._cli_active:
            self._cli_frames += 1
            if self._cli_frames == self._cli_target:
                self._cli_hit.set()
        rate = self.cfg.host_kill_rate
        if (
            rate > 0
            and _rng(self.cfg.seed, "host-kill", event.frame).random() < rate
            and self.host.kill()
        ):
            with self._lock:
                self._host_killed = True
                self.report.host_kills_in_flight += 1

    def _host_between(self, step: int) -> None:
        """Between operations: kill the host now and then; restart it, or keep it down."""
        rnd = _rng(self.cfg.seed, "host-between", step)
        if rnd.random() < self.cfg.host_kill_between and self.host.kill():
            with self._lock:
                self._host_killed = True
                self.report.host_kills_between += 1
        with self._lock:
            killed, self._host_killed = self._host_killed, False
        assert self.proxy is not None
        if killed:
            if rnd.random() < self.cfg.host_down_share:
                self._down_left = rnd.randint(1, 6)
                self.proxy.down()
            else:
                self._restart_host()
        if self._down_left > 0:
            self._down_left -= 1
            self.report.host_down_ops += 1
            if self._down_left == 0:
                self._restart_host()
                self.proxy.up()

    def _restart_host(self) -> None:
        self.host.kill()
        self.host.start()
        self.report.host_restarts += 1

    # -- choosing an operation

    def _choose(self, t: Terminal, rnd: random.Random) -> _Op:
        r = rnd.random()
        good = self.good_cards
        if r < 0.03 and self.bad_cards:
            card = rnd.choice(self.bad_cards)
            amount = rnd.randint(100, 30000)
            return self._purchase(card, amount, pin=True, keyed=False)
        if r < 0.45:
            card = rnd.choice(good)
            amount = rnd.randint(100, 30000)
            pin = rnd.random() < 0.85
            keyed = rnd.random() < 0.1
            return self._purchase(card, amount, pin=pin, keyed=keyed)
        if r < 0.53:
            op = _void_in_batch(t, rnd, "purchase", "void", "void", lambda term: term.void)
            if op is not None:
                return op
        if 0.53 <= r < 0.60:
            rows = [
                r
                for r in t.store.journal()
                if r.kind in ("purchase", "completion", "offline")
                and r.status in ("approved", "offline_uploaded")
                and not r.voided
                and r.rrn != ""
            ][-40:]
            if rows:
                row = rnd.choice(rows)
                known = self.by_masked.get(row.pan)
                amount = max(1, (row.amount_fen or 1) // rnd.choice((1, 1, 2, 3)))
                give_card = (
                    known is not None
                    and known.chip is None  # a chip card is refunded by RRN alone
                    and (row.sealed is None or rnd.random() < 0.3)
                )
                card_in = CardInput(known.pan, known.expiry) if give_card and known else None
                argv = ["--supervisor-password", SUPERVISOR, "refund", fen_yuan(amount)]
                argv += ["--rrn", row.rrn]
                if card_in is not None and known is not None:
                    argv += _card_argv(known, pin=False)
                return _Op(
                    "refund",
                    lambda term: term.refund(
                        amount, row.rrn, card_in, supervisor_password=SUPERVISOR
                    ),
                    argv,
                    True,
                )
        if 0.60 <= r < 0.70:
            card = rnd.choice(good)
            amount = rnd.randint(1000, 50000)
            return _Op(
                "preauth",
                lambda term: term.preauth(amount, CardInput(card.pan, card.expiry, card.pin)),
                ["preauth", fen_yuan(amount), *_card_argv(card, pin=True)],
                True,
            )
        if 0.70 <= r < 0.82:
            rows = _open_preauths(t.store.journal())
            if rows:
                row = rnd.choice(rows[-20:])
                if r < 0.78:
                    amount = max(1, (row.amount_fen or 1) - rnd.choice((0, 0, 1, 100, 999)))
                    return _Op(
                        "complete",
                        lambda term: term.complete(amount, row.stan),
                        ["complete", fen_yuan(amount), "--preauth", row.stan],
                        True,
                    )
                return _Op(
                    "preauth_void",
                    lambda term: term.preauth_void(row.stan, SUPERVISOR),
                    ["--supervisor-password", SUPERVISOR, "preauth-void", row.stan],
                    True,
                )
        if 0.82 <= r < 0.86:
            op = _void_in_batch(
                t, rnd, "completion", "completion_void", "complete-void",
                lambda term: term.completion_void,
            )  # fmt: skip
            if op is not None:
                return op
        if 0.86 <= r < 0.96:
            card = rnd.choice(good)
            return _Op(
                "balance",
                lambda term: term.balance(CardInput(card.pan, card.expiry, card.pin)),
                ["balance", *_card_argv(card, pin=True)],
                True,
            )
        card = rnd.choice(good)
        amount = rnd.randint(100, 8000)  # small: some go offline while the host is down
        return self._purchase(card, amount, pin=rnd.random() < 0.5, keyed=False)

    @staticmethod
    def _purchase(card: LabCard, amount: int, *, pin: bool, keyed: bool) -> _Op:
        card_in = CardInput(card.pan, card.expiry, card.pin if pin else None, keyed)
        return _Op(
            "purchase",
            lambda term: term.purchase(amount, card_in),
            ["purchase", fen_yuan(amount), *_card_argv(card, pin=pin, keyed=keyed)],
            True,
        )

    def _chip_sale(self, rnd: random.Random) -> _Op:
        """A chip sale: inserted with its PIN, or tapped (QuickPass): up to the no-PIN
        limit without a PIN, above it mostly with one (without: declined 55)."""
        card = rnd.choice(self.chip_cards)
        path = self.card_files[card.pan]
        if rnd.random() < 0.45:
            amount = rnd.randint(100, 150_000)
            pin = amount > 100_000 and rnd.random() < 0.7
            name, how = "tap", ["--tap", str(path)]
        else:
            amount = rnd.randint(100, 30_000)
            pin = rnd.random() < 0.9
            name, how = "chip", ["--chip", str(path)]
        card_in = CardInput.of_chip(path, pin=card.pin if pin else None, tap=name == "tap")
        return _Op(
            name,
            lambda term: term.purchase(amount, card_in),
            ["purchase", fen_yuan(amount), *how, *(["--pin", card.pin] if pin else [])],
            True,
        )

    def _personalise(self) -> None:
        """A card file for every chip card, as ``clearpos admin cards personalise`` writes
        it (the same function, in one transaction): ICC keys derived from the issuer keys
        the host's store keeps sealed, the ATC from the last one the host saw."""
        from clearpos.keys import SecurityModule
        from clearpos.keys.tokens import PanTokenizer
        from clearpos.ops.chip import personalise

        cards = self.out / "cards"
        cards.mkdir()
        hsm, tokens = SecurityModule(self.kek), PanTokenizer(self.kek)
        with open_database(self.host.url).transaction() as tx:
            for n, card in enumerate(self.chip_cards, 1):
                path = cards / f"chip-{n:02d}.toml"
                personalise(tx, hsm, tokens.token(card.pan), card.pan, path, by="lab")
                self.card_files[card.pan] = path

    # -- running operations

    def _ready(self, tid: str) -> None:
        """Operator signed in and terminal signed on (what an operator would do)."""
        t = self.terminal(tid)
        if t.operator is None:
            self._run(tid, _Op("login", lambda term: term.login("01", "0000"), [], False))
        elif not t.signed_on:
            self._run(tid, _Op("signon", lambda term: term.signon(), [], False))

    def _run(self, tid: str, op: _Op) -> Outcome | None:
        t = self.terminal(tid)
        rep = self.report
        rep.operations[op.name] += 1
        if op.financial:
            rep.transactions += 1
        try:
            out = op.call(t)
        except TerminalError as exc:
            rep.results[f"{op.name}:refused"] += 1
            self._say(f"{tid} {op.name}: {exc}")
            return None
        except Exception as exc:  # a crash of the terminal code is a finding
            rep.errors.append(f"{tid} {op.name}: {type(exc).__name__}: {exc}")
            self.close_terminal(tid)
            return None
        self._tally(op.name, out)
        return out

    def _tally(self, name: str, out: Outcome) -> None:
        rep = self.report
        if out.reason == "offline.stored":
            rep.offline_stored += 1
            key = "offline"
        elif out.approved:
            key = "approved"
        elif out.reason in ("network.timeout", "network.unreachable"):
            key = out.reason.split(".")[1]
        elif out.code is None:
            key = "local"
        else:
            key = "declined"
        rep.results[f"{name}:{key}"] += 1
        if name == "settle" and out.approved:
            rep.settlements += 1

    def _run_cli(self, tid: str, op: _Op, step: int) -> None:
        """The operation as a ``clearpos pos`` subprocess, perhaps SIGKILLed midway."""
        self.close_terminal(tid)
        rep = self.report
        rep.cli_runs += 1
        rep.operations[op.name] += 1
        if op.financial:
            rep.transactions += 1
        rnd = _rng(self.cfg.seed, "cli", step)
        kill = rnd.random() < self.cfg.cli_kill_share
        by_frame = rnd.random() < 0.7
        target = rnd.randint(1, 3)
        pause = rnd.random() * 0.3
        at = 0.2 + rnd.random() * 0.8
        assert self.proxy is not None
        cmd = [
            sys.executable,
            "-m",
            "clearpos.cli",
            "pos",
            "--state",
            str(self.state_dir(tid)),
            "--host",
            f"127.0.0.1:{self.proxy.port}",
            "--timeout",
            str(self.cfg.timeout),
            "--lang",
            "en",
            "--json",
            *op.argv,
        ]
        log = self.state_dir(tid) / "cli.log"
        self._cli_frames = 0
        self._cli_target = target if kill and by_frame else 0
        self._cli_hit.clear()
        self._cli_active = True
        try:
            with open(log, "ab") as fh:
                fh.write(f"--- step {step}: {op.name}\n".encode())
                fh.flush()
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
                killed = False
                if kill:
                    if by_frame:
                        deadline = time.monotonic() + 60
                        while proc.poll() is None and time.monotonic() < deadline:
                            if self._cli_hit.wait(0.01):
                                time.sleep(pause)
                                break
                    else:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(at)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                rc = proc.wait(120)
                fh.write(f"--- exit {rc}{' (SIGKILL)' if killed else ''}\n".encode())
        finally:
            self._cli_active = False
        if killed:
            rep.terminal_kills += 1
            rep.results[f"{op.name}:killed"] += 1
        else:
            rep.results[f"{op.name}:cli-exit-{rc}"] += 1
        rep.terminal_restarts += 1

    # -- the whole campaign

    def run(self) -> Report:
        cfg = self.cfg
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        for sub in ("terminals", "logs", "exports", "cards"):
            shutil.rmtree(self.out / sub, ignore_errors=True)
        for name in (
            "host.db",
            "host.db-wal",
            "host.db-shm",
            "report.json",
            "report.txt",
            "lab.json",
        ):
            with contextlib.suppress(FileNotFoundError):
                (self.out / name).unlink()
        self.report.command = " ".join(["clearpos lab run", *_argv_of(cfg)])
        (self.out / "lab.json").write_text(
            json.dumps({"seed": cfg.seed, "terminals": cfg.terminals, "cards": cfg.extra_cards})
            + "\n",
            "utf-8",
        )
        worlddir = Path(tempfile.mkdtemp(prefix="clearpos-lab-world-"))
        try:
            world = worlddir / "world.toml"
            world.write_text(self.world.toml, "utf-8")
            self.host.start(world)
        finally:
            shutil.rmtree(worlddir, ignore_errors=True)
        self.report.host_restarts = 0
        self._personalise()
        self.proxy = FaultProxy(("127.0.0.1", self.port), record=False).start()
        try:
            self._campaign()
            self._finish()
        finally:
            for tid in list(self.terms):
                self.close_terminal(tid)
            self.proxy.close()
            self.host.stop()
        self._collect()
        self.report.seconds = time.monotonic() - started
        if cfg.leak_scan:
            self._leak_scan()
        self.report.seconds = time.monotonic() - started
        (self.out / "report.json").write_text(
            json.dumps(self.report.to_json(), indent=1, ensure_ascii=False), "utf-8"
        )
        (self.out / "report.txt").write_text(self.report.text() + "\n", "utf-8")
        return self.report

    def _campaign(self) -> None:
        cfg = self.cfg
        assert self.proxy is not None
        self.proxy.chaos(cfg.seed, cfg.rates, delay=cfg.delay, observer=self._observe)
        tids = [t.tid for t in self.world.terminals]
        step = 0
        last = time.monotonic()
        while self.report.transactions < cfg.transactions:
            tid = tids[step % len(tids)]
            self._host_between(step)
            rnd = _rng(cfg.seed, "op", step)
            self._ready(tid)
            t = self.terminal(tid)
            chip = self.world.terminals[step % len(tids)].chip
            if rnd.random() < cfg.settle_rate:
                op = _Op("settle", lambda term: term.settle(), ["settle"], False)
            elif chip and _rng(cfg.seed, "chip", step).random() < self.chip_p:
                op = self._chip_sale(_rng(cfg.seed, "chip-sale", step))
            else:
                op = self._choose(t, rnd)
            if _rng(cfg.seed, "cli-pick", step).random() < cfg.cli_rate:
                self._run_cli(tid, op, step)
            else:
                self._run(tid, op)
            if step % 50 == 0:
                self._note_keys(self.terminal(tid))
            step += 1
            if cfg.tick is not None:
                cfg.tick(self.report.transactions, cfg.transactions)
            if time.monotonic() - last > 30:
                last = time.monotonic()
                self._say(
                    f"step {step}: {self.report.transactions} transactions, "
                    f"{sum(self.proxy.chaos_counts.values())} faults, "
                    f"{self.report.host_restarts} host restarts"
                )

    def _finish(self) -> None:
        """Calm network, host up: deliver what is owed, then settle every terminal."""
        assert self.proxy is not None
        self._final = True
        for tid in list(self.terms):
            self.close_terminal(tid)  # reopened with the end phase's timeout
        self.proxy.calm()
        self.proxy.up()
        if not self.host.alive:
            self._restart_host()
        self._down_left = 0
        for lt in self.world.terminals:
            tid = lt.tid
            self.close_terminal(tid)
            settled = False
            for _ in range(5):
                self._ready(tid)
                t = self.terminal(tid)
                self._run(tid, _Op("echo", lambda term: term.echo(), [], False))
                if t.store.reversal() is not None or _offline_stored(t):
                    continue
                out = self._run(tid, _Op("settle", lambda term: term.settle(), [], False))
                if out is not None and out.approved:
                    settled = True
                    break
            t = self.terminal(tid)
            if not settled:
                self.report.discrepancies.append(
                    Discrepancy("final", f"terminal {tid} could not settle at the end")
                )
            if t.store.reversal() is not None:
                self.report.discrepancies.append(
                    Discrepancy("final", f"terminal {tid} still owes a reversal at the end")
                )
            stuck = _offline_stored(t)
            if stuck:
                self.report.discrepancies.append(
                    Discrepancy(
                        "final",
                        f"terminal {tid}: offline sales not uploaded at the end: STAN "
                        + ", ".join(f"{r.stan} (batch {r.batch})" for r in stuck),
                    )
                )
            self.close_terminal(tid)
        self.report.frames = self.proxy.frames
        self.report.faults = Counter({a.value: n for a, n in self.proxy.chaos_counts.items()})
        self.report.reversals_sent = self.proxy.counts[("request", "0400")]

    def _collect(self) -> None:
        """Export the journals, run the audit and the comparisons."""
        rep = self.report
        found = run_audit(self.host.url)
        rep.audit = len(found)
        for d in found:
            rep.discrepancies.append(Discrepancy(f"audit.{d.check}", f"{d.detail} rows {d.rows}"))
        journals: dict[str, list[JournalRow]] = {}
        exports = self.out / "exports"
        exports.mkdir(exist_ok=True)
        for lt in self.world.terminals:
            store = Store(self.state_dir(lt.tid))
            try:
                journals[lt.tid] = store.journal()
            finally:
                store.close()
            path = exports / f"terminal-{lt.tid}-journal.jsonl"
            with private_open(path, "w", encoding="utf-8") as fh:
                for row in journals[lt.tid]:
                    fh.write(json.dumps(row.public(), ensure_ascii=False) + "\n")
        db = open_database(self.host.url)
        with db.reader() as tx:
            rows = lab_q.journal_dicts(tx)
            cards = [(c.pan_masked, c.opening_fen, c.balance_fen, c.holds_fen) for c in tx.cards()]
        with private_open(exports / "host-journal.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        result = compare(journals, rows, cards, self.world)
        rep.discrepancies.extend(result.discrepancies)
        rep.unknown_refunds = result.unknown
        rep.reversals_confirmed = sum(
            1
            for rows_ in journals.values()
            for r in rows_
            if r.kind == "reversal" and r.status == "approved"
        )

    def _leak_scan(self) -> None:
        from .leakscan import Secrets, scan_paths

        secrets = Secrets.from_world_text(self.world.toml)
        secrets.add_world(DEMO_WORLD)
        secrets.add_working_keys(self.working_keys)
        secrets.add_sealed_stores(self.out, [self.kek])
        result = scan_paths([self.out], secrets)
        self.report.leak_hits = len(result.hits)
        self.report.leak_files = result.files
        for h in result.hits[:50]:
            self.report.discrepancies.append(Discrepancy("leak", str(h)))


def _argv_of(cfg: LabConfig) -> list[str]:
    argv = [
        f"--seed {cfg.seed}",
        f"--terminals {cfg.terminals}",
        f"--transactions {cfg.transactions}",
        f"--out {cfg.out}",
    ]
    if cfg.db:
        argv.append(f"--db {redact(cfg.db)}")
    if cfg.workers > 1:
        argv.append(f"--workers {cfg.workers}")
    return argv


# ---------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    unknown: int = 0


def compare(
    journals: dict[str, list[JournalRow]],
    host_rows: list[dict[str, Any]],
    cards: list[tuple[str, int, int, int]],
    world: LabWorld,
) -> Comparison:
    """Terminal journals against the host's journal and cards (see the module docstring).

    ``host_rows`` are the host's journal rows as dicts; ``cards`` are
    ``(pan_masked, opening_fen, balance_fen, holds_fen)`` from the host.
    """
    res = Comparison()
    bad = res.discrepancies
    by_key: dict[str, dict[str, Any]] = {}
    for r in host_rows:
        key = r.get("req_key")
        if key and r["kind"] != "reversal":
            by_key[key] = r

    def host_applied(r: dict[str, Any] | None) -> bool:
        return r is not None and r["code"] == "00" and r["status"] != "reversed"

    charged: Counter[str] = Counter()
    credited: Counter[str] = Counter()
    held: Counter[str] = Counter()
    seen_keys: set[str] = set()
    for tid, rows in journals.items():
        completed = {
            (r.original_batch, r.original_stan)
            for r in rows
            if r.kind == "completion" and r.status in APPLIED
        }
        for row in rows:
            if row.kind not in FINANCIAL or not row.stan:
                continue
            key = f"{tid}:{row.batch}:{row.stan}"
            seen_keys.add(key)
            if row.kind == "balance":
                continue  # a balance inquiry moves no money: nothing to agree on
            h = by_key.get(key)
            where = f"{tid} batch {row.batch} STAN {row.stan} {row.kind}"
            if row.status in APPLIED:
                mine: bool | None = True
            elif row.status in NOT_APPLIED:
                mine = False
            elif row.kind == "refund" and row.status in ("unknown", "sending"):
                mine = None
            else:
                bad.append(
                    Discrepancy("terminal", f"{where}: left in state {row.status!r} at the end")
                )
                continue
            theirs = host_applied(h)
            if mine is None:
                res.unknown += 1
                mine = theirs
            elif mine != theirs:
                hs = "no row" if h is None else f"code {h['code']!r} status {h['status']!r}"
                bad.append(
                    Discrepancy(
                        "transaction",
                        f"{where}: terminal says {'applied' if mine else 'not applied'} "
                        f"({row.status}), host says {'applied' if theirs else 'not applied'} "
                        f"({hs})",
                    )
                )
                continue
            if not mine:
                continue
            assert h is not None
            if row.amount_fen != h["amount_fen"]:
                bad.append(
                    Discrepancy(
                        "transaction",
                        f"{where}: amount {row.amount_fen} at the terminal, "
                        f"{h['amount_fen']} at the host",
                    )
                )
            if row.kind in ("purchase", "completion", "preauth"):
                t_voided = row.voided
                h_voided = h["status"] == "voided"
                if t_voided != h_voided:
                    bad.append(
                        Discrepancy(
                            "voided",
                            f"{where}: voided at the terminal {t_voided}, host status "
                            f"{h['status']!r}",
                        )
                    )
            if row.kind == "preauth":
                t_done = (row.batch, row.stan) in completed
                h_done = h["status"] == "completed"
                if t_done != h_done:
                    bad.append(
                        Discrepancy(
                            "completed",
                            f"{where}: completed at the terminal {t_done}, host status "
                            f"{h['status']!r}",
                        )
                    )
            card = row.pan
            amount = row.amount_fen or 0
            if row.kind in DEBIT_KINDS:
                charged[card] += amount
            elif row.kind in CREDIT_KINDS:
                credited[card] += amount
            elif (
                row.kind == "preauth" and not row.voided and (row.batch, row.stan) not in completed
            ):
                held[card] += amount
    for key, r in by_key.items():
        if key not in seen_keys and host_applied(r):
            bad.append(
                Discrepancy(
                    "transaction",
                    f"host row {r['id']} ({r['kind']} {key}) is applied but no terminal "
                    "journaled it",
                )
            )
    opening = {c.masked: c.balance_fen for c in world.cards}
    for masked, host_opening, balance, holds in cards:
        start = opening.get(masked, host_opening)
        want = start - charged[masked] + credited[masked]
        if want != balance:
            bad.append(
                Discrepancy(
                    "money",
                    f"card {masked}: opening {start} - charged {charged[masked]} + credited "
                    f"{credited[masked]} = {want}, host balance {balance}",
                )
            )
        if held[masked] != holds:
            bad.append(
                Discrepancy(
                    "holds",
                    f"card {masked}: open pre-auths at the terminals {held[masked]}, "
                    f"host holds {holds}",
                )
            )
    return res


def run_campaign(cfg: LabConfig) -> Report:
    """Run one campaign and return its report (also written to ``cfg.out``)."""
    return Campaign(cfg).run()
