"""clearpos.keys against the exact bytes of spec/pos8583.md §5 and §10."""

from __future__ import annotations

import base64
import os
import random
import stat
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearpos.keys import (
    FIELD62_LENGTH,
    IssuedKeys,
    KekError,
    KeyCheckError,
    KeyEncryptionKey,
    MacEngine,
    NotSignedOnError,
    PinBlockError,
    PinEngine,
    SealedKeyError,
    SecurityModule,
    TerminalKeys,
    WorkingKeys,
    check_value,
    decrypt_pin_block,
    encrypt_pin_block,
    pack_field62,
    pin_block,
    tdes_decrypt,
    tdes_encrypt,
    unpack_field62,
)

# -- §10: keys and frames, copied from the spec ---------------------------------

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("6B3C7A1F0D2E5849A1B2C3D4E5F60718")
MAK = bytes.fromhex("1A2B3C4D5E6F7081")
TID = "10000001"
PAN = "6222021234567890123"
PIN = "123456"
PIN_BLOCK = bytes.fromhex("3D8CF07ABF66B432")

FIELD62 = bytes.fromhex(
    "FEFC6CFA4B20A481FD7AF640961CDB8B"  # PIN key under the TMK
    "CEBD4274"  # its check value
    "41B1F3D154C3079A"  # MAC key under the TMK
    "0000000000000000"
    "A2AFCD72"  # its check value
)

SIGN_ON_RESPONSE = bytes.fromhex(
    "008660000300006031000001000810003800010AC0001600000108301511230848020000303030303030"
    "3030303030313030313030303030303138393833313030343831363132333400110000000100300040FE"
    "FC6CFA4B20A481FD7AF640961CDB8BCEBD427441B1F3D154C3079A0000000000000000A2AFCD72001120"
    "2020617070726F766564"
)
PURCHASE = bytes.fromhex(
    "007560000300006031000001000200302404C020C0981100000000000000123400001728120210000637"
    "6222021234567890123D2812201000000000003130303030303031383938333130303438313631323334"
    "3135363D8CF07ABF66B432260000000000000000112200000100004232343343373530"
)
APPROVED = bytes.fromhex(
    "007B60000300006031000001000210303E00810EC0801300000000000000123400001708312011232812"
    "112300084802000030303030303030303030303241314232433330303130303030303031383938333130"
    "30343831363132333431353600112200000100000011435550617070726F7665643644443734453430"
)

#: Hex renderings of every secret in the tests: none may appear in a repr or a message.
SECRETS = [TMK.hex(), PIK.hex(), MAK.hex(), PIN_BLOCK.hex()]
FORBIDDEN = [*SECRETS, *(s.upper() for s in SECRETS), PIN, PAN, PAN[-13:-1]]


def mac_block(frame: bytes) -> bytes:
    """MTI up to, not including, field 64: after length 2 + TPDU 5 + header 6, minus the MAC."""
    return frame[13:-8]


