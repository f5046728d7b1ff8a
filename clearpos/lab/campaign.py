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
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clearpos.audit import run_audit
from clearpos.private import private_open
from clearpos.store import open_database
from clearpos.store.pg import redact
from clearpos.store.queries import lab as lab_q
from clearpos.terminal import HostLink, Terminal
from clearpos.terminal.machine import TerminalError
from clearpos.terminal.screens import Outcome
from clearpos.terminal.store import JournalRow, Store

from .checks import APPLIED, NOT_APPLIED, Comparison, compare
from .faultproxy import Action, ChaosEvent, FaultProxy
from .hostrunner import HostRunner, free_port
from .operations import Op, OperationMix, offline_stored, rng
from .report import Discrepancy, Report
from .world import (
    DEMO_WORLD,
    MID,
    SUPERVISOR,
    LabCard,
    LabTerminal,
    LabWorld,
    lab_kek,
    lab_kek_hex,
    lab_world,
)

# the campaign's pieces live in their own modules; their public names stay importable
# from here, where the lab's callers and tests have always found them
__all__ = [
    "APPLIED",
    "DEFAULT_RATES",
    "DEMO_WORLD",
    "MID",
    "NOT_APPLIED",
    "SUPERVISOR",
    "Campaign",
    "Comparison",
    "Discrepancy",
    "HostRunner",
    "LabCard",
    "LabConfig",
    "LabTerminal",
    "LabWorld",
    "Report",
    "compare",
    "free_port",
    "lab_kek",
    "lab_kek_hex",
    "lab_world",
    "run_campaign",
]

_rng = rng  # the tests draw the campaign's schedule with it

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


class Campaign:
    """Runs one :class:`LabConfig`; see the module docstring."""

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.out = cfg.out
        self.world = lab_world(cfg.seed, cfg.terminals, cfg.extra_cards)
        self.cards = self.world.cards
        # chip cards are inserted or tapped (a swipe of one at a chip terminal is 45)
        self.chip_cards = [c for c in self.cards if c.good and c.chip is not None]
        self.card_files: dict[str, Path] = {}
        self.mix = OperationMix(
            [c for c in self.cards if c.good and c.chip is None],
            [c for c in self.cards if not c.good],
            self.chip_cards,
            self.world.card_by_masked(),
            self.card_files,
        )
        chip_terms = sum(1 for t in self.world.terminals if t.chip)
        self.chip_p = (
            min(0.8, cfg.chip_share * cfg.terminals / chip_terms)
            if chip_terms and self.chip_cards
            else 0.0
        )
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
            and rng(self.cfg.seed, "host-kill", event.frame).random() < rate
            and self.host.kill()
        ):
            with self._lock:
                self._host_killed = True
                self.report.host_kills_in_flight += 1

    def _host_between(self, step: int) -> None:
        """Between operations: kill the host now and then; restart it, or keep it down."""
        rnd = rng(self.cfg.seed, "host-between", step)
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
            self._run(tid, Op("login", lambda term: term.login("01", "0000"), [], False))
        elif not t.signed_on:
            self._run(tid, Op("signon", lambda term: term.signon(), [], False))

    def _run(self, tid: str, op: Op) -> Outcome | None:
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

    def _run_cli(self, tid: str, op: Op, step: int) -> None:
        """The operation as a ``clearpos pos`` subprocess, perhaps SIGKILLed midway."""
        self.close_terminal(tid)
        rep = self.report
        rep.cli_runs += 1
        rep.operations[op.name] += 1
        if op.financial:
            rep.transactions += 1
        rnd = rng(self.cfg.seed, "cli", step)
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
            rnd = rng(cfg.seed, "op", step)
            self._ready(tid)
            t = self.terminal(tid)
            chip = self.world.terminals[step % len(tids)].chip
            if rnd.random() < cfg.settle_rate:
                op = Op("settle", lambda term: term.settle(), ["settle"], False)
            elif chip and rng(cfg.seed, "chip", step).random() < self.chip_p:
                op = self.mix.chip_sale(rng(cfg.seed, "chip-sale", step))
            else:
                op = self.mix.choose(t, rnd)
            if rng(cfg.seed, "cli-pick", step).random() < cfg.cli_rate:
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
                self._run(tid, Op("echo", lambda term: term.echo(), [], False))
                if t.store.reversal() is not None or offline_stored(t):
                    continue
                out = self._run(tid, Op("settle", lambda term: term.settle(), [], False))
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
            stuck = offline_stored(t)
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


def run_campaign(cfg: LabConfig) -> Report:
    """Run one campaign and return its report (also written to ``cfg.out``)."""
    return Campaign(cfg).run()
