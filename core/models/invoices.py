"""Invoices. An issued invoice is immutable: only its cancellation (and the cache
of its rendered document) may be set afterwards; see services.invoicing."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..money import plain
from .orgs import Organisation
from .types import Amount


class InvoiceSequence(db.Model):
    """The gapless invoice counter of a provider. It is incremented in the same
    transaction that inserts the invoice, so a failed issue gives its number back."""

    __tablename__ = "invoice_sequences"

    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("provider_id", "sequence"),
        UniqueConstraint("provider_id", "number"),
        Index("ix_invoices_provider_issue", "provider_id", "issue_date", "id"),
        Index("ix_invoices_org_issue", "org_id", "issue_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    sequence: Mapped[int]
    number: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="recurring")  # recurring | manual
    # "<subscription id>:<period start>" on recurring invoices: one invoice per subscription
    # and period, refused by the database itself (unique), however many runs race
    billing_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date]
    due_date: Mapped[date]
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]  # exclusive
    subtotal: Mapped[Decimal] = mapped_column(Amount)
    tax_total: Mapped[Decimal] = mapped_column(Amount)
    total: Mapped[Decimal] = mapped_column(Amount)
    tax_engine: Mapped[str] = mapped_column(String(40), default="")
    tax_note: Mapped[str] = mapped_column(String(500), default="")
    tax_details: Mapped[dict] = mapped_column(db.JSON, default=dict)
    notes: Mapped[str] = mapped_column(String(1000), default="")
    seller_snapshot: Mapped[dict] = mapped_column(db.JSON)
    buyer_snapshot: Mapped[dict] = mapped_column(db.JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")

    org: Mapped[Organisation] = relationship(foreign_keys=[org_id])
    lines: Mapped[list["InvoiceLine"]] = relationship(back_populates="invoice", order_by="InvoiceLine.position")
    taxes: Mapped[list["InvoiceTax"]] = relationship(back_populates="invoice", order_by="InvoiceTax.id")

    @property
    def tax_rate_label(self) -> str:
        rates = sorted({t.rate for t in self.taxes})
        return " + ".join(f"{plain(r, 0)}%" for r in rates) if rates else "0%"


class InvoiceLine(db.Model):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int]
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Amount)
    unit_price: Mapped[Decimal] = mapped_column(Amount)
    amount: Mapped[Decimal] = mapped_column(Amount)  # net, rounded to the billing precision
    tax_amount: Mapped[Decimal] = mapped_column(Amount)
    tax_code: Mapped[str] = mapped_column(String(20), default="")
    taxable: Mapped[bool] = mapped_column(default=True)
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    unit_change_id: Mapped[int | None] = mapped_column(ForeignKey("unit_changes.id"), unique=True)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class InvoiceTax(db.Model):
    """The tax breakup of an invoice: one row per component (VAT 20 %, CGST 9 %, ...)."""

    __tablename__ = "invoice_taxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    rate: Mapped[Decimal] = mapped_column(Amount)
    taxable_amount: Mapped[Decimal] = mapped_column(Amount)
    amount: Mapped[Decimal] = mapped_column(Amount)

    invoice: Mapped[Invoice] = relationship(back_populates="taxes")


class BillingRun(db.Model):
    """One run of the billing engine, with its progress and result."""

    __tablename__ = "billing_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    as_of: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | finished | failed
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    invoices_created: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    errors: Mapped[list["BillingRunError"]] = relationship(order_by="BillingRunError.id")


class BillingRunError(db.Model):
    """Why a subscription could not be billed in a run (the run goes on without it)."""

    __tablename__ = "billing_run_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("billing_runs.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    error: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime]