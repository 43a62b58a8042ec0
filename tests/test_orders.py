"""Seed 004: orders for new customers ("Create Invoice") and paying their invoices
("Pay Invoice"), through the console and the API, with the fake gateways."""
import json
import re
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import func, select

from kassa.contracts import GatewayInfo
from kassa.hookspecs import hookimpl
from kassa.models import (AuditEvent, Invoice, LedgerTransaction, Order, OrderLine, Organisation, OutboxMessage,
                          Payment, Subscription, User)
from kassa.permissions import effective_privileges
from kassa.plugins import host
from kassa.services import catalog, invoicing, orders, plugin_settings, settings
from kassa.services.errors import ValidationError
from kassa.testing.fake_gateway import FakeGateway, sign

D = Decimal
SELLER_GSTIN = "33AABCC1234D1ZI"  # Tamil Nadu
TN_GSTIN = "33AAFCT4321K1ZG"  # another company in Tamil Nadu
KA_GSTIN = "29AABCD5678E1ZG"  # Karnataka
GST = "tax_india_gst"


class IndianGateway(FakeGateway):
    """A hosted gateway for INR from India only (seed 004: the Indian gateway)."""

    CARD, HOSTED = "fakeinrcards", "fakeinr"

    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id=self.HOSTED, name="Fake INR gateway", saves_cards=False, hosted_redirect=True,
                            countries=("IN",), currencies=("INR",))]


@pytest.fixture
def shop(db, provider, admin, reseller, reseller_admin, make_user, fake_gateway):
    """An INR/USD provider in Tamil Nadu with the GST plugin, two services priced in
    both currencies, online minimums of INR 200 and USD 5, and a reseller sub-admin."""
    provider.tax_id, provider.city, provider.postal_code = SELLER_GSTIN, "Chennai", "600002"
    provider.address_line1, provider.email = "12 Anna Salai", "support@cloud7.example"
    db.session.commit()
    plugin_settings.set_enabled(admin, GST, True)
    plugin_settings.save_settings(admin, GST, {"default_rate": "18", "sac_rates": "", "lut_number": "AD3301260001234"})
    host().forget_cache()
    settings.update_billing_settings(admin, currency="INR", precision=2, currency_mode="by_buyer_country",
                                     foreign_currency="USD", online_minimums="INR 200, USD 5")
    messaging = catalog.save_service(admin, {"code": "msg.secure", "name": "SecureMessaging Standard Edition",
                                             "category": "Messaging", "unit": "user / month", "tax_code": "998315",
                                             "prices": {"INR": "150", "USD": "2"}})
    storage = catalog.save_service(admin, {"code": "store.gb", "name": "Secure Storage", "category": "Storage",
                                           "unit": "GB / month", "tax_code": "998315",
                                           "prices": {"INR": "10", "USD": "0.50"}})
    inr_only = catalog.save_service(admin, {"code": "local.sms", "name": "Local SMS", "category": "Messaging",
                                            "unit": "pack / month", "prices": {"INR": "300"}})
    subadmin = make_user(reseller, "reseller_subadmin", email="tech@reseller.example", privileges=["billing.view"],
                         actor=reseller_admin)
    return SimpleNamespace(provider=provider, admin=admin, reseller=reseller, reseller_admin=reseller_admin,
                           messaging=messaging, storage=storage, inr_only=inr_only, subadmin=subadmin,
                           gateway=fake_gateway)


def indian_order(shop, **changes):
    data = {"organization_name": "Acme Chennai", "contact_name": "Priya Raman", "address_line1": "12 Mount Road",
            "address_line2": "Teynampet", "city": "Chennai", "state": "Tamil Nadu", "country": "IN",
            "postal_code": "600018", "mobile": "+91-9382126757", "contact_email": "priya@acme.example",
            "kyc_id": "", "technical_admin": "",
            "items": [{"service_id": shop.messaging.id, "units": "3"}, {"service_id": shop.storage.id, "units": "5"}]}
    data.update(changes)
    return data


def us_order(shop, **changes):
    data = indian_order(shop, organization_name="Acme Inc", contact_name="John Doe", address_line1="1 Market St",
                        address_line2="Suite 100", city="San Francisco", state="California", country="US",
                        postal_code="94105", mobile="+1-2015550123", contact_email="john@acme-us.example",
                        items=[{"service_id": shop.messaging.id, "units": "3"}])
    data.update(changes)
    return data


