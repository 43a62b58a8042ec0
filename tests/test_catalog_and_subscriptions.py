from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa.models import Service, Subscription, UnitChange
from kassa.services import catalog, subscriptions
from kassa.services.errors import ValidationError
from kassa.testing.billing import service, subscribe


def test_catalogue_through_the_api(db, admin, api, customer_admin):
    client = api(admin)
    created = client.post("/api/v1/services", json={"code": "mail.pro", "name": "Secure Mail Pro",
                                                     "category": "Messaging", "unit": "user / month",
                                                     "tax_code": "998431", "prices": {"INR": "149.50"}})
    assert created.status_code == 201 and created.get_json()["prices"] == {"INR": "149.50"}
    sid = created.get_json()["id"]
    assert client.patch(f"/api/v1/services/{sid}", json={"prices": {"INR": "155"}}).get_json()["prices"]["INR"] == "155.00"
    assert [s["code"] for s in api(customer_admin).get("/api/v1/services").get_json()["items"]] == ["mail.pro"]
    assert api(customer_admin).post("/api/v1/services", json={}).status_code == 404


@pytest.mark.parametrize("data,field", [
    ({"code": "x", "name": "X", "category": "Gardening", "unit": "u"}, "category"),
    ({"code": "bad code!", "name": "X", "category": "Compute", "unit": "u"}, "code"),
    ({"code": "x", "name": "X", "category": "Compute", "unit": "u", "prices": {"INR": "-1"}}, "prices.INR"),
    ({"code": "x", "name": "X", "category": "Compute", "unit": "u", "prices": {"INR": "ten"}}, "prices.INR"),
    ({"code": "x", "name": "", "category": "Compute", "unit": "u"}, "name"),
])
def test_catalogue_bad_input(db, admin, data, field):
    with pytest.raises(ValidationError) as err:
        catalog.save_service(admin, data)
    assert field in err.value.field_errors
    assert db.session.scalar(select(func.count(Service.id))) == 0


@pytest.mark.parametrize("items,field", [
    ([{"service_id": "SVC", "units": "-2"}], "items.0.units"),
    ([{"service_id": "SVC", "units": "many"}], "items.0.units"),
    ([{"service_id": "SVC", "units": "0"}], "items.0.units"),
    ([{"service_id": 999999, "units": "1"}], "items.0.service_id"),
    ([], "items"),
])
def test_subscription_bad_input_writes_nothing(db, admin, customer, api, items, field):
    svc = service(admin)
    items = [dict(i, service_id=svc.id if i["service_id"] == "SVC" else i["service_id"]) for i in items]
    response = api(admin).post("/api/v1/subscriptions", json={"org_id": customer.id, "name": "C", "items": items})
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert db.session.scalar(select(func.count(Subscription.id))) == 0


def test_subscription_in_another_currency_is_refused(db, admin, customer, api):
    svc = service(admin)
    response = api(admin).post("/api/v1/subscriptions", json={
        "org_id": customer.id, "name": "C", "currency": "USD", "items": [{"service_id": svc.id, "units": "1"}]})
    assert response.status_code == 422 and "currency" in response.get_json()["error"]["fields"]


def test_subscription_lifecycle_through_the_api(db, admin, customer, api, clock):
    svc = service(admin, price="100")
    client = api(admin)
    sub = client.post("/api/v1/subscriptions", json={"org_id": customer.id, "name": "Prod", "cycle": "quarterly",
                                                      "start_date": "2026-01-05",
                                                      "items": [{"service_id": svc.id, "units": "3"}]}).get_json()
    assert sub["items"][0]["unit_price"] == "100.00" and sub["cycle"] == "quarterly"
    item = sub["items"][0]["id"]
    changed = client.patch(f"/api/v1/subscriptions/{sub['id']}/items/{item}", json={"units": "5"}).get_json()
    assert changed["items"][0]["units"] == "5"
    assert db.session.scalar(select(UnitChange)).old_units == Decimal(3)
    bad = client.patch(f"/api/v1/subscriptions/{sub['id']}/items/{item}", json={"units": "-1"})
    assert bad.status_code == 422
    assert client.put(f"/api/v1/subscriptions/{sub['id']}/auto-deduction", json={"enabled": True}).get_json()[
        "auto_deduction"] is True
    assert client.post(f"/api/v1/subscriptions/{sub['id']}/status", json={"action": "resume"}).status_code == 409
    assert client.post(f"/api/v1/subscriptions/{sub['id']}/status", json={"action": "suspend"}).get_json()[
        "status"] == "suspended"
    assert client.post(f"/api/v1/subscriptions/{sub['id']}/status", json={"action": "cancel"}).get_json()[
        "status"] == "cancelled"


def test_cancelling_fires_the_terminate_hooks(db, admin, customer, register_plugin):
    from kassa.hookspecs import hookimpl

    released = []

    class Provisioning:
        @hookimpl
        def kassa_resource_terminate(self, resource, ctx):
            released.append((resource.service_code, resource.units))

        @hookimpl
        def kassa_subscription_terminated(self, subscription, ctx):
            released.append(("subscription", subscription.id))

    register_plugin(Provisioning(), "provisioning", enable_for=admin.org_id)
    sub = subscribe(admin, customer, [(service(admin, "vm"), 2), (service(admin, "disk"), 100)])
    subscriptions.set_status(admin, sub, "cancel")
    assert released == [("vm", Decimal(2)), ("disk", Decimal(100)), ("subscription", sub.id)]


def test_reseller_manages_only_its_customers_subscriptions(db, admin, reseller, reseller_admin, make_org, api,
                                                           console):
    svc = service(admin)
    mine = make_org("customer", parent=reseller, name="Mine", actor=reseller_admin)
    theirs = make_org("customer", parent=admin.org, name="Theirs")
    other_sub = subscribe(admin, theirs, [(svc, 1)])
    client = api(reseller_admin)
    created = client.post("/api/v1/subscriptions", json={"org_id": mine.id, "name": "R",
                                                         "items": [{"service_id": svc.id, "units": "1"}]})
    assert created.status_code == 201
    assert client.post("/api/v1/subscriptions", json={"org_id": theirs.id, "name": "R", "items": [
        {"service_id": svc.id, "units": "1"}]}).status_code == 404
    assert client.get(f"/api/v1/subscriptions/{other_sub.id}").status_code == 404
    assert [s["org_id"] for s in client.get("/api/v1/subscriptions").get_json()["items"]] == [mine.id]
    assert console(reseller_admin).get(f"/subscriptions/{other_sub.id}").status_code == 404


def test_console_creates_and_changes_a_subscription(db, admin, customer, console, clock):
    svc = service(admin, price="100")
    c = console(admin)
    response = c.post("/subscriptions/new", {"org_id": str(customer.id), "name": "Web", "cycle": "monthly",
                                             "start_date": "2026-01-05", "trial_days": "0",
                                             "items-0-service_id": str(svc.id), "items-0-units": "-3"})
    assert response.status_code == 422 and "Must be more than zero." in response.get_data(as_text=True)
    response = c.post("/subscriptions/new", {"org_id": str(customer.id), "name": "Web", "cycle": "monthly",
                                             "start_date": "2026-01-05", "trial_days": "0",
                                             "items-0-service_id": str(svc.id), "items-0-units": "3"})
    assert response.status_code == 302
    sub = db.session.scalar(select(Subscription))
    response = c.post(f"/subscriptions/{sub.id}/items/{sub.items[0].id}", {"units": "4"})
    assert "prorated" in c.get(response.headers["Location"]).get_data(as_text=True)
