"""Plain, frozen dataclasses that cross the plugin boundary.

A plugin sees only these and :mod:`kassa.hookspecs`; it never imports
``kassa.models``. Money is always ``Decimal`` here: a float is refused when the
dataclass is built (see :func:`_no_float`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any


class ContractError(TypeError):
    """A plugin or the core built a contract object with a wrong value."""


class WebhookSignatureError(Exception):
    """Raised by a gateway's webhook hook when the signature does not verify."""


class GatewayDeclined(Exception):
    """Raised by a gateway hook when the gateway refused a request outright (a card
    that cannot be saved, say); the message is the gateway's, shown to the user."""


class GatewayUnavailable(Exception):
    """Raised by a gateway hook when the gateway could not be reached or timed out;
    the outcome of the call is unknown and must be reconciled, never retried blindly."""


class UnknownCountryError(ValueError):
    """Raised by a tax engine when a party's country is not an ISO 3166-1 alpha-2
    code ("XX", "", a name): taxing it as a foreign buyer would be silently wrong."""

    def __init__(self, country: str, role: str = "buyer"):
        self.country, self.role = country, role
        shown = repr(country) if country else "empty"
        super().__init__(f"The {role}'s country {shown} is not an ISO 3166-1 country code; set it on the "
                         f"{role}'s organisation (e.g. 'IN', 'US').")


def header(headers, name: str) -> str:
    """The value of HTTP header ``name`` in a webhook's ``headers`` (a mapping or
    (name, value) pairs), matched case-insensitively as HTTP does; "" if absent."""
    wanted = name.lower()
    for key, value in (headers.items() if hasattr(headers, "items") else headers):
        if key.lower() == wanted:
            return value
    return ""


def require_country(code: str, role: str = "buyer") -> str:
    """``code`` upper-cased if it is an assigned ISO 3166-1 alpha-2 code, else :class:`UnknownCountryError`."""
    import pycountry

    value = (code or "").strip().upper()
    if len(value) != 2 or pycountry.countries.get(alpha_2=value) is None:
        raise UnknownCountryError(code, role)
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _no_float(obj) -> None:
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(obj))
    for name in names:
        if isinstance(getattr(obj, name), float):
            raise ContractError(f"{cls.__name__}.{name} is a float; money is Decimal.")


class _Contract:
    def __post_init__(self):
        _no_float(self)


@dataclass(frozen=True)
class ProviderContext(_Contract):
    """Who is asking and under which billing settings. ``settings`` maps a plugin
    name to that plugin's non-secret settings (secrets only reach gateway hooks)."""

    provider_id: int
    currency: str
    precision: int
    now: datetime
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        return self.settings.get(name, {})


@dataclass(frozen=True)
class Party(_Contract):
    """An organisation as a seller or buyer sees it."""

    org_id: int
    kind: str  # provider | reseller | customer
    name: str
    country: str  # ISO 3166-1 alpha-2
    state: str = ""
    city: str = ""
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    email: str = ""
    tax_id: str = ""


# ---------------------------------------------------------------- gateways


@dataclass(frozen=True)
class GatewayInfo(_Contract):
    id: str
    name: str
    currencies: tuple[str, ...] = ()  # empty: any currency
    card_brands: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # buyer countries served; empty: all
    saves_cards: bool = True
    hosted_redirect: bool = False  # the buyer approves on the gateway's own page


@dataclass(frozen=True)
class SaveMethodRequest(_Contract):
    """Save (attach) a payment method for an organisation. ``token`` is what the
    browser got from the gateway's own JS (never a card number)."""

    idempotency_key: str
    org: Party
    token: str
    customer_reference: str = ""


@dataclass(frozen=True)
class SavedMethod(_Contract):
    reference: str
    brand: str
    last4: str
    exp_month: int = 0
    exp_year: int = 0
    customer_reference: str = ""
    fingerprint: str = ""  # same card, same fingerprint: used to detect one card on many orgs


@dataclass(frozen=True)
class ChargeRequest(_Contract):
    idempotency_key: str
    amount: Decimal
    currency: str
    org: Party
    description: str
    payment_method: str = ""
    customer_reference: str = ""
    invoice_number: str = ""
    return_url: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


CHARGE_STATUSES = ("succeeded", "pending", "requires_action", "declined", "failed")


@dataclass(frozen=True)
class GatewayResult(_Contract):
    status: str  # one of CHARGE_STATUSES
    reference: str = ""
    amount: Decimal | None = None
    currency: str = ""
    decline_reason: str = ""
    redirect_url: str = ""  # where the buyer approves (hosted gateways)
    raw_status: str = ""

    def __post_init__(self):
        super().__post_init__()
        if self.status not in CHARGE_STATUSES:
            raise ContractError(f"GatewayResult.status must be one of {CHARGE_STATUSES}, not {self.status!r}.")
        if self.status in ("declined", "failed") and not self.decline_reason:
            raise ContractError("A declined or failed GatewayResult must say why (decline_reason).")


@dataclass(frozen=True)
class RefundRequest(_Contract):
    idempotency_key: str
    charge_reference: str
    amount: Decimal
    currency: str
    reason: str = ""