def form_fields(data: dict) -> dict:
    """An order as the console's form posts it."""
    fields = {k: v for k, v in data.items() if k != "items"}
    for i, item in enumerate(data.get("items") or ()):
        fields[f"items-{i}-service_id"] = str(item.get("service_id", ""))
        fields[f"items-{i}-units"] = str(item.get("units", ""))
    return fields


def counts(db) -> dict:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Organisation, User, Order, OrderLine, Invoice, OutboxMessage, LedgerTransaction,
                          Subscription, AuditEvent)}


def the_email(smtp_sink, to: str):
    found = [m for m in smtp_sink if m["To"] == to]
    assert len(found) == 1, [m["To"] for m in smtp_sink]
    message = found[0]
    text = message.get_body(("plain",)).get_content()
    link = re.search(r"(http://\S+/orders/invoice/\S+)", text).group(1)
    username = re.search(r"Username: (\S+)", text).group(1)
    password = re.search(r"Password: (\S+)", text).group(1)
    return SimpleNamespace(message=message, text=text, link=link, path=urlsplit(link).path, username=username,
                           password=password)


def sign_in_through(console, email):
    """Open the e-mailed link signed out, sign in on the page it leads to, land on the invoice."""
    c = console()
    first = c.get(email.path)
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    login = first.headers["Location"]
    assert "next=" in login
    response = c.post(urlsplit(login).path + "?" + urlsplit(login).query,
                      {"email": email.username, "password": email.password})
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == email.path
    c.signed_in = True
    return c


def paid_return(c, payment, secret="whsec_fake", amount=None):
    amount = amount or str(payment.amount)
    return c.get(f"/pay/return/{payment.id}/?status=paid&amount={amount}"
                 f"&signature={sign(secret, payment.reference.encode())}", follow_redirects=True)


def failed_return(c, payment, reason, secret="whsec_fake"):
    return c.get(f"/pay/return/{payment.id}/?status=failed&reason={quote(reason)}"
                 f"&signature={sign(secret, payment.reference.encode())}", follow_redirects=True)


def latest_payment(db):
    db.session.expire_all()
    return db.session.scalars(select(Payment).order_by(Payment.id.desc())).first()


# ------------------------------------------------------------------ bad input: a field error each, nothing written


BAD_INPUTS = [
    ({"organization_name": ""}, "organization_name", "Required"),
    ({"contact_name": "  "}, "contact_name", "Required"),
    ({"address_line1": ""}, "address_line1", "Required"),
    ({"address_line2": ""}, "address_line2", "Required"),
    ({"city": ""}, "city", "Required"),
    ({"state": ""}, "state", "Required"),
    ({"country": ""}, "country", "Required"),
    ({"country": "XX"}, "country", "Unknown country"),
    ({"postal_code": ""}, "postal_code", "Required"),
    ({"postal_code": "60001"}, "postal_code", "exactly 6 digits"),
    ({"postal_code": "60001A"}, "postal_code", "exactly 6 digits"),
    ({"mobile": ""}, "mobile", "Required"),
    ({"mobile": "9382126757"}, "mobile", "+<CountryCode>-<Number>"),
    ({"mobile": "+91 9382126757"}, "mobile", "+<CountryCode>-<Number>"),
    ({"mobile": "+999-9382126757"}, "mobile", "not a country calling code"),
    ({"mobile": "+91-12345"}, "mobile", "not a valid number for +91"),
    ({"contact_email": ""}, "contact_email", "Required"),
    ({"contact_email": "priya@"}, "contact_email", "after the @-sign"),
    ({"contact_email": "admin@reseller.example"}, "contact_email", "already exists"),
    ({"kyc_id": "33AABCC1234D1ZJ"}, "kyc_id", "Not a valid GSTIN"),
    ({"kyc_id": KA_GSTIN}, "kyc_id", "registered in Karnataka"),
    ({"technical_admin": "nobody@reseller.example"}, "technical_admin", "Not an active sub-admin"),
    ({"technical_admin": "admin@reseller.example"}, "technical_admin", "Not an active sub-admin"),
    ({"items": [{"service_id": "", "units": ""}]}, "items", "Add at least one service"),
    ({"items": [{"service_id": "999999", "units": "2"}]}, "items.0.service_id", "Unknown service"),
    ({"items": [{"service_id": "SHOP:messaging", "units": "0"}]}, "items.0.units", "more than zero"),
    ({"items": [{"service_id": "SHOP:messaging", "units": "-3"}]}, "items.0.units", "more than zero"),
    ({"items": [{"service_id": "SHOP:messaging", "units": "2.5"}]}, "items.0.units", "whole number"),
    ({"items": [{"service_id": "SHOP:messaging", "units": ""}]}, "items.0.units", "Required"),
]


