"""Payment methods (cards on file), payment attempts, gateway webhooks and the
provider's Credit Card Settings (seed 000)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import Amount


class CardSettings(db.Model):
    """Seed 000 "Credit Card Settings" of a provider."""

    __tablename__ = "card_settings"

    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    enforce_card: Mapped[bool] = mapped_column(default=False)
    except_trial: Mapped[bool] = mapped_column(default=True)
    link_multiple_accounts: Mapped[bool] = mapped_column(default=False)
    validity_deduction: Mapped[bool] = mapped_column(default=False)
    validity_amount: Mapped[Decimal] = mapped_column(Amount, default=Decimal("1"))
    max_declines: Mapped[int] = mapped_column(default=3)
    updated_at: Mapped[datetime]


class CardExemption(db.Model):
    """An organisation on the provider's "Enforcement Exemption" list."""

    __tablename__ = "card_exemptions"
    __table_args__ = (UniqueConstraint("provider_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))


class PaymentMethod(db.Model):
    """A card saved at a gateway. Kassa keeps only the gateway's reference, the
    brand and the last four digits: a card number never reaches it."""

    __tablename__ = "payment_methods"
    __table_args__ = (Index("ix_payment_methods_org_status", "org_id", "status"),
                      Index("ix_payment_methods_fingerprint", "provider_id", "fingerprint"))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    gateway: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(120))
    customer_reference: Mapped[str] = mapped_column(String(120), default="")
    brand: Mapped[str] = mapped_column(String(30), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int] = mapped_column(default=0)
    exp_year: Mapped[int] = mapped_column(default=0)
    fingerprint: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | blocked | removed
    declines: Mapped[int] = mapped_column(default=0)  # consecutive failed charges
    created_at: Mapped[datetime]
    blocked_at: Mapped[datetime | None]


class Payment(db.Model):
    """One attempt to collect money through a gateway. It is written (pending)
    before the gateway is called, with the idempotency key sent to the gateway,
    so a crash, a retry or a second click can never charge twice."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_invoice", "invoice_id", "status"),
                      Index("ix_payments_status_created", "status", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    purpose: Mapped[str] = mapped_column(String(20), default="invoice")  # invoice | validation | refund
    gateway: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reference: Mapped[str] = mapped_column(String(200), default="")
    redirect_url: Mapped[str] = mapped_column(String(1000), default="")
    decline_reason: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(db.Model):
    """A gateway event applied once: replays hit the unique key and change nothing."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("gateway", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    gateway: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(60))
    reference: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime]


__all__ = ["CardSettings", "CardExemption", "PaymentMethod", "Payment", "WebhookEvent"]
