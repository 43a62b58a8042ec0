"""Payments through the gateway hook contract, with the fake gateway of kassa.testing."""
import json
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa.models import LedgerTransaction, Payment, PaymentMethod, WebhookEvent
from kassa.services import cards, charges, invoicing, manual_invoices, subscriptions, wallet
from kassa.services.errors import Conflict, ValidationError
from kassa.testing.billing import service, subscribe
from kassa.testing.fake_gateway import sign

D = Decimal


def invoice_for(admin, org, amount="118"):
    return manual_invoices.create(admin, {"org_id": org.id, "for": org.kind, "issue_date": "2026-01-05",
                                          "due_date": "2026-01-20", "period_from": "2026-01-01",
                                          "period_to": "2026-01-31",
                                          "items": [{"description": "Hosting", "quantity": "1", "unit_price": amount}]})


def card_settings(admin, **values):
    data = {"enforce_card": False, "except_trial": True, "link_multiple_accounts": False,
            "validity_deduction": False, "validity_amount": "1", "max_declines": 3, "exemptions": []}
    data.update(values)
    return cards.update_card_settings(admin, data)


def test_add_card_keeps_only_brand_and_last_four(db, admin, customer, fake_gateway, api, console):
    client = api(admin)
    body = client.put(f"/api/v1/organisations/{customer.id}/card", json={"token": "tok_visa_4242"}).get_json()
    assert body == {"org_id": customer.id, "organisation": customer.name, "billing_profile_status": "Configured",
                    "credit_card_status": "Active", "brand": "visa", "last4": "4242", "gateway": "fakepay"}
    method = db.session.scalar(select(PaymentMethod))
    assert method.reference == "pm_tok_visa_4242" and method.last4 == "4242"
    page = console(admin).get("/billing/credit-card-status").get_data(as_text=True)
    assert "Configured" in page and "VISA •••• 4242" in page and "Not Configured" not in page
    bad = client.put(f"/api/v1/organisations/{customer.id}/card", json={"token": "tok_junk"})
    assert bad.status_code == 422 and "refused the card" in bad.get_json()["error"]["message"]


def test_validity_deduction_is_credited_to_the_wallet(db, admin, customer, fake_gateway):
    card_settings(admin, validity_deduction=True, validity_amount="2.50")
    cards.add_card(admin, customer, "tok_visa_4242")
    assert wallet.balance(customer) == D("2.50")
    assert [t.kind for t in db.session.scalars(select(LedgerTransaction))] == ["card_validation"]
    assert fake_gateway.charges == [("validation:1", D("2.50"))]
    fake_gateway.decline_next(reason="Insufficient funds")
    with pytest.raises(Conflict, match="Insufficient funds"):
        cards.add_card(admin, customer, "tok_mastercard_5555")
    assert cards.active_card(customer.id).last4 == "4242"  # the old card stays


def test_one_card_for_several_accounts_only_when_allowed(db, admin, customer, make_org, fake_gateway):
    other = make_org("customer", parent=admin.org, name="Sister Co")
    cards.add_card(admin, customer, "tok_visa_4242")
    with pytest.raises(Conflict, match="another organisation"):
        cards.add_card(admin, other, "tok_visa_4242")
    card_settings(admin, link_multiple_accounts=True)
    assert cards.add_card(admin, other, "tok_visa_4242").status == "active"


