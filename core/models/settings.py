from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class BillingSettings(db.Model):
    """A provider's Currency Settings (seed 000) and invoicing defaults."""

    __tablename__ = "billing_settings"

    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    precision: Mapped[int] = mapped_column(default=2)
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="INV-")
    payment_terms_days: Mapped[int] = mapped_column(default=15)
    apply_wallet: Mapped[bool] = mapped_column(default=True, server_default=true())  # wallet balance pays new invoices first
    # "single": everything in ``currency``; "by_buyer_country": buyers in the provider's own
    # country in ``currency``, all others in ``foreign_currency`` (seed 004: INR in India, USD abroad)
    currency_mode: Mapped[str] = mapped_column(String(20), default="single", server_default="single")
    foreign_currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    # the smallest amount payable online, per currency: {"INR": "200", "USD": "5"}; none: no minimum
    online_minimums: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    updated_at: Mapped[datetime]


class PluginState(db.Model):
    """Whether a plugin is enabled for a provider, and its settings (secrets encrypted)."""

    __tablename__ = "plugin_states"
    __table_args__ = (UniqueConstraint("provider_id", "plugin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    plugin: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=False)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]
