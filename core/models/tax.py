from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import Amount


class TaxRule(db.Model):
    """Seed 000 "Tax Rule": a rate for buyers in a country. All active rules of the
    buyer's country apply to taxable lines (e.g. a federal and a state rate)."""

    __tablename__ = "tax_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    rate: Mapped[Decimal] = mapped_column(Amount)  # percent
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
