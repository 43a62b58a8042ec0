"""Invoice actions of seed 000: list and filter, cancel, adjust offline, resend,
manual invoice, export CSV; immutability and scope."""
import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa.models import Invoice, InvoiceSequence, LedgerTransaction, OutboxMessage
from kassa.services import invoicing, ledger, manual_invoices, payments, wallet
from kassa.services.errors import Conflict, ServiceError, ValidationError
from kassa.testing.billing import rule, service, subscribe

D = Decimal


def manual(admin, org, amount="100", **extra):
    data = {"org_id": org.id, "for": org.kind, "issue_date": "2026-01-05", "due_date": "2026-01-20",
            "period_from": "2026-01-01", "period_to": "2026-01-31",
            "items": [{"description": "Consulting", "quantity": "1", "unit_price": amount}]}
    data.update(extra)
    return manual_invoices.create(admin, data)


def test_cancel_reverses_the_ledger_and_keeps_the_number(db, admin, customer):
    first = manual(admin, customer)
    assert ledger.receivable_balance(customer.id, "INR") == D("100.00")
    invoicing.cancel(admin, first, "duplicate")
    assert invoicing.status(first) == "cancelled"
    assert ledger.receivable_balance(customer.id, "INR") == 0
    with pytest.raises(Conflict, match="already cancelled"):
        invoicing.cancel(admin, first)
    second = manual(admin, customer)
    assert (first.number, second.number) == ("INV-000001", "INV-000002")
    kinds = [t.kind for t in db.session.scalars(select(LedgerTransaction).order_by(LedgerTransaction.id))]
    assert kinds[:2] == ["invoice", "invoice_cancel"]


def test_paid_invoice_cannot_be_cancelled(db, admin, customer):
    inv = manual(admin, customer)
    payments.adjust_offline(admin, inv, mark_as_paid=False, reference="CHQ-1", amount="40")
    with pytest.raises(Conflict, match="refund or credit"):
        invoicing.cancel(admin, inv)


def test_issued_invoices_never_change(db, admin, customer):
    inv = manual(admin, customer)
    inv.total = D("1.00")
    with pytest.raises(ServiceError, match="never change"):
        db.session.flush()
    db.session.rollback()
    inv = db.session.get(Invoice, inv.id)
    inv.lines[0].amount = D("1.00")
    with pytest.raises(ServiceError, match="never change"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(Invoice, inv.id))
    with pytest.raises(ServiceError, match="never deleted"):
        db.session.flush()
    db.session.rollback()


def test_adjust_offline_partial_then_paid(db, admin, customer):
    inv = manual(admin, customer, amount="100")
    payments.adjust_offline(admin, inv, mark_as_paid=False, reference="NEFT-77", amount="30")
    assert invoicing.status(inv) == "partially_paid" and invoicing.amount_due(inv) == D("70.00")
    with pytest.raises(Conflict, match="to pay"):
        payments.adjust_offline(admin, inv, mark_as_paid=False, reference="X", amount="80")
    payments.adjust_offline(admin, inv, mark_as_paid=True, reference="CHQ-12", description="Cheque")
    assert invoicing.status(inv) == "paid" and invoicing.amount_paid(inv) == D("100.00")
    refs = [t.reference for t in db.session.scalars(select(LedgerTransaction).filter_by(kind="payment"))]
    assert refs == ["NEFT-77", "CHQ-12"]
    with pytest.raises(ValidationError) as err:
        payments.adjust_offline(admin, inv, mark_as_paid=True, reference="")
    assert "reference" in err.value.field_errors


def test_adjust_offline_from_the_console(db, admin, customer, console):
    inv = manual(admin, customer)
    c = console(admin)
    response = c.post(f"/billing/invoices/{inv.id}/adjust-offline", {"mark_as_paid": "1", "reference": "CHQ-991",
                                                                     "description": "Cheque deposited"})
    assert response.status_code == 302
    page = c.get(f"/billing/invoices/{inv.id}").get_data(as_text=True)
    assert "Paid" in page and "CHQ-991" in page
    logs = c.get("/billing/transactions?kind=payment").get_data(as_text=True)
    assert "CHQ-991" in logs and "inbound" in logs


def test_wallet_applied_to_new_invoices(db, admin, customer):
    wallet.move(admin, customer, "wallet_topup", "60", "UPI-1")
    inv = manual(admin, customer, amount="100")
    assert invoicing.amount_due(inv) == D("40.00") and invoicing.status(inv) == "partially_paid"
    assert wallet.balance(customer) == 0


