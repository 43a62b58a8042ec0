from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .catalog import Service
from .orgs import Organisation
from .types import Amount

CYCLES = {"monthly": 1, "quarterly": 3, "yearly": 12}
STATUSES = ("trial", "active", "suspended", "cancelled")


class Subscription(db.Model):
    """A resource subscription (the seed's contract): items billed together on
    their own cycle. ``next_period_start`` is the start of the first period not
    yet invoiced; the billing run moves it on."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_due", "provider_id", "status", "next_period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    cycle: Mapped[str] = mapped_column(String(16))
    anchor_date: Mapped[date]
    next_period_start: Mapped[date]
    status: Mapped[str] = mapped_column(String(16))
    trial_ends_on: Mapped[date | None]
    auto_deduction: Mapped[bool] = mapped_column(default=False)
    cancelled_on: Mapped[date | None]
    created_at: Mapped[datetime]

    org: Mapped[Organisation] = relationship(foreign_keys=[org_id])
    items: Mapped[list["SubscriptionItem"]] = relationship(back_populates="subscription", order_by="SubscriptionItem.id")


class SubscriptionItem(db.Model):
    """A service × units at a price per month. Units change only through
    :class:`UnitChange` rows, so each change is prorated exactly once."""

    __tablename__ = "subscription_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    units: Mapped[Decimal] = mapped_column(Amount)
    unit_price: Mapped[Decimal] = mapped_column(Amount)  # per unit per month, in the subscription currency
    created_at: Mapped[datetime]

    subscription: Mapped[Subscription] = relationship(back_populates="items")
    service: Mapped[Service] = relationship()


class UnitChange(db.Model):
    """A mid-cycle change of an item's units, effective from a day; billed (prorated)
    once, on the invoice of the period it falls in."""

    __tablename__ = "unit_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("subscription_items.id"), index=True)
    effective_on: Mapped[date]
    old_units: Mapped[Decimal] = mapped_column(Amount)
    new_units: Mapped[Decimal] = mapped_column(Amount)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]

    item: Mapped[SubscriptionItem] = relationship()
