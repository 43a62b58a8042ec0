"""Money on Decimal.

Kassa never uses float for money. Amounts are rounded in exactly one place,
:func:`round_money`, to the provider's billing precision (by default the
currency's ISO 4217 minor units). Everything else adds, multiplies and compares
exact Decimals.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, list_currencies

ROUNDING = ROUND_HALF_UP
MAX_PRECISION = 6  # what the ledger stores exactly (see models.types.Amount)


class MoneyError(ValueError):
    """An amount or a currency that Kassa cannot accept."""


@lru_cache(maxsize=None)
def _iso_currencies() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def currency_codes() -> list[str]:
    """ISO 4217 codes that babel can also format, sorted."""
    return sorted(_iso_currencies() & set(list_currencies()))


def check_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if code not in _iso_currencies():
        raise MoneyError(f"Unknown currency {code!r}: use an ISO 4217 code such as USD or INR.")
    return code


def minor_units(code: str) -> int:
    """ISO 4217 minor units (INR 2, JPY 0, BHD 3)."""
    return get_currency_precision(check_currency(code))


def currency_name(code: str, locale: str = "en") -> str:
    return Locale.parse(locale).currencies.get(code, code)


def to_decimal(value) -> Decimal:
    """Parse user or JSON input into a Decimal; floats are refused outright."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError("Amounts must be given as strings or integers, never floats.")
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise MoneyError(f"{value!r} is not a number.") from None
    if not result.is_finite():
        raise MoneyError(f"{value!r} is not a finite number.")
    return result


def quantum(places: int) -> Decimal:
    if not 0 <= places <= MAX_PRECISION:
        raise MoneyError(f"Precision must be between 0 and {MAX_PRECISION} decimal places.")
    return Decimal(1).scaleb(-places)


def round_money(amount: Decimal, places: int) -> Decimal:
    """The one rounding function: half-up to ``places`` decimal places."""
    if not isinstance(amount, Decimal):
        raise MoneyError(f"round_money takes a Decimal, got {type(amount).__name__}.")
    return amount.quantize(quantum(places), rounding=ROUNDING)


def is_rounded(amount: Decimal, places: int) -> bool:
    return amount == amount.quantize(quantum(places), rounding=ROUNDING)


def plain(amount: Decimal | None, places: int = 2) -> str | None:
    """A Decimal as plain text with at least ``places`` decimals and no more than it
    needs (100.000000 -> "100.00", 0.333333 -> "0.333333"); the value never changes."""
    if amount is None:
        return None
    exponent = amount.normalize().as_tuple().exponent
    needed = max(places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return f"{amount.quantize(Decimal(1).scaleb(-needed)):f}"


def format_money(amount: Decimal, currency: str, locale: str = "en", places: int | None = None) -> str:
    """Human formatting with the currency symbol, e.g. ₹20,06,000.50 for en_IN."""
    if places is None:
        places = minor_units(currency)
    pattern = None
    if places != minor_units(currency):
        pattern = "¤#,##0" + ("." + "0" * places if places else "")
    return format_currency(
        round_money(amount, places), currency, format=pattern, locale=locale,
        currency_digits=pattern is None,
    )


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self):
        if not isinstance(self.amount, Decimal):
            raise MoneyError("Money.amount must be a Decimal.")
        object.__setattr__(self, "currency", check_currency(self.currency))

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError(f"Cannot combine {self.currency} with {getattr(other, 'currency', other)!r}.")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def rounded(self, places: int) -> "Money":
        return Money(round_money(self.amount, places), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