def _resolve(shop, changes):
    if "items" in changes:
        changes = dict(changes, items=[{k: (shop.messaging.id if v == "SHOP:messaging" else v) for k, v in i.items()}
                                       for i in changes["items"]])
    return changes


@pytest.mark.parametrize("changes,field,message", BAD_INPUTS, ids=[f"{f}:{m}" for _, f, m in BAD_INPUTS])
def test_bad_input_via_the_api_names_the_field_and_writes_nothing(db, shop, api, changes, field, message):
    client = api(shop.reseller_admin)
    before = counts(db)
    response = client.post("/api/v1/orders", json=indian_order(shop, **_resolve(shop, changes)))
    assert response.status_code == 422, response.get_json()
    fields = response.get_json()["error"]["fields"]
    assert message in fields[field], fields
    assert counts(db) == before
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


@pytest.mark.parametrize("changes,field,message", [BAD_INPUTS[i] for i in (9, 13, 19, 20, 21, 25)],
                         ids=["pin", "mobile", "gstin", "gstin-state", "subadmin", "units"])
def test_bad_input_in_the_console_shows_the_field_error_and_writes_nothing(db, shop, console, changes, field,
                                                                           message):
    c = console(shop.reseller_admin)
    before = counts(db)
    response = c.post("/orders/new", {**form_fields(indian_order(shop, **_resolve(shop, changes))), "action": "add"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message.replace("<", "&lt;").replace(">", "&gt;") in page
    if field.startswith("items"):
        assert "Step 2 of 2" in page and 'name="organization_name" value="Acme Chennai"' in page
    else:
        assert "Step 1 of 2" in page and 'value="Acme Chennai"' in page  # what was typed stays
    assert counts(db) == before


def test_a_failure_inside_the_transaction_leaves_nothing_behind(db, shop, api):
    """Past the form's checks the tax engine refuses the state: the organisation, user,
    order and invoice written so far are all rolled back, and the number is not used."""
    client = api(shop.reseller_admin)
    before = counts(db)
    response = client.post("/api/v1/orders", json=indian_order(shop, state="Atlantis"))
    assert response.status_code == 422
    assert "not an Indian state" in response.get_json()["error"]["fields"]["tax"]
    assert counts(db) == before
    good = client.post("/api/v1/orders", json=indian_order(shop)).get_json()
    assert good["invoice"]["number"].endswith("000001")


def test_several_errors_come_back_together(db, shop, api):
    response = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(
        shop, postal_code="1234", mobile="9382126757", city="",
        items=[{"service_id": 999999, "units": 1}, {"service_id": shop.storage.id, "units": 0}]))
    fields = response.get_json()["error"]["fields"]
    assert set(fields) >= {"postal_code", "mobile", "city", "items.0.service_id", "items.1.units"}


def test_a_service_without_a_price_in_the_buyers_currency_is_refused(db, shop, api):
    response = api(shop.reseller_admin).post("/api/v1/orders", json=us_order(
        shop, items=[{"service_id": shop.inr_only.id, "units": 1}]))
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["items.0.service_id"] == "Local SMS has no USD price."


def test_another_providers_service_is_unknown(db, shop, make_org, make_user, api):
    other = make_org("provider", name="Other Cloud", country="IN")
    other_admin = make_user(other, "cloud_admin")
    foreign = catalog.save_service(other_admin, {"code": "x", "name": "X", "category": "Compute", "unit": "u",
                                                 "prices": {"INR": "1"}})
    response = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(
        shop, items=[{"service_id": foreign.id, "units": 1}]))
    assert response.get_json()["error"]["fields"]["items.0.service_id"].startswith("Unknown service")


