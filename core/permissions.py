"""Roles, privileges and tenant scope.

A role fixes which organisation kind a user belongs to and the most it may ever
do; staff and reseller sub-admins get an explicit subset (their ``privileges``).
"""
from __future__ import annotations

CLOUD_ADMIN = "cloud_admin"
STAFF = "staff"
RESELLER_ADMIN = "reseller_admin"
RESELLER_SUBADMIN = "reseller_subadmin"
CUSTOMER_ADMIN = "customer_admin"
CUSTOMER_USER = "customer_user"

ROLE_LABELS = {
    CLOUD_ADMIN: "Cloud admin",
    STAFF: "Staff",
    RESELLER_ADMIN: "Reseller admin",
    RESELLER_SUBADMIN: "Reseller sub-admin",
    CUSTOMER_ADMIN: "Customer admin",
    CUSTOMER_USER: "Customer user",
}

ROLE_ORG_KIND = {
    CLOUD_ADMIN: "provider",
    STAFF: "provider",
    RESELLER_ADMIN: "reseller",
    RESELLER_SUBADMIN: "reseller",
    CUSTOMER_ADMIN: "customer",
    CUSTOMER_USER: "customer",
}

PRIVILEGES = {
    "billing.view": "View invoices, transaction logs and card status",
    "billing.configure": "Edit billing configurations and tax rules",
    "invoices.manage": "Create, cancel, resend and adjust invoices",
    "payments.capture": "Capture payments and manage wallets",
    "plugins.manage": "Enable plugins and edit their settings",
    "orgs.view": "View organisations",
    "orgs.manage": "Create and edit organisations",
    "users.manage": "Create users and delegate privileges",
    "catalog.manage": "Edit the service catalogue",
    "subscriptions.manage": "Create and change subscriptions",
    "audit.view": "Read the audit log",
}

PROVIDER_PRIVILEGES = frozenset(PRIVILEGES)
RESELLER_PRIVILEGES = frozenset(
    {"billing.view", "invoices.manage", "payments.capture", "orgs.view", "orgs.manage",
     "users.manage", "subscriptions.manage", "audit.view"}
)
CUSTOMER_PRIVILEGES = frozenset({"billing.view", "payments.capture", "users.manage"})

ROLE_MAX = {
    CLOUD_ADMIN: PROVIDER_PRIVILEGES,
    STAFF: PROVIDER_PRIVILEGES - {"users.manage", "plugins.manage"},
    RESELLER_ADMIN: RESELLER_PRIVILEGES,
    RESELLER_SUBADMIN: RESELLER_PRIVILEGES - {"users.manage"},
    CUSTOMER_ADMIN: CUSTOMER_PRIVILEGES,
    CUSTOMER_USER: frozenset({"billing.view"}),
}

#: roles whose privileges are exactly the role's maximum; the others hold a delegated subset
FULL_ROLES = frozenset({CLOUD_ADMIN, RESELLER_ADMIN, CUSTOMER_ADMIN})


def effective_privileges(user) -> frozenset[str]:
    maximum = ROLE_MAX.get(user.role, frozenset())
    if user.role in FULL_ROLES:
        return maximum
    return maximum & frozenset(user.privileges or ())


def can(user, privilege: str) -> bool:
    if privilege not in PRIVILEGES:
        raise KeyError(f"Unknown privilege {privilege!r}")
    return bool(user and getattr(user, "is_authenticated", False)) and privilege in effective_privileges(user)


def delegable(role: str) -> frozenset[str]:
    """Privileges a role's holder can be given."""
    return ROLE_MAX.get(role, frozenset())
