"""The simulated issuer's side of EMV: ICC keys, ARQC, ARPC, ATC and scripts.

The cryptography is ``pyemv``'s (EMV Book 2 A1.3/A1.4, the Visa CVN 10 and
CVN 18 cryptogram versions that PBOC cards share with the EMV common core);
this module decides which pieces apply and what the outcome means:

- **ICC master keys** (:func:`derive_icc_keys`) come from the issuer master
  keys ``[issuer]`` by EMV Book 2 A1.4: Option A for a PAN of up to 16 digits,
  Option B (SHA-1 over PAN and PSN) above -- China's 19-digit cards take
  Option B. The rule is the PAN's length, as EMV and ``pyemv.kd`` apply it; a
  card personalised here and the issuer always use the same rule.
- **Verify** (:meth:`EmvIssuer.verify`): field 55 must carry the §8 tags in
  their EMV lengths and 9F02 must equal field 4 (``message.format_error``
  otherwise, the tag named); the ARQC is recomputed for the card's CVN
  (``card.cryptogram_invalid``); the ATC must be above the last one the issuer
  saw for that card (``card.cryptogram_replayed``).
- **Respond** (:meth:`EmvIssuer.respond`): tag 91 for every answer, approved
  or declined -- CVN 10: ARPC method 1, ``ARPC(8) || ARC(2)``, the ARC being
  field 39 in ASCII; CVN 18: ARPC method 2, ``ARPC(4) || CSU(4)``. With
  ``block=True`` a ``72`` script carries APPLICATION BLOCK (``84 1E 00 00``)
  MAC'd with the card's secure-messaging integrity session key.

The card's side is :mod:`clearpos.issuer.card`; it uses the same
:func:`cryptogram_engine`, holding only the ICC keys.
"""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from cryptography.utils import CryptographyDeprecationWarning
from pyemv import kd as _kd
from pyemv.cvn import VisaCVN10, VisaCVN18

from ..reasons import catalog
from ..wire import tlv as _tlv

__all__ = [
    "APPLICATION_BLOCK",
    "BLOCK_STATUSES",
    "CVNS",
    "REQUIRED_TAGS",
    "ChipCheck",
    "ChipDecision",
    "ChipRecord",
    "Cvn",
    "EmvIssuer",
    "IccKeys",
    "IssuerKeys",
    "amount_mismatch",
    "arc_for",
    "build_ac_input",
    "cryptogram_engine",
    "csu_for",
    "derivation_option",
    "derive_icc_key",
    "derive_icc_keys",
    "iad_for",
    "script_command",
]

# pyemv 1.5.0 reaches 3DES through cryptography's deprecated TripleDES alias and
# uses 8-byte keys for the single-DES steps of MAC algorithm 3: correct results,
# one warning per call site that would otherwise reach the host's stderr.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pyemv\.")

Cvn = Literal["10", "18"]
CVNS: Final[tuple[Cvn, ...]] = ("10", "18")

#: CVN byte in the issuer application data (9F10 byte 3), per CVN.
_IAD_CVN: Final[dict[str, int]] = {"10": 0x0A, "18": 0x12}

#: The tags §8 requires in a chip request, with their EMV lengths (None: variable).
REQUIRED_TAGS: Final[dict[str, int | None]] = {
    "9F26": 8,
    "9F27": 1,
    "9F10": None,
    "9F37": 4,
    "9F36": 2,
    "95": 5,
    "9A": 3,
    "9C": 1,
    "9F02": 6,
    "9F03": 6,
    "5F2A": 2,
    "82": 2,
    "9F1A": 2,
    "9F33": 3,
    "84": None,
}

#: APPLICATION BLOCK (EMV Book 3 6.5.1): CLA 84 (secure messaging), INS 1E,
#: P1 P2 00 00, Lc 08 (the MAC only).
APPLICATION_BLOCK: Final = bytes.fromhex("841E000008")

#: Card statuses for which the issuer answers with an application-block script.
BLOCK_STATUSES: Final = frozenset({"lost", "stolen"})

#: Script identifier (9F18) the simulated issuer puts on an application-block script.
BLOCK_SCRIPT_ID: Final = bytes.fromhex("00000001")