def assert_no_secrets(text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text
    for key in (TMK, PIK, MAK):
        assert repr(key)[2:-1] not in text


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey(bytes(range(32)))


@pytest.fixture
def hsm(kek: KeyEncryptionKey) -> SecurityModule:
    return SecurityModule(kek)


@pytest.fixture(autouse=True)
def no_deprecation_warnings() -> Iterator[None]:
    """cryptography 50 deprecates the old TripleDES import and short keys: we use neither."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_frames_are_copied_whole() -> None:
    for frame in (SIGN_ON_RESPONSE, PURCHASE, APPROVED):
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2


# -- primitives ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kcv"),
    [(PIK, "CEBD4274"), (MAK, "A2AFCD72")],
    ids=["pin-key-3des", "mac-key-des"],
)
def test_check_value(key: bytes, kcv: str) -> None:
    assert check_value(key).hex().upper() == kcv
    assert check_value(key) == tdes_encrypt(key, bytes(8))[:4]


def test_check_value_of_single_key_is_single_des() -> None:
    assert check_value(MAK) == check_value(MAK + MAK) == check_value(MAK * 3)


@pytest.mark.parametrize(
    ("clear", "under_tmk"),
    [(PIK, "FEFC6CFA4B20A481FD7AF640961CDB8B"), (MAK, "41B1F3D154C3079A")],
    ids=["pin-key", "mac-key"],
)
def test_tdes_under_tmk(clear: bytes, under_tmk: str) -> None:
    assert tdes_encrypt(TMK, clear).hex().upper() == under_tmk
    assert tdes_decrypt(TMK, bytes.fromhex(under_tmk)) == clear


@pytest.mark.parametrize("size", [0, 7, 9])
def test_tdes_refuses_partial_blocks(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        tdes_encrypt(TMK, bytes(size))


@pytest.mark.parametrize("size", [0, 7, 15, 32])
def test_tdes_refuses_bad_key_lengths(size: int) -> None:
    with pytest.raises(ValueError, match="8, 16 or 24"):
        tdes_encrypt(bytes(size), bytes(8))


# -- field 62 --------------------------------------------------------------------


def test_field62_inside_sign_on_response() -> None:
    # LLLVAR 62: BCD length 0040, then the 40 bytes.
    start = SIGN_ON_RESPONSE.index(bytes.fromhex("0040") + FIELD62[:4]) + 2
    assert SIGN_ON_RESPONSE[start : start + FIELD62_LENGTH] == FIELD62


def test_pack_field62() -> None:
    assert pack_field62(TMK, WorkingKeys(PIK, MAK)) == FIELD62
    assert len(FIELD62) == FIELD62_LENGTH == 40


def test_unpack_field62() -> None:
    keys = unpack_field62(TMK, FIELD62)
    assert (keys.pik, keys.mak) == (PIK, MAK)
    assert (keys.pik_kcv, keys.mak_kcv) == ("CEBD4274", "A2AFCD72")


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("field62", "reason"),
    [
        (_flip(FIELD62, 16), "PIN key check value"),  # PIN key KCV
        (_flip(FIELD62, 39), "MAC key check value"),  # MAC key KCV
        (_flip(FIELD62, 0), "PIN key check value"),  # PIN key ciphertext
        (_flip(FIELD62, 20), "MAC key check value"),  # MAC key ciphertext
        (FIELD62[:-1], r"60, 84\] bytes, got 39"),
        (FIELD62 + b"\x00", r"60, 84\] bytes, got 41"),
        (b"", r"60, 84\] bytes, got 0"),
    ],
    ids=["pik-kcv", "mak-kcv", "pik-cipher", "mak-cipher", "short", "long", "empty"],
)
def test_unpack_field62_refuses(field62: bytes, reason: str) -> None:
    with pytest.raises(KeyCheckError, match=reason) as caught:
        unpack_field62(TMK, field62)
    assert_no_secrets(str(caught.value))


def test_unpack_field62_under_wrong_tmk_is_refused() -> None:
    with pytest.raises(KeyCheckError, match="wrong TMK"):
        unpack_field62(TMK[::-1], FIELD62)


def test_generated_working_keys() -> None:
    first, second = WorkingKeys.generate(), WorkingKeys.generate()
    assert first != second
    assert (len(first.pik), len(first.mak)) == (16, 8)
    assert first.pik[:8] != first.pik[8:]
    for byte in first.pik + first.mak:
        assert bin(byte).count("1") % 2 == 1  # odd parity
    assert unpack_field62(TMK, pack_field62(TMK, first)) == first


@pytest.mark.parametrize(
    ("pik", "mak", "tdk"), [(PIK[:7], MAK, None), (PIK, MAK[:5], None), (PIK, MAK, MAK)]
)
def test_working_keys_validate_lengths(pik: bytes, mak: bytes, tdk: bytes | None) -> None:
    with pytest.raises(ValueError, match="bytes"):
        WorkingKeys(pik, mak, tdk)


# -- PIN block -------------------------------------------------------------------


def test_pin_block_matches_spec() -> None:
    clear = pin_block(PIN, PAN)
    assert clear.hex().upper() == "06122662A9876FED"
    assert encrypt_pin_block(PIK, PIN, PAN) == PIN_BLOCK
    assert PIN_BLOCK in PURCHASE  # field 52 of the §10 purchase
    assert decrypt_pin_block(PIK, PIN_BLOCK, PAN) == PIN


@pytest.mark.parametrize(
    ("block", "pan"),
    [
        (bytes(8), PAN),  # decrypts to garbage
        (PIN_BLOCK, "6222021234567891234"),  # another PAN: filler no longer F
        (PIN_BLOCK[:7], PAN),
        (PIN_BLOCK, "62220212"),
    ],
    ids=["garbage", "wrong-pan", "short", "bad-pan"],
)
def test_pin_block_that_does_not_decode(block: bytes, pan: str) -> None:
    with pytest.raises(PinBlockError) as caught:
        decrypt_pin_block(PIK, block, pan)
    assert isinstance(caught.value, ValueError)
    assert caught.value.__context__ is None  # psec's message quotes PIN digits: never chained
    assert_no_secrets(str(caught.value))


def test_format_0_decoding_is_psec_s_on_random_and_near_valid_blocks() -> None:
    """The in-house ISO 9564 format 0 decoder answers what psec's does: the same PIN,
    or a refusal where psec raises, for random blocks, valid ones of every PIN length
    and PAN length, and valid ones with one nibble changed."""
    import random

    from clearpos.keys.crypto import _decode_with_pan

    def by_psec(block: bytes, pan: str) -> str | None:
        try:
            pin: str = psec.pinblock.decode_pinblock_iso_0(block, pan)
        except ValueError:
            return None
        return pin

    rng = random.Random(18)
    cases: list[tuple[bytes, str]] = []
    for _ in range(3000):
        pan = "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19)))
        pin = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        valid = psec.pinblock.encode_pinblock_iso_0(pin, pan)
        spoilt = bytearray(valid)
        i = rng.randrange(8)
        spoilt[i] ^= rng.choice((0x01, 0x10, 0x0F, 0xF0, 0x0A, 0xA0))
        cases += [(valid, pan), (bytes(spoilt), pan), (rng.randbytes(8), pan)]
    decoded = 0
    for block, pan in cases:
        want = by_psec(block, pan)
        assert _decode_with_pan(block, pan) == want, (block.hex(), len(pan))
        decoded += want is not None
    assert decoded >= 3000  # every valid block, and spoilt ones that are still valid


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a456", "١٢٣٤٥٦", ""])
def test_pin_block_refuses_bad_pins(pin: str) -> None:
    with pytest.raises(PinBlockError, match="PIN must be 4 to 12 digits") as caught:
        pin_block(pin, PAN)
    assert pin not in str(caught.value) or not pin


# -- MAC -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "mac"),
    [(PURCHASE, b"B243C750"), (APPROVED, b"6DD74E40")],
    ids=["purchase-0200", "approved-0210"],
)
def test_mac_of_spec_frames(frame: bytes, mac: bytes) -> None:
    engine = MacEngine(MAK)
    assert frame[-8:] == mac
    assert engine.mac(mac_block(frame)) == mac
    assert engine.verify(mac_block(frame), mac)


@pytest.mark.parametrize("frame", [PURCHASE, APPROVED], ids=["purchase-0200", "approved-0210"])
def test_mac_detects_changes(frame: bytes) -> None:
    engine = MacEngine(MAK)
    block, mac = mac_block(frame), frame[-8:]
    assert not engine.verify(_flip(block, len(block) // 2), mac)
    assert not engine.verify(block + b"\x01", mac)
    # Known property of the algorithm (00 padding, XOR fold): trailing 00 bytes are invisible,
    # which is why the MAC block boundary comes from the framing, never from the MAC.
    assert engine.verify(block + b"\x00" * 8, mac)
    assert not engine.verify(block, b"00000000")
    assert not engine.verify(block, mac[:7])
    assert not MacEngine(MAK[::-1]).verify(block, mac)


def _reference_mac(key: bytes, block: bytes) -> bytes:
    """Spec §5 step by step, one fresh cipher per step."""
    block += bytes(-len(block) % 8)
    folded = bytes(8)
    for i in range(0, len(block), 8):
        folded = bytes(a ^ b for a, b in zip(folded, block[i : i + 8], strict=True))
    hexed = folded.hex().upper().encode()
    step = tdes_encrypt(key, hexed[:8])
    step = bytes(a ^ b for a, b in zip(step, hexed[8:], strict=True))
    return tdes_encrypt(key, step).hex().upper()[:8].encode()


@given(st.binary(max_size=300))
def test_mac_engine_matches_reference(block: bytes) -> None:
    assert MacEngine(MAK).mac(block) == _reference_mac(MAK, block)


def test_mac_engine_is_reusable() -> None:
    engine = MacEngine(MAK)
    for _ in range(3):
        assert engine.mac(mac_block(PURCHASE)) == b"B243C750"
        assert engine.mac(mac_block(APPROVED)) == b"6DD74E40"


def test_mac_engine_refuses_a_key_of_another_length() -> None:
    with pytest.raises(ValueError, match="8, 16 or 24 bytes"):
        MacEngine(PIK[:12])


def test_mac_engine_double_length_key_is_the_same_mac_with_3des() -> None:
    # A double-length MAC key of equal halves is single DES: the same MAC as the 8-byte key.
    block = bytes(range(37))
    assert MacEngine(MAK + MAK).mac(block) == MacEngine(MAK).mac(block)
    assert MacEngine(PIK).mac(block) != MacEngine(PIK[:8]).mac(block)


# -- keys at rest ------------------------------------------------------------------


def test_seal_open_round_trip(kek: KeyEncryptionKey) -> None:
    sealed = kek.seal(TMK, f"tmk:{TID}")
    assert sealed.startswith("v1:")
    assert_no_secrets(sealed)
    assert kek.open(sealed, f"tmk:{TID}") == TMK
    assert kek.seal(TMK, f"tmk:{TID}") != sealed  # random nonce


def _tamper(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[index] ^= 0x01
    return "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("change", "context"),
    [
        (lambda s: _tamper(s, 0), "tmk:10000001"),  # nonce
        (lambda s: _tamper(s, 14), "tmk:10000001"),  # ciphertext
        (lambda s: _tamper(s, -1), "tmk:10000001"),  # tag
        (lambda s: s, "tmk:10000002"),  # another terminal
        (lambda s: s, "mak:10000001"),  # another kind of key
        (lambda s: s[:20], "tmk:10000001"),  # truncated
        (lambda s: s[3:], "tmk:10000001"),  # no version
        (lambda s: "v1:***", "tmk:10000001"),  # not base64
    ],
    ids=["nonce", "ciphertext", "tag", "other-tid", "other-kind", "short", "no-prefix", "junk"],
)
def test_open_refuses(kek: KeyEncryptionKey, change: Callable[[str], str], context: str) -> None:
    sealed = kek.seal(TMK, f"tmk:{TID}")
    with pytest.raises(SealedKeyError) as caught:
        kek.open(change(sealed), context)
    assert_no_secrets(str(caught.value))


def test_open_refuses_another_kek(kek: KeyEncryptionKey) -> None:
    other = KeyEncryptionKey.generate()
    with pytest.raises(SealedKeyError, match=other.fingerprint()):
        other.open(kek.seal(TMK, "tmk:x"), "tmk:x")


def test_kek_fingerprint(kek: KeyEncryptionKey) -> None:
    # sha256(bytes(range(32))) = 630dcd29...
    assert kek.fingerprint() == "630dcd29"
    assert repr(kek) == "KeyEncryptionKey(fingerprint=630dcd29)"
    assert bytes(range(32)).hex() not in repr(kek)


@pytest.fixture
def no_kek_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARPOS_KEK", raising=False)
    monkeypatch.delenv("CLEARPOS_KEK_FILE", raising=False)


@pytest.mark.usefixtures("no_kek_env")
def test_kek_file_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "kek"
    first = KeyEncryptionKey.load(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(bytes.fromhex(path.read_text().strip())) == 32
    assert [p.name for p in path.parent.iterdir()] == ["kek"]  # no temporary left
    assert KeyEncryptionKey.load(path).fingerprint() == first.fingerprint()


@pytest.mark.usefixtures("no_kek_env")
def test_kek_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared KEK file is never made on the fly: the error says how to make it."""
    from clearpos.keys.kek import create_key_file

    monkeypatch.setenv("CLEARPOS_KEK_FILE", str(tmp_path / "kek"))
    with pytest.raises(KekError, match="clearpos admin kek new --out " + str(tmp_path / "kek")):
        KeyEncryptionKey.load()
    assert not (tmp_path / "kek").exists()
    kek = create_key_file(tmp_path / "kek")
    assert stat.S_IMODE((tmp_path / "kek").stat().st_mode) == 0o600
    assert KeyEncryptionKey.load().fingerprint() == kek.fingerprint()
    with pytest.raises(KekError, match="never overwritten"):
        create_key_file(tmp_path / "kek")
    assert KeyEncryptionKey.load().fingerprint() == kek.fingerprint()


@pytest.mark.usefixtures("no_kek_env")
def test_kek_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARPOS_KEK", bytes(range(32)).hex().upper())
    assert KeyEncryptionKey.load(tmp_path / "kek").fingerprint() == "630dcd29"
    assert not (tmp_path / "kek").exists()


@pytest.mark.usefixtures("no_kek_env")
def test_kek_malformed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    value = "zz" + bytes(range(31)).hex()
    monkeypatch.setenv("CLEARPOS_KEK", value)
    with pytest.raises(KekError, match="CLEARPOS_KEK is malformed") as caught:
        KeyEncryptionKey.load()
    assert value not in str(caught.value)


@pytest.mark.usefixtures("no_kek_env")
@pytest.mark.parametrize("content", ["", "abcd\n", "g" * 64, "00" * 33, "\xff\xfe"])
def test_kek_malformed_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kek"
    path.write_text(content, encoding="latin-1")
    path.chmod(0o600)
    with pytest.raises(KekError, match="malformed"):
        KeyEncryptionKey.load(path)


@pytest.mark.usefixtures("no_kek_env")
def test_kek_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_text(os.urandom(32).hex())
    path.chmod(0o644)
    with pytest.raises(KekError, match="chmod 600"):
        KeyEncryptionKey.load(path)


@pytest.mark.usefixtures("no_kek_env")
@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_kek_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_text(os.urandom(32).hex())
    path.chmod(0o000)
    try:
        with pytest.raises(KekError, match="not readable"):
            KeyEncryptionKey.load(path)
    finally:
        path.chmod(0o600)


# -- security module ---------------------------------------------------------------


class CountingKek(KeyEncryptionKey):
    __slots__ = ("opened",)

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.opened = 0

    def open(self, sealed: str, context: str) -> bytes:
        self.opened += 1
        return super().open(sealed, context)


def _signed_on(hsm: SecurityModule) -> tuple[str, IssuedKeys, TerminalKeys]:
    sealed_tmk = hsm.seal_tmk(TID, TMK)
    issued = hsm.issue_working_keys(TID, sealed_tmk)
    terminal = TerminalKeys(TMK)
    terminal.accept_field62(issued.field62)
    return sealed_tmk, issued, terminal


def test_tmk_check_value(hsm: SecurityModule) -> None:
    sealed = hsm.seal_tmk(TID, TMK)
    assert hsm.tmk_check_value(TID, sealed) == check_value(TMK).hex().upper()
    with pytest.raises(SealedKeyError):
        hsm.tmk_check_value("10000002", sealed)


def test_issue_working_keys_fresh_each_time(hsm: SecurityModule) -> None:
    sealed_tmk = hsm.seal_tmk(TID, TMK)
    first = hsm.issue_working_keys(TID, sealed_tmk)
    second = hsm.issue_working_keys(TID, sealed_tmk)
    assert first.field62 != second.field62
    assert (first.pik_kcv, first.mak_kcv) != (second.pik_kcv, second.mak_kcv)
    keys = unpack_field62(TMK, first.field62)
    assert (keys.pik_kcv, keys.mak_kcv) == (first.pik_kcv, first.mak_kcv)
    assert repr(first) == f"IssuedKeys(pik_kcv='{first.pik_kcv}', mak_kcv='{first.mak_kcv}')"


def test_terminal_and_host_agree_on_mac(hsm: SecurityModule) -> None:
    _, issued, terminal = _signed_on(hsm)
    assert terminal.check_values()["pik"] == issued.pik_kcv
    assert terminal.check_values()["mak"] == issued.mak_kcv
    block = mac_block(PURCHASE)
    mac = terminal.mac(block)
    assert hsm.verify_mac(TID, issued.sealed_mak, block, mac)
    assert hsm.generate_mac(TID, issued.sealed_mak, block) == mac
    assert terminal.verify_mac(block, hsm.generate_mac(TID, issued.sealed_mak, block))
    assert not hsm.verify_mac(TID, issued.sealed_mak, _flip(block, 3), mac)


def test_mac_engine_cached_per_sign_on() -> None:
    kek = CountingKek(bytes(range(32)))
    hsm = SecurityModule(kek)
    _, issued, terminal = _signed_on(hsm)
    opened = kek.opened
    block = mac_block(PURCHASE)
    for _ in range(10):
        assert hsm.verify_mac(TID, issued.sealed_mak, block, terminal.mac(block))
    assert kek.opened == opened  # issue_working_keys already cached the engine
    restarted = SecurityModule(kek)
    for _ in range(10):
        assert restarted.verify_mac(TID, issued.sealed_mak, block, terminal.mac(block))
    assert kek.opened == opened + 1  # one unseal after a restart, then cached


def test_mac_cache_is_bounded(kek: KeyEncryptionKey) -> None:
    hsm = SecurityModule(kek, cache_size=2)
    sealed_tmk = hsm.seal_tmk(TID, TMK)
    for _ in range(5):
        hsm.issue_working_keys(TID, sealed_tmk)
    assert "mac_engines=2" in repr(hsm)
    assert hsm.forget(TID) == 4
    assert "mac_engines=0" in repr(hsm)


def test_sealed_mak_of_another_terminal_is_refused(hsm: SecurityModule) -> None:
    _, issued, _ = _signed_on(hsm)
    with pytest.raises(SealedKeyError):
        hsm.verify_mac("10000002", issued.sealed_mak, b"x", b"00000000")


def test_verify_pin_end_to_end(hsm: SecurityModule) -> None:
    _, issued, terminal = _signed_on(hsm)
    pvv = hsm.pin_verification_value(PAN, PIN)
    block = terminal.pin_block(PIN, PAN)
    assert hsm.verify_pin(TID, issued.sealed_pik, block, PAN, pvv)
    assert not hsm.verify_pin(TID, issued.sealed_pik, terminal.pin_block("123457", PAN), PAN, pvv)
    with pytest.raises(PinBlockError) as caught:
        hsm.verify_pin(TID, issued.sealed_pik, bytes(8), PAN, pvv)
    assert_no_secrets(str(caught.value))
    with pytest.raises(PinBlockError):  # a block made for another card
        hsm.verify_pin(TID, issued.sealed_pik, block, "6222021234567891234", pvv)


def test_verify_pin_with_spec_keys(kek: KeyEncryptionKey) -> None:
    hsm = SecurityModule(kek)
    sealed_pik = kek.seal(PIK, f"pik:{TID}")
    pvv = hsm.pin_verification_value(PAN, PIN)
    assert hsm.verify_pin(TID, sealed_pik, PIN_BLOCK, PAN, pvv)


def test_pvv_text(hsm: SecurityModule) -> None:
    pvv = hsm.pin_verification_value(PAN, PIN)
    scheme, length, offset = pvv.split(":")
    assert (scheme, length) == ("3624", "6")
    assert len(offset) == 6 and offset.isdigit()
    assert offset != PIN


def test_pvv_stable_across_restarts_and_key_dependent(kek: KeyEncryptionKey) -> None:
    pvv = SecurityModule(kek).pin_verification_value(PAN, PIN)
    assert (
        SecurityModule(KeyEncryptionKey(bytes(range(32)))).pin_verification_value(PAN, PIN) == pvv
    )
    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert SecurityModule(kek, pvk=pvk).pin_verification_value(PAN, PIN) != pvv


def _offset_by_psec(pvk: bytes, pin: str, pan: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offset: str = psec.pin.generate_ibm3624_offset(
            pvk,
            "0123456789012345",
            pin,
            pan,
            max(len(pan) - 17, 0),
            min(len(pan) - 1, 16),
            "F",
        )
    return offset


def test_pvv_is_ibm3624_offset(kek: KeyEncryptionKey) -> None:
    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    hsm = SecurityModule(kek, pvk=pvk)
    for pan in (PAN, "4761739001010010", "6212345678901"):
        assert hsm.pin_verification_value(pan, PIN) == f"3624:6:{_offset_by_psec(pvk, PIN, pan)}"
        for pin in PINS:  # every length 4-12 (the offset's digits are made in one addition)
            want = f"3624:{len(pin)}:{_offset_by_psec(pvk, pin, pan)}"
            assert hsm.pin_verification_value(pan, pin) == want
    rng = random.Random(3624)  # every digit pair, many times over
    for _ in range(300):
        pan = "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19)))
        pin = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        want = f"3624:{len(pin)}:{_offset_by_psec(pvk, pin, pan)}"
        assert hsm.pin_verification_value(pan, pin) == want


PINS = [
    "1234",
    "09871",
    "123456",
    "0000000",
    "98765432",
    "111111111",
    "2468013579",
    "10293847561",
    "000000000000",
]


@pytest.mark.parametrize("pin", PINS, ids=[f"len{len(p)}" for p in PINS])
def test_pvv_rejects_every_other_pin(hsm: SecurityModule, pin: str) -> None:
    _, issued, terminal = _signed_on(hsm)
    pvv = hsm.pin_verification_value(PAN, pin)

    def verifies(candidate: str) -> bool:
        return hsm.verify_pin(TID, issued.sealed_pik, terminal.pin_block(candidate, PAN), PAN, pvv)

    assert verifies(pin)
    for position in range(len(pin)):
        for digit in "0123456789":
            if digit != pin[position]:
                assert not verifies(pin[:position] + digit + pin[position + 1 :])
    for other in (pin[:-1], pin + "0", pin + pin[-1], "0" + pin, pin[1:]):
        if 4 <= len(other) <= 12:
            assert not verifies(other)


@pytest.mark.parametrize(
    "pvv", ["", "3624:6:12345", "3624:6:12345x", "3624:3:123", "visa:6:123456"]
)
def test_malformed_pvv(hsm: SecurityModule, pvv: str) -> None:
    sealed_pik = KeyEncryptionKey(bytes(range(32))).seal(PIK, f"pik:{TID}")
    with pytest.raises(ValueError, match="malformed PIN verification value"):
        hsm.verify_pin(TID, sealed_pik, PIN_BLOCK, PAN, pvv)


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12 456", "abcd"])
def test_pvv_refuses_bad_pins(hsm: SecurityModule, pin: str) -> None:
    with pytest.raises(ValueError, match="PIN must be 4 to 12 digits"):
        hsm.pin_verification_value(PAN, pin)


def test_rewrap_tmk(hsm: SecurityModule) -> None:
    sealed = hsm.seal_tmk(TID, TMK)
    new_kek = KeyEncryptionKey.generate()
    rewrapped = hsm.rewrap_tmk(TID, sealed, new_kek)
    assert SecurityModule(new_kek).tmk_check_value(TID, rewrapped) == hsm.tmk_check_value(
        TID, sealed
    )


# -- terminal ------------------------------------------------------------------------


def test_terminal_signs_on_with_spec_field62() -> None:
    terminal = TerminalKeys(TMK)
    assert not terminal.signed_on
    with pytest.raises(NotSignedOnError):
        terminal.mac(b"x")
    with pytest.raises(NotSignedOnError):
        terminal.pin_block(PIN, PAN)
    terminal.accept_field62(FIELD62)
    assert terminal.signed_on
    assert terminal.check_values() == {
        "tmk": check_value(TMK).hex().upper(),
        "pik": "CEBD4274",
        "mak": "A2AFCD72",
    }
    assert terminal.pin_block(PIN, PAN) == PIN_BLOCK
    assert terminal.mac(mac_block(PURCHASE)) == b"B243C750"
    assert terminal.verify_mac(mac_block(APPROVED), b"6DD74E40")
    terminal.sign_off()
    assert not terminal.signed_on


def test_terminal_keeps_old_keys_when_field62_refused() -> None:
    terminal = TerminalKeys(TMK)
    terminal.accept_field62(FIELD62)
    with pytest.raises(KeyCheckError):
        terminal.accept_field62(_flip(FIELD62, 39))
    assert terminal.check_values()["mak"] == "A2AFCD72"


def test_terminal_sealed_round_trip(kek: KeyEncryptionKey) -> None:
    terminal = TerminalKeys(TMK)
    assert TerminalKeys.from_sealed(kek, terminal.to_sealed(kek, TID), TID).signed_on is False
    terminal.accept_field62(FIELD62)
    sealed = terminal.to_sealed(kek, TID)
    assert set(sealed) == {"tmk", "pik", "mak"}
    assert_no_secrets(repr(sealed))
    restored = TerminalKeys.from_sealed(kek, sealed, TID)
    assert restored.check_values() == terminal.check_values()
    assert restored.mac(mac_block(PURCHASE)) == b"B243C750"
    with pytest.raises(SealedKeyError):
        TerminalKeys.from_sealed(kek, sealed, "10000002")
    with pytest.raises(SealedKeyError):
        TerminalKeys.from_sealed(KeyEncryptionKey.generate(), sealed, TID)


# -- nothing leaks -----------------------------------------------------------------------


def test_no_key_or_pin_material_in_reprs(hsm: SecurityModule, kek: KeyEncryptionKey) -> None:
    terminal = TerminalKeys(TMK)
    terminal.accept_field62(FIELD62)
    sealed_tmk, issued, _ = _signed_on(hsm)
    objects: list[object] = [
        WorkingKeys(PIK, MAK),
        unpack_field62(TMK, FIELD62),
        MacEngine(MAK),
        PinEngine(PIK),
        terminal,
        kek,
        hsm,
        issued,
    ]
    for thing in objects:
        assert_no_secrets(repr(thing))
        assert_no_secrets(str(thing))
    assert repr(WorkingKeys(PIK, MAK)) == "WorkingKeys(pik_kcv=CEBD4274, mak_kcv=A2AFCD72)"
    assert repr(terminal) == (
        f"TerminalKeys(tmk_kcv={check_value(TMK).hex().upper()}, signed_on=True, "
        "pik_kcv=CEBD4274, mak_kcv=A2AFCD72)"
    )
    assert_no_secrets(sealed_tmk)


@pytest.mark.usefixtures("no_kek_env")
def test_kek_file_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same branch as above, reachable even as root."""
    path = tmp_path / "kek"
    path.write_text(os.urandom(32).hex())
    path.chmod(0o600)

    def denied(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(KekError, match="not readable"):
        KeyEncryptionKey.load(path)
