"""``clearpos pos`` -- the virtual POS terminal on the command line (spec/world.md).

Exit status: 0 approved / OK, 1 declined or refused, 2 bad usage (including
amounts, card numbers and dates that are not valid).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clearpos.private import private_open
from clearpos.secretin import SecretError, SecretOption, add_secret
from clearpos.versions import normalise_version

from .client import HostLink, parse_address
from .doctor import DoctorReport
from .machine import CardInput, Terminal, TerminalError, TerminalKekError, parse_operators
from .screens import Outcome
from .store import StateLockedError

__all__ = ["parse_amount", "register"]

_AMOUNT = re.compile(r"^(\d{1,10})(?:\.(\d{1,2}))?$")


def parse_amount(text: str) -> int:
    """Yuan text -> fen: ``"12.34"`` -> 1234. ArgumentTypeError saying precisely why not."""
    t = text.strip()
    if re.fullmatch(r"\d+\.\d{3,}", t):
        raise argparse.ArgumentTypeError(
            f"amount {text!r} has more than two decimals: amounts are yuan with at most 2 "
            "decimals (fen), e.g. 12.34"
        )
    m = _AMOUNT.match(t)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"amount {text!r} is not a number of yuan like 12.34 (digits, optional . and 1-2 "
            "decimals, no sign or thousands separator)"
        )
    fen = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if fen <= 0:
        raise argparse.ArgumentTypeError(f"amount {text!r} must be more than 0.00")
    if fen >= 10**12:
        raise argparse.ArgumentTypeError(f"amount {text!r} does not fit 12 digits of fen")
    return fen


def _floor(text: str) -> int:
    if text.strip() in ("0", "0.0", "0.00"):
        return 0
    return parse_amount(text)


def _digits(what: str, lo: int, hi: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not (text.isdecimal() and text.isascii() and lo <= len(text) <= hi):
            size = f"{lo}" if lo == hi else f"{lo}-{hi}"
            shown = "*" * len(text) if what in ("PIN", "card number") else repr(text)
            raise argparse.ArgumentTypeError(f"{what} must be {size} digits, got {shown}")
        return text

    check.__name__ = what
    return check


def _pan(text: str) -> str:
    if not (text.isdecimal() and text.isascii() and 13 <= len(text) <= 19):
        raise argparse.ArgumentTypeError(
            f"card number must be 13-19 digits, got {len(text)} characters"
            + ("" if text.isdecimal() else " (not all digits)")
        )
    return text


def _expiry(text: str) -> str:
    if not (len(text) == 4 and text.isdecimal() and 1 <= int(text[2:]) <= 12):
        raise argparse.ArgumentTypeError(f"expiry must be YYMM with month 01-12, got {text!r}")
    return text


def _mmdd(text: str) -> str:
    if not (len(text) == 4 and text.isdecimal() and 1 <= int(text[:2]) <= 12):
        raise argparse.ArgumentTypeError(f"date must be MMDD, got {text!r}")
    if not 1 <= int(text[2:]) <= 31:
        raise argparse.ArgumentTypeError(f"date must be MMDD, got {text!r}")
    return text


def _stan(text: str) -> str:
    if not (text.isdecimal() and 1 <= len(text) <= 6 and int(text) > 0):
        raise argparse.ArgumentTypeError(f"STAN must be 1-6 digits (000001-999999), got {text!r}")
    return text.zfill(6)


def _rrn(text: str) -> str:
    if not (len(text) == 12 and text.isalnum() and text.isascii()):
        raise argparse.ArgumentTypeError(f"RRN must be 12 letters or digits, got {text!r}")
    return text


def _tmk(text: str) -> bytes:
    t = text.strip()
    if len(t) != 32 or not all(c in "0123456789abcdefABCDEF" for c in t):
        raise argparse.ArgumentTypeError(
            f"TMK must be 32 hex digits (double-length 3DES key), got {len(t)} characters"
        )
    return bytes.fromhex(t)


def _software(text: str) -> str:
    try:
        return normalise_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--software: {exc}") from None


def _address(text: str) -> str:
    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _operators(text: str) -> str:
    try:
        parse_operators(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _card_args(
    p: argparse.ArgumentParser, *, required: bool, pin_required: bool = False, chip: bool = False
) -> None:
    """Card options; with ``chip``, ``--chip``/``--tap CARDFILE`` may stand for --card/--expiry."""
    need = required and not chip
    p.add_argument("--card", type=_pan, required=need, metavar="PAN", help="card number")
    p.add_argument("--expiry", type=_expiry, required=need, metavar="YYMM", help="card expiry")
    add_secret(
        p,
        "--pin",
        "cardholder PIN",
        "cardholder PIN" + (" (asked for when not given)" if pin_required else ""),
    )
    p.set_defaults(pin_required=pin_required)
    p.add_argument(
        "--keyed",
        action="store_true",
        help="card number keyed in (field 2) instead of a swipe (track 2)",
    )
    if chip:
        how = p.add_mutually_exclusive_group()
        how.add_argument(
            "--chip",
            type=Path,
            metavar="CARDFILE",
            help="insert this simulated chip card (clearpos admin cards personalise): 22 = 05x",
        )
        how.add_argument(
            "--tap",
            type=Path,
            metavar="CARDFILE",
            help="tap it instead (QuickPass, 22 = 07x; no PIN needed up to the no-PIN limit)",
        )
        p.add_argument(
            "--chip-fails",
            action="store_true",
            help="the chip cannot be read: fall back to the swipe of the card file's track (80x)",
        )
        p.add_argument(
            "--card-refuses",
            action="store_true",
            help="the card's own risk management answers AAC at the second GENERATE AC: an "
            "approved sale is reversed at once (0400 reason 06), the customer is not charged",
        )


def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    """--json and --lang are accepted before or after the action."""
    default: Any = False if top else argparse.SUPPRESS
    p.add_argument("--json", action="store_true", default=default, help="one JSON document")
    p.add_argument(
        "--lang",
        choices=("zh", "en"),
        default="zh" if top else argparse.SUPPRESS,
        help="screen language (default zh)",
    )


def register(p: argparse.ArgumentParser) -> None:
    """Add the ``pos`` options and actions to ``p``."""
    p.description = (
        "One virtual POS terminal. Its state (keys sealed, batch, STAN, journal, pending "
        "reversal, offline queue, receipts) persists in --state."
    )
    p.add_argument("--host", type=_address, help="host address HOST:PORT (remembered)")
    p.add_argument("--tid", help="terminal id, 8 characters")
    p.add_argument("--mid", help="merchant id, 15 characters (first use)")
    add_secret(p, "--tmk", "terminal master key", "terminal master key, 32 hex digits (first use)")
    p.add_argument("--state", type=Path, help="state directory (default ./pos-state/TID)")
    p.add_argument(
        "--software",
        type=_software,
        help="application version reported in field 59 A2/05, e.g. 0.1.0 (default 0.1.0; "
        "MMmmpp is read too)",
    )
    p.add_argument(
        "--dialect",
        choices=("clearpos", "cup"),
        help="clearpos (the default at first use): this project's terminal; cup: behave as a "
        "stock UnionPay countertop terminal (sign-on 004, TDK-encrypted tracks, 12-digit 61 "
        "on voids) — remembered",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for each answer (default 10)",
    )
    p.add_argument(
        "--floor-limit",
        type=_floor,
        metavar="YUAN",
        help="offline floor limit in yuan, remembered (0 = no offline sales, the default)",
    )
    add_secret(
        p,
        "--operators",
        "operator list",
        "operators at first use: NO:PASSWORD[:supervisor],... "
        "(default 01:0000,99:123456:supervisor)",
        fd=False,
    )
    add_secret(
        p,
        "--supervisor-password",
        "supervisor password",
        "supervisor password for void, refund and operator changes",
    )
    p.add_argument("--tz", default="Asia/Shanghai", help="terminal time zone (default %(default)s)")
    _common(p, top=True)
    sub = p.add_subparsers(dest="pos_command", metavar="ACTION")
    sub.required = True

    def action(
        name: str, help_text: str, run: Callable[[Terminal, argparse.Namespace], Any]
    ) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help_text, description=help_text)
        _common(a, top=False)
        a.set_defaults(run=_runner(run))
        return a

    a = action("login", "operator sign-in (signs the terminal on when needed)", _login)
    a.add_argument("--operator", required=True, help="operator number, e.g. 01")
    add_secret(a, "--password", "operator password", "operator password (asked for when not given)")
    a.set_defaults(password_required=True)
    action("logout", "operator sign-out", lambda t, a: t.logout())
    a = action("operators", "list operators, or replace them with --set", _operators_cmd)
    add_secret(a, "--set", "operator list", "replace the operators: NO:PASSWORD[:supervisor],...")
    action("signon", "POS sign-on (0800): new working keys and the host's batch", _signon)
    action("signoff", "POS sign-off (0820 002)", lambda t, a: t.signoff())
    action(
        "echo",
        "echo test (0820 301); sends a pending reversal and offline sales first",
        lambda t, a: t.echo(),
    )
    action(
        "parameters",
        "parameter download (0800 360): timeout, redial, merchant name and, for the clearpos "
        "dialect, maintenance notices",
        lambda t, a: t.parameters(),
    )
    action(
        "download-chip",
        "CA-key (0820 372, 0800 370, 371) and chip-parameter (0820 382, 0800 380, 381) "
        "downloads; a chip terminal also does them by itself after a sign-on whose answer "
        "asks (processing requirement 4 / 5)",
        lambda t, a: t.download_chip(),
    )
    action(
        "status",
        "status upload (0820 362): hardware states and the parameters this terminal holds",
        lambda t, a: t.status_upload(),
    )
    a = action("purchase", "purchase (消费)", _purchase)
    a.add_argument("amount", type=parse_amount, help="amount in yuan, e.g. 12.34")
    _card_args(a, required=True, chip=True)
    a = action("balance", "balance inquiry (余额查询)", _balance)
    _card_args(a, required=True, pin_required=True, chip=True)
    a = action("preauth", "pre-authorisation (预授权)", _preauth)
    a.add_argument("amount", type=parse_amount, help="amount in yuan")
    _card_args(a, required=True, chip=True)
    a = action("void", "void a sale, completion or pre-auth of this batch (撤销)", _void)
    a.add_argument("stan", type=_stan, help="STAN of the original")
    a = action("preauth-void", "void a pre-authorisation (预授权撤销)", _preauth_void)
    a.add_argument("stan", type=_stan, help="STAN of the pre-authorisation")
    a = action("complete", "pre-authorisation completion (预授权完成)", _complete)
    a.add_argument("amount", type=parse_amount, help="amount in yuan")
    a.add_argument(
        "--preauth", type=_stan, required=True, metavar="STAN", help="STAN of the pre-authorisation"
    )
    _card_args(a, required=False)
    a = action("complete-void", "void a completion (预授权完成撤销)", _completion_void)
    a.add_argument("stan", type=_stan, help="STAN of the completion")
    a = action("refund", "refund (退货) of an earlier sale, by its RRN", _refund)
    a.add_argument("amount", type=parse_amount, help="amount in yuan")
    a.add_argument("--rrn", type=_rrn, required=True, help="RRN of the original sale")
    a.add_argument("--date", type=_mmdd, help="original date MMDD (when not in the journal)")
    _card_args(a, required=False)
    action("settle", "settlement (结算), batch upload when unbalanced", lambda t, a: t.settle())
    action("doctor", "self-check: network, keys, clock, reversal, queue, batch", _doctor)
    a = action("journal", "the local journal (masked)", _journal)
    a.add_argument("--limit", type=int, default=20, help="last N rows (default 20)")


def _card(args: argparse.Namespace) -> CardInput | None:
    path = getattr(args, "chip", None) or getattr(args, "tap", None)
    if path is not None:
        if args.chip_fails and args.card_refuses:
            _usage("--card-refuses needs a chip that can be read: leave out --chip-fails")
        if args.card is not None or args.keyed:
            _usage("--chip/--tap read the card from its file: leave out --card/--keyed")
        try:
            return CardInput.of_chip(
                path,
                pin=args.pin,
                tap=args.tap is not None,
                chip_fails=args.chip_fails,
                card_refuses=args.card_refuses,
            )
        except (OSError, ValueError) as exc:
            _usage(f"card file {path}: {exc}")
    if getattr(args, "chip_fails", False):
        _usage("--chip-fails needs --chip or --tap CARDFILE")
    if getattr(args, "card_refuses", False):
        _usage("--card-refuses needs --chip or --tap CARDFILE")
    if args.card is None:
        if args.expiry is not None or args.pin is not None:
            _usage("--expiry/--pin need --card")
        return None
    if args.expiry is None:
        _usage("--card needs --expiry YYMM")
    return CardInput(args.card, args.expiry, args.pin, args.keyed)


class _Usage(Exception):
    """Bad usage found after parsing: printed like argparse's errors, exit status 2."""