@dataclass(frozen=True, slots=True)
class IssuerKeys:
    """The issuer master keys (16 bytes each): AC, secure-messaging integrity
    and confidentiality. Never shown in a ``repr``."""

    ac: bytes = field(repr=False)
    smi: bytes = field(repr=False)
    smc: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("ac", "smi", "smc"):
            if len(getattr(self, name)) != 16:
                raise ValueError(f"issuer master key imk_{name} must be 16 bytes")


@dataclass(frozen=True, slots=True)
class IccKeys:
    """One card's ICC master keys, as personalised into the chip."""

    ac: bytes = field(repr=False)
    smi: bytes = field(repr=False)
    smc: bytes = field(repr=False)


class ChipRecord(Protocol):
    """What the issuer keeps about a card's chip (the store's chip row fits)."""

    @property
    def psn(self) -> str: ...

    @property
    def cvn(self) -> str: ...

    @property
    def last_atc(self) -> int:
        """The highest ATC the issuer accepted, -1 before the first."""
        ...


def derivation_option(pan: str) -> Literal["A", "B"]:
    """EMV Book 2 A1.4: Option A up to 16 PAN digits, Option B above.

    >>> derivation_option("6222021234567890123"), derivation_option("6212345678901232")
    ('B', 'A')
    """
    return "A" if len(pan) <= 16 else "B"


def derive_icc_key(issuer_key: bytes, pan: str, psn: str) -> bytes:
    """One ICC master key from one issuer master key, by :func:`derivation_option`."""
    derive = _kd.derive_icc_mk_a if derivation_option(pan) == "A" else _kd.derive_icc_mk_b
    return derive(issuer_key, pan, psn)


def derive_icc_keys(keys: IssuerKeys, pan: str, psn: str) -> IccKeys:
    """The card's three ICC master keys from the issuer's, by :func:`derivation_option`."""
    return IccKeys(
        derive_icc_key(keys.ac, pan, psn),
        derive_icc_key(keys.smi, pan, psn),
        derive_icc_key(keys.smc, pan, psn),
    )


def cryptogram_engine(cvn: str, icc: IccKeys) -> VisaCVN10 | VisaCVN18:
    """pyemv's CVN object for ``cvn``, over keys already derived.

    pyemv's CVN classes derive the ICC keys in their constructor with the
    option their scheme fixes (A for CVN 10). The issuer derives by PAN length
    (:func:`derive_icc_keys`) and the card holds only its ICC keys, so the object
    is made without its constructor and given the keys; every cryptogram,
    ARPC and secure-messaging method is then pyemv's own.
    """
    cls: type[VisaCVN10] | type[VisaCVN18]
    if cvn == "10":
        cls = VisaCVN10
    elif cvn == "18":
        cls = VisaCVN18
    else:
        raise ValueError(f"CVN {cvn!r} is not supported; use one of {', '.join(CVNS)}")
    engine = cls.__new__(cls)
    engine.icc_mk_ac = icc.ac
    engine.icc_mk_smi = icc.smi
    engine.icc_mk_smc = icc.smc
    return engine


def iad_for(cvn: str, cvr: bytes) -> bytes:
    """Issuer application data (9F10) in the Visa layout PBOC shares: length 06,
    derivation key index 01, the CVN byte, then the CVR (its length byte 03 and
    3 bytes)."""
    if len(cvr) != 3:
        raise ValueError("CVR must be 3 bytes")
    return bytes([0x06, 0x01, _IAD_CVN[cvn], 0x03]) + cvr


def build_ac_input(engine: VisaCVN10 | VisaCVN18, tags: Mapping[str, bytes]) -> bytes:
    """The application cryptogram over ``tags`` (ARQC, TC or AAC alike)."""
    common = (
        tags["9F02"],
        tags["9F03"],
        tags["9F1A"],
        tags["95"],
        tags["5F2A"],
        tags["9A"],
        tags["9C"],
        tags["9F37"],
        tags["82"],
        tags["9F36"],
    )
    if isinstance(engine, VisaCVN10):
        return engine.generate_ac(*common, cvr=tags["9F10"][3:7])
    return engine.generate_ac(*common, tag_9f10=tags["9F10"])


