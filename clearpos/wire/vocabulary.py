"""The dialect's vocabulary: transaction kinds (processing code, MTI, 60.1, 25),
network management codes (60.3), the answer-MTI rule, card organisations."""

from __future__ import annotations

from enum import Enum

from .errors import EncodeError

# --------------------------------------------------------------------------- vocabulary


def _response_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


class Kind(Enum):
    """Financial transaction kinds with their wire identity (spec §4 table).

    value: (name, request MTI, processing code, condition code, 60.1, reversible,
    money direction for the cardholder: +1 debit, -1 credit, 0 none).
    """

    BALANCE = ("balance", "0200", "310000", "00", "01", False, 0)
    PREAUTH = ("preauth", "0100", "030000", "06", "10", True, 0)
    PREAUTH_VOID = ("preauth_void", "0100", "200000", "06", "11", True, 0)
    COMPLETION = ("completion", "0200", "000000", "06", "20", True, 1)
    #: a completion the terminal sends as an advice (0220, 60.1 = 24); handled like 20
    COMPLETION_ADVICE = ("completion_advice", "0220", "000000", "06", "24", False, 1)
    COMPLETION_VOID = ("completion_void", "0200", "200000", "06", "21", True, -1)
    PURCHASE = ("purchase", "0200", "000000", "00", "22", True, 1)
    VOID = ("void", "0200", "200000", "00", "23", True, -1)
    REFUND = ("refund", "0220", "200000", "00", "25", False, -1)
    OFFLINE = ("offline", "0220", "000000", "00", "30", False, 1)

    # plain attributes, set once per member (a property per read costs an enum
    # descriptor call on the host's every message)
    label: str
    mti: str
    response_mti: str
    processing_code: str
    condition: str
    #: 60.1
    type_code: str
    reversible: bool
    direction: int
    has_amount: bool

    def __init__(
        self,
        label: str,
        mti: str,
        processing_code: str,
        condition: str,
        type_code: str,
        reversible: bool,
        direction: int,
    ) -> None:
        self.label = label
        self.mti = mti
        self.response_mti = _response_mti(mti)
        self.processing_code = processing_code
        self.condition = condition
        self.type_code = type_code
        self.reversible = reversible
        self.direction = direction
        self.has_amount = label != "balance"

    @classmethod
    def by_label(cls, label: str) -> Kind:
        for k in cls:
            if k.label == label:
                return k
        raise ValueError(f"unknown transaction kind {label!r}")


_KIND_BY_WIRE: dict[tuple[str, str, str, str], Kind] = {
    (k.mti, k.processing_code, k.condition, k.type_code): k for k in Kind
}


def response_mti(mti: str) -> str:
    """The MTI that answers a request MTI: ``0200`` -> ``0210`` (the one rule).

    >>> response_mti("0800"), response_mti("0620")
    ('0810', '0630')
    """
    return _response_mti(mti)


class NetCode:
    """Field 60.3 network management information codes used by the dialect."""

    NONE = "000"
    SIGN_ON = "003"
    SIGN_ON_SINGLE = "001"
    SIGN_OFF = "002"
    SETTLEMENT = "201"
    BATCH_UPLOAD = "201"
    BATCH_UPLOAD_END = "202"
    #: batch upload end after a balanced settlement's TC upload (PAX template)
    BATCH_UPLOAD_END_BALANCED = "207"
    ECHO = "301"
    PARAMETERS = "360"
    PARAMETERS_MORE = "361"
    STATUS_UPLOAD = "362"
    SIGN_ON_TDK = "004"
    CHIP_DETAIL = "203"
    CHIP_OFFLINE_TC = "205"
    SCRIPT_RESULT = "951"
    CAPK_QUERY = "372"
    CAPK_DOWNLOAD = "370"
    CAPK_END = "371"
    AID_QUERY = "382"
    AID_DOWNLOAD = "380"
    AID_END = "381"

    #: 60.3 of a sign-on -> the working-key layout of the answer's field 62 (spec §4, §5)
    SIGN_ON_SCHEMES = frozenset({SIGN_ON_SINGLE, SIGN_ON, SIGN_ON_TDK})


#: 60.3 of the 0800 downloads (a :class:`ParameterDownload`)
DOWNLOADS = frozenset(
    {
        NetCode.PARAMETERS,
        NetCode.PARAMETERS_MORE,
        NetCode.CAPK_DOWNLOAD,
        NetCode.CAPK_END,
        NetCode.AID_DOWNLOAD,
        NetCode.AID_END,
    }
)

ORG_NONE = "   "
ORGANISATIONS = frozenset({"CUP", "VIS", "MCC", "JCB", "AMX", ORG_NONE})


def _need_digits(value: str, n: int | tuple[int, int], what: str, fieldno: int) -> None:
    if len(value) == n and value.isdecimal() and value.isascii():
        return  # the common case: exactly n digits
    lo, hi = (n, n) if isinstance(n, int) else n
    if not (lo <= len(value) <= hi and value.isdecimal() and value.isascii()):
        size = f"{lo}" if lo == hi else f"{lo}-{hi}"
        raise EncodeError(f"{what} must be {size} digits", field=fieldno)