def _usage(message: str) -> None:
    raise _Usage(message)


def _login(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.login(a.operator, a.password)


def _operators_cmd(t: Terminal, a: argparse.Namespace) -> Outcome | dict[str, Any]:
    if a.set:
        return t.set_operators(a.set, a.supervisor_password)
    return {
        "command": "operators",
        "operators": [{"no": no, "supervisor": sup} for no, sup in t.operators().items()],
        "signed_in": t.operator,
    }


def _signon(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.signon()


def _purchase(t: Terminal, a: argparse.Namespace) -> Outcome:
    card = _card(a)
    if card is None:
        _usage("give the card: --card PAN --expiry YYMM, or --chip/--tap CARDFILE")
        raise AssertionError  # unreachable: _usage raises
    return t.purchase(a.amount, card)


def _balance(t: Terminal, a: argparse.Namespace) -> Outcome:
    card = _card(a)
    if card is None:
        _usage("give the card: --card PAN --expiry YYMM, or --chip/--tap CARDFILE")
        raise AssertionError  # unreachable: _usage raises
    return t.balance(card)


def _preauth(t: Terminal, a: argparse.Namespace) -> Outcome:
    card = _card(a)
    if card is None:
        _usage("give the card: --card PAN --expiry YYMM, or --chip/--tap CARDFILE")
        raise AssertionError  # unreachable: _usage raises
    return t.preauth(a.amount, card)


def _void(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.void(a.stan, a.supervisor_password)


def _preauth_void(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.preauth_void(a.stan, a.supervisor_password)


def _completion_void(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.completion_void(a.stan, a.supervisor_password)


def _complete(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.complete(a.amount, a.preauth, _card(a))


def _refund(t: Terminal, a: argparse.Namespace) -> Outcome:
    return t.refund(
        a.amount,
        a.rrn,
        _card(a),
        original_date=a.date,
        supervisor_password=a.supervisor_password,
    )


def _doctor(t: Terminal, a: argparse.Namespace) -> DoctorReport:
    return t.doctor()


def _journal(t: Terminal, a: argparse.Namespace) -> dict[str, Any]:
    rows = t.store.journal()[-max(1, a.limit) :]
    return {"command": "journal", "rows": [r.public() for r in rows]}


def _runner(
    run: Callable[[Terminal, argparse.Namespace], Any],
) -> Callable[[argparse.Namespace], int]:
    def go(args: argparse.Namespace) -> int:
        try:
            return _go(args)
        except _Usage as exc:
            print(f"clearpos pos: error: {exc}", file=sys.stderr)
            return 2

    def _go(args: argparse.Namespace) -> int:
        _read_secrets(args)
        state: Path | None = args.state
        if state is None:
            if not args.tid:
                _usage("give --tid (the state directory defaults to ./pos-state/TID) or --state")
            state = Path("pos-state") / args.tid
        state = state.absolute()
        if args.tid is not None and not (len(args.tid) == 8 and args.tid.isascii()):
            _usage(f"terminal id (--tid) must be 8 characters, got {args.tid!r}")
        if args.mid is not None and not (len(args.mid) == 15 and args.mid.isascii()):
            _usage(f"merchant id (--mid) must be 15 characters, got {args.mid!r}")
        address = args.host
        if address is None:
            remembered = state / "host"
            if remembered.exists():
                address = remembered.read_text().strip()
        if address is None:
            _usage("give the host address with --host HOST:PORT (first use)")
        assert address is not None
        host, port = parse_address(address)
        if args.timeout <= 0:
            _usage("--timeout must be more than 0 seconds")
        link = HostLink(host, port, timeout=args.timeout)
        new_state = not state.exists()
        try:
            terminal = Terminal(
                state,
                link=link,
                tid=args.tid,
                mid=args.mid,
                tmk=args.tmk,
                software=args.software,
                operators=args.operators,
                floor_limit_fen=args.floor_limit,
                lang=args.lang,
                tz=args.tz,
                dialect=args.dialect,
            )
        except TerminalKekError as exc:
            _forget(state, new_state)
            print(f"clearpos pos: {exc}", file=sys.stderr)
            return 1
        except TerminalError as exc:
            _forget(state, new_state)
            _usage(str(exc))
            raise AssertionError from exc  # unreachable: _usage raises
        except StateLockedError as exc:
            print(f"clearpos pos: {exc}", file=sys.stderr)
            return 1
        try:
            if args.host:
                _remember_host(state, args.host)
            result = run(terminal, args)
        except TerminalError as exc:
            _usage(str(exc))
            raise AssertionError from exc  # unreachable: _usage raises
        finally:
            terminal.close()
        return _emit(result, args)

    return go


_TMK = SecretOption("--tmk", "terminal master key")
_SUPERVISOR = SecretOption("--supervisor-password", "supervisor password")
_PASSWORD = SecretOption("--password", "operator password")
_PIN = SecretOption("--pin", "cardholder PIN")
_OPERATORS = SecretOption("--operators", "operator list")
_SET = SecretOption("--set", "operator list")


def _read_secrets(args: argparse.Namespace) -> None:
    """Replace every secret option by its value (from the flag, stdin, a descriptor or
    the terminal: :mod:`clearpos.secretin`), checked like any other argument."""
    used: list[str] = []
    try:
        tmk = _TMK.resolve(args, used_stdin=used)
        args.tmk = None if tmk is None else _tmk(tmk)
        args.supervisor_password = _SUPERVISOR.resolve(args, used_stdin=used)
        ops = _OPERATORS.resolve(args, used_stdin=used)
        args.operators = None if ops is None else _operators(ops)
        if hasattr(args, "set_fd"):  # `operators --set LIST`
            new = _SET.resolve(args, used_stdin=used)
            args.set = None if new is None else _operators(new)
        if getattr(args, "password_required", False):
            args.password = _PASSWORD.require(args, used_stdin=used)
        if hasattr(args, "pin_required"):
            has_card = args.card is not None or getattr(args, "chip", None) is not None
            need = args.pin_required and has_card
            pin = (
                _PIN.require(args, used_stdin=used) if need else _PIN.resolve(args, used_stdin=used)
            )
            args.pin = None if pin is None else _digits("PIN", 4, 12)(pin)
    except (SecretError, argparse.ArgumentTypeError) as exc:
        _usage(str(exc))


def _forget(state: Path, made_now: bool) -> None:
    """Remove a state directory this very run created before the terminal was refused,
    so a mistyped TID or a missing TMK leaves nothing behind."""
    if made_now and state.is_dir():
        shutil.rmtree(state, ignore_errors=True)


def _remember_host(state: Path, address: str) -> None:
    path = state / "host"
    if not path.exists() or path.read_text().strip() != address:
        tmp = state / ".host.tmp"
        with private_open(tmp, "w") as fh:
            fh.write(address + "\n")
        os.replace(tmp, path)


def _emit(result: Outcome | DoctorReport | dict[str, Any], args: argparse.Namespace) -> int:
    if isinstance(result, Outcome):
        doc, text, rc = result.to_json(), result.render(args.lang), result.exit_status
    elif isinstance(result, DoctorReport):
        doc, text, rc = result.to_json(), result.render(args.lang), 0 if result.ok else 1
    else:
        doc, rc = result, 0
        text = _plain(result)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False))
    else:
        print(text)
    return rc


def _plain(doc: dict[str, Any]) -> str:
    if doc.get("command") == "journal":
        lines = []
        for r in doc["rows"]:
            amount = "" if r["amount_fen"] is None else f"{r['amount_fen'] / 100:.2f}"
            lines.append(
                f"{r['at']} {r['kind']:<15} {r['stan'] or '-':>6} {r['batch']} {amount:>10} "
                f"{r['pan']:<19} {r['status']:<16} {r['code'] or '':<2} {r['reason']} {r['rrn']}"
            )
        return "\n".join(lines) or "(empty)"
    if doc.get("command") == "operators":
        ops = ", ".join(
            f"{o['no']}{' (supervisor)' if o['supervisor'] else ''}" for o in doc["operators"]
        )
        return f"operators: {ops}; signed in: {doc['signed_in'] or '-'}"
    return json.dumps(doc, ensure_ascii=False)