def arc_for(response_code: str) -> bytes:
    """Authorisation response code (method 1): field 39 in ASCII, ``"00"`` -> ``3030``."""
    return response_code.encode("ascii")[:2].ljust(2, b"0")


def csu_for(response_code: str) -> bytes:
    """Card status update (method 2, EMV CCD layout): byte 2 bit 8 = issuer
    approves the online transaction; everything else unchanged (zero)."""
    return bytes([0x00, 0x80 if response_code == "00" else 0x00, 0x00, 0x00])


def script_command(engine: VisaCVN10 | VisaCVN18, header: bytes, arqc: bytes, atc: bytes) -> bytes:
    """A secure-messaging command with no data: header, then the 8-byte MAC
    over header || ATC || ARQC under the SMI session key (pyemv, Visa method)."""
    return header + engine.generate_command_mac(header, arqc, atc)


def amount_mismatch(tags: Mapping[str, bytes], amount_fen: int) -> dict[str, object] | None:
    """Facts when 9F02 is not field 4 (or not n12 BCD); None when they agree.

    >>> amount_mismatch({"9F02": bytes.fromhex("000000001234")}, 1234) is None
    True
    >>> amount_mismatch({"9F02": bytes.fromhex("000000001234")}, 1200)
    {'tag': '9F02', 'tag_amount_fen': 1234, 'field4_fen': 1200}
    """
    raw = tags.get("9F02")
    if raw is None:
        return {"tag": "9F02", "problem": "missing"}
    digits = raw.hex()
    if len(raw) != 6 or not digits.isdigit():
        return {"tag": "9F02", "problem": "not 6 bytes of BCD digits"}
    if int(digits) != amount_fen:
        return {"tag": "9F02", "tag_amount_fen": int(digits), "field4_fen": amount_fen}
    return None


@dataclass(frozen=True, slots=True)
class ChipCheck:
    """What :meth:`EmvIssuer.verify` found.

    ``reason`` is None when the ARQC verified and the ATC is new; ``atc`` is the
    card's ATC (None when 55 could not be read); ``accept_atc`` says whether the
    caller should store ``atc`` as the card's last ATC (the ARQC verified and
    it was not a replay); ``facts`` are for the journal and the diagnosis.
    Only the card's AC key is derived to verify; :meth:`EmvIssuer.respond`
    derives the SMI key when it builds a script.
    """

    reason: str | None
    cvn: str
    atc: int | None
    accept_atc: bool
    facts: dict[str, object]
    arqc: bytes = field(default=b"", repr=False)
    atc_bytes: bytes = field(default=b"", repr=False)
    icc_ac: bytes = field(default=b"", repr=False)
    pan: str = field(default="", repr=False)
    psn: str = ""


@dataclass(frozen=True, slots=True)
class ChipDecision:
    """The chip outcome of one authorisation.

    ``reason`` None = the chip agrees (the rest of the pipeline decides);
    ``field55`` is the answer's 55 (91, and the scripts when any), empty only
    when 55 could not be read at all; ``scripts`` the script template tags sent.
    """

    reason: str | None
    field55: bytes = field(repr=False)
    atc: int | None
    accept_atc: bool
    scripts: tuple[str, ...]
    facts: dict[str, object]

    @property
    def ok(self) -> bool:
        return self.reason is None


