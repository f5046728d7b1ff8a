"""EMV chip cryptography: the simulated issuer (clearpos.issuer.emv) against the
simulated card (clearpos.issuer.card), per CVN, plus pyemv's own known answers."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyemv import cvn as pyemv_cvn

from clearpos.issuer import card as simcard
from clearpos.issuer import emv
from clearpos.wire import tlv

KEYS = emv.IssuerKeys(
    bytes.fromhex("0123456789ABCDEF0123456789ABCDEF"),
    bytes.fromhex("FEDCBA9876543210FEDCBA9876543210"),
    bytes.fromhex("89ABCDEF0123456789ABCDEF01234567"),
)
PAN19 = "6222021234567890123"  # 19 digits: Option B
PAN16 = "6212345678901232"  # 16 digits: Option A


@dataclass(frozen=True)
class Chip:
    psn: str
    cvn: str
    last_atc: int = -1


def make_card(cvn: str, pan: str = PAN19, psn: str = "01") -> simcard.ChipCard:
    icc = emv.EmvIssuer(KEYS).icc_keys(pan, psn)
    return simcard.personalised(pan, psn, "2812", "220", cvn, icc)


def sale(amount_fen: int = 1234) -> simcard.TerminalData:
    return simcard.TerminalData(amount_fen=amount_fen, date_yymmdd="261202")


def flat(data: bytes) -> dict[str, bytes]:
    return tlv.flatten(tlv.decode(data))


# --------------------------------------------------------------------- known answers


def test_option_a_cvn18_matches_pyemv_known_answer() -> None:
    # pyemv's own documented CVN 18 example (pyemv/cvn.py module docstring)
    keys = emv.IssuerKeys(
        bytes.fromhex("AA" * 16), bytes.fromhex("BB" * 16), bytes.fromhex("CC" * 16)
    )
    icc = emv.derive_icc_keys(keys, "1234567890123456", "00")
    engine = emv.cryptogram_engine("18", icc)
    tags = {
        "9F02": bytes.fromhex("000000009999"),
        "9F03": bytes.fromhex("000000000000"),
        "9F1A": bytes.fromhex("0840"),
        "95": bytes.fromhex("8000048000"),
        "5F2A": bytes.fromhex("0840"),
        "9A": bytes.fromhex("991231"),
        "9C": bytes.fromhex("01"),
        "9F37": bytes.fromhex("52BF4585"),
        "82": bytes.fromhex("1800"),
        "9F36": bytes.fromhex("0FFF"),
        "9F10": bytes.fromhex("06011203A0B800"),
    }
    arqc = emv.build_ac_input(engine, tags)
    assert arqc.hex().upper() == "769577B5ABE9FE62"
    assert engine.generate_arpc(arqc, tags["9F36"], bytes(4)).hex().upper() == "76503F48"


def test_option_b_matches_pyemv_known_answer() -> None:
    # pyemv.kd.derive_icc_mk_b's documented example: a 17-digit PAN takes Option B
    keys = emv.IssuerKeys(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), KEYS.smi, KEYS.smc)
    icc = emv.derive_icc_keys(keys, "12345678901234567", "01")
    assert icc.ac.hex().upper() == "AD406D7F6D7570916D75E5DCAB8CF737"
    assert emv.derivation_option("12345678901234567") == "B"
    assert emv.derivation_option(PAN16) == "A"


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_option_a_card_agrees_with_pyemv_constructed_normally(cvn: str) -> None:
    # for a 16-digit PAN, pyemv's own classes (deriving in their constructor) agree
    card = make_card(cvn, PAN16, "00")
    first = card.first_generate_ac(sale())
    cls = pyemv_cvn.VisaCVN10 if cvn == "10" else pyemv_cvn.VisaCVN18
    ref = cls(KEYS.ac, KEYS.smi, KEYS.smc, PAN16, "00")
    assert emv.build_ac_input(ref, first.tags) == first.arqc


def test_cvn10_on_19_digits_uses_option_b_not_pyemv_default() -> None:
    # pyemv's VisaCVN10 always derives with Option A; the contract says Option B above 16
    icc = emv.derive_icc_keys(KEYS, PAN19, "01")
    option_a = pyemv_cvn.VisaCVN10(KEYS.ac, KEYS.smi, KEYS.smc, PAN19, "01")
    assert icc.ac != option_a.icc_mk_ac


def test_engine_refuses_unknown_cvn() -> None:
    with pytest.raises(ValueError, match="CVN '17' is not supported"):
        emv.cryptogram_engine("17", emv.derive_icc_keys(KEYS, PAN16, "00"))


# ------------------------------------------------------------------ per-CVN behaviour


@pytest.mark.parametrize("pan", [PAN19, PAN16])
@pytest.mark.parametrize("cvn", ["10", "18"])
def test_approve_with_arpc_the_card_verifies(cvn: str, pan: str) -> None:
    card = make_card(cvn, pan)
    first = card.first_generate_ac(sale())
    assert first.atc == 1 and card.atc == 1
    tags = flat(first.field55)
    assert {"9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "9F03", "5F2A",
            "82", "9F1A", "9F33", "84"} <= set(tags)  # fmt: skip
    issuer = emv.EmvIssuer(KEYS)
    decision = issuer.authorise(pan, Chip("01", cvn), tags, 1234, "00")
    assert decision.ok and decision.accept_atc and decision.atc == 1
    assert decision.facts["arqc"] == "verified"
    assert decision.facts["option"] == emv.derivation_option(pan)
    answer = flat(decision.field55)
    assert set(answer) == {"91"}
    if cvn == "10":  # method 1: ARPC 8 + ARC "00"
        assert len(answer["91"]) == 10 and answer["91"][8:] == b"00"
    else:  # method 2: ARPC 4 + CSU 4, approval bit set
        assert len(answer["91"]) == 8 and answer["91"][5] & 0x80
    second = card.second_generate_ac(first, decision.field55, host_approved=True)
    assert second.cryptogram == "TC" and second.issuer_auth == "verified"
    assert second.tags["9F27"] == b"\x40"
    # the TC verifies at the issuer too (as a 0320 TC upload would be checked)
    engine = emv.cryptogram_engine(cvn, issuer.icc_keys(pan, "01"))
    assert emv.build_ac_input(engine, second.tags) == second.tags["9F26"]
    assert flat(second.field55)["9F26"] == second.tags["9F26"]


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_flipped_arqc_bit_is_cryptogram_invalid_with_91(cvn: str) -> None:
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    tags = dict(first.tags)
    tags["9F26"] = bytes([tags["9F26"][0] ^ 0x01]) + tags["9F26"][1:]
    decision = emv.EmvIssuer(KEYS).authorise(PAN19, Chip("01", cvn), tags, 1234, "00")
    assert decision.reason == "card.cryptogram_invalid" and not decision.accept_atc
    answer = flat(decision.field55)
    assert "91" in answer
    if cvn == "10":
        assert answer["91"][8:] == b"05"
    else:
        assert not answer["91"][5] & 0x80
    # the card sees an ARPC over another ARQC: issuer authentication fails, AAC
    second = card.second_generate_ac(first, decision.field55, host_approved=False)
    assert second.cryptogram == "AAC" and second.issuer_auth == "failed"
    assert second.tags["95"][4] & 0x40


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_altered_transaction_data_is_cryptogram_invalid(cvn: str) -> None:
    first = make_card(cvn).first_generate_ac(sale())
    tags = dict(first.tags)
    tags["9F37"] = bytes(4)  # another unpredictable number
    check = emv.EmvIssuer(KEYS).verify(PAN19, Chip("01", cvn), tags, 1234)
    assert check.reason == "card.cryptogram_invalid"


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_atc_replay_is_refused(cvn: str) -> None:
    card = make_card(cvn)
    issuer = emv.EmvIssuer(KEYS)
    first = card.first_generate_ac(sale())
    ok = issuer.verify(PAN19, Chip("01", cvn, last_atc=-1), first.tags, 1234)
    assert ok.reason is None and ok.accept_atc and ok.atc == 1
    again = issuer.verify(PAN19, Chip("01", cvn, last_atc=1), first.tags, 1234)
    assert again.reason == "card.cryptogram_replayed" and not again.accept_atc
    assert again.facts["atc"] == 1 and again.facts["last_atc"] == 1
    older = issuer.verify(PAN19, Chip("01", cvn, last_atc=9), first.tags, 1234)
    assert older.reason == "card.cryptogram_replayed"
    # the next real transaction has a higher ATC and passes
    nxt = card.first_generate_ac(sale())
    assert issuer.verify(PAN19, Chip("01", cvn, last_atc=1), nxt.tags, 1234).reason is None
    # the answer to a replay still carries 91 with the decline code
    decision = issuer.authorise(PAN19, Chip("01", cvn, last_atc=1), first.tags, 1234, "00")
    assert decision.reason == "card.cryptogram_replayed" and "91" in flat(decision.field55)


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_9f02_not_field_4_is_format_error(cvn: str) -> None:
    first = make_card(cvn).first_generate_ac(sale(1234))
    decision = emv.EmvIssuer(KEYS).authorise(PAN19, Chip("01", cvn), first.tags, 1200, "00")
    assert decision.reason == "message.format_error"
    assert decision.facts == {
        "field": 55,
        "tag": "9F02",
        "tag_amount_fen": 1234,
        "field4_fen": 1200,
        "response_code": "30",
    }
    assert not decision.accept_atc
    # the decline still carries 91 (with 30), so the card ends the transaction with AAC
    assert "91" in flat(decision.field55)
    card_view = make_card(cvn)  # a card with the same keys checks that 91
    second = card_view.second_generate_ac(first, decision.field55, host_approved=False)
    assert second.cryptogram == "AAC" and second.issuer_auth == "verified"
    assert emv.amount_mismatch(first.tags, 1234) is None
    assert emv.amount_mismatch({"9F02": b"\x00\x00\x00\x00\x12\x3a"}, 1234) == {
        "tag": "9F02",
        "problem": "not 6 bytes of BCD digits",
    }


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_lost_card_gets_application_block_script(cvn: str) -> None:
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    issuer = emv.EmvIssuer(KEYS)
    decision = issuer.authorise(PAN19, Chip("01", cvn), first.tags, 1234, "41", block=True)
    assert decision.ok and decision.scripts == ("72",)
    items = tlv.decode(decision.field55)
    script = tlv.scripts(items)[0]
    assert [c.tag for c in script.children] == ["9F18", "86"]
    assert script.children[1].value[:5] == emv.APPLICATION_BLOCK
    second = card.second_generate_ac(first, decision.field55, host_approved=False)
    assert second.cryptogram == "AAC" and second.issuer_auth == "verified"
    assert not second.approved_by_issuer
    assert second.blocked and card.blocked
    assert second.script_results == b"\x20" + emv.BLOCK_SCRIPT_ID
    assert flat(simcard.script_result_field55(second))["DF31"] == second.script_results
    with pytest.raises(simcard.CardBlocked, match=r"622202\*+0123: application blocked"):
        card.first_generate_ac(sale())


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_block_in_71_runs_before_the_final_ac(cvn: str) -> None:
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    issuer = emv.EmvIssuer(KEYS)
    check = issuer.verify(PAN19, Chip("01", cvn), first.tags, 1234)
    decision = issuer.respond(check, "00", block=True, template="71")
    assert decision.scripts == ("71",)
    # even with an approval, the card blocked itself first and declines
    second = card.second_generate_ac(first, decision.field55, host_approved=True)
    assert second.issuer_auth == "verified" and second.approved_by_issuer
    assert second.cryptogram == "AAC" and second.blocked
    assert second.script_results[:1] == b"\x20"


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_script_with_a_bad_mac_is_refused_by_the_card(cvn: str) -> None:
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    decision = emv.EmvIssuer(KEYS).authorise(
        PAN19, Chip("01", cvn), first.tags, 1234, "41", block=True
    )
    forged = bytearray(decision.field55)
    forged[-1] ^= 0xFF  # last MAC byte
    second = card.second_generate_ac(first, bytes(forged), host_approved=False)
    assert not card.blocked and not second.blocked
    assert second.script_results == b"\x11" + emv.BLOCK_SCRIPT_ID  # failed at command 1
    assert second.tags["95"][4] & 0x10  # TVR: script processing failed after the final AC


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_issuer_decline_gives_aac_with_verified_arpc(cvn: str) -> None:
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    decision = emv.EmvIssuer(KEYS).authorise(PAN19, Chip("01", cvn), first.tags, 1234, "51")
    second = card.second_generate_ac(first, decision.field55, host_approved=False)
    assert second.cryptogram == "AAC" and second.issuer_auth == "verified"


@pytest.mark.parametrize("cvn", ["10", "18"])
def test_card_refuses_after_approval_without_valid_91(cvn: str) -> None:
    # the host approved (39 = 00) but its 91 is missing or wrong: AAC, the terminal reverses
    card = make_card(cvn)
    first = card.first_generate_ac(sale())
    assert card.second_generate_ac(first, None, host_approved=True).cryptogram == "AAC"
    other = make_card(cvn, PAN16)  # an ARPC made with another card's keys
    other_first = other.first_generate_ac(sale())
    decision = emv.EmvIssuer(KEYS).authorise(PAN16, Chip("01", cvn), other_first.tags, 1234, "00")
    second = card.second_generate_ac(first, decision.field55, host_approved=True)
    assert second.cryptogram == "AAC" and second.issuer_auth == "failed"
    assert card.second_generate_ac(first, b"\x91\x05", host_approved=True).issuer_auth == "absent"
    reversal = flat(simcard.reversal_field55(first, second))
    assert set(reversal) == {"95", "9F10", "9F36"}
    assert reversal["9F36"] == first.tags["9F36"]


def test_iad_of_another_cvn_is_cryptogram_invalid() -> None:
    first = make_card("10").first_generate_ac(sale())
    check = emv.EmvIssuer(KEYS).verify(PAN19, Chip("01", "18"), first.tags, 1234)
    assert check.reason == "card.cryptogram_invalid" and check.facts["iad_cvn"] == "0A"


def test_missing_or_misshapen_tags_are_format_errors() -> None:
    first = make_card("18").first_generate_ac(sale())
    issuer = emv.EmvIssuer(KEYS)
    tags = {k: v for k, v in first.tags.items() if k not in ("9F37", "84")}
    check = issuer.verify(PAN19, Chip("01", "18"), tags, 1234)
    assert check.reason == "message.format_error"
    assert check.facts == {"field": 55, "missing_tags": ["9F37", "84"]}
    assert check.atc is None
    assert issuer.respond(check, "30").field55 == b""  # nothing to authenticate against
    short = {**first.tags, "9F36": b"\x01"}
    assert issuer.verify(PAN19, Chip("01", "18"), short, 1234).facts == {
        "field": 55,
        "tag": "9F36",
        "length": 1,
        "expected_length": 2,
    }


# ------------------------------------------------------------------------- card file


def test_card_file_round_trip_and_atc_persists(tmp_path: Path) -> None:
    path = tmp_path / "card.toml"
    card = simcard.bound(make_card("18"), path)
    card.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = simcard.load_card(path)
    assert (loaded.pan, loaded.psn, loaded.cvn, loaded.atc, loaded.icc) == (
        card.pan, card.psn, card.cvn, 0, card.icc,
    )  # fmt: skip
    loaded.first_generate_ac(sale())
    loaded.first_generate_ac(sale())
    assert simcard.load_card(path).atc == 2  # saved at each GENERATE AC
    assert "6222021234567890123" not in repr(loaded)


def test_blocked_state_persists(tmp_path: Path) -> None:
    path = tmp_path / "card.toml"
    card = simcard.bound(make_card("10"), path)
    first = card.first_generate_ac(sale())
    decision = emv.EmvIssuer(KEYS).authorise(
        PAN19, Chip("01", "10"), first.tags, 1234, "43", block=True
    )
    card.second_generate_ac(first, decision.field55, host_approved=False)
    with pytest.raises(simcard.CardBlocked):
        simcard.load_card(path).first_generate_ac(sale())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('cvn = "18"', 'cvn = "17"'), "cvn: must be one of 10, 18"),
        (("atc = 0", "atc = -1"), "atc: must be an integer from 0 to 65535"),
        (('psn = "01"', 'psn = "1"'), "psn: must be 2 digits"),
        (('icc_mk_ac = "', 'icc_mk_ac = "ZZ'), "icc_mk_ac: must be 32 hex digits"),
        (("blocked = false", 'blocked = false\ncolour = "red"'), "colour: unknown key"),
    ],
)
def test_bad_card_files_are_refused_precisely(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "card.toml"
    simcard.bound(make_card("18"), path).save()
    path.write_text(path.read_text().replace(*edit, 1))
    with pytest.raises(simcard.CardFileError) as info:
        simcard.load_card(path)
    assert str(info.value) == f"{path}: {message}"
    assert PAN19 not in str(info.value)


def test_unreadable_card_file(tmp_path: Path) -> None:
    with pytest.raises(simcard.CardFileError, match="cannot read"):
        simcard.load_card(tmp_path / "absent.toml")