def test_capture_pays_the_invoice_once(db, admin, customer, fake_gateway, api):
    inv = invoice_for(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    body = api(admin).post(f"/api/v1/invoices/{inv.id}/capture").get_json()
    assert body["status"] == "succeeded" and body["idempotency_key"] == f"invoice:{inv.id}:attempt:1"
    assert invoicing.status(inv) == "paid"
    again = api(admin).post(f"/api/v1/invoices/{inv.id}/capture")
    assert again.status_code == 409 and "already paid" in again.get_json()["error"]["message"]
    assert fake_gateway.charges == [(f"invoice:{inv.id}:attempt:1", D("118.00"))]


def test_declines_block_the_card_after_the_limit(db, admin, customer, customer_admin, fake_gateway):
    card_settings(admin, max_declines=2)
    inv = invoice_for(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    fake_gateway.decline_next(2, reason="Do not honour")
    first = charges.capture(admin, inv)
    assert (first.status, first.decline_reason, first.attempt) == ("declined", "Do not honour", 1)
    assert cards.status_of(customer).status == "Active"
    second = charges.capture(admin, inv)
    assert second.attempt == 2 and cards.status_of(customer).status == "Blocked"
    with pytest.raises(Conflict, match="blocked"):
        charges.capture(admin, inv)
    assert invoicing.status(inv) == "unpaid" and fake_gateway.charges == []
    cards.add_card(admin, customer, "tok_mastercard_5555")  # a new card clears the block
    assert charges.capture(admin, inv).status == "succeeded"


def test_twenty_concurrent_captures_charge_once(app, db, admin, customer, fake_gateway):
    inv = invoice_for(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    barrier = threading.Barrier(20)
    outcomes = []
    invoice_id, admin_id = inv.id, admin.id  # the threads must not touch the test's own session

    def capture():
        with app.app_context():
            from kassa.extensions import db as _db
            from kassa.models import Invoice, User

            invoice, user = _db.session.get(Invoice, invoice_id), _db.session.get(User, admin_id)
            _db.session.commit()  # give the connection back to the pool while waiting for the others
            barrier.wait(timeout=30)
            try:
                outcomes.append(charges.capture(user, invoice).status)
            except Conflict as exc:
                outcomes.append(exc.message)
            except Exception as exc:  # reported by the assertion below
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=capture) for _ in range(20)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    db.session.rollback()
    assert outcomes.count("succeeded") == 1 and len(outcomes) == 20, outcomes
    assert len(fake_gateway.charges) == 1
    assert db.session.scalar(select(func.count(Payment.id))) == 1
    assert invoicing.status(inv) == "paid"


def test_timeout_is_reconciled_never_charged_again(db, admin, customer, fake_gateway, clock):
    inv = invoice_for(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    fake_gateway.time_out_next()
    payment = charges.capture(admin, inv)
    assert payment.status == "pending" and invoicing.status(inv) == "unpaid"
    with pytest.raises(Conflict, match="in progress"):
        charges.capture(admin, inv)
    assert charges.reconcile() == 0  # too recent to ask
    clock.advance(minutes=6)
    assert charges.reconcile() == 1
    assert invoicing.status(inv) == "paid" and len(fake_gateway.charges) == 1
    assert ("lookup", payment.idempotency_key) in fake_gateway.calls


def _webhook(api_client_app, provider_id, body: bytes, secret="whsec_fake"):
    return api_client_app.test_client().post(f"/webhooks/{provider_id}/fakepay", data=body,
                                             headers={"X-Fake-Signature": sign(secret, body)},
                                             content_type="application/json")


def test_webhook_applies_each_event_once_and_refuses_bad_signatures(app, db, admin, provider, customer, fake_gateway):
    from kassa.testing.helpers import isolated

    inv = invoice_for(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    fake_gateway.time_out_next()
    payment = charges.capture(admin, inv)
    body = json.dumps({"events": [{"id": "evt_1", "type": "charge.succeeded", "reference": "",
                                   "key": payment.idempotency_key}]}).encode()
    client = app.test_client()
    bad = isolated(client.post, f"/webhooks/{provider.id}/fakepay", data=body,
                   headers={"X-Fake-Signature": "0" * 64}, content_type="application/json")
    assert bad.status_code == 400 and invoicing.status(inv) == "unpaid"
    for _ in range(5):
        response = isolated(client.post, f"/webhooks/{provider.id}/fakepay", data=body,
                            headers={"X-Fake-Signature": sign("whsec_fake", body)}, content_type="application/json")
        assert response.status_code == 200
    assert response.get_json() == {"applied": 0, "replayed": 1}
    assert db.session.scalar(select(func.count(WebhookEvent.id))) == 1
    assert db.session.scalar(select(func.count(LedgerTransaction.id)).where(LedgerTransaction.kind == "payment")) == 1
    assert invoicing.status(inv) == "paid"
    unknown = isolated(client.post, f"/webhooks/{provider.id}/nosuchgateway", data=body)
    assert unknown.status_code == 404


def test_auto_deduction_after_the_billing_run(db, admin, customer, fake_gateway, clock):
    from kassa.services import billing_run

    cards.add_card(admin, customer, "tok_visa_4242")
    auto = subscribe(admin, customer, [(service(admin, "vm"), 1)])
    subscriptions.set_auto_deduction(admin, auto, True)
    manual = subscribe(admin, customer, [(service(admin, "disk"), 1)], name="Manual")
    clock.set(datetime(2026, 2, 5, 6, tzinfo=timezone.utc))
    billing_run.start(admin, admin.org_id)
    db.session.rollback()
    by_sub = {i.subscription_id: invoicing.status(i) for i in db.session.scalars(select(invoicing.Invoice))}
    assert by_sub == {auto.id: "paid", manual.id: "unpaid"}


def test_hosted_payment_page_success_and_failure(db, admin, customer, customer_admin, fake_gateway, console):
    inv = invoice_for(admin, customer)
    c = console(customer_admin)
    response = c.post(f"/billing/invoices/{inv.id}/pay", {"method": "hosted"})
    assert response.status_code == 302 and response.headers["Location"].startswith("http://127.0.0.1/fakehosted/")
    payment = db.session.scalar(select(Payment))
    assert payment.status == "requires_action"
    declined = c.get(f"/pay/return/{payment.id}/?status=failed&reason=Bank+declined&signature="
                     f"{sign('whsec_fake', payment.reference.encode())}", follow_redirects=True)
    assert "Payment failed" in declined.get_data(as_text=True) and "Bank declined" in declined.get_data(as_text=True)
    retry = c.post(f"/billing/invoices/{inv.id}/pay", {"method": "hosted"})
    second = db.session.scalars(select(Payment).order_by(Payment.id.desc())).first()
    assert second.attempt == 2 and retry.status_code == 302
    forged = c.get(f"/pay/return/{second.id}/?status=paid&amount=118.00&signature=forged", follow_redirects=True)
    assert invoicing.status(inv) == "unpaid" and "signature" in forged.get_data(as_text=True)
    ok = c.get(f"/pay/return/{second.id}/?status=paid&amount=118.00&signature="
               f"{sign('whsec_fake', second.reference.encode())}", follow_redirects=True)
    assert "Payment successful" in ok.get_data(as_text=True) and invoicing.status(inv) == "paid"


def test_card_enforcement_with_trial_exception_and_exemptions(db, admin, customer, customer_admin, make_org,
                                                               fake_gateway, console, api):
    card_settings(admin, enforce_card=True, except_trial=True)
    c = console(customer_admin)
    response = c.get("/billing/invoices")
    assert response.status_code == 302 and response.headers["Location"].endswith("/billing/profile")
    assert "A credit or debit card is required" in c.get("/billing/profile").get_data(as_text=True)
    assert api(customer_admin).get("/api/v1/invoices").status_code == 403
    trial = subscribe(admin, customer, [(service(admin), 1)], trial_days=14)
    assert c.get("/billing/invoices").status_code == 200  # a single trial subscription is exempt
    subscribe(admin, customer, [(service(admin, "other"), 1)])
    assert c.get("/billing/invoices").status_code == 302  # trial and live: no longer exempt
    card_settings(admin, enforce_card=True, exemptions=[customer.id])
    assert c.get("/billing/invoices").status_code == 200
    card_settings(admin, enforce_card=True)
    c.post("/billing/profile/card", {"token": "tok_visa_4242", "action": "add"})
    assert c.get("/billing/invoices").status_code == 200
    del trial


def test_gateway_verify(db, admin, fake_gateway, api):
    from kassa.services import plugin_settings

    assert api(admin).post("/api/v1/gateways/fakepay/verify").get_json() == {"ok": True,
                                                                             "message": "Connected to FakePay."}
    plugin_settings.save_settings(admin, "fakegateway", {"api_key": "wrong"})
    assert api(admin).post("/api/v1/gateways/fakepay/verify").get_json()["ok"] is False


def test_online_payment_below_the_minimum_is_refused_everywhere(db, admin, customer, customer_admin, fake_gateway,
                                                                 api):
    from kassa.services import settings

    settings.update_billing_settings(admin, currency="INR", precision=2, online_minimums="INR 200")
    inv = invoice_for(admin, customer, amount="100")
    response = api(customer_admin).post(f"/api/v1/invoices/{inv.id}/pay", json={"return_url": "https://x.example/"})
    assert response.status_code == 409 and "contact support" in response.get_json()["error"]["message"]
    assert db.session.scalar(select(func.count(Payment.id))) == 0
