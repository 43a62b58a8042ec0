from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa.models import LedgerTransaction, TaxRule
from kassa.services import wallet
from kassa.services.errors import Conflict


def test_tax_rule_crud_in_the_console(db, admin, console):
    c = console(admin)
    assert "Tax Rule" in c.get("/billing/configurations").get_data(as_text=True)
    response = c.post("/billing/tax-rules/new", {"name": "GST", "country": "IN", "rate": "118", "status": "active"})
    assert response.status_code == 422 and "Must be at most 100" in response.get_data(as_text=True)
    assert c.post("/billing/tax-rules/new", {"name": "GST", "country": "IN", "rate": "18",
                                             "status": "active"}).status_code == 302
    rule = db.session.scalar(select(TaxRule))
    page = c.get("/billing/tax-rules").get_data(as_text=True)
    assert "GST" in page and "data-confirm" in page  # delete asks for confirmation
    c.post(f"/billing/tax-rules/{rule.id}/edit", {"name": "GST", "country": "IN", "rate": "18", "status": "suspended"})
    db.session.refresh(rule)
    assert rule.status == "suspended"
    assert "Suspend" in c.get("/billing/tax-rules").get_data(as_text=True)
    c.post(f"/billing/tax-rules/{rule.id}/delete")
    assert db.session.scalar(select(func.count(TaxRule.id))) == 0


@pytest.mark.parametrize("data,field", [({"name": "X", "country": "IN", "rate": "-1"}, "rate"),
                                        ({"name": "X", "country": "IN", "rate": "abc"}, "rate"),
                                        ({"name": "X", "country": "ZZ", "rate": "5"}, "country"),
                                        ({"name": "", "country": "IN", "rate": "5"}, "name"),
                                        ({"name": "X", "country": "IN", "rate": "5", "status": "paused"}, "status")])
def test_tax_rule_bad_input_in_the_api(db, admin, api, data, field):
    response = api(admin).post("/api/v1/tax-rules", json=data)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert db.session.scalar(select(func.count(TaxRule.id))) == 0


def test_tax_rule_api_roundtrip(db, admin, api):
    client = api(admin)
    rule = client.post("/api/v1/tax-rules", json={"name": "VAT", "country": "de", "rate": "19"}).get_json()
    assert rule["country"] == "DE" and rule["rate"] == "19"
    assert client.put(f"/api/v1/tax-rules/{rule['id']}", json={"name": "VAT", "country": "DE", "rate": "7",
                                                                "status": "suspended"}).get_json()["rate"] == "7"
    assert client.delete(f"/api/v1/tax-rules/{rule['id']}").status_code == 204
    assert client.get("/api/v1/tax-rules").get_json()["items"] == []


def test_wallet_movements_and_transaction_logs(db, admin, customer, api, console):
    client = api(admin)
    assert client.post(f"/api/v1/organisations/{customer.id}/wallet", json={
        "kind": "wallet_topup", "amount": "500", "reference": "UTR123"}).get_json()["wallet"] == "500.00"
    client.post(f"/api/v1/organisations/{customer.id}/wallet", json={"kind": "free_credit", "amount": "50"})
    refused = client.post(f"/api/v1/organisations/{customer.id}/wallet", json={"kind": "wallet_refund",
                                                                              "amount": "600"})
    assert refused.status_code == 409 and "amount" in refused.get_json()["error"]["fields"]
    assert client.post(f"/api/v1/organisations/{customer.id}/wallet", json={"kind": "wallet_refund", "amount": "0.001"}
                       ).status_code == 422  # finer than the billing precision
    client.post(f"/api/v1/organisations/{customer.id}/wallet", json={"kind": "wallet_refund", "amount": "100"})
    assert wallet.balance(customer) == Decimal("450.00")
    logs = client.get("/api/v1/transactions").get_json()["items"]
    assert [(t["kind"], t["direction"], t["amount"]) for t in logs] == [
        ("wallet_refund", "outbound", "100.00"), ("free_credit", "internal", "50.00"),
        ("wallet_topup", "inbound", "500.00")]
    assert [t["kind"] for t in client.get("/api/v1/transactions?direction=inbound").get_json()["items"]] == [
        "wallet_topup"]
    page = console(admin).get(f"/billing/transactions?org_id={customer.id}").get_data(as_text=True)
    assert "UTR123" in page and "Free credit allocation" in page
    assert client.get("/api/v1/transactions?date_from=yesterday").status_code == 422


def test_wallet_from_the_console_and_idempotency(db, admin, customer, console):
    c = console(admin)
    c.post(f"/billing/wallet/{customer.id}", {"kind": "wallet_topup", "amount": "abc"})
    assert db.session.scalar(select(func.count(LedgerTransaction.id))) == 0
    c.post(f"/billing/wallet/{customer.id}", {"kind": "wallet_topup", "amount": "25", "reference": "CASH"})
    assert wallet.balance(customer) == Decimal("25.00")
    wallet.move(admin, customer, "wallet_topup", "10", idempotency_key="topup-x")
    wallet.move(admin, customer, "wallet_topup", "10", idempotency_key="topup-x")
    assert wallet.balance(customer) == Decimal("35.00")
    with pytest.raises(Conflict):
        wallet.move(admin, customer, "wallet_debit_adjustment", "100")


def test_reseller_cannot_allocate_free_credit(db, reseller_admin, reseller, make_org, api):
    mine = make_org("customer", parent=reseller, name="Mine", actor=reseller_admin)
    response = api(reseller_admin).post(f"/api/v1/organisations/{mine.id}/wallet",
                                        json={"kind": "free_credit", "amount": "5"})
    assert response.status_code == 403
