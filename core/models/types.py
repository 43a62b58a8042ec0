"""Column types shared by the models."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger
from sqlalchemy.types import TypeDecorator

AMOUNT_SCALE = 6


class Amount(TypeDecorator):
    """An exact Decimal stored as an integer count of 10⁻⁶ units.

    SQLite has no decimal type (NUMERIC columns come back as float), and Kassa
    must give the same exact answers on SQLite and PostgreSQL. A scaled integer
    is exact on both, and ``SUM`` over it in SQL stays exact. Six places cover
    every ISO 4217 currency and any configured billing precision.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"Amount columns take Decimal, not {type(value).__name__}.")
        scaled = Decimal(value).scaleb(AMOUNT_SCALE)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {AMOUNT_SCALE} decimal places.")
        return int(scaled)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-AMOUNT_SCALE)

    def process_literal_param(self, value, dialect):
        return str(self.process_bind_param(value, dialect))
