from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import Amount

CATEGORIES = ("Compute", "Storage", "Networking", "Messaging", "Security", "Backup", "Database", "Support")


class Service(db.Model):
    """A sellable service of a provider's catalogue."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("provider_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(40))  # "user / month", "GB / month", "vCPU / month"
    description: Mapped[str] = mapped_column(String(500), default="")
    taxable: Mapped[bool] = mapped_column(default=True)
    tax_code: Mapped[str] = mapped_column(String(20), default="")  # SAC / HSN
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    prices: Mapped[list["ServicePrice"]] = relationship(back_populates="service", cascade="all, delete-orphan",
                                                        order_by="ServicePrice.currency")

    def price(self, currency: str) -> Decimal | None:
        return next((p.unit_price for p in self.prices if p.currency == currency), None)


class ServicePrice(db.Model):
    """Price per unit per billing month, in one currency."""

    __tablename__ = "service_prices"
    __table_args__ = (UniqueConstraint("service_id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    currency: Mapped[str] = mapped_column(String(3))
    unit_price: Mapped[Decimal] = mapped_column(Amount)

    service: Mapped[Service] = relationship(back_populates="prices")
