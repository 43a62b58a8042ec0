"""Billing cycles and proration, on dates only.

Periods are half-open ``[start, end)``. A subscription's n-th period starts at
``anchor + n × months`` computed from the anchor each time, so a 31st anchor
gives Feb 28/29 and then the 31st again (no drift).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from ..models.subscriptions import CYCLES


def months(cycle: str) -> int:
    try:
        return CYCLES[cycle]
    except KeyError:
        raise ValueError(f"Unknown billing cycle {cycle!r}; use one of {', '.join(CYCLES)}.") from None


def period_containing(anchor: date, cycle: str, day: date) -> tuple[date, date]:
    """The period of this cycle that contains ``day`` (``day`` on or after ``anchor``)."""
    step = months(cycle)
    n = max(0, ((day.year - anchor.year) * 12 + day.month - anchor.month) // step)
    start = anchor + relativedelta(months=n * step)
    while start > day:
        n -= 1
        start = anchor + relativedelta(months=n * step)
    end = anchor + relativedelta(months=(n + 1) * step)
    while end <= day:
        n += 1
        start, end = end, anchor + relativedelta(months=(n + 1) * step)
    return start, end


def period_end(anchor: date, cycle: str, start: date) -> date:
    return period_containing(anchor, cycle, start)[1]


def day_fraction(start: date, end: date, period: tuple[date, date]) -> Decimal:
    """Share of ``period`` covered by ``[start, end)``, exact (days over days)."""
    p_start, p_end = period
    covered = (min(end, p_end) - max(start, p_start)).days
    if covered <= 0:
        return Decimal(0)
    return Decimal(covered) / Decimal((p_end - p_start).days)