def test_who_may_place_and_see_orders(db, shop, make_org, make_user, api, console, customer_admin):
    assert api(shop.subadmin).post("/api/v1/orders", json=indian_order(shop)).status_code == 403
    assert api(customer_admin).post("/api/v1/orders", json=indian_order(shop)).status_code == 404
    assert console(customer_admin).get("/orders/new").status_code == 404
    order = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop)).get_json()
    other_reseller = make_org("reseller", parent=shop.provider, name="Reseller Two")
    stranger = make_user(other_reseller, "reseller_admin")
    assert api(stranger).get(f"/api/v1/orders/{order['id']}").status_code == 404
    assert api(stranger).get("/api/v1/orders").get_json()["items"] == []
    assert console(stranger).get(f"/orders/{order['id']}").status_code == 404
    assert api(shop.admin).get(f"/api/v1/orders/{order['id']}").get_json()["number"] == order["number"]


# ------------------------------------------------------------------ placing an order


def test_the_console_order_in_two_steps_creates_everything_and_emails_once(db, shop, console, smtp_sink):
    c = console(shop.reseller_admin)
    assert "Orders" in c.get("/").get_data(as_text=True)
    step_one = c.get("/orders/new").get_data(as_text=True)
    assert "Step 1 of 2" in step_one and "Technical Administrator" in step_one and "<script>" not in step_one
    data = indian_order(shop, kyc_id=TN_GSTIN.lower(), technical_admin="TECH@reseller.example", items=[])
    bad = c.post("/orders/new", {**form_fields(dict(data, mobile="9382126757")), "action": "next"})
    assert bad.status_code == 422 and "+&lt;CountryCode&gt;-&lt;Number&gt;" in bad.get_data(as_text=True)
    assert counts(db)["Order"] == 0
    step_two = c.post("/orders/new", {**form_fields(data), "action": "next"}).get_data(as_text=True)
    assert "Step 2 of 2" in step_two and "in INR" in step_two
    assert step_two.count('class="order-item"') == 5  # empty rows: works without JavaScript
    assert "SecureMessaging Standard Edition — ₹150.00 per user / month" in step_two
    assert 'src="/static/orders.js"' in step_two
    more = c.post("/orders/new", {**form_fields(data), "items-0-service_id": str(shop.messaging.id),
                                  "items-0-units": "3", "action": "add_row"}).get_data(as_text=True)
    assert more.count('class="order-item"') == 6  # "+" without JavaScript
    rows = {"items-0-service_id": str(shop.messaging.id), "items-0-units": "3", "items-1-service_id": "",
            "items-1-units": "", "items-2-service_id": str(shop.storage.id), "items-2-units": "5"}
    done = c.post("/orders/new", {**form_fields(data), **rows, "action": "add"})
    assert done.status_code == 302, done.get_data(as_text=True)[:3000]
    order = db.session.scalar(select(Order))
    assert done.headers["Location"].endswith(f"/orders/{order.id}")
    org, contact = order.org, order.contact_user
    assert (org.kind, org.parent_id, org.name, org.country, org.state, org.postal_code, org.phone, org.tax_id) == (
        "customer", shop.reseller.id, "Acme Chennai", "IN", "Tamil Nadu", "600018", "+91-9382126757", TN_GSTIN)
    assert (contact.email, contact.name, contact.role, contact.is_primary_contact, contact.org_id) == (
        "priya@acme.example", "Priya Raman", "customer_admin", True, org.id)
    assert [(l.service_id, l.units, l.unit_price) for l in order.lines] == [
        (shop.messaging.id, D(3), D(150)), (shop.storage.id, D(5), D(10))]
    invoice = db.session.get(Invoice, order.invoice_id)
    # 450 + 50 = 500 INR; intra-state GST (Tamil Nadu to Tamil Nadu): CGST 9 % + SGST 9 %
    assert (invoice.kind, invoice.currency, invoice.subtotal, invoice.tax_total, invoice.total) == (
        "order", "INR", D("500"), D("90"), D("590"))
    assert sorted(t.name for t in invoice.taxes) == ["CGST", "SGST"]
    assert invoice.org_id == org.id and order.status == "pending" and order.subscription_id is None
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0
    # the technical administrator was delegated the implementation, audited
    assert order.technical_admin_id == shop.subadmin.id
    db.session.refresh(shop.subadmin)
    assert {"orgs.view", "subscriptions.manage", "billing.view"} <= effective_privileges(shop.subadmin)
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"order.create", "order.delegate", "user.privileges", "org.create", "user.create",
            "invoice.issue"} <= actions
    # one e-mail: the invoice, its link and the sign-in details
    email = the_email(smtp_sink, "priya@acme.example")
    assert len(smtp_sink) == 1
    assert invoice.number in email.message["Subject"] and order.number in email.message["Subject"]
    assert "₹590.00" in email.text and email.username == "priya@acme.example" and len(email.password) >= 10
    assert email.path.startswith("/orders/invoice/") and len(email.path.rsplit("/", 1)[-1]) > 30
    assert db.session.scalar(select(OutboxMessage.status)) == "sent"
    page = c.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Awaiting payment" in page and "tech@reseller.example" in page and invoice.number in page
    listing = c.get("/orders").get_data(as_text=True)
    assert order.number in listing and "Acme Chennai" in listing


