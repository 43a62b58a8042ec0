"""All models, one module per aggregate. Import from here."""
from .audit import AuditEvent
from .catalog import CATEGORIES, Service, ServicePrice
from .documents import DocumentTemplate, InvoiceDocument
from .dunning import DunningEvent, DunningState
from .invoices import BillingRun, BillingRunError, Invoice, InvoiceLine, InvoiceSequence, InvoiceTax
from .ledger import Account, LedgerEntry, LedgerTransaction
from .orgs import CUSTOMER, ORG_KINDS, PROVIDER, RESELLER, Organisation
from .plugin_health import PluginFailureLog
from .payments import CardExemption, CardSettings, Payment, PaymentMethod, WebhookEvent
from .notifications import OutboxMessage
from .orders import Order, OrderLine
from .settings import BillingSettings, PluginState
from .subscriptions import CYCLES, Subscription, SubscriptionItem, UnitChange
from .tax import TaxRule
from .users import ApiToken, LoginAttempt, User

__all__ = [
    "BillingRun", "BillingRunError", "CATEGORIES", "CYCLES", "Invoice", "InvoiceLine", "InvoiceSequence", "InvoiceTax",
    "OutboxMessage", "Service", "ServicePrice", "Subscription", "SubscriptionItem", "TaxRule", "UnitChange",
    "CardExemption", "CardSettings", "Payment", "PaymentMethod", "WebhookEvent",
    "Account", "ApiToken", "AuditEvent", "BillingSettings", "CUSTOMER", "LedgerEntry",
    "LedgerTransaction", "LoginAttempt", "ORG_KINDS", "Organisation", "PROVIDER",
    "PluginFailureLog", "PluginState", "RESELLER", "User",
]
