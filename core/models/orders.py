"""Orders (seed 004 "Create Invoice"): a reseller or the provider orders services for a
new customer organisation; the order's invoice is paid online and the payment
activates the order (its subscription is created then)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .catalog import Service
from .orgs import Organisation
from .types import Amount
from .users import User

PENDING, ACTIVE = "pending", "active"
ORDER_STATUSES = (PENDING, ACTIVE)


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_provider", "provider_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    ordering_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # reseller or provider
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # the new customer
    contact_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    technical_admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), unique=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254))
    mobile: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)  # pending (payment) | active
    activation_error: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # who placed it
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]

    org: Mapped[Organisation] = relationship(foreign_keys=[org_id])
    ordering_org: Mapped[Organisation] = relationship(foreign_keys=[ordering_org_id])
    contact_user: Mapped[User] = relationship(foreign_keys=[contact_user_id])
    technical_admin: Mapped[User | None] = relationship(foreign_keys=[technical_admin_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    lines: Mapped[list["OrderLine"]] = relationship(back_populates="order", order_by="OrderLine.position")

    @property
    def number(self) -> str:
        return f"ORD-{self.id:06d}"


class OrderLine(db.Model):
    """A service × units at the price per unit per month in the order's currency."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int]
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    units: Mapped[Decimal] = mapped_column(Amount)
    unit_price: Mapped[Decimal] = mapped_column(Amount)

    order: Mapped[Order] = relationship(back_populates="lines")
    service: Mapped[Service] = relationship()
