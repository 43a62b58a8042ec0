"""Billing settings of a provider (seed 000: Currency Settings)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select

from ..clock import utcnow_naive
from ..extensions import db
from ..models import BillingSettings, Invoice
from ..money import MAX_PRECISION, MoneyError, check_currency, minor_units
from . import audit
from .cache import invalidate, memo
from .errors import Conflict, ValidationError
from .uow import atomic

DEFAULT_CURRENCY = "USD"


def billing_settings(provider_id: int) -> BillingSettings:
    bs = db.session.get(BillingSettings, provider_id)
    if bs is None:
        bs = BillingSettings(provider_id=provider_id, currency=DEFAULT_CURRENCY,
                             precision=minor_units(DEFAULT_CURRENCY), invoice_prefix="INV-",
                             payment_terms_days=15, apply_wallet=True, updated_at=utcnow_naive())
    return bs


@dataclass(frozen=True)
class BillingConfig:
    """A read-only snapshot of a provider's billing settings."""

    currency: str
    precision: int
    invoice_prefix: str
    payment_terms_days: int
    apply_wallet: bool


def config(provider_id: int) -> BillingConfig:
    """The settings as a snapshot, read once per request or job."""
    def load():
        bs = billing_settings(provider_id)
        return BillingConfig(bs.currency, bs.precision, bs.invoice_prefix, bs.payment_terms_days, bs.apply_wallet)

    return memo(("billing", provider_id), load)


def currency_locked(provider_id: int) -> bool:
    """Seed 000: the currency cannot change once an invoice has been generated."""
    return bool(db.session.scalar(select(exists().where(Invoice.provider_id == provider_id))))


def update_billing_settings(actor, *, currency: str, precision, invoice_prefix: str | None = None,
                            payment_terms_days=None, apply_wallet: bool | None = None) -> BillingSettings:
    provider_id = actor.org.provider_id
    errors: dict[str, str] = {}
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        errors["currency"] = str(exc)
    try:
        precision = int(precision)
        if not 0 <= precision <= MAX_PRECISION:
            raise ValueError
    except (TypeError, ValueError):
        errors["precision"] = f"Billing precision is a whole number of decimal places from 0 to {MAX_PRECISION}."
    if payment_terms_days is not None:
        try:
            payment_terms_days = int(payment_terms_days)
            if not 0 <= payment_terms_days <= 365:
                raise ValueError
        except (TypeError, ValueError):
            errors["payment_terms_days"] = "Payment terms are 0 to 365 days."
    if invoice_prefix is not None:
        invoice_prefix = invoice_prefix.strip()
        if len(invoice_prefix) > 20 or not all(ch.isalnum() or ch in "-_/" for ch in invoice_prefix):
            errors["invoice_prefix"] = "Up to 20 letters, digits, '-', '_' or '/'."
    if errors:
        raise ValidationError("Please correct the highlighted fields.", errors)
    with atomic():
        bs = billing_settings(provider_id)
        before = {"currency": bs.currency, "precision": bs.precision}
        if currency != bs.currency and currency_locked(provider_id):
            raise Conflict(
                f"The billing currency is {bs.currency} and cannot be changed: invoices have already been issued in it.",
                {"currency": "Locked once the first invoice is issued."},
            )
        bs.currency = currency
        bs.precision = precision
        if invoice_prefix is not None:
            bs.invoice_prefix = invoice_prefix
        if payment_terms_days is not None:
            bs.payment_terms_days = payment_terms_days
        if apply_wallet is not None:
            bs.apply_wallet = bool(apply_wallet)
        bs.updated_at = utcnow_naive()
        db.session.add(bs)
        invalidate("billing", "context")
        audit.record(actor, "settings.billing", bs, summary=f"Currency {currency}, precision {precision}",
                     details={"before": before, "after": {"currency": currency, "precision": precision}})
    return bs
