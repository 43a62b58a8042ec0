import pytest

from kassa.services import manual_invoices, settings
from kassa.services.errors import Conflict, ValidationError


def _issue_an_invoice(admin, customer):
    manual_invoices.create(admin, {"org_id": customer.id, "due_date": "2026-02-01", "period_from": "2026-01-01",
                                   "period_to": "2026-01-31",
                                   "items": [{"description": "Setup", "quantity": "1", "unit_price": "10"}]})


def test_currency_and_precision_saved_and_audited(app, db, admin, console):
    c = console(admin)
    response = c.post("/billing/configurations", {"currency": "USD", "precision": "3", "invoice_prefix": "CL-",
                                                  "payment_terms_days": "30"})
    assert response.status_code == 302
    bs = settings.billing_settings(admin.org_id)
    assert (bs.currency, bs.precision, bs.invoice_prefix, bs.payment_terms_days) == ("USD", 3, "CL-", 30)
    assert "settings.billing" in c.get("/audit").get_data(as_text=True)


def test_currency_locked_once_an_invoice_exists(app, db, admin, provider, customer, console, api):
    _issue_an_invoice(admin, customer)
    with pytest.raises(Conflict, match="cannot be changed"):
        settings.update_billing_settings(admin, currency="USD", precision=2)
    response = api(admin).put("/api/v1/billing/settings", json={"currency": "USD"})
    assert response.status_code == 409 and "cannot be changed" in response.get_json()["error"]["message"]
    page = console(admin).post("/billing/configurations", {"currency": "USD", "precision": "2",
                                                           "invoice_prefix": "X", "payment_terms_days": "15"})
    assert page.status_code == 409 and "cannot be changed" in page.get_data(as_text=True)
    assert settings.billing_settings(provider.id).currency == "INR"
    # precision may still change
    assert api(admin).put("/api/v1/billing/settings", json={"precision": 3}).get_json()["precision"] == 3


@pytest.mark.parametrize("data,field", [({"currency": "ABC", "precision": 2}, "currency"),
                                        ({"currency": "INR", "precision": 9}, "precision"),
                                        ({"currency": "INR", "precision": "two"}, "precision")])
def test_bad_settings_rejected(app, db, admin, data, field):
    with pytest.raises(ValidationError) as err:
        settings.update_billing_settings(admin, **data)
    assert field in err.value.field_errors


def test_staff_without_privilege_cannot_configure(app, db, admin, provider, make_user, console, api):
    staff = make_user(provider, "staff", privileges=["billing.view"], actor=admin)
    assert console(staff).get("/billing/configurations").status_code == 403
    assert api(staff).put("/api/v1/billing/settings", json={"precision": 3}).status_code == 403
    assert api(staff).get("/api/v1/billing/settings").get_json()["currency"] == "INR"