def test_manual_invoice_paid_from_contract_items(db, admin, customer):
    svc = service(admin, price="250")
    sub = subscribe(admin, customer, [(svc, 2)])
    inv = manual_invoices.create(admin, {"org_id": customer.id, "subscription_id": sub.id, "status": "paid",
                                         "issue_date": "2026-01-05", "due_date": "2026-01-05",
                                         "period_from": "2026-01-05", "period_to": "2026-02-04",
                                         "items_from_contract": True, "reference": "WIRE-5"})
    assert inv.subscription_id == sub.id and inv.kind == "manual" and inv.total == D("500.00")
    assert invoicing.status(inv) == "paid"


@pytest.mark.parametrize("change,field", [
    ({"due_date": "2026-01-01"}, "due_date"),
    ({"period_to": "2025-12-01"}, "period_to"),
    ({"items": [{"description": "x", "quantity": "-1", "unit_price": "5"}]}, "items.0.quantity"),
    ({"items": [{"description": "x", "quantity": "1", "unit_price": "abc"}]}, "items.0.unit_price"),
    ({"items": []}, "items"),
    ({"currency": "USD"}, "currency"),
    ({"status": "maybe"}, "status"),
    ({"for": "reseller"}, "org_id"),
])
def test_manual_invoice_bad_input_writes_nothing(db, admin, customer, api, change, field):
    data = {"org_id": customer.id, "for": "customer", "issue_date": "2026-01-05", "due_date": "2026-01-20",
            "period_from": "2026-01-01", "period_to": "2026-01-31",
            "items": [{"description": "Consulting", "quantity": "1", "unit_price": "10"}], **change}
    response = api(admin).post("/api/v1/invoices", json=data)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert db.session.scalar(select(func.count(Invoice.id))) == 0
    assert db.session.scalar(select(InvoiceSequence.last_number)) is None


def test_manual_invoice_outside_scope_is_refused(db, admin, make_org, reseller, reseller_admin, api):
    other = make_org("customer", parent=admin.org, name="Not yours")
    response = api(reseller_admin).post("/api/v1/invoices", json={
        "org_id": other.id, "due_date": "2026-02-01", "period_from": "2026-01-01", "period_to": "2026-01-31",
        "items": [{"description": "x", "quantity": "1", "unit_price": "1"}]})
    assert response.status_code == 422 and "org_id" in response.get_json()["error"]["fields"]


def test_manual_invoice_from_the_console(db, admin, customer, console):
    c = console(admin)
    form = {"for": "customer", "org_id": str(customer.id), "status": "unpaid", "issue_date": "2026-01-05",
            "due_date": "2026-01-04", "period_from": "2026-01-01", "period_to": "2026-01-31",
            "items-0-description": "Migration", "items-0-quantity": "2", "items-0-unit_price": "75",
            "items-0-taxable": "1", "items-1-description": "", "items-1-quantity": "", "items-1-unit_price": ""}
    response = c.post("/billing/invoices/new", form)
    assert response.status_code == 422 and "The due date is before the issue date." in response.get_data(as_text=True)
    form["due_date"] = "2026-01-20"
    response = c.post("/billing/invoices/new", form)
    assert response.status_code == 302
    page = c.get(response.headers["Location"]).get_data(as_text=True)
    assert "Migration" in page and "150.00" in page


def _many(admin, customer, other, n=120):
    svc = service(admin)
    for i in range(n):
        org = customer if i % 2 else other
        manual_invoices.create(admin, {"org_id": org.id, "issue_date": date(2026, 1, 1 + i % 28).isoformat(),
                                       "due_date": "2026-03-01", "period_from": "2026-01-01",
                                       "period_to": "2026-01-31",
                                       "items": [{"description": "x", "quantity": "1", "unit_price": str(i + 1)}]})
    return svc


def test_list_filters_and_keyset_pagination(db, admin, customer, make_org, api):
    other = make_org("customer", parent=admin.org, name="Other Ltd")
    _many(admin, customer, other)
    client = api(admin)
    seen, after = [], None
    while True:
        body = client.get("/api/v1/invoices", query_string={"limit": 50, **({"after": after} if after else {})}).get_json()
        seen += [i["id"] for i in body["items"]]
        after = body["next"]
        if not after:
            break
    assert len(seen) == 120 == len(set(seen))
    only = client.get("/api/v1/invoices", query_string={"org_id": customer.id, "date_from": "2026-01-10",
                                                        "date_to": "2026-01-12", "limit": 200}).get_json()["items"]
    assert only and all(i["org_id"] == customer.id and "2026-01-10" <= i["issue_date"] <= "2026-01-12" for i in only)
    target = db.session.scalars(select(Invoice).order_by(Invoice.id)).first()
    payments.adjust_offline(admin, target, mark_as_paid=True, reference="R")
    paid = client.get("/api/v1/invoices?status=paid").get_json()["items"]
    assert [i["id"] for i in paid] == [target.id]
    assert len(client.get("/api/v1/invoices?status=unpaid&limit=200").get_json()["items"]) == 119
    bad = client.get("/api/v1/invoices?date_from=2026-02-01&date_to=2026-01-01")
    assert bad.status_code == 422 and "date_to" in bad.get_json()["error"]["fields"]


