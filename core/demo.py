"""The demo data `make run` seeds: a provider with its cloud admin and staff, a
reseller with a sub-admin, customers in India and abroad."""
from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import Organisation, PluginState
from .permissions import CLOUD_ADMIN, CUSTOMER_ADMIN, RESELLER_ADMIN, RESELLER_SUBADMIN, STAFF
from .plugins import host
from .services import orgs, settings, users
from .services.uow import atomic

PASSWORD = "kassa-demo-2026"

LOGINS = (
    ("Cloud admin", "admin@cloud7.example"),
    ("Staff (billing only)", "staff@cloud7.example"),
    ("Reseller admin", "admin@nimbus-reseller.example"),
    ("Reseller sub-admin", "ops@nimbus-reseller.example"),
    ("Customer admin (India)", "finance@sundaram-textiles.example"),
    ("Customer admin (USA)", "billing@acme-analytics.example"),
)

CUSTOMERS = (
    # name, email, country, state, city, postal, tax id, parent (None: direct), timezone
    ("Sundaram Textiles Pvt Ltd", "finance@sundaram-textiles.example", "IN", "Tamil Nadu", "Chennai", "600001",
     "33AAACS1234B1Z5", None, "Asia/Kolkata"),
    ("Kaveri Foods LLP", "accounts@kaveri-foods.example", "IN", "Karnataka", "Bengaluru", "560001", "", None,
     "Asia/Kolkata"),
    ("Acme Analytics Inc", "billing@acme-analytics.example", "US", "California", "San Francisco", "94105", "",
     None, "America/Los_Angeles"),
    ("Nordlicht GmbH", "rechnung@nordlicht.example", "DE", "Berlin", "Berlin", "10115", "DE123456789", None,
     "Europe/Berlin"),
    ("Pune Robotics", "pay@pune-robotics.example", "IN", "Maharashtra", "Pune", "411001", "", "reseller",
     "Asia/Kolkata"),
    ("Harbour Legal LLP", "office@harbour-legal.example", "GB", "London", "London", "EC1A 1BB", "", "reseller",
     "Europe/London"),
)


def seed_demo() -> Organisation:
    provider = orgs.create_provider(
        "Cloud7 Demo Provider", "IN", email="billing@cloud7.example", address_line1="12 MG Road",
        city="Chennai", state="Tamil Nadu", postal_code="600002", tax_id="33AAACC1206D1ZM", timezone="Asia/Kolkata",
        locale="en_IN")
    admin = users.create_user(None, provider, email="admin@cloud7.example", name="Asha Raman", password=PASSWORD,
                              role=CLOUD_ADMIN, primary=True)
    users.create_user(admin, provider, email="staff@cloud7.example", name="Vikram Iyer", password=PASSWORD,
                      role=STAFF, privileges=["billing.view", "invoices.manage", "orgs.view", "payments.capture"])
    settings.update_billing_settings(admin, currency="INR", precision=2, invoice_prefix="C7-", payment_terms_days=15)
    reseller = orgs.create_org(admin, kind="reseller", name="Nimbus Reseller Pvt Ltd", email="admin@nimbus-reseller.example",
                               country="IN", state="Maharashtra", city="Mumbai", postal_code="400001",
                               address_line1="4 Marine Drive", timezone="Asia/Kolkata")
    reseller_admin = users.create_user(admin, reseller, email="admin@nimbus-reseller.example", name="Meera Shah",
                                       password=PASSWORD, role=RESELLER_ADMIN, primary=True)
    users.create_user(reseller_admin, reseller, email="ops@nimbus-reseller.example", name="Rohan Das",
                      password=PASSWORD, role=RESELLER_SUBADMIN, privileges=["orgs.view", "billing.view"])
    for name, email, country, state, city, postal, tax_id, parent, tz in CUSTOMERS:
        actor = reseller_admin if parent == "reseller" else admin
        customer = orgs.create_org(actor, kind="customer", parent=reseller if parent else provider, name=name,
                                   email=email, country=country, state=state, city=city, postal_code=postal,
                                   tax_id=tax_id, address_line1="1 Demo Street", timezone=tz)
        users.create_user(actor, customer, email=email, name=f"{name.split()[0]} Accounts", password=PASSWORD,
                          role=CUSTOMER_ADMIN, primary=True)
    with atomic():
        for name, record in host().records.items():
            if not record.broken and not db.session.scalar(
                    select(PluginState.id).filter_by(provider_id=provider.id, plugin=name)):
                db.session.add(PluginState(provider_id=provider.id, plugin=name, enabled=True, settings={},
                                           updated_at=provider.created_at))
    return provider


def print_logins(echo) -> None:
    echo("")
    echo("Demo logins (password for all: %s)" % PASSWORD)
    for label, email in LOGINS:
        echo(f"  {label:26} {email}")
    echo("")
