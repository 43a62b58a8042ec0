"""GSTIN validation with a clear message for each way a GSTIN can be wrong.

The checks are python-stdnum's (``stdnum.in_.gstin``: format, PAN, Luhn mod 36
check character), run one by one so the message says which part is wrong, and
against this plugin's state table (stdnum's lacks Ladakh, 38, and Other
Territory, 97, so it rejects valid GSTINs of those).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.in_ import gstin as std_gstin
from stdnum.in_ import pan as std_pan

from .states import STATES

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SHAPE = re.compile(r"^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][0-9A-Z]Z[0-9A-Z]$")


@dataclass(frozen=True)
class GstinResult:
    valid: bool
    normalized: str
    message: str
    details: dict = field(default_factory=dict)


def check(value: str) -> GstinResult:
    number = std_gstin.compact(value or "")
    if not number:
        return GstinResult(False, number, "Enter a GSTIN (15 characters, e.g. 33AAACB1234C1Z5).")
    if len(number) != 15:
        return GstinResult(False, number, f"A GSTIN has 15 characters; this one has {len(number)}.")
    if not _SHAPE.match(number):
        return GstinResult(False, number, "Not a GSTIN: it is 2 digits (state code), the 10-character PAN, an "
                                          "entity number, the letter Z and a check character.")
    code = number[:2]
    if code not in STATES:
        return GstinResult(False, number, f"{code} is not a GST state code, so this is not a valid GSTIN.")
    if number[12] == "0":
        return GstinResult(False, number, "The 13th character of a GSTIN (the entity number) cannot be 0.")
    try:
        std_pan.validate(number[2:12])
    except ValidationError:
        return GstinResult(False, number, f"The PAN inside the GSTIN ({number[2:12]}) is not valid.")
    try:
        luhn.validate(number, _ALPHABET)
    except ValidationError:
        return GstinResult(False, number, "The check character (the last one) does not match: checksum error; "
                                          "look for a typo in the GSTIN.")
    return GstinResult(True, number, f"Valid GSTIN ({STATES[code]})",
                       {"state": STATES[code], "state_code": code, "pan": number[2:12]})


def valid_gstin(value: str) -> str:
    """The normalised GSTIN if ``value`` is a valid one, else ``""``."""
    result = check(value)
    return result.normalized if result.valid else ""