def test_console_list_shows_the_seed_columns_and_keeps_filters(db, admin, customer, make_org, console):
    other = make_org("customer", parent=admin.org, name="Other Ltd")
    rule(admin, rate="18")
    _many(admin, customer, other, n=120)
    c = console(admin)
    page = c.get(f"/billing/invoices?org_id={customer.id}").get_data(as_text=True)
    for column in ("Organisation", "Amount", "Tax rate", "Issue date", "Status"):
        assert column in page
    assert "Other Ltd" not in page.split("<tbody>")[1] and "18%" in page
    older = page.split('aria-label="Pages"')[1].split("Older")[0]
    assert f"org_id={customer.id}" in older and "after=" in older  # the next page keeps the filter
    assert f'<option value="{customer.id}" selected>' in page


def test_csv_export_streams_and_neutralises_formulas(db, admin, make_org, api, console):
    evil = make_org("customer", parent=admin.org, name="=HYPERLINK(\"http://evil.example\")")
    plain = make_org("customer", parent=admin.org, name="Plain Ltd")
    manual(admin, evil)
    manual(admin, plain, amount="5")
    response = api(admin).get("/api/v1/invoices/export.csv")
    assert response.status_code == 200 and response.was_streamed
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2
    names = {r["organisation"] for r in rows}
    assert "'=HYPERLINK(\"http://evil.example\")" in names and "Plain Ltd" in names
    assert {r["total"] for r in rows} == {"100.00", "5.00"} and {r["status"] for r in rows} == {"unpaid"}
    filtered = console(admin).get(f"/billing/invoices/export.csv?org_id={plain.id}").get_data(as_text=True)
    assert filtered.count("\n") == 2 and "Plain Ltd" in filtered


def test_resend_goes_to_the_primary_contact_over_smtp(db, admin, customer, customer_admin, make_user, smtp_sink,
                                                      console):
    make_user(customer, "customer_user", actor=admin)
    inv = manual(admin, customer)
    smtp_sink.clear()
    response = console(admin).post(f"/billing/invoices/{inv.id}/resend")
    assert response.status_code == 302
    assert len(smtp_sink) == 1
    message = smtp_sink[0]
    assert message["To"] == customer_admin.email and inv.number in message["Subject"]
    kinds = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= kinds
    assert db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc())).status == "sent"


def test_issuing_mails_the_invoice_and_smtp_failures_are_retried(db, app, admin, customer, customer_admin):
    app.config["KASSA_SMTP_URL"] = "smtp://127.0.0.1:1"  # nothing listens: the delivery fails
    try:
        manual(admin, customer)
    finally:
        app.config["KASSA_SMTP_URL"] = None
    message = db.session.scalar(select(OutboxMessage))
    assert message.status == "queued" and message.attempts == 1 and "Error" in message.last_error
    from kassa.services import notifications

    assert notifications.deliver(message.id) == "sent"  # the file transport when no SMTP is configured
    db.session.refresh(message)
    assert message.status == "sent"


def test_reseller_sees_only_its_customers_invoices(db, admin, reseller, reseller_admin, make_org, api, console):
    mine = make_org("customer", parent=reseller, name="Mine", actor=reseller_admin)
    theirs = make_org("customer", parent=admin.org, name="Theirs")
    a, b = manual(admin, mine), manual(admin, theirs)
    body = api(reseller_admin).get("/api/v1/invoices").get_json()
    assert [i["id"] for i in body["items"]] == [a.id]
    assert api(reseller_admin).get(f"/api/v1/invoices/{b.id}").status_code == 404
    assert console(reseller_admin).get(f"/billing/invoices/{b.id}").status_code == 404
    assert api(reseller_admin).post(f"/api/v1/invoices/{b.id}/cancel", json={}).status_code == 404


def test_cancelled_invoices_show_in_the_list(db, admin, customer, console):
    inv = manual(admin, customer)
    invoicing.cancel(admin, inv, "typo")
    page = console(admin).get("/billing/invoices")
    assert page.status_code == 200 and "Cancelled" in page.get_data(as_text=True)
