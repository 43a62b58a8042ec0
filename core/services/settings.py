"""Billing settings of a provider (seed 000: Currency Settings)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import exists, select

from ..clock import utcnow_naive
from ..extensions import db
from ..models import BillingSettings, Invoice, Organisation
from ..money import MAX_PRECISION, MoneyError, check_currency, minor_units, to_decimal
from . import audit
from .cache import invalidate, memo
from .errors import Conflict, ValidationError
from .uow import atomic

DEFAULT_CURRENCY = "USD"
SINGLE, BY_BUYER_COUNTRY = "single", "by_buyer_country"
CURRENCY_MODES = {SINGLE: "Single currency: every buyer is billed in the billing currency",
                  BY_BUYER_COUNTRY: "By buyer country: buyers abroad are billed in the foreign currency"}
DEFAULT_FOREIGN_CURRENCY = "USD"


def billing_settings(provider_id: int) -> BillingSettings:
    bs = db.session.get(BillingSettings, provider_id)
    if bs is None:
        bs = BillingSettings(provider_id=provider_id, currency=DEFAULT_CURRENCY,
                             precision=minor_units(DEFAULT_CURRENCY), invoice_prefix="INV-",
                             payment_terms_days=15, apply_wallet=True, currency_mode=SINGLE,
                             foreign_currency=DEFAULT_FOREIGN_CURRENCY, online_minimums={},
                             updated_at=utcnow_naive())
    return bs


@dataclass(frozen=True)
class BillingConfig:
    """A read-only snapshot of a provider's billing settings."""

    currency: str
    precision: int
    invoice_prefix: str
    payment_terms_days: int
    apply_wallet: bool
    currency_mode: str = SINGLE
    foreign_currency: str = DEFAULT_FOREIGN_CURRENCY
    home_country: str = ""  # the provider's own country (by_buyer_country compares buyers with it)
    online_minimums: dict = field(default_factory=dict)  # currency -> Decimal


def config(provider_id: int) -> BillingConfig:
    """The settings as a snapshot, read once per request or job."""
    def load():
        bs = billing_settings(provider_id)
        provider = db.session.get(Organisation, provider_id)
        return BillingConfig(bs.currency, bs.precision, bs.invoice_prefix, bs.payment_terms_days, bs.apply_wallet,
                             currency_mode=bs.currency_mode or SINGLE,
                             foreign_currency=bs.foreign_currency or DEFAULT_FOREIGN_CURRENCY,
                             home_country=(provider.country if provider is not None else "").upper(),
                             online_minimums={k: Decimal(str(v)) for k, v in (bs.online_minimums or {}).items()})

    return memo(("billing", provider_id), load)


def currency_for(provider_id: int, buyer_country: str | None) -> str:
    """The currency a buyer from ``buyer_country`` is billed in (invoices, subscriptions,
    orders): the billing currency, or with ``by_buyer_country`` the foreign currency
    for buyers outside the provider's own country."""
    cfg = config(provider_id)
    if cfg.currency_mode == BY_BUYER_COUNTRY and (buyer_country or "").strip().upper() != cfg.home_country:
        return cfg.foreign_currency
    return cfg.currency


def currencies(provider_id: int) -> list[str]:
    """Every currency the provider bills in: the billing currency first."""
    cfg = config(provider_id)
    if cfg.currency_mode == BY_BUYER_COUNTRY:
        return [cfg.currency, cfg.foreign_currency]
    return [cfg.currency]


def online_minimum(provider_id: int, currency: str) -> Decimal | None:
    """The smallest amount payable online in ``currency`` (seed 004: above ₹200 or US$5), or None."""
    return config(provider_id).online_minimums.get((currency or "").upper())


def online_payment_allowed(provider_id: int, currency: str, amount: Decimal) -> bool:
    """Below the minimum the buyer is asked to contact support instead."""
    minimum = online_minimum(provider_id, currency)
    return minimum is None or amount >= minimum


_MINIMUM_RE = re.compile(r"^([A-Za-z]{3})\s*[=:]?\s*([0-9]+(?:\.[0-9]+)?)$")


