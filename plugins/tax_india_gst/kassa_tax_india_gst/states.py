"""GST state codes: the first two digits of a GSTIN and the place of supply.

python-stdnum's ``stdnum.in_.gstin`` carries a table of its own, but it predates
three changes and has typos ("Anadaman", "Chattisgarh", "Orissa"): Ladakh (38,
2019) is missing, Daman and Diu (25) and Dadra and Nagar Haveli (26) merged into
one Union Territory under 26 in 2020, and "Other Territory" (97) is absent. The
table below is the GST Network's state-code list as used by the e-invoice and
GSTR-1 masters; every stdnum spelling is accepted as an alias of it, and a test
checks that each stdnum code is covered.
"""
from __future__ import annotations

import re

#: code -> official name (GSTN master, as printed in "place of supply": "33-Tamil Nadu").
STATES: dict[str, str] = {
    "01": "Jammu and Kashmir",
    "02": "Himachal Pradesh",
    "03": "Punjab",
    "04": "Chandigarh",
    "05": "Uttarakhand",
    "06": "Haryana",
    "07": "Delhi",
    "08": "Rajasthan",
    "09": "Uttar Pradesh",
    "10": "Bihar",
    "11": "Sikkim",
    "12": "Arunachal Pradesh",
    "13": "Nagaland",
    "14": "Manipur",
    "15": "Mizoram",
    "16": "Tripura",
    "17": "Meghalaya",
    "18": "Assam",
    "19": "West Bengal",
    "20": "Jharkhand",
    "21": "Odisha",
    "22": "Chhattisgarh",
    "23": "Madhya Pradesh",
    "24": "Gujarat",
    "25": "Daman and Diu",  # GSTINs issued before the 2020 merger with 26
    "26": "Dadra and Nagar Haveli and Daman and Diu",
    "27": "Maharashtra",
    "28": "Andhra Pradesh (before division)",  # GSTINs issued before 37 existed
    "29": "Karnataka",
    "30": "Goa",
    "31": "Lakshadweep",
    "32": "Kerala",
    "33": "Tamil Nadu",
    "34": "Puducherry",
    "35": "Andaman and Nicobar Islands",
    "36": "Telangana",
    "37": "Andhra Pradesh",
    "38": "Ladakh",
    "97": "Other Territory",
}

#: The place of supply of an export ("96-Other Countries"); never a GSTIN prefix.
EXPORT_CODE = "96"
EXPORT_NAME = "Other Countries"

#: Codes whose registrations are closed: a GSTIN may still carry them, an address maps elsewhere.
_RETIRED = {"25": "26", "28": "37"}

#: Other spellings and abbreviations people type, mapped to the current code.
_ALIASES: dict[str, str] = {
    # python-stdnum's spellings
    "Orissa": "21", "Chattisgarh": "22", "Anadaman and Nicobar Islands": "35", "Andhra Pradesh (New)": "37",
    "Dadar and Nagar Haveli": "26",
    # older names and common variants
    "Jammu & Kashmir": "01", "J&K": "01", "Uttaranchal": "05", "NCT of Delhi": "07", "New Delhi": "07",
    "National Capital Territory of Delhi": "07", "Dadra and Nagar Haveli": "26", "Dadra & Nagar Haveli": "26",
    "DNHDD": "26", "Pondicherry": "34", "Andaman and Nicobar": "35", "Andaman & Nicobar": "35",
    "Lakshadweep Islands": "31", "Telengana": "36", "Tamilnadu": "33",
    # ISO 3166-2:IN subdivision codes (with and without the "IN-" prefix), old and 2023 ones
    "AN": "35", "AP": "37", "AR": "12", "AS": "18", "BR": "10", "CH": "04", "CT": "22", "CG": "22", "DH": "26",
    "DD": "26", "DN": "26", "DL": "07", "GA": "30", "GJ": "24", "HP": "02", "HR": "06", "JH": "20", "JK": "01",
    "KA": "29", "KL": "32", "LA": "38", "LD": "31", "MH": "27", "ML": "17", "MN": "14", "MP": "23", "MZ": "15",
    "NL": "13", "OR": "21", "OD": "21", "PB": "03", "PY": "34", "RJ": "08", "SK": "11", "TG": "36", "TS": "36",
    "TN": "33", "TR": "16", "UP": "09", "UT": "05", "UK": "05", "WB": "19",
}


def _key(text: str) -> str:
    text = (text or "").strip().lower().replace("&", "and")
    if text.startswith("in-"):
        text = text[3:]
    return re.sub(r"[^a-z0-9]", "", text)


_LOOKUP: dict[str, str] = {}
for _code, _name in STATES.items():
    _LOOKUP[_key(_name)] = _RETIRED.get(_code, _code)
_LOOKUP[_key("Daman and Diu")] = "26"
for _alias, _code in _ALIASES.items():
    _LOOKUP[_key(_alias)] = _code


def state_name(code: str) -> str:
    if code == EXPORT_CODE:
        return EXPORT_NAME
    return STATES.get(code, "")


def state_code(text: str) -> str | None:
    """The GST code of a state given by name (any common spelling or case), by
    ISO 3166-2 code ("TN", "IN-TN") or by its two-digit GST code; ``None`` if unknown."""
    raw = (text or "").strip()
    if not raw:
        return None
    if raw.isdigit() and len(raw) <= 2:
        code = raw.zfill(2)
        return _RETIRED.get(code, code) if code in STATES else None
    return _LOOKUP.get(_key(raw))


def place_label(code: str) -> str:
    """As GSTR-1 and invoices print it: "33-Tamil Nadu"."""
    return f"{code}-{state_name(code)}"
