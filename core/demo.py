"""The demo data `make run` seeds: a provider with its cloud admin and staff, a
reseller with a sub-admin, customers in India and abroad."""
from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import Organisation, PluginState
from .permissions import CLOUD_ADMIN, CUSTOMER_ADMIN, RESELLER_ADMIN, RESELLER_SUBADMIN, STAFF
from .plugins import host
from .services import billing_run, catalog, orgs, settings, subscriptions, tax_rules, users, wallet
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
     "33AAACS1234B1Z7", None, "Asia/Kolkata"),
    ("Kaveri Foods LLP", "accounts@kaveri-foods.example", "IN", "Karnataka", "Bengaluru", "560001", "29AABCK7788M1ZL",
     None,
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


# category, code, name, unit, INR price per unit per month, SAC code, taxable
CATALOGUE = (
    ("Messaging", "msg.signature", "SecureMessaging Standard Edition (Signature)", "user / month", "180", "998315"),
    ("Messaging", "msg.enterprise", "SecureMessaging Enterprise Edition", "user / month", "320", "998315"),
    ("Messaging", "mail.basic", "Business Email Basic (10 GB)", "mailbox / month", "99", "998315"),
    ("Messaging", "mail.pro", "Business Email Pro (50 GB)", "mailbox / month", "249", "998315"),
    ("Messaging", "chat.team", "Team Chat & Video", "user / month", "150", "998315"),
    ("Security", "sec.endpoint", "Endpoint Protection", "device / month", "120", "998316"),
    ("Security", "sec.mailgw", "Email Security Gateway", "mailbox / month", "60", "998316"),
    ("Security", "sec.waf", "Web Application Firewall", "site / month", "2500", "998316"),
    ("Security", "sec.ddos", "DDoS Protection", "IP / month", "1800", "998316"),
    ("Security", "sec.2fa", "Two-Factor Authentication", "user / month", "45", "998316"),
    ("Storage", "sto.object", "Object Storage", "GB / month", "1.75", "998315"),
    ("Storage", "sto.block", "Block Storage (SSD)", "GB / month", "6.50", "998315"),
    ("Storage", "sto.files", "Managed File Share", "GB / month", "9", "998315"),
    ("Storage", "sto.archive", "Archive Storage", "GB / month", "0.45", "998315"),
    ("Compute", "vm.small", "Virtual Machine S (2 vCPU, 4 GB)", "VM / month", "1450", "998315"),
    ("Compute", "vm.medium", "Virtual Machine M (4 vCPU, 16 GB)", "VM / month", "3900", "998315"),
    ("Compute", "vm.large", "Virtual Machine L (8 vCPU, 32 GB)", "VM / month", "7600", "998315"),
    ("Backup", "bak.cloud", "Cloud Backup", "GB / month", "3.20", "998315"),
    ("Database", "db.postgres", "Managed PostgreSQL", "instance / month", "4200", "998315"),
    ("Networking", "net.ip", "Static Public IP", "IP / month", "250", "998315"),
    ("Networking", "net.lb", "Load Balancer", "LB / month", "1100", "998315"),
    ("Support", "sup.premium", "Premium Support (24×7)", "org / month", "5000", "998313"),
)

# organisation name, contract, cycle, months ago it started, trial days, auto-deduction, [(code, units)]
SUBSCRIPTIONS = (
    ("Sundaram Textiles Pvt Ltd", "Messaging for head office", "monthly", 3, 0, False,
     [("msg.signature", 20), ("sec.mailgw", 20), ("sto.archive", 500)]),
    ("Kaveri Foods LLP", "ERP hosting", "quarterly", 7, 0, False,
     [("vm.medium", 2), ("sto.block", 400), ("bak.cloud", 800), ("net.ip", 1)]),
    ("Acme Analytics Inc", "Analytics platform", "yearly", 13, 0, True,
     [("vm.large", 3), ("db.postgres", 1), ("net.lb", 1), ("sup.premium", 1)]),
    ("Nordlicht GmbH", "Office collaboration", "monthly", 2, 0, False,
     [("mail.pro", 35), ("chat.team", 35), ("sec.2fa", 35)]),
    ("Pune Robotics", "Robotics lab", "monthly", 4, 0, False, [("vm.small", 2), ("sto.object", 2000)]),
    ("Harbour Legal LLP", "Secure mail trial", "monthly", 0, 30, False, [("msg.enterprise", 12)]),
)

TAX_RULES = (("GST", "IN", "18"), ("VAT", "DE", "19"), ("VAT", "GB", "20"), ("Sales tax (CA)", "US", "0"))


def seed_demo() -> Organisation:
    provider = orgs.create_provider(
        "Cloud7 Demo Provider", "IN", email="billing@cloud7.example", address_line1="12 MG Road",
        city="Chennai", state="Tamil Nadu", postal_code="600002", tax_id="33AAACC1206D1ZN", timezone="Asia/Kolkata",
        locale="en_IN")
    _enable_plugins(provider)
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
    _seed_billing(admin, provider)
    return provider


def _enable_plugins(provider) -> None:
    with atomic():
        for name, record in host().records.items():
            if not record.broken and not db.session.scalar(
                    select(PluginState.id).filter_by(provider_id=provider.id, plugin=name)):
                db.session.add(PluginState(provider_id=provider.id, plugin=name, enabled=True, settings={},
                                           updated_at=provider.created_at))
    host().forget_cache()


def _seed_billing(admin, provider) -> None:
    from dateutil.relativedelta import relativedelta

    from .clock import today

    services = {}
    for category, code, name, unit, price, sac in CATALOGUE:
        services[code] = catalog.save_service(admin, {"code": code, "name": name, "category": category, "unit": unit,
                                                      "tax_code": sac, "taxable": True, "prices": {"INR": price}})
    for name, country, rate in TAX_RULES:
        tax_rules.save_rule(admin, {"name": name, "country": country, "rate": rate,
                                    "status": "active" if rate != "0" else "suspended"})
    by_name = {o.name: o for o in db.session.scalars(select(Organisation).where(Organisation.provider_id == provider.id))}
    first_of_month = today().replace(day=1)
    for org_name, contract, cycle, months_ago, trial, auto, items in SUBSCRIPTIONS:
        start = first_of_month - relativedelta(months=months_ago) + relativedelta(days=4)
        subscriptions.create(admin, by_name[org_name], {
            "name": contract, "cycle": cycle, "start_date": start.isoformat(), "trial_days": trial,
            "auto_deduction": auto,
            "items": [{"service_id": services[code].id, "units": str(units)} for code, units in items]})
    wallet.move(admin, by_name["Kaveri Foods LLP"], "wallet_topup", "25000", "NEFT-DEMO-1", "Advance payment")
    wallet.move(admin, by_name["Pune Robotics"], "free_credit", "1000", "WELCOME", "Welcome credit")
    billing_run.start(admin, provider.id, background=False)
    _settle_history(admin, provider)


def _settle_history(admin, provider) -> None:
    """Earlier invoices were paid by bank transfer; the latest of each customer is still open,
    so the demo starts with customers in good standing or within their grace period."""
    from datetime import timedelta

    from .clock import today
    from .models import Invoice
    from .services import invoicing, payments

    recent = today() - timedelta(days=10)
    for invoice in db.session.scalars(select(Invoice).where(Invoice.provider_id == provider.id,
                                                            Invoice.due_date < recent).order_by(Invoice.id)).all():
        if invoicing.amount_due(invoice) > 0:
            payments.adjust_offline(admin, invoice, mark_as_paid=True, reference=f"NEFT-{invoice.number}",
                                    description="Bank transfer (demo history)")


def print_logins(echo) -> None:
    echo("")
    echo("Demo logins (password for all: %s)" % PASSWORD)
    for label, email in LOGINS:
        echo(f"  {label:26} {email}")
    echo("")