class EmvIssuer:
    """ARQC verification and ARPC/script generation for the simulated issuer."""

    def __init__(self, keys: IssuerKeys) -> None:
        self._keys = keys

    def icc_keys(self, pan: str, psn: str) -> IccKeys:
        """The ICC master keys of a card (for personalisation)."""
        return derive_icc_keys(self._keys, pan, psn)

    def verify(
        self, pan: str, chip: ChipRecord, tags: Mapping[str, bytes], amount_fen: int
    ) -> ChipCheck:
        """Check field 55 of a chip request (``tags`` as :func:`clearpos.wire.tlv.flatten`
        gives them) against the card; see the module docstring for the order."""
        cvn = chip.cvn
        problems = _tag_problems(tags)
        if problems:
            return ChipCheck("message.format_error", cvn, None, False, {"field": 55, **problems})
        atc = int.from_bytes(tags["9F36"], "big")
        icc_ac = derive_icc_key(self._keys.ac, pan, chip.psn)
        arqc = tags["9F26"]

        def outcome(reason: str | None, facts: dict[str, object]) -> ChipCheck:
            accept = reason is None
            return ChipCheck(
                reason, cvn, atc, accept, facts, arqc, tags["9F36"], icc_ac, pan, chip.psn
            )

        mismatch = amount_mismatch(tags, amount_fen)
        if mismatch is not None:  # still answered with 91: the card must be told "declined"
            return outcome("message.format_error", {"field": 55, **mismatch})
        facts: dict[str, object] = {
            "cvn": cvn,
            "atc": atc,
            "last_atc": chip.last_atc,
            "option": derivation_option(pan),
            "tvr": tags["95"].hex().upper(),
            "aid": tags["84"].hex().upper(),
        }

        iad = tags["9F10"]
        if len(iad) < 7 or iad[2] != _IAD_CVN.get(cvn):
            facts["iad_cvn"] = f"{iad[2]:02X}" if len(iad) > 2 else "absent"
            return outcome("card.cryptogram_invalid", facts)
        expected = build_ac_input(cryptogram_engine(cvn, IccKeys(icc_ac, b"", b"")), tags)
        if not hmac.compare_digest(expected, arqc):
            facts["arqc"] = "does not verify"
            return outcome("card.cryptogram_invalid", facts)
        facts["arqc"] = "verified"
        if atc <= chip.last_atc:
            return outcome("card.cryptogram_replayed", facts)
        return outcome(None, facts)

    def respond(
        self,
        check: ChipCheck,
        response_code: str,
        *,
        block: bool = False,
        template: Literal["71", "72"] = "72",
    ) -> ChipDecision:
        """Field 55 of the answer: 91 for the final field 39 ``response_code``,
        and an application-block script when ``block`` -- in ``72`` (run after the
        card's final GENERATE AC, the default) or ``71`` (run before it, so the
        card also declines this transaction)."""
        if not check.icc_ac:  # 55 unreadable: nothing to authenticate against
            return ChipDecision(check.reason, b"", check.atc, False, (), check.facts)
        # the SMI key only for a script; SMC never (an application block enciphers nothing)
        smi = derive_icc_key(self._keys.smi, check.pan, check.psn) if block else b""
        engine = cryptogram_engine(check.cvn, IccKeys(check.icc_ac, smi, b""))
        if isinstance(engine, VisaCVN10):
            arc = arc_for(response_code)
            auth = engine.generate_arpc(check.arqc, arc) + arc
        else:
            csu = csu_for(response_code)
            auth = engine.generate_arpc(check.arqc, check.atc_bytes, csu) + csu
        items: list[_tlv.Tlv | tuple[str, bytes]] = [("91", auth)]
        sent: tuple[str, ...] = ()
        if block:
            command = script_command(engine, APPLICATION_BLOCK, check.arqc, check.atc_bytes)
            items.append(
                _tlv.Tlv(
                    template, b"", (_tlv.Tlv("9F18", BLOCK_SCRIPT_ID), _tlv.Tlv("86", command))
                )
            )
            sent = (template,)
        facts = {**check.facts, "response_code": response_code}
        if block:
            facts["script"] = "application block"
        return ChipDecision(
            check.reason, _tlv.encode(items), check.atc, check.accept_atc, sent, facts
        )

    def authorise(
        self,
        pan: str,
        chip: ChipRecord,
        tags: Mapping[str, bytes],
        amount_fen: int,
        response_code: str,
        *,
        block: bool = False,
    ) -> ChipDecision:
        """:meth:`verify` then :meth:`respond`: a chip failure replaces
        ``response_code`` in 91 with its reason's field 39 from the catalog."""
        check = self.verify(pan, chip, tags, amount_fen)
        code = response_code
        if check.reason is not None:
            code = catalog()[check.reason].code or response_code
        return self.respond(check, code, block=block)


def _tag_problems(tags: Mapping[str, bytes]) -> dict[str, object]:
    missing = [tag for tag in REQUIRED_TAGS if tag not in tags]
    if missing:
        return {"missing_tags": missing}
    for tag, length in REQUIRED_TAGS.items():
        if length is not None and len(tags[tag]) != length:
            return {"tag": tag, "length": len(tags[tag]), "expected_length": length}
    return {}
