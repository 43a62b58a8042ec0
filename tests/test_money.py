from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.money import (Money, MoneyError, check_currency, format_money, is_rounded, minor_units, round_money,
                         to_decimal)

amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False,
                      places=8)
places = st.integers(min_value=0, max_value=6)


@given(amounts, places)
def test_rounding_is_idempotent_and_within_half_a_unit(amount, p):
    once = round_money(amount, p)
    assert round_money(once, p) == once
    assert is_rounded(once, p)
    assert abs(once - amount) <= Decimal(1).scaleb(-p) / 2


@given(amounts, amounts, places)
def test_rounding_is_monotonic(a, b, p):
    if a <= b:
        assert round_money(a, p) <= round_money(b, p)


def test_half_up_not_bankers():
    assert round_money(Decimal("2.345"), 2) == Decimal("2.35")
    assert round_money(Decimal("2.335"), 2) == Decimal("2.34")
    assert round_money(Decimal("-2.345"), 2) == Decimal("-2.35")
    assert round_money(Decimal("0.5"), 0) == Decimal("1")


def test_round_refuses_float_and_bad_precision():
    with pytest.raises(MoneyError):
        round_money(2.345, 2)
    with pytest.raises(MoneyError):
        round_money(Decimal("1"), 7)


def test_to_decimal_refuses_float_and_garbage():
    assert to_decimal("12.50") == Decimal("12.50")
    assert to_decimal(3) == Decimal(3)
    for bad in (1.5, "abc", "NaN", "Infinity", True, ""):
        with pytest.raises(MoneyError):
            to_decimal(bad)


def test_iso_4217_minor_units():
    assert minor_units("INR") == 2
    assert minor_units("JPY") == 0
    assert minor_units("BHD") == 3
    assert check_currency(" usd ") == "USD"
    with pytest.raises(MoneyError):
        check_currency("XYZ")


def test_money_refuses_mixing_currencies():
    assert Money(Decimal("1.10"), "INR") + Money(Decimal("2.20"), "INR") == Money(Decimal("3.30"), "INR")
    with pytest.raises(MoneyError):
        Money(Decimal("1"), "INR") + Money(Decimal("1"), "USD")
    with pytest.raises(MoneyError):
        Money(1.0, "INR")


def test_formatting_indian_grouping_and_symbol():
    assert format_money(Decimal("2006000.50"), "INR", locale="en_IN") == "₹20,06,000.50"
    assert format_money(Decimal("5"), "USD", locale="en_US") == "$5.00"
    assert format_money(Decimal("1.2345"), "USD", locale="en_US", places=3) == "$1.235"