@dataclass(frozen=True)
class VerifyResult(_Contract):
    ok: bool
    message: str


@dataclass(frozen=True)
class GatewayEvent(_Contract):
    """One verified webhook event. ``event_id`` is the gateway's own id: the core
    applies each event once."""

    event_id: str
    type: str  # charge.succeeded | charge.failed | refund.succeeded | method.updated | ...
    reference: str
    status: str = ""
    amount: Decimal | None = None
    currency: str = ""
    idempotency_key: str = ""
    decline_reason: str = ""


# ---------------------------------------------------------------- tax


@dataclass(frozen=True)
class TaxEngineInfo(_Contract):
    id: str
    name: str
    countries: tuple[str, ...] = ()  # seller countries it takes over; empty: any


@dataclass(frozen=True)
class TaxDraftLine(_Contract):
    key: str
    description: str
    amount: Decimal  # net amount of the line, already rounded to the billing precision
    taxable: bool = True
    tax_code: str = ""  # SAC / HSN / other classification


@dataclass(frozen=True)
class TaxDraft(_Contract):
    currency: str
    precision: int
    issue_date: date
    lines: tuple[TaxDraftLine, ...]


@dataclass(frozen=True)
class TaxComponent(_Contract):
    name: str  # "VAT", "CGST", "SGST", "IGST", ...
    rate: Decimal  # percent, e.g. Decimal("9")
    amount: Decimal  # rounded to the draft's precision


@dataclass(frozen=True)
class TaxLineQuote(_Contract):
    key: str
    components: tuple[TaxComponent, ...] = ()

    @property
    def tax(self) -> Decimal:
        return sum((c.amount for c in self.components), Decimal(0))


@dataclass(frozen=True)
class TaxQuote(_Contract):
    engine: str
    lines: tuple[TaxLineQuote, ...]
    note: str = ""  # printed on the invoice (e.g. an export under LUT)
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class TaxIdCheck(_Contract):
    valid: bool
    normalized: str = ""
    message: str = ""
    details: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- renderers


@dataclass(frozen=True)
class RendererInfo(_Contract):
    id: str
    name: str
    media_type: str
    extension: str


@dataclass(frozen=True)
class ExportInfo(_Contract):
    id: str
    name: str
    media_type: str
    extension: str
    description: str = ""


@dataclass(frozen=True)
class InvoiceLineView(_Contract):
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tax: Decimal
    tax_code: str = ""
    period_start: date | None = None
    period_end: date | None = None


@dataclass(frozen=True)
class InvoiceView(_Contract):
    id: int
    number: str
    status: str
    currency: str
    issue_date: date
    due_date: date
    seller: Party
    buyer: Party
    lines: tuple[InvoiceLineView, ...]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal = Decimal(0)
    tax_breakup: tuple[TaxComponent, ...] = ()
    period_start: date | None = None
    period_end: date | None = None  # exclusive
    notes: str = ""
    tax_note: str = ""  # printed with the tax (e.g. an export under LUT)
    tax_engine: str = ""
    tax_details: Mapping[str, str] = field(default_factory=dict)  # what the tax engine recorded (place of supply, ...)
    kind: str = "recurring"
    cancelled: bool = False

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid


@dataclass(frozen=True)
class RenderedDocument(_Contract):
    content: bytes
    media_type: str
    filename: str


# ---------------------------------------------------------------- dunning


@dataclass(frozen=True)
class DunningPhase(_Contract):
    """A phase an overdue organisation passes through. Its effects are declared
    here and applied by the core, so every phase is previewable."""

    key: str
    name: str
    order: int
    default_days: int
    default_enabled: bool = True
    banner: bool = False  # header notification on every page of the organisation
    suspend: bool = False  # console restricted to the payment prompt, subscriptions suspended
    email_template: str = ""  # sent on entering the phase
    email_every_days: int = 0  # and again every N days while in it (0: once)
    terminate_on_exit: bool = False  # leaving this phase unpaid terminates the subscriptions
    description: str = ""


@dataclass(frozen=True)
class DunningCase(_Contract):
    org: Party
    phase: str
    overdue_amount: Decimal
    currency: str
    oldest_due_date: date
    entered_on: date
    invoice_numbers: tuple[str, ...] = ()


# ---------------------------------------------------------------- subscriptions, payments


@dataclass(frozen=True)
class ResourceView(_Contract):
    subscription_id: int
    item_id: int
    service_code: str
    description: str
    units: Decimal


@dataclass(frozen=True)
class SubscriptionView(_Contract):
    id: int
    org: Party
    status: str
    resources: tuple[ResourceView, ...] = ()


@dataclass(frozen=True)
class PaymentView(_Contract):
    id: int
    org: Party
    amount: Decimal
    currency: str
    gateway: str
    reference: str
    invoice_number: str = ""


# ---------------------------------------------------------------- app


@dataclass(frozen=True)
class ScheduledJob(_Contract):
    """A job the schedule enqueues every ``every_minutes``; ``func`` is a dotted path
    to a function that takes no arguments and runs inside the app context."""

    id: str
    func: str
    every_minutes: int
    description: str = ""
