"""A simulated PBOC/EMV chip card: the card's side of a chip transaction.

It lives with the issuer, which personalises it (``clearpos admin cards
personalise`` writes the file); the virtual terminal reads it for ``--chip`` /
``--tap``. The terminal and the host never import each other, and both may use
this module.

A card file (TOML, written by ``clearpos admin cards personalise``) holds what
personalisation puts into a real chip: PAN, PAN sequence number, expiry,
service code, cryptogram version (CVN 10 or 18), the application transaction
counter (ATC) and the three ICC master keys. The keys are in hex because the
chip needs them in clear, like a real card's secure element; the file is
written with mode 0600 and, like a physical card, is the cardholder's.

The card's life in one sale:

1. :meth:`ChipCard.first_generate_ac` -- the ATC goes up by one **and is saved
   before anything is sent** (a real chip counts even when the terminal then
   loses power), and the card returns an ARQC with the tags of field 55.
2. :meth:`ChipCard.second_generate_ac` -- the terminal hands over the host's 55:
   scripts in ``71`` run first, then the card checks the ARPC in ``91``
   (issuer authentication) and answers TC (approved by the issuer and
   authenticated) or AAC (declined, no answer, or the ARPC failed); then scripts
   in ``72`` run. An APPLICATION BLOCK whose MAC verifies blocks the card for
   good: the next :meth:`first_generate_ac` raises :class:`CardBlocked`.
3. :func:`reversal_field55`, :func:`script_result_field55` and
   :attr:`SecondAc.field55` give the 55 of a chip reversal (0400), a script
   result notice (0620 ``951``) and a TC upload (0320 ``203``).

The cryptography is :mod:`clearpos.issuer.emv`'s (``pyemv``): the card holds
only its ICC keys, the issuer derives them -- the round trip between the two
is what the tests check.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal

from pyemv.cvn import VisaCVN10, VisaCVN18

from ..wire import DecodeError, mask_pan
from ..wire import tlv as _tlv
from .emv import (
    APPLICATION_BLOCK,
    CVNS,
    IccKeys,
    arc_for,
    build_ac_input,
    cryptogram_engine,
    iad_for,
)

__all__ = [
    "DEFAULT_AID",
    "CardBlocked",
    "CardFileError",
    "ChipCard",
    "FirstAc",
    "SecondAc",
    "TerminalData",
    "bound",
    "load_card",
    "personalised",
    "reversal_field55",
    "save_card",
    "script_result_field55",
]

DEFAULT_AID: Final = "A000000333010101"  # UnionPay debit
DEFAULT_LABEL: Final = "UnionPay Debit"
AIP: Final = bytes.fromhex("7C00")  # SDA, DDA, CVM, terminal risk management, issuer auth

#: Cryptogram information data (9F27): the kind of cryptogram.
CID: Final[dict[str, int]] = {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}

#: CVR byte 1 (Visa layout): bits 8-7 second GENERATE AC (00 AAC, 01 TC, 10 not
#: requested), bits 6-5 first GENERATE AC (10 ARQC).
_CVR1: Final[dict[str, int]] = {"ARQC": 0xA0, "TC": 0x60, "AAC": 0x20}
#: CVR byte 2 bit 8: issuer authentication performed and failed.
_CVR2_ISSUER_AUTH_FAILED: Final = 0x80
#: TVR byte 5 (EMV Book 3 C5): bit 7 issuer authentication failed, bit 6 script
#: processing failed before the final GENERATE AC, bit 5 after it.
_TVR5_ISSUER_AUTH_FAILED: Final = 0x40
_TVR5_SCRIPT_FAILED_BEFORE: Final = 0x20
_TVR5_SCRIPT_FAILED_AFTER: Final = 0x10
#: Issuer script results (9F5B / DF31) byte 1, bits 8-5.
_SCRIPT_FAILED, _SCRIPT_OK = 0x10, 0x20

_FILE_KEYS: Final = (
    "pan",
    "psn",
    "expiry",
    "service_code",
    "cvn",
    "atc",
    "aid",
    "label",
    "blocked",
    "icc_mk_ac",
    "icc_mk_smi",
    "icc_mk_smc",
)


class CardFileError(ValueError):
    """A card file that cannot be read; names the file and key, never a key or PAN."""


class CardBlocked(RuntimeError):
    """The card's application is blocked (an issuer script did it): it refuses to
    start a transaction, as a real chip answers 6985 to GET PROCESSING OPTIONS."""


@dataclass(frozen=True, slots=True)
class TerminalData:
    """What the terminal contributes to the cryptogram and to field 55."""

    amount_fen: int
    date_yymmdd: str
    txn_type: str = "00"  # 9C: 00 purchase
    other_fen: int = 0
    country: str = "0156"
    currency: str = "0156"
    tvr: bytes = bytes(5)
    capabilities: str = "E0E1C8"  # 9F33
    terminal_type: str = "22"  # 9F35: attended, online with offline capability
    cvm_results: str = "1F0302"  # 9F34: no CVM; 420300 = online PIN
    unpredictable: bytes = field(default_factory=lambda: secrets.token_bytes(4))
    contactless: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.amount_fen <= 999_999_999_999:
            raise ValueError("amount must be 0 to 999999999999 fen")
        if len(self.date_yymmdd) != 6 or not self.date_yymmdd.isdigit():
            raise ValueError("date must be YYMMDD")
        if len(self.tvr) != 5 or len(self.unpredictable) != 4:
            raise ValueError("TVR is 5 bytes and the unpredictable number 4")


@dataclass(frozen=True, slots=True)
class FirstAc:
    """The first GENERATE AC: an ARQC and the tags the terminal sends in 55."""

    tags: dict[str, bytes] = field(repr=False)
    field55: bytes = field(repr=False)

    @property
    def arqc(self) -> bytes:
        return self.tags["9F26"]

    @property
    def atc(self) -> int:
        return int.from_bytes(self.tags["9F36"], "big")


@dataclass(frozen=True, slots=True)
class SecondAc:
    """The second GENERATE AC.

    ``cryptogram`` TC or AAC; ``issuer_auth`` ``"verified"``, ``"failed"`` or
    ``"absent"`` (no 91: no answer); ``script_results`` one 5-byte 9F5B/DF31
    entry per script run; ``field55`` the tags of a TC upload or advice.
    """

    cryptogram: Literal["TC", "AAC"]
    issuer_auth: Literal["verified", "failed", "absent"]
    approved_by_issuer: bool
    tags: dict[str, bytes] = field(repr=False)
    field55: bytes = field(repr=False)
    script_results: bytes = b""
    blocked: bool = False
    #: the card's own risk management refused (AAC whatever the issuer said)
    refused_by_card: bool = False

    @property
    def accepted(self) -> bool:
        return self.cryptogram == "TC"


@dataclass(slots=True)
class ChipCard:
    """One simulated card, bound to its file (``path``) so every ATC is saved."""

    pan: str
    psn: str
    expiry: str
    service_code: str
    cvn: str
    atc: int
    icc: IccKeys = field(repr=False)
    aid: str = DEFAULT_AID
    label: str = DEFAULT_LABEL
    blocked: bool = False
    path: Path | None = None

    def __repr__(self) -> str:
        return (
            f"ChipCard(pan={mask_pan(self.pan)!r}, psn={self.psn!r}, cvn={self.cvn!r}, "
            f"atc={self.atc}, blocked={self.blocked})"
        )

    # -- what the terminal reads -------------------------------------------

    def track2(self) -> str:
        """Track 2 equivalent data (tag 57), for field 35: PAN=YYMM + service code."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000000"

    def tag57(self) -> bytes:
        digits = self.track2().replace("=", "D")
        return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))

    # -- GENERATE AC -------------------------------------------------------

    def first_generate_ac(self, data: TerminalData) -> FirstAc:
        """Count the transaction (saved at once), then the ARQC and field 55's tags."""
        if self.blocked:
            raise CardBlocked(f"card {mask_pan(self.pan)}: application blocked by the issuer")
        if self.atc >= 0xFFFF:
            raise CardBlocked(f"card {mask_pan(self.pan)}: transaction counter exhausted")
        self.atc += 1
        self.save()
        tags = self._transaction_tags(data)
        tags["9F10"] = iad_for(self.cvn, bytes([_CVR1["ARQC"], 0x00, 0x00]))
        tags["9F27"] = bytes([CID["ARQC"]])
        tags["9F26"] = build_ac_input(self._engine(), tags)
        order = [
            "9F26",
            "9F27",
            "9F10",
            "9F37",
            "9F36",
            "95",
            "9A",
            "9C",
            "9F02",
            "5F2A",
            "82",
            "9F1A",
            "9F03",
            "9F33",
            "9F34",
            "9F35",
            "84",
            "9F09",
        ]
        return FirstAc(tags, _tlv.encode((tag, tags[tag]) for tag in order))

    def second_generate_ac(
        self,
        first: FirstAc,
        answer55: bytes | None,
        *,
        host_approved: bool,
        card_refuses: bool = False,
    ) -> SecondAc:
        """Decide TC or AAC from the host's 55 (``None``: no answer) and field 39.

        A 55 that is not TLV counts as no issuer authentication (``"absent"``):
        the card cannot read it, so it cannot approve on it. ``card_refuses`` is
        the card's own risk management saying no (a real card's velocity or
        issuer-authentication-failure rules): AAC even when the host approved and
        the ARPC verifies; the scripts still run and 91 is still checked.
        """
        items: tuple[_tlv.Tlv, ...] = ()
        if answer55:
            try:
                items = _tlv.decode(answer55)
            except DecodeError:
                items = ()
        scripts = _tlv.scripts(items)
        results = bytearray()
        tvr5 = 0
        for script in (s for s in scripts if s.tag == "71"):
            result = self._run_script(script, first)
            tvr5 |= _TVR5_SCRIPT_FAILED_BEFORE if result[0] & 0xF0 == _SCRIPT_FAILED else 0
            results += result
        auth91 = _tlv.flatten(items).get("91")
        issuer_auth: Literal["verified", "failed", "absent"] = "absent"
        approved = False
        if auth91 is not None:
            verified, approved = self._check_arpc(first, auth91)
            issuer_auth = "verified" if verified else "failed"
        accept = (
            host_approved
            and issuer_auth == "verified"
            and approved
            and not self.blocked
            and not card_refuses
        )
        kind: Literal["TC", "AAC"] = "TC" if accept else "AAC"
        tags = dict(first.tags)
        cvr2 = _CVR2_ISSUER_AUTH_FAILED if issuer_auth == "failed" else 0x00
        tags["9F10"] = iad_for(self.cvn, bytes([_CVR1[kind], cvr2, 0x00]))
        if issuer_auth == "failed":
            tvr5 |= _TVR5_ISSUER_AUTH_FAILED
        tags["95"] = _with_tvr5(tags["95"], tvr5)
        tags["9F27"] = bytes([CID[kind]])
        tags["9F26"] = build_ac_input(self._engine(), tags)
        after = 0
        for script in (s for s in scripts if s.tag == "72"):
            result = self._run_script(script, first)
            after |= _TVR5_SCRIPT_FAILED_AFTER if result[0] & 0xF0 == _SCRIPT_FAILED else 0
            results += result
        tags["95"] = _with_tvr5(tags["95"], after)  # the terminal sets it after the AC
        if results:
            tags["DF31"] = bytes(results)
        order = [
            "9F26",
            "9F27",
            "9F10",
            "9F37",
            "9F36",
            "95",
            "9A",
            "9C",
            "9F02",
            "5F2A",
            "82",
            "9F1A",
            "9F03",
            "9F33",
            "84",
            "DF31",
        ]
        field55 = _tlv.encode((tag, tags[tag]) for tag in order if tag in tags)
        return SecondAc(
            kind,
            issuer_auth,
            approved,
            tags,
            field55,
            bytes(results),
            blocked=self.blocked,
            refused_by_card=card_refuses and not self.blocked and host_approved,
        )

    # -- internals ---------------------------------------------------------

    def _engine(self) -> VisaCVN10 | VisaCVN18:
        return cryptogram_engine(self.cvn, self.icc)

    def _transaction_tags(self, data: TerminalData) -> dict[str, bytes]:
        return {
            "9F02": bytes.fromhex(f"{data.amount_fen:012d}"),
            "9F03": bytes.fromhex(f"{data.other_fen:012d}"),
            "9F1A": bytes.fromhex(data.country),
            "95": data.tvr,
            "5F2A": bytes.fromhex(data.currency),
            "9A": bytes.fromhex(data.date_yymmdd),
            "9C": bytes.fromhex(data.txn_type),
            "9F37": data.unpredictable,
            "82": AIP,
            "9F36": self.atc.to_bytes(2, "big"),
            "9F33": bytes.fromhex(data.capabilities),
            "9F34": bytes.fromhex(data.cvm_results),
            "9F35": bytes.fromhex(data.terminal_type),
            "84": bytes.fromhex(self.aid),
            "9F09": bytes.fromhex("0030"),
        }

    def _check_arpc(self, first: FirstAc, auth: bytes) -> tuple[bool, bool]:
        """(ARPC verifies, the issuer approved) for issuer authentication data 91."""
        engine = self._engine()
        if isinstance(engine, VisaCVN10):
            if len(auth) != 10:
                return False, False
            arpc, arc = auth[:8], auth[8:10]
            ok = hmac.compare_digest(engine.generate_arpc(first.arqc, arc), arpc)
            return ok, ok and arc == arc_for("00")
        if not 8 <= len(auth) <= 16:
            return False, False
        arpc, csu = auth[:4], auth[4:8]
        prop = auth[8:] or None
        expected = engine.generate_arpc(first.arqc, first.tags["9F36"], csu, prop)
        ok = hmac.compare_digest(expected, arpc)
        return ok, ok and bool(csu[1] & 0x80)

    def _run_script(self, script: _tlv.Tlv, first: FirstAc) -> bytes:
        """Run one script template; its 5-byte result (status nibble + failed
        command's sequence number, then the script id)."""
        script_id = next((c.value for c in script.children if c.tag == "9F18"), bytes(4))
        script_id = script_id[:4].rjust(4, b"\x00")
        engine = self._engine()
        commands = [c.value for c in script.children if c.tag == "86"]
        for seq, command in enumerate(commands, start=1):
            header, mac = command[:5], command[5:]
            good = (
                header == APPLICATION_BLOCK
                and len(mac) == 8
                and hmac.compare_digest(
                    engine.generate_command_mac(header, first.arqc, first.tags["9F36"]), mac
                )
            )
            if not good:
                return bytes([_SCRIPT_FAILED | min(seq, 15)]) + script_id
            self.blocked = True
            self.save()
        return bytes([_SCRIPT_OK]) + script_id

    # -- file --------------------------------------------------------------

    def save(self) -> None:
        """Write the card to its file (no-op for a card without one)."""
        if self.path is not None:
            save_card(self.path, self)


