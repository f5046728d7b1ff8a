"""Crypto cost per operation: µs for MAC, PIN block and PIN verification (spec §10 data),
and for the chip: an ARQC verification and an ARPC generation (spec §8) per CVN.

Run ``.venv/bin/python bench/crypto.py``; other benches can import :func:`measure`
and the ``bench_*`` functions (each returns best-of-repeats µs per operation).
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

try:
    import clearpos  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clearpos.issuer.card import TerminalData, personalised
from clearpos.issuer.emv import EmvIssuer, IssuerKeys
from clearpos.keys import KeyEncryptionKey, MacEngine, SecurityModule, TerminalKeys

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MAK = bytes.fromhex("1A2B3C4D5E6F7081")
TID = "10000001"
PAN = "6222021234567890123"
PIN = "123456"

#: The §10 purchase 0200, whole frame (length prefix first).
PURCHASE = bytes.fromhex(
    "007560000300006031000001000200302404C020C0981100000000000000123400001728120210000637"
    "6222021234567890123D2812201000000000003130303030303031383938333130303438313631323334"
    "3135363D8CF07ABF66B432260000000000000000112200000100004232343343373530"
)
#: Its MAC block: after length 2 + TPDU 5 + header 6, without field 64.
PURCHASE_MAC_BLOCK = PURCHASE[13:-8]
PURCHASE_MAC = PURCHASE[-8:]


def measure(operation: Callable[[], object], number: int = 20_000, repeat: int = 7) -> float:
    """Best-of-``repeat`` µs per call of ``operation``."""
    operation()  # warm caches
    best = min(timeit.repeat(operation, number=number, repeat=repeat))
    return best / number * 1e6


def _signed_on() -> tuple[SecurityModule, TerminalKeys, str, str]:
    """An HSM and a terminal after one sign-on: (hsm, terminal, sealed_pik, sealed_mak)."""
    hsm = SecurityModule(KeyEncryptionKey.generate())
    issued = hsm.issue_working_keys(TID, hsm.seal_tmk(TID, TMK))
    terminal = TerminalKeys(TMK)
    terminal.accept_field62(issued.field62)
    return hsm, terminal, issued.sealed_pik, issued.sealed_mak


def bench_mac_engine() -> float:
    """MacEngine.mac over the §10 purchase MAC block (98 bytes)."""
    engine = MacEngine(MAK)
    assert engine.mac(PURCHASE_MAC_BLOCK) == PURCHASE_MAC
    return measure(lambda: engine.mac(PURCHASE_MAC_BLOCK))


def bench_hsm_verify_mac() -> float:
    """SecurityModule.verify_mac with the engine cached (steady state after sign-on)."""
    hsm, terminal, _, sealed_mak = _signed_on()
    mac = terminal.mac(PURCHASE_MAC_BLOCK)
    assert hsm.verify_mac(TID, sealed_mak, PURCHASE_MAC_BLOCK, mac)
    return measure(lambda: hsm.verify_mac(TID, sealed_mak, PURCHASE_MAC_BLOCK, mac))


def bench_terminal_pin_block() -> float:
    """TerminalKeys.pin_block: format 0 encode + 3DES under the PIN key."""
    _, terminal, _, _ = _signed_on()
    return measure(lambda: terminal.pin_block(PIN, PAN))


def bench_hsm_verify_pin() -> float:
    """SecurityModule.verify_pin: decrypt + decode field 52, IBM 3624 offset, compare."""
    hsm, terminal, sealed_pik, _ = _signed_on()
    pvv = hsm.pin_verification_value(PAN, PIN)
    block = terminal.pin_block(PIN, PAN)
    assert hsm.verify_pin(TID, sealed_pik, block, PAN, pvv)
    return measure(lambda: hsm.verify_pin(TID, sealed_pik, block, PAN, pvv), number=5_000)


ISSUER_KEYS = IssuerKeys(
    bytes.fromhex("0123456789ABCDEF0123456789ABCDEF"),
    bytes.fromhex("FEDCBA9876543210FEDCBA9876543210"),
    bytes.fromhex("89ABCDEF0123456789ABCDEF01234567"),
)


class _Chip:
    """The issuer's record of the bench card: nothing accepted yet."""

    def __init__(self, cvn: str) -> None:
        self.psn = "01"
        self.cvn = cvn
        self.last_atc = -1


def _chip_sale(cvn: str) -> tuple[EmvIssuer, _Chip, dict[str, bytes]]:
    """An issuer and the tags of one first GENERATE AC of a 19-digit card (Option B)."""
    issuer = EmvIssuer(ISSUER_KEYS)
    card = personalised(PAN, "01", "2812", "220", cvn, issuer.icc_keys(PAN, "01"))
    first = card.first_generate_ac(TerminalData(amount_fen=1234, date_yymmdd="261202"))
    return issuer, _Chip(cvn), first.tags


def bench_arqc_verify(cvn: str) -> Callable[[], float]:
    """EmvIssuer.verify: tag checks, 9F02 = field 4, ICC key derivation, the AC, the ATC."""

    def bench() -> float:
        issuer, chip, tags = _chip_sale(cvn)
        assert issuer.verify(PAN, chip, tags, 1234).reason is None
        return measure(lambda: issuer.verify(PAN, chip, tags, 1234), number=2_000)

    return bench


def bench_arpc(cvn: str) -> Callable[[], float]:
    """EmvIssuer.respond: the ARPC (method 1 or 2) and its 91 in field 55."""

    def bench() -> float:
        issuer, chip, tags = _chip_sale(cvn)
        check = issuer.verify(PAN, chip, tags, 1234)
        assert issuer.respond(check, "00").field55[:1] == b"\x91"
        return measure(lambda: issuer.respond(check, "00"), number=2_000)

    return bench


BENCHES: dict[str, Callable[[], float]] = {
    "MAC generate, MacEngine (98-byte block)": bench_mac_engine,
    "SecurityModule.verify_mac (cached engine)": bench_hsm_verify_mac,
    "PIN block encrypt (TerminalKeys.pin_block)": bench_terminal_pin_block,
    "SecurityModule.verify_pin": bench_hsm_verify_pin,
    "ARQC verify, CVN 18, 19-digit PAN (EmvIssuer.verify)": bench_arqc_verify("18"),
    "ARQC verify, CVN 10, 19-digit PAN (EmvIssuer.verify)": bench_arqc_verify("10"),
    "ARPC method 2 + 91, CVN 18 (EmvIssuer.respond)": bench_arpc("18"),
    "ARPC method 1 + 91, CVN 10 (EmvIssuer.respond)": bench_arpc("10"),
}


def run() -> dict[str, float]:
    """µs per operation for every bench, by name."""
    return {name: bench() for name, bench in BENCHES.items()}


def main() -> None:
    import argparse

    argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        epilog="Prints µs per operation (best of repeats); takes no options.",
    ).parse_args()
    width = max(len(name) for name in BENCHES)
    for name, micros in run().items():
        print(f"{name:<{width}}  {micros:7.2f} µs")


if __name__ == "__main__":
    main()