def test_the_api_order_for_a_buyer_abroad_is_in_usd_without_gst(db, shop, api, smtp_sink):
    body = api(shop.reseller_admin).post("/api/v1/orders", json=us_order(shop))
    assert body.status_code == 201, body.get_json()
    order = body.get_json()
    assert (order["currency"], order["status"], order["invoice"]["total"], order["invoice"]["status"]) == (
        "USD", "pending", "6.00", "unpaid")
    assert order["invoice"]["online_payment"] is True and order["invoice"]["online_minimum"] == "5.00"
    assert order["lines"] == [{"service_id": shop.messaging.id, "service": "SecureMessaging Standard Edition",
                               "units": "3", "unit_price": "2.00"}]
    invoice = db.session.get(Invoice, order["invoice"]["id"])
    assert invoice.currency == "USD" and invoice.tax_total == 0  # an export of services: zero-rated
    email = the_email(smtp_sink, "john@acme-us.example")
    assert "$6.00" in email.text
    listed = api(shop.reseller_admin).get("/api/v1/orders").get_json()
    assert [o["id"] for o in listed["items"]] == [order["id"]] and listed["total"] == 1
    doc = api(shop.reseller_admin).get("/api/v1/openapi.json").get_json()
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/orders"]) and "get" in doc["paths"]["/api/v1/orders/{order_id}"]


# ------------------------------------------------------------------ the link and paying


def test_india_end_to_end_in_the_console_fail_then_pay_activates_once(db, shop, console, smtp_sink, register_plugin,
                                                                     app):
    indian = IndianGateway()
    register_plugin(indian, "fakeinr", enable_for=shop.provider.id)
    plugin_settings.save_settings(shop.admin, "fakeinr", {"api_key": "good-key", "webhook_secret": "whsec_inr"})
    host().forget_cache()
    c = console(shop.reseller_admin)
    assert c.post("/orders/new", {**form_fields(indian_order(shop, technical_admin="tech@reseller.example")),
                                  "action": "add"}).status_code == 302
    order = db.session.scalar(select(Order))
    email = the_email(smtp_sink, "priya@acme.example")

    buyer = sign_in_through(console, email)
    page = buyer.get(email.path).get_data(as_text=True)
    assert "Invoice INV-000001" in page and "Click here to pay" in page and "₹590.00" in page

    # first attempt: the Indian gateway (INR from India), declined
    go = buyer.post(f"{email.path}/pay")
    assert go.status_code == 302 and go.headers["Location"].startswith("http://127.0.0.1/fakehosted/")
    first = latest_payment(db)
    assert (first.gateway, first.currency, first.amount) == ("fakeinr", "INR", D("590.00"))
    failed = failed_return(buyer, first, "Insufficient funds in the account", secret="whsec_inr")
    text = failed.get_data(as_text=True)
    assert "Payment failed" in text and "Insufficient funds in the account" in text and "Try again" in text
    db.session.expire_all()
    assert order.status == "pending" and db.session.scalar(select(func.count()).select_from(Subscription)) == 0

    # retry from the result page's button (the generic pay route): success
    retry = buyer.post(f"/billing/invoices/{order.invoice_id}/pay", {"method": "hosted"})
    assert retry.status_code == 302
    second = latest_payment(db)
    assert second.attempt == 2 and second.gateway == "fakeinr"
    ok = paid_return(buyer, second, secret="whsec_inr")
    assert "Payment successful" in ok.get_data(as_text=True)
    again = buyer.get(f"/pay/return/{second.id}/?status=paid&amount=590.00"
                      f"&signature={sign('whsec_inr', second.reference.encode())}", follow_redirects=True)
    assert "Payment successful" in again.get_data(as_text=True)  # the return page loaded twice

    db.session.expire_all()
    order = db.session.get(Order, order.id)
    invoice = db.session.get(Invoice, order.invoice_id)
    assert invoicing.status(invoice) == "paid" and order.status == "active"
    subs = db.session.scalars(select(Subscription)).all()
    assert len(subs) == 1 and order.subscription_id == subs[0].id
    sub = subs[0]
    assert (sub.org_id, sub.status, sub.currency, sub.anchor_date, sub.next_period_start) == (
        order.org_id, "active", "INR", date(2026, 1, 5), date(2026, 2, 5))  # the first month is the paid invoice
    assert [(i.service_id, i.units, i.unit_price) for i in sub.items] == [
        (shop.messaging.id, D(3), D(150)), (shop.storage.id, D(5), D(10))]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "order.activate")) == 1
    assert indian.charges == [("invoice:1:attempt:2", D("590.00"))] and shop.gateway.charges == []

    # the customer's invoice list shows it paid; the link now says so
    listing = buyer.get("/billing/invoices").get_data(as_text=True)
    assert invoice.number in listing and "Paid" in listing
    assert "is paid and order" in buyer.get(email.path).get_data(as_text=True)
    # the reseller sees the order active, with its technical administrator
    detail = c.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Active" in detail and f"#{sub.id}" in detail and "technical contact tech@reseller.example" in detail
    # the technical administrator can now see it and manage the subscription
    tech = console(shop.subadmin)
    assert order.number in tech.get("/orders").get_data(as_text=True)
    assert tech.get(f"/subscriptions/{sub.id}").status_code == 200