def _with_tvr5(tvr: bytes, bits: int) -> bytes:
    out = bytearray(tvr)
    out[4] |= bits
    return bytes(out)


def reversal_field55(first: FirstAc, second: SecondAc | None = None) -> bytes:
    """Field 55 of a chip reversal (0400): TVR, IAD, ATC, and script results."""
    tags = second.tags if second is not None else first.tags
    items = [("95", tags["95"]), ("9F10", tags["9F10"]), ("9F36", tags["9F36"])]
    if second is not None and second.script_results:
        items.append(("DF31", second.script_results))
    return _tlv.encode(items)


def script_result_field55(second: SecondAc, tag: str = "DF31") -> bytes:
    """Field 55 of a script result notice (0620 ``951``): the results in DF31
    (UnionPay) or 9F5B (EMV), plus ATC and IAD for matching."""
    if not second.script_results:
        raise ValueError("no issuer script was run: there is nothing to notify")
    tags = second.tags
    return _tlv.encode(
        [(tag, second.script_results), ("9F36", tags["9F36"]), ("9F10", tags["9F10"])]
    )


# --------------------------------------------------------------------------- file


def save_card(path: str | os.PathLike[str], card: ChipCard) -> None:
    """Write ``card`` as TOML, mode 0600, atomically (write then rename)."""
    target = Path(path)
    lines = [
        "# clearpos simulated chip card -- holds the card's ICC master keys: keep it private",
        f'pan = "{card.pan}"',
        f'psn = "{card.psn}"',
        f'expiry = "{card.expiry}"',
        f'service_code = "{card.service_code}"',
        f'cvn = "{card.cvn}"',
        f"atc = {card.atc}",
        f'aid = "{card.aid}"',
        f'label = "{card.label}"',
        f"blocked = {'true' if card.blocked else 'false'}",
        f'icc_mk_ac = "{card.icc.ac.hex().upper()}"',
        f'icc_mk_smi = "{card.icc.smi.hex().upper()}"',
        f'icc_mk_smc = "{card.icc.smc.hex().upper()}"',
    ]
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)


