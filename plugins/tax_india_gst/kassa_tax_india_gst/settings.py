"""The plugin's settings: the default GST rate, rates by SAC code and the LUT number.

Rates by SAC are lines of ``CODE=RATE`` (``998315=18``); blank lines and lines
starting with ``#`` are ignored. A code may be a full SAC/HSN (``998315``) or a
heading (``9983``): the longest code that starts the line's SAC wins, so one line
can cover a heading and another override one service in it. A rate of 0 makes
the service nil-rated.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from wtforms import DecimalField, Form, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

PLUGIN_NAME = "tax_india_gst"
DEFAULT_RATE = Decimal("18")
MAX_RATE = Decimal("100")
_CODE = re.compile(r"^[0-9]{2,8}$")


class RateTableError(ValueError):
    pass


def normalize_rate(rate: Decimal) -> Decimal:
    """18.00 -> 18, 0.250 -> 0.25; never an exponent form (100 stays 100)."""
    value = rate.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def parse_rate(text: str, where: str = "rate") -> Decimal:
    try:
        rate = Decimal(str(text).strip().rstrip("%").strip())
    except InvalidOperation:
        raise RateTableError(f"{where}: {text!r} is not a number.") from None
    if not rate.is_finite() or rate < 0 or rate > MAX_RATE:
        raise RateTableError(f"{where}: the rate must be between 0 and 100 (percent).")
    if rate != rate.quantize(Decimal("0.01")):
        raise RateTableError(f"{where}: at most 2 decimal places (e.g. 0.25).")
    return normalize_rate(rate)


def parse_sac_rates(text: str) -> dict[str, Decimal]:
    """``"998315=18\\n9983=12"`` -> ``{"998315": 18, "9983": 12}``; raises with the line number."""
    rates: dict[str, Decimal] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        code, sep, rate = line.partition("=")
        code = code.strip().replace(" ", "")
        if not sep:
            raise RateTableError(f"Line {number}: write CODE=RATE, e.g. 998315=18.")
        if not _CODE.match(code):
            raise RateTableError(f"Line {number}: {code or '(empty)'!r} is not a SAC/HSN code (2 to 8 digits).")
        if code in rates:
            raise RateTableError(f"Line {number}: {code} is listed twice.")
        rates[code] = parse_rate(rate, f"Line {number}")
    return rates


def _validate_sac_rates(form, field):
    try:
        parse_sac_rates(field.data or "")
    except RateTableError as exc:
        raise ValidationError(str(exc)) from None


def _validate_default_rate(form, field):
    if field.data is not None:
        try:
            parse_rate(field.data, "Default rate")
        except RateTableError as exc:
            raise ValidationError(str(exc)) from None


class GstSettings(Form):
    default_rate = DecimalField(
        "Default GST rate (%)", default=DEFAULT_RATE, places=2,
        validators=[InputRequired(), NumberRange(min=0, max=100), _validate_default_rate],
        description="Applies to every taxable service whose SAC code is not listed below.")
    sac_rates = TextAreaField(
        "GST rate by SAC code", default="", validators=[Optional(), _validate_sac_rates],
        description="One per line, CODE=RATE, e.g. 998315=18 or 9983=18; the longest matching code wins; "
                    "0 makes a service nil-rated. Services marked not taxable are exempt.")
    lut_number = StringField(
        "LUT reference number (ARN)", default="",
        validators=[Optional(), Length(max=50),
                    Regexp(r"^[A-Za-z0-9/\-]+$", message="Letters, digits, / and - only.")],
        description="Letter of Undertaking for exports without payment of IGST; printed on export invoices.")


@dataclass(frozen=True)
class RateTable:
    default: Decimal
    by_code: Mapping[str, Decimal]
    lut_number: str = ""

    def rate_for(self, tax_code: str) -> Decimal:
        code = (tax_code or "").strip().replace(" ", "")
        best = None
        for prefix in self.by_code:
            if code.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return self.by_code[best] if best is not None else self.default


def rate_table(settings: Mapping) -> RateTable:
    """The rates from the provider's stored settings (form defaults where unset)."""
    default = settings.get("default_rate")
    return RateTable(
        default=parse_rate(default, "Default rate") if default not in (None, "") else DEFAULT_RATE,
        by_code=parse_sac_rates(settings.get("sac_rates") or ""),
        lut_number=(settings.get("lut_number") or "").strip(),
    )