def test_usd_end_to_end_through_the_api_and_a_webhook(db, shop, api, console, smtp_sink, register_plugin):
    """Abroad: USD to the gateway that takes it (PayPal's place); the webhook settles it,
    and replaying the webhook activates nothing twice."""
    register_plugin(IndianGateway(), "fakeinr", enable_for=shop.provider.id)
    plugin_settings.save_settings(shop.admin, "fakeinr", {"api_key": "good-key", "webhook_secret": "whsec_inr"})
    host().forget_cache()
    order = api(shop.reseller_admin).post("/api/v1/orders", json=us_order(shop)).get_json()
    email = the_email(smtp_sink, "john@acme-us.example")
    buyer = sign_in_through(console, email)
    assert "Click here to pay" in buyer.get(email.path).get_data(as_text=True)
    contact = db.session.scalar(select(User).where(User.email == "john@acme-us.example"))
    client = api(contact)
    started = client.post(f"/api/v1/invoices/{order['invoice']['id']}/pay",
                          json={"return_url": "https://shop.example/back/PAYMENT_ID"}).get_json()
    assert (started["gateway"], started["currency"], started["amount"], started["status"]) == (
        "fakehosted", "USD", "6.00", "requires_action")
    payment = db.session.get(Payment, started["id"])
    body = json.dumps({"events": [{"id": "evt_1", "type": "charge.succeeded", "reference": payment.reference}]})
    hook = lambda: console().raw_post(f"/webhooks/{shop.provider.id}/fakehosted", data=body, headers={
        "X-Fake-Signature": sign("whsec_fake", body.encode()), "Content-Type": "application/json"})
    assert hook().status_code == 200
    assert hook().get_json() == {"applied": 0, "replayed": 1}
    db.session.expire_all()
    got = api(shop.reseller_admin).get(f"/api/v1/orders/{order['id']}").get_json()
    assert got["status"] == "active" and got["invoice"]["status"] == "paid" and got["subscription_id"]
    sub = db.session.get(Subscription, got["subscription_id"])
    assert sub.currency == "USD" and [(i.units, i.unit_price) for i in sub.items] == [(D(3), D(2))]
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 1
    # the money is USD in the ledger: cash at the gateway, the customer's receivable settled
    assert set(db.session.scalars(select(LedgerTransaction.currency))) == {"USD"}


def test_offline_payment_activates_too_and_activation_happens_once(db, shop, api):
    order = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop)).get_json()
    invoice = db.session.get(Invoice, order["invoice"]["id"])
    from kassa.services import payments

    payments.adjust_offline(shop.admin, invoice, mark_as_paid=True, reference="NEFT-1")
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).status == "active"
    assert orders.activate_for_invoice(invoice.id).status == "active"  # called again: nothing new
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 1
    assert orders.activate_for_invoice(999999) is None


