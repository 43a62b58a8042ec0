"""The console menu (seed 000's paths). An entry appears only when its page exists
and the user holds its privilege."""
from __future__ import annotations

from dataclasses import dataclass

from ..permissions import can


@dataclass(frozen=True)
class Entry:
    label: str
    endpoint: str
    privilege: str | None = None
    kinds: tuple[str, ...] = ("provider", "reseller", "customer")


MENU = (
    ("", (Entry("Dashboard", "console.dashboard"),)),
    ("Billing & Reports » Customer Billing", (
        Entry("Billing Configurations", "console.billing_configurations", "billing.configure", ("provider",)),
        Entry("Invoices", "billing.invoices", "billing.view"),
        Entry("Orders", "orders.order_list", "orgs.view", ("provider", "reseller")),
        Entry("Credit Card Status", "payments.credit_card_status", "billing.view", ("provider", "reseller")),
        Entry("Transaction Logs", "billing.transaction_logs", "billing.view"),
        Entry("Dunning", "dunning.overview", "billing.view", ("provider", "reseller")),
        Entry("Exports", "billing.export_list", "billing.view", ("provider",)),
        Entry("Billing profile", "payments.billing_profile", None, ("reseller", "customer")),
    )),
    ("Manage", (
        Entry("Organisations", "console.organisations", "orgs.view", ("provider", "reseller")),
        Entry("Catalogue", "catalog.services", "catalog.manage", ("provider",)),
        Entry("Subscriptions", "catalog.subscription_list", "subscriptions.manage", ("provider", "reseller")),
        Entry("Users", "console.users", "users.manage"),
        Entry("Plugins", "console.plugins", "plugins.manage", ("provider",)),
        Entry("Audit log", "console.audit_log", "audit.view", ("provider", "reseller")),
    )),
)


def menu_for(user, app) -> list[tuple[str, list[Entry]]]:
    existing = set(app.view_functions)
    sections = []
    for title, entries in MENU:
        shown = [e for e in entries if e.endpoint in existing and user.org.kind in e.kinds
                 and (e.privilege is None or can(user, e.privilege))]
        if shown:
            sections.append((title, shown))
    return sections