def parse_minimums(value) -> dict[str, Decimal]:
    """``{"INR": "200", "USD": "5"}`` or the form's text ``INR 200, USD 5`` (``=`` or ``:`` also
    separate a code from its amount); refuses unknown currencies and negative amounts."""
    errors: list[str] = []
    pairs: list[tuple[str, object]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, str):
        for part in (p.strip() for p in re.split(r"[,;\n]", value)):
            if not part:
                continue
            match = _MINIMUM_RE.match(part)
            if match is None:
                errors.append(f"{part!r}: write a currency code and an amount, like INR 200.")
                continue
            pairs.append((match.group(1), match.group(2)))
    elif value is not None:
        errors.append("A currency code and an amount for each currency, like INR 200, USD 5.")
    out: dict[str, Decimal] = {}
    for code, amount in pairs:
        try:
            code = check_currency(str(code))
        except MoneyError as exc:
            errors.append(str(exc))
            continue
        try:
            number = to_decimal(amount)
        except MoneyError:
            errors.append(f"{code}: {amount!r} is not an amount.")
            continue
        if number < 0 or number != number.quantize(Decimal(1).scaleb(-MAX_PRECISION)):
            errors.append(f"{code}: a positive amount with at most {MAX_PRECISION} decimal places.")
            continue
        out[code] = number
    if errors:
        raise ValidationError("Please correct the highlighted fields.", {"online_minimums": " ".join(errors)})
    return out


def format_minimums(minimums: dict) -> str:
    """The form's text for stored minimums: ``INR 200, USD 5``."""
    return ", ".join(f"{code} {amount}" for code, amount in sorted((minimums or {}).items()))


def currency_locked(provider_id: int) -> bool:
    """Seed 000: the currency cannot change once an invoice has been generated."""
    return bool(db.session.scalar(select(exists().where(Invoice.provider_id == provider_id))))


def update_billing_settings(actor, *, currency: str, precision, invoice_prefix: str | None = None,
                            payment_terms_days=None, apply_wallet: bool | None = None, currency_mode: str | None = None,
                            foreign_currency: str | None = None, online_minimums=None) -> BillingSettings:
    """Change the Currency Settings. ``None`` keeps a setting as it is. The currencies
    (billing currency, mode and foreign currency) lock once an invoice exists."""
    provider_id = actor.org.provider_id
    errors: dict[str, str] = {}
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        errors["currency"] = str(exc)
    if currency_mode is not None and currency_mode not in CURRENCY_MODES:
        errors["currency_mode"] = "Single currency, or by buyer country."
    if foreign_currency is not None:
        try:
            foreign_currency = check_currency(foreign_currency)
        except MoneyError as exc:
            errors["foreign_currency"] = str(exc)
    if online_minimums is not None:
        try:
            online_minimums = parse_minimums(online_minimums)
        except ValidationError as exc:
            errors.update(exc.field_errors)
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
        before = {"currency": bs.currency, "precision": bs.precision, "currency_mode": bs.currency_mode,
                  "foreign_currency": bs.foreign_currency, "online_minimums": dict(bs.online_minimums or {})}
        mode = currency_mode if currency_mode is not None else (bs.currency_mode or SINGLE)
        foreign = foreign_currency if foreign_currency is not None else (bs.foreign_currency or DEFAULT_FOREIGN_CURRENCY)
        if mode == BY_BUYER_COUNTRY and foreign == currency:
            raise ValidationError("Please correct the highlighted fields.", {
                "foreign_currency": "Buyers abroad need a currency other than the billing currency "
                                    "(or choose single currency)."})
        changed = {name: "Locked once the first invoice is issued." for name, new, old in (
            ("currency", currency, bs.currency), ("currency_mode", mode, bs.currency_mode or SINGLE),
            ("foreign_currency", foreign, bs.foreign_currency or DEFAULT_FOREIGN_CURRENCY)) if new != old}
        if changed and currency_locked(provider_id):
            raise Conflict(
                f"The billing currency is {bs.currency} and cannot be changed: invoices have already been issued in it."
                if "currency" in changed else
                "The currency mode and the foreign currency cannot be changed: invoices have already been issued.",
                changed,
            )
        bs.currency = currency
        bs.currency_mode = mode
        bs.foreign_currency = foreign
        if online_minimums is not None:
            bs.online_minimums = {code: str(amount) for code, amount in online_minimums.items()}
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
        summary = f"Currency {currency}, precision {precision}"
        if mode == BY_BUYER_COUNTRY:
            summary += f", {foreign} for buyers abroad"
        audit.record(actor, "settings.billing", bs, summary=summary,
                     details={"before": before, "after": {
                         "currency": currency, "precision": precision, "currency_mode": mode,
                         "foreign_currency": foreign, "online_minimums": dict(bs.online_minimums or {})}})
    return bs
