from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.services.periods import day_fraction, period_containing, period_end


def test_month_end_anchor_does_not_drift():
    anchor = date(2026, 1, 31)
    assert period_containing(anchor, "monthly", date(2026, 2, 10)) == (date(2026, 1, 31), date(2026, 2, 28))
    assert period_end(anchor, "monthly", date(2026, 2, 28)) == date(2026, 3, 31)
    assert period_end(anchor, "monthly", date(2026, 3, 31)) == date(2026, 4, 30)


def test_quarterly_and_yearly():
    assert period_containing(date(2026, 1, 5), "quarterly", date(2026, 5, 1)) == (date(2026, 4, 5), date(2026, 7, 5))
    assert period_containing(date(2024, 2, 29), "yearly", date(2025, 3, 1)) == (date(2025, 2, 28), date(2026, 2, 28))


def test_unknown_cycle():
    with pytest.raises(ValueError):
        period_end(date(2026, 1, 1), "weekly", date(2026, 1, 1))


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
       st.integers(min_value=0, max_value=4000), st.sampled_from(["monthly", "quarterly", "yearly"]))
def test_periods_tile_the_calendar(anchor, offset, cycle):
    day = anchor + timedelta(days=offset)
    start, end = period_containing(anchor, cycle, day)
    assert start <= day < end
    assert period_containing(anchor, cycle, end)[0] == end  # the next period starts where this one ends


@given(st.integers(min_value=1, max_value=29))
def test_fractions_of_a_split_period_add_up_to_one(split):
    period = (date(2026, 4, 1), date(2026, 5, 1))
    cut = date(2026, 4, 1) + timedelta(days=split)
    assert day_fraction(period[0], cut, period) + day_fraction(cut, period[1], period) == 1
    assert day_fraction(date(2026, 4, 16), date(2026, 5, 1), period) == Decimal(15) / Decimal(30)
