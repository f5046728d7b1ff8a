"""What the chip data of a transaction says, in words, with card data masked.

For the journal, the help desk and the console: :func:`masked_tags` is field 55
as a JSON-friendly ``{tag: hex}`` map (PAN masked, tracks and names hidden, see
:data:`clearpos.wire.tlv.CARD_DATA_TAGS`); :func:`describe` adds the AID, the
cryptogram type, the ATC, the TVR decoded into words (EMV Book 3 annex C5) and
the CVM results (EMV Book 3 annex C3, Book 4 A4), in Chinese or English.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

from .errors import DecodeError
from .mask import mask_pan
from .tlv import CARD_DATA_TAGS, Tlv, decode, flatten

__all__ = [
    "AID_NAMES",
    "TAG_NAMES",
    "cryptogram_type",
    "cvm_text",
    "describe",
    "masked_tags",
    "tvr_words",
]

Lang = Literal["zh", "en"]

#: Names of the tags a POS transaction carries (EMV Book 3 annex A; PBOC DF31).
TAG_NAMES: Final[dict[str, str]] = {
    "4F": "AID (card)",
    "50": "application label",
    "57": "track 2 equivalent data",
    "5A": "PAN",
    "5F20": "cardholder name",
    "5F24": "application expiration date",
    "5F2A": "transaction currency code",
    "5F34": "PAN sequence number",
    "71": "issuer script template 1",
    "72": "issuer script template 2",
    "82": "application interchange profile",
    "84": "dedicated file name (AID)",
    "86": "issuer script command",
    "91": "issuer authentication data",
    "95": "terminal verification results",
    "9A": "transaction date",
    "9C": "transaction type",
    "9F02": "amount, authorised",
    "9F03": "amount, other",
    "9F09": "application version number (terminal)",
    "9F10": "issuer application data",
    "9F18": "issuer script identifier",
    "9F1A": "terminal country code",
    "9F1E": "interface device serial number",
    "9F26": "application cryptogram",
    "9F27": "cryptogram information data",
    "9F33": "terminal capabilities",
    "9F34": "cardholder verification method results",
    "9F35": "terminal type",
    "9F36": "application transaction counter",
    "9F37": "unpredictable number",
    "9F41": "transaction sequence counter",
    "9F5B": "issuer script results",
    "9F63": "card product identification",
    "DF31": "issuer script results (PBOC)",
}

#: UnionPay application identifiers (RID A000000333).
AID_NAMES: Final[dict[str, str]] = {
    "A000000333010101": "UnionPay Debit",
    "A000000333010102": "UnionPay Credit",
    "A000000333010103": "UnionPay Quasi-credit",
}

# TVR bits, byte by byte from bit 8 down (None = RFU): (en, zh)
_TVR: Final[tuple[tuple[tuple[str, str] | None, ...], ...]] = (
    (
        ("offline data authentication was not performed", "未进行脱机数据认证"),
        ("SDA failed", "静态数据认证失败"),
        ("ICC data missing", "IC卡数据缺失"),
        ("card appears on the terminal exception file", "卡片在终端异常文件中"),
        ("DDA failed", "动态数据认证失败"),
        ("CDA failed", "复合动态数据认证失败"),
        ("SDA selected", "选择了静态数据认证"),
        None,
    ),
    (
        ("ICC and terminal have different application versions", "IC卡与终端的应用版本不同"),
        ("expired application", "应用已过期"),
        ("application not yet effective", "应用尚未生效"),
        ("requested service not allowed for the card product", "卡片产品不允许所请求的服务"),
        ("new card", "新卡"),
        None,
        None,
        None,
    ),
    (
        ("cardholder verification was not successful", "持卡人验证未成功"),
        ("unrecognised CVM", "无法识别的持卡人验证方法"),
        ("PIN try limit exceeded", "超过PIN尝试次数"),
        ("PIN required, PIN pad absent or not working", "需要PIN但密码键盘不存在或不工作"),
        ("PIN required, PIN pad present, PIN not entered", "需要PIN、密码键盘正常但未输入PIN"),
        ("online PIN entered", "输入了联机PIN"),
        None,
        None,
    ),
    (
        ("transaction exceeds the floor limit", "交易超过最低限额"),
        ("lower consecutive offline limit exceeded", "超过连续脱机交易下限"),
        ("upper consecutive offline limit exceeded", "超过连续脱机交易上限"),
        ("transaction selected randomly for online processing", "交易被随机选择联机处理"),
        ("merchant forced the transaction online", "商户要求联机处理"),
        None,
        None,
        None,
    ),
    (
        ("default TDOL used", "使用了缺省TDOL"),
        ("issuer authentication failed", "发卡行认证失败"),
        (
            "script processing failed before the final GENERATE AC",
            "最后一次GENERATE AC之前脚本处理失败",
        ),
        (
            "script processing failed after the final GENERATE AC",
            "最后一次GENERATE AC之后脚本处理失败",
        ),
        None,
        None,
        None,
        None,
    ),
)

# CVM codes (9F34 byte 1, bits 6-1): (en, zh)
_CVM: Final[dict[int, tuple[str, str]]] = {
    0x00: ("CVM failed", "持卡人验证失败"),
    0x01: ("offline plaintext PIN", "脱机明文PIN"),
    0x02: ("online PIN", "联机PIN"),
    0x03: ("offline plaintext PIN and signature", "脱机明文PIN加签名"),
    0x04: ("offline enciphered PIN", "脱机密文PIN"),
    0x05: ("offline enciphered PIN and signature", "脱机密文PIN加签名"),
    0x1E: ("signature", "签名"),
    0x1F: ("no CVM required", "无需持卡人验证"),
    0x3F: ("no CVM performed", "未进行持卡人验证"),
}
_CVM_RESULT: Final[dict[int, tuple[str, str]]] = {
    0x00: ("result unknown", "结果未知"),
    0x01: ("failed", "失败"),
    0x02: ("successful", "成功"),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "en" else pair[1]


def tvr_words(tvr: bytes, lang: Lang = "en") -> list[str]:
    """The set bits of a TVR (tag 95), in words; RFU bits are named as such.

    >>> tvr_words(bytes.fromhex("8000000040"))
    ['offline data authentication was not performed', 'issuer authentication failed']
    >>> tvr_words(bytes(5), "zh")
    []
    """
    words: list[str] = []
    for index, byte in enumerate(tvr[:5]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                meaning = _TVR[index][bit]
                if meaning is None:
                    words.append(f"TVR byte {index + 1} bit {8 - bit} (RFU)")
                else:
                    words.append(_pick(meaning, lang))
    return words


def cvm_text(results: bytes, lang: Lang = "en") -> str:
    """CVM results (tag 9F34): method and outcome.

    >>> cvm_text(bytes.fromhex("420302")), cvm_text(bytes.fromhex("1F0302"), "zh")
    ('online PIN, successful', '无需持卡人验证，成功')
    """
    if len(results) != 3:
        return "?"
    method = _CVM.get(results[0] & 0x3F)
    name = _pick(method, lang) if method else f"CVM {results[0] & 0x3F:02X}"
    outcome = _CVM_RESULT.get(results[2])
    if outcome is None:
        return name
    return f"{name}{', ' if lang == 'en' else '，'}{_pick(outcome, lang)}"


def cryptogram_type(cid: bytes) -> str:
    """Cryptogram information data (9F27), bits 8-7: AAC, TC, ARQC (or AAR).

    >>> cryptogram_type(b"\\x80"), cryptogram_type(b"\\x40"), cryptogram_type(b"\\x00")
    ('ARQC', 'TC', 'AAC')
    """
    if not cid:
        return "?"
    return ("AAC", "TC", "ARQC", "AAR")[cid[0] >> 6]


def _masked_value(tag: str, value: bytes) -> str:
    if tag == "5A":
        digits = value.hex().upper().rstrip("F")
        return mask_pan(digits) if digits.isdigit() else "[PAN hidden]"
    if tag in CARD_DATA_TAGS:
        return f"[{len(value)} bytes hidden]"
    return value.hex().upper()


def masked_tags(data: bytes | Iterable[Tlv]) -> dict[str, str]:
    """Field 55 as ``{tag: hex}`` for a journal or a page, card data masked; issuer
    scripts (71/72) summarised by their identifiers. Undecodable bytes give
    ``{"error": ...}`` (position only, no value)."""
    try:
        items = decode(bytes(data)) if isinstance(data, bytes | bytearray) else tuple(data)
    except DecodeError as exc:
        return {"error": exc.describe()}
    out = {tag: _masked_value(tag, value) for tag, value in flatten(items).items()}
    for n, script in enumerate((i for i in items if i.tag in ("71", "72")), start=1):
        ident = next((c.value.hex().upper() for c in script.children if c.tag == "9F18"), "")
        commands = sum(1 for c in script.children if c.tag == "86")
        out[f"{script.tag}#{n}"] = f"script {ident or '-'}, {commands} command(s)"
    return out


def describe(data: bytes | Mapping[str, bytes], lang: Lang = "en") -> dict[str, object]:
    """The facts a help desk reads off field 55: AID (and its name), cryptogram
    type, ATC, TVR in words, CVM, and every tag masked."""
    if isinstance(data, bytes | bytearray):
        try:
            tags = flatten(decode(bytes(data)))
        except DecodeError as exc:
            return {"error": exc.describe()}
        masked = masked_tags(bytes(data))
    else:
        tags = dict(data)
        masked = {tag: _masked_value(tag, value) for tag, value in tags.items()}
    out: dict[str, object] = {"tags": masked}
    aid = (tags.get("84") or tags.get("4F") or b"").hex().upper()
    if aid:
        out["aid"] = aid
        if aid in AID_NAMES:
            out["application"] = AID_NAMES[aid]
    if "9F27" in tags:
        out["cryptogram"] = cryptogram_type(tags["9F27"])
    if "9F36" in tags:
        out["atc"] = int.from_bytes(tags["9F36"], "big")
    if "95" in tags:
        out["tvr"] = tvr_words(tags["95"], lang)
    if "9F34" in tags:
        out["cvm"] = cvm_text(tags["9F34"], lang)
    return out