def load_card(path: str | os.PathLike[str]) -> ChipCard:
    """Read a card file; :class:`CardFileError` names the file and the bad key."""
    source = os.fspath(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardFileError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CardFileError(f"{source}: not a TOML card file: {exc}") from exc
    return _parse_card(raw, source, Path(path))


def _parse_card(raw: Mapping[str, object], source: str, path: Path) -> ChipCard:
    def fail(key: str, message: str) -> CardFileError:
        return CardFileError(f"{source}: {key}: {message}")

    unknown = sorted(set(raw) - set(_FILE_KEYS))
    if unknown:
        raise fail(unknown[0], "unknown key")

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise fail(key, "missing" if value is None else "must be a string")
        return value

    def digits(key: str, low: int, high: int) -> str:
        value = text(key)
        if not (value.isdigit() and value.isascii() and low <= len(value) <= high):
            span = f"{low}" if low == high else f"{low} to {high}"
            raise fail(key, f"must be {span} digits")
        return value

    def key_hex(key: str) -> bytes:
        value = text(key)
        try:
            clear = bytes.fromhex(value)
        except ValueError:
            raise fail(key, "must be 32 hex digits") from None
        if len(clear) != 16:
            raise fail(key, "must be 32 hex digits")
        return clear

    pan = digits("pan", 13, 19)
    psn = digits("psn", 2, 2)
    expiry = digits("expiry", 4, 4)
    service_code = digits("service_code", 3, 3)
    cvn = text("cvn")
    if cvn not in CVNS:
        raise fail("cvn", f"must be one of {', '.join(CVNS)}")
    atc = raw.get("atc", 0)
    if isinstance(atc, bool) or not isinstance(atc, int) or not 0 <= atc <= 0xFFFF:
        raise fail("atc", "must be an integer from 0 to 65535")
    aid = text("aid", DEFAULT_AID)
    try:
        if not 5 <= len(bytes.fromhex(aid)) <= 16:
            raise ValueError
    except ValueError:
        raise fail("aid", "must be 10 to 32 hex digits") from None
    label = text("label", DEFAULT_LABEL)
    blocked = raw.get("blocked", False)
    if not isinstance(blocked, bool):
        raise fail("blocked", "must be true or false")
    icc = IccKeys(key_hex("icc_mk_ac"), key_hex("icc_mk_smi"), key_hex("icc_mk_smc"))
    return ChipCard(pan, psn, expiry, service_code, cvn, atc, icc, aid, label, blocked, path)


def personalised(
    pan: str,
    psn: str,
    expiry: str,
    service_code: str,
    cvn: str,
    icc: IccKeys,
    *,
    aid: str = DEFAULT_AID,
    label: str = DEFAULT_LABEL,
) -> ChipCard:
    """A fresh card (ATC 0, not blocked), not yet bound to a file."""
    if cvn not in CVNS:
        raise ValueError(f"CVN {cvn!r} is not supported; use one of {', '.join(CVNS)}")
    return ChipCard(pan, psn, expiry, service_code, cvn, 0, icc, aid, label)


def bound(card: ChipCard, path: str | os.PathLike[str]) -> ChipCard:
    """``card`` bound to ``path`` (saved there from now on)."""
    return replace(card, path=Path(path))
