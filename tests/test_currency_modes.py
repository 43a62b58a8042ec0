"""Currencies: seed 000's single currency and seed 004's INR-in-India / USD-abroad, as a
provider setting (``currency_mode``): invoices, subscriptions, orders, ledger accounts
and wallets per currency, and the lock once an invoice exists."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from kassa.hookspecs import hookimpl
from kassa.models import Account, AuditEvent, BillingSettings, Invoice
from kassa.services import (billing_run, catalog, invoicing, ledger, manual_invoices, orders, settings,
                            subscriptions, wallet)
from kassa.services.errors import Conflict, ValidationError
from kassa.services.uow import atomic

D = Decimal


@pytest.fixture
def dual(db, provider, admin):
    """The provider (India, INR) bills buyers abroad in USD."""
    settings.update_billing_settings(admin, currency="INR", precision=2, currency_mode="by_buyer_country",
                                     foreign_currency="USD")
    return provider


@pytest.fixture
def service(db, admin):
    return catalog.save_service(admin, {"code": "vm", "name": "Cloud VM", "category": "Compute", "unit": "vm / month",
                                        "prices": {"INR": "100", "USD": "2"}})


@pytest.fixture
def buyers(make_org, provider):
    india = make_org("customer", parent=provider, name="Bengaluru Co", country="IN", state="Karnataka",
                     email="ap@bengaluru.example")
    usa = make_org("customer", parent=provider, name="Austin Inc", country="US", state="Texas",
                   email="ap@austin.example")
    return india, usa


def subscribe(admin, org, service, **extra):
    return subscriptions.create(admin, org, {"name": f"{org.name} contract", "start_date": "2026-01-05",
                                             "items": [{"service_id": service.id, "units": "3"}], **extra})


def manual(admin, org, amount="4", **extra):
    return manual_invoices.create(admin, {"org_id": org.id, "for": "customer", "issue_date": "2026-01-05",
                                          "due_date": "2026-01-20", "period_from": "2026-01-01",
                                          "period_to": "2026-01-31", "items": [{"description": "Setup", "quantity": "1", "unit_price": amount}],
                                          **extra})


def currencies_of_accounts(db, org_id=None):
    query = select(Account.code, Account.currency)
    if org_id is not None:
        query = query.where(Account.org_id == org_id)
    return set(db.session.execute(query).all())


# ------------------------------------------------------------------ single currency (seed 000)


def test_single_currency_bills_every_buyer_in_the_billing_currency(db, provider, admin, service, buyers):
    india, usa = buyers
    assert settings.billing_settings(provider.id).currency_mode == "single"
    assert [settings.currency_for(provider.id, c) for c in ("IN", "US", "", None)] == ["INR"] * 4
    assert settings.currencies(provider.id) == ["INR"]
    sub = subscribe(admin, usa, service)
    assert (sub.currency, sub.items[0].unit_price) == ("INR", D(100))
    with pytest.raises(ValidationError) as err:
        subscribe(admin, usa, service, currency="USD")
    assert err.value.field_errors["currency"] == "This provider bills in INR only."
    with pytest.raises(ValidationError) as err:
        manual(admin, usa, currency="USD")
    assert err.value.field_errors["currency"] == "This provider bills in INR only."
    assert manual(admin, usa).currency == "INR"
    billing_run.bill([sub.id], date(2026, 2, 5))
    assert {i.currency for i in db.session.scalars(select(Invoice))} == {"INR"}
    assert {currency for _, currency in currencies_of_accounts(db)} == {"INR"}


def test_single_currency_orders_abroad_are_billed_in_the_billing_currency(db, provider, admin, reseller_admin,
                                                                          service, app, monkeypatch, smtp_sink):
    monkeypatch.setitem(app.config, "KASSA_BASE_URL", "https://cp.cloud7.example")  # no request: links need it
    order = orders.place(reseller_admin, {
        "organization_name": "Austin Inc", "contact_name": "Jo", "address_line1": "1 Congress Ave",
        "address_line2": "Floor 2", "city": "Austin", "state": "Texas", "country": "US", "postal_code": "78701",
        "mobile": "+1-2015550123", "contact_email": "jo@austin.example",
        "items": [{"service_id": service.id, "units": 2}]})
    invoice = db.session.get(Invoice, order.invoice_id)
    assert (order.currency, invoice.currency, invoice.total) == ("INR", "INR", D(200))
    from kassa.models import OutboxMessage

    sent = next(m for m in smtp_sink if m["To"] == "jo@austin.example")
    body = sent.get_body(("plain",)).get_content()
    assert "https://cp.cloud7.example/orders/invoice/" in body and "₹200.00" in body
    kept = db.session.scalar(select(OutboxMessage.body_text).where(OutboxMessage.invoice_id == invoice.id))
    assert "not kept" in kept  # the first password is not stored once the message is sent


# ------------------------------------------------------------------ by buyer country (seed 004)


def test_buyers_abroad_are_billed_in_the_foreign_currency(db, dual, admin, service, buyers):
    india, usa = buyers
    assert settings.currency_for(dual.id, "IN") == "INR" and settings.currency_for(dual.id, "in") == "INR"
    assert settings.currency_for(dual.id, "US") == "USD" and settings.currency_for(dual.id, "DE") == "USD"
    assert settings.currencies(dual.id) == ["INR", "USD"]
    inr, usd = subscribe(admin, india, service), subscribe(admin, usa, service)
    assert (inr.currency, inr.items[0].unit_price) == ("INR", D(100))
    assert (usd.currency, usd.items[0].unit_price) == ("USD", D(2))  # the ServicePrice in the buyer's currency
    with pytest.raises(ValidationError) as err:
        subscribe(admin, usa, service, currency="INR")
    assert err.value.field_errors["currency"] == "Austin Inc is billed in USD."
    inr_only = catalog.save_service(admin, {"code": "sms", "name": "SMS", "category": "Messaging", "unit": "pack",
                                            "prices": {"INR": "5"}})
    with pytest.raises(ValidationError) as err:
        subscriptions.create(admin, usa, {"name": "x", "items": [{"service_id": inr_only.id, "units": "1"}]})
    assert err.value.field_errors["items.0.service_id"] == "SMS has no USD price."

    # one billing run, both currencies in one batch: each invoice and its ledger in its own
    outcome = billing_run.bill([inr.id, usd.id], date(2026, 2, 5))
    assert outcome.invoices == 2 and not outcome.errors
    by_org = {i.org_id: i for i in db.session.scalars(select(Invoice))}
    assert (by_org[india.id].currency, by_org[india.id].total) == ("INR", D(300))
    assert (by_org[usa.id].currency, by_org[usa.id].total) == ("USD", D(6))
    assert currencies_of_accounts(db, usa.id) == {("receivable", "USD")}
    assert currencies_of_accounts(db, india.id) == {("receivable", "INR")}
    assert currencies_of_accounts(db, dual.id) >= {("revenue", "INR"), ("revenue", "USD")}
    assert ledger.receivable_balance(usa.id, "USD") == D(6) and ledger.receivable_balance(usa.id, "INR") == 0
    assert ledger.org_balance(dual.id, "revenue", "USD") == D(6)
    assert ledger.org_balance(dual.id, "revenue", "INR") == D(300)


def test_manual_invoices_take_the_buyers_currency_or_the_contracts(db, dual, admin, service, buyers):
    india, usa = buyers
    assert manual(admin, usa).currency == "USD"
    assert manual(admin, india).currency == "INR"
    with pytest.raises(ValidationError) as err:
        manual(admin, usa, currency="INR")
    assert err.value.field_errors["currency"] == "This invoice is billed in USD."
    contract = subscribe(admin, usa, service)
    from_contract = manual(admin, usa, subscription_id=contract.id, items_from_contract=True, items=[])
    assert (from_contract.currency, from_contract.total) == ("USD", D(6))
    paid = manual(admin, usa, status="paid", reference="wire-1")
    assert invoicing.status(paid) == "paid"
    assert ledger.org_balance(dual.id, "cash:offline", "USD") == D(4)


def test_wallets_are_per_currency(db, dual, admin, buyers):
    """An INR wallet balance never pays a USD invoice; a USD one does."""
    _, usa = buyers
    wallet.move(admin, usa, "wallet_topup", "1000")  # the console's wallet top-up: in the billing currency
    assert ledger.wallet_balance(usa.id, "INR") == D(1000)
    first = manual(admin, usa, amount="4")
    assert (first.currency, invoicing.status(first)) == ("USD", "unpaid")
    assert ledger.wallet_balance(usa.id, "INR") == D(1000)
    with atomic():
        ledger.post(provider_id=dual.id, kind="wallet_topup", currency="USD", precision=2, direction="inbound",
                    amount=D(10), org_id=usa.id, entries=[
                        (ledger.account(dual.id, dual.id, "cash:offline", "USD"), D(10)),
                        (ledger.account(dual.id, usa.id, "wallet", "USD"), D(-10))])
    second = manual(admin, usa, amount="4")
    assert invoicing.status(second) == "paid"
    assert ledger.wallet_balance(usa.id, "USD") == D(6) and ledger.wallet_balance(usa.id, "INR") == D(1000)
    assert currencies_of_accounts(db, usa.id) == {("wallet", "INR"), ("wallet", "USD"), ("receivable", "USD")}


def test_plugins_hear_of_the_invoice_in_its_own_currency(db, dual, admin, buyers, register_plugin):
    heard = []

    class Spy:
        @hookimpl
        def kassa_invoice_issued(self, invoice, ctx):
            heard.append((invoice.number, invoice.currency))

    register_plugin(Spy(), "spy", enable_for=dual.id)
    india, usa = buyers
    a, b = manual(admin, usa), manual(admin, india)
    assert heard == [(a.number, "USD"), (b.number, "INR")]


# ------------------------------------------------------------------ settings


def test_the_currencies_lock_once_an_invoice_exists(db, dual, admin, buyers):
    manual(admin, buyers[1])
    for change, field in (({"currency_mode": "single"}, "currency_mode"),
                          ({"foreign_currency": "EUR"}, "foreign_currency"),
                          ({"currency": "USD", "foreign_currency": "EUR"}, "currency")):
        with pytest.raises(Conflict) as err:
            settings.update_billing_settings(admin, **{"currency": "INR", "precision": 2, **change})
        assert field in err.value.field_errors
    # the same currencies, other settings: allowed
    settings.update_billing_settings(admin, currency="INR", precision=2, currency_mode="by_buyer_country",
                                     foreign_currency="USD", online_minimums={"INR": "200", "USD": "5"})
    bs = db.session.get(BillingSettings, dual.id)
    assert (bs.currency, bs.currency_mode, bs.foreign_currency, bs.online_minimums) == (
        "INR", "by_buyer_country", "USD", {"INR": "200", "USD": "5"})
    assert settings.online_minimum(dual.id, "USD") == D(5) and settings.online_minimum(dual.id, "EUR") is None
    assert settings.online_payment_allowed(dual.id, "INR", D("199.99")) is False
    assert settings.online_payment_allowed(dual.id, "INR", D("200")) is True
    assert settings.online_payment_allowed(dual.id, "EUR", D("0.01")) is True


@pytest.mark.parametrize("changes,field,message", [
    ({"currency_mode": "by_buyer_country", "foreign_currency": "INR"}, "foreign_currency", "other than the billing"),
    ({"currency_mode": "by_country"}, "currency_mode", "Single currency, or by buyer country"),
    ({"foreign_currency": "XXY"}, "foreign_currency", "XXY"),
    ({"online_minimums": "INR two hundred"}, "online_minimums", "like INR 200"),
    ({"online_minimums": "XYZ 5"}, "online_minimums", "XYZ"),
    ({"online_minimums": {"USD": "-1"}}, "online_minimums", "positive amount"),
])
def test_bad_currency_settings_are_refused(db, provider, admin, changes, field, message):
    with pytest.raises(ValidationError) as err:
        settings.update_billing_settings(admin, **{"currency": "INR", "precision": 2, **changes})
    assert message in err.value.field_errors[field]
    assert settings.billing_settings(provider.id).currency_mode == "single"


def test_minimums_are_read_from_the_forms_text(db):
    assert settings.parse_minimums("INR 200, USD=5; EUR: 4.50") == {"INR": D(200), "USD": D(5), "EUR": D("4.50")}
    assert settings.parse_minimums("") == {} and settings.format_minimums({"USD": "5", "INR": "200"}) == "INR 200, USD 5"


def test_billing_configurations_form(db, provider, admin, console, buyers):
    c = console(admin)
    page = c.get("/billing/configurations").get_data(as_text=True)
    assert "Currency for buyers abroad" in page and "Online payment minimums" in page and "By buyer country" in page
    saved = c.post("/billing/configurations", {"currency": "INR", "precision": "2", "invoice_prefix": "INV-",
                                               "payment_terms_days": "15", "currency_mode": "by_buyer_country",
                                               "foreign_currency": "USD", "online_minimums": "INR 200, USD 5"})
    assert saved.status_code == 302
    assert settings.currency_for(provider.id, "US") == "USD"
    assert 'value="INR 200, USD 5"' in c.get("/billing/configurations").get_data(as_text=True)
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.billing")).all()[-1]
    assert audit.details["after"]["currency_mode"] == "by_buyer_country" and "USD for buyers abroad" in audit.summary
    bad = c.post("/billing/configurations", {"currency": "INR", "precision": "2", "invoice_prefix": "INV-",
                                             "payment_terms_days": "15", "currency_mode": "by_buyer_country",
                                             "foreign_currency": "USD", "online_minimums": "INR lots"})
    assert bad.status_code == 422 and "like INR 200" in bad.get_data(as_text=True)
    manual(admin, buyers[1])
    locked = c.post("/billing/configurations", {"currency": "INR", "precision": "2", "invoice_prefix": "INV-",
                                                "payment_terms_days": "15", "currency_mode": "single",
                                                "foreign_currency": "USD", "online_minimums": ""})
    assert locked.status_code == 409 and "cannot be changed" in locked.get_data(as_text=True)
    assert settings.billing_settings(provider.id).currency_mode == "by_buyer_country"