def test_partial_payment_does_not_activate(db, shop, api):
    order = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop)).get_json()
    invoice = db.session.get(Invoice, order["invoice"]["id"])
    from kassa.services import payments

    payments.adjust_offline(shop.admin, invoice, mark_as_paid=False, amount="100", reference="part")
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_a_failed_activation_is_shown_and_can_be_retried(db, shop, api, console):
    order = api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop)).get_json()
    catalog.save_service(shop.admin, {"active": False}, shop.storage)  # withdrawn before payment
    invoice = db.session.get(Invoice, order["invoice"]["id"])
    from kassa.services import payments

    payments.adjust_offline(shop.admin, invoice, mark_as_paid=True, reference="NEFT-2")
    db.session.expire_all()
    stuck = db.session.get(Order, order["id"])
    assert stuck.status == "pending" and "no longer sold" in stuck.activation_error
    c = console(shop.reseller_admin)
    assert "could not be activated" in c.get(f"/orders/{stuck.id}").get_data(as_text=True)
    catalog.save_service(shop.admin, {"active": True}, shop.storage)
    assert c.post(f"/orders/{stuck.id}/activate").status_code == 302
    db.session.expire_all()
    assert db.session.get(Order, stuck.id).status == "active"


@pytest.mark.parametrize("kind,units,allowed", [("IN", "1", False), ("IN", "2", True),
                                                ("US", "2", False), ("US", "3", True)])
def test_online_payment_only_from_the_minimum(db, shop, api, console, smtp_sink, kind, units, allowed):
    """₹150 + 18 % = ₹177 < ₹200 and US$4 < US$5: contact support; ₹354 and US$6: pay online."""
    make = indian_order if kind == "IN" else us_order
    order = api(shop.reseller_admin).post("/api/v1/orders", json=make(
        shop, items=[{"service_id": shop.messaging.id, "units": units}])).get_json()
    assert order["invoice"]["online_payment"] is allowed
    email = the_email(smtp_sink, make(shop)["contact_email"])
    assert ("contact Cloud7 Test support" in email.text) is not allowed
    buyer = sign_in_through(console, email)
    page = buyer.get(email.path).get_data(as_text=True)
    assert ("Click here to pay" in page) is allowed
    assert ('contact Cloud7 Test support at <a href="mailto:support@cloud7.example">' in page) is not allowed
    response = buyer.post(f"{email.path}/pay", follow_redirects=False)
    assert response.status_code == 302
    started = db.session.scalar(select(func.count()).select_from(Payment))
    assert started == (1 if allowed else 0)
    if not allowed:
        assert "please contact support" in buyer.get(email.path).get_data(as_text=True)


def test_the_link_tampered_expired_or_for_someone_else_is_refused(db, shop, api, console, smtp_sink, app, clock,
                                                                  make_org, make_user):
    api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop))
    email = the_email(smtp_sink, "priya@acme.example")
    token = email.path.rsplit("/", 1)[-1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    anonymous = console()
    bad = anonymous.get(f"/orders/invoice/{tampered}")
    assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
    assert anonymous.get("/orders/invoice/not-a-token").status_code == 400
    other_payload = console().get(email.path.replace(token, token.split(".")[0] + ".x.y"))
    assert other_payload.status_code == 400
    buyer = sign_in_through(console, email)
    assert buyer.post(f"/orders/invoice/{tampered}/pay").status_code == 400
    # another customer signed in cannot open it: not found
    stranger_org = make_org("customer", parent=shop.provider, name="Stranger")
    stranger = console(make_user(stranger_org, "customer_admin"))
    assert stranger.get(email.path).status_code == 404
    # 30 days later the link has expired
    clock.advance(days=31)
    expired = buyer.get(email.path)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert buyer.post(f"{email.path}/pay").status_code == 410
    with pytest.raises(orders.ExpiredLink):
        orders.open_link(token)
    clock.advance(days=-2)
    assert orders.open_link(token)[0] == db.session.scalar(select(Order.id))


def test_a_link_for_another_order_cannot_be_forged_from_the_secret_salt(db, shop, api, smtp_sink, app):
    """The token is signed with the app's secret: the same payload under another key is refused."""
    from itsdangerous import URLSafeTimedSerializer

    api(shop.reseller_admin).post("/api/v1/orders", json=indian_order(shop))
    forged = URLSafeTimedSerializer("not-the-secret", salt=orders.LINK_SALT).dumps({"order": 1, "invoice": 1})
    with pytest.raises(orders.BadLink):
        orders.open_link(forged)
    with pytest.raises(ValidationError):
        orders.place(shop.reseller_admin, {"items": []})
