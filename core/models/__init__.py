"""All models, one module per aggregate. Import from here."""
from .audit import AuditEvent
from .ledger import Account, LedgerEntry, LedgerTransaction
from .orgs import CUSTOMER, ORG_KINDS, PROVIDER, RESELLER, Organisation
from .settings import BillingSettings, PluginState
from .users import ApiToken, LoginAttempt, User

__all__ = [
    "Account", "ApiToken", "AuditEvent", "BillingSettings", "CUSTOMER", "LedgerEntry",
    "LedgerTransaction", "LoginAttempt", "ORG_KINDS", "Organisation", "PROVIDER",
    "PluginState", "RESELLER", "User",
]
