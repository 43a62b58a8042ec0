"""Tenant scoping: a reseller never sees another's data; outside scope is 404."""
import pytest

from kassa.services import scope
from kassa.services.errors import NotFound


@pytest.fixture
def world(db, provider, admin, make_org, make_user, reseller, reseller_admin):
    other_reseller = make_org("reseller", parent=provider, name="Reseller Two")
    mine = make_org("customer", parent=reseller, name="Mine Ltd", actor=reseller_admin)
    theirs = make_org("customer", parent=other_reseller, name="Theirs Ltd")
    direct = make_org("customer", parent=provider, name="Direct Ltd")
    other_provider = make_org("provider", name="Other Provider")
    foreign = make_org("customer", parent=other_provider, name="Foreign Ltd")
    return dict(other_reseller=other_reseller, mine=mine, theirs=theirs, direct=direct,
                other_provider=other_provider, foreign=foreign, foreign_admin=make_user(other_provider))


def test_reseller_sees_only_itself_and_its_customers(world, reseller, reseller_admin, admin):
    names = {o.name for o in scope.db.session.scalars(scope.orgs_query(reseller_admin))}
    assert names == {"Reseller One", "Mine Ltd"}
    assert {o.name for o in scope.db.session.scalars(scope.orgs_query(admin))} >= {
        "Mine Ltd", "Theirs Ltd", "Direct Ltd", "Reseller Two"}
    assert "Foreign Ltd" not in {o.name for o in scope.db.session.scalars(scope.orgs_query(admin))}
    with pytest.raises(NotFound):
        scope.get_org(reseller_admin, world["theirs"].id)


def test_cross_tenant_console_is_404(world, reseller_admin, admin, console):
    c = console(reseller_admin)
    assert c.get(f"/organisations/{world['mine'].id}").status_code == 200
    for org in ("theirs", "direct", "foreign", "other_reseller"):
        assert c.get(f"/organisations/{world[org].id}").status_code == 404
    assert c.post(f"/organisations/{world['theirs'].id}/status", {"status": "disabled"}).status_code == 404
    page = c.get("/organisations").get_data(as_text=True)
    assert "Mine Ltd" in page and "Theirs Ltd" not in page
    assert console(admin).get(f"/organisations/{world['foreign'].id}").status_code == 404


def test_cross_tenant_api_is_404(world, reseller_admin, admin, api):
    client = api(reseller_admin)
    assert client.get(f"/api/v1/organisations/{world['theirs'].id}").status_code == 404
    assert client.patch(f"/api/v1/organisations/{world['theirs'].id}", json={"name": "x"}).status_code == 404
    assert client.get(f"/api/v1/organisations/{world['foreign'].id}/wallet").status_code == 404
    listed = {o["name"] for o in client.get("/api/v1/organisations").get_json()["items"]}
    assert listed == {"Reseller One", "Mine Ltd"}
    foreign = api(world["foreign_admin"])
    assert foreign.get(f"/api/v1/organisations/{world['direct'].id}").status_code == 404


def test_customer_cannot_reach_admin_pages(world, make_user, console, api):
    customer_admin = make_user(world["direct"])
    c = console(customer_admin)
    assert c.get("/organisations").status_code == 404
    assert c.get("/plugins").status_code == 404
    assert c.get("/billing/configurations").status_code == 404
    assert api(customer_admin).get("/api/v1/plugins").status_code == 404


def test_reseller_cannot_create_resellers_or_customers_elsewhere(world, reseller_admin, api):
    client = api(reseller_admin)
    response = client.post("/api/v1/organisations", json={"kind": "reseller", "name": "X", "country": "IN"})
    assert response.status_code == 403
    response = client.post("/api/v1/organisations", json={"kind": "customer", "name": "X", "country": "IN",
                                                           "parent_id": world["other_reseller"].id})
    assert response.status_code == 404
    response = client.post("/api/v1/organisations", json={"kind": "customer", "name": "Ok Ltd", "country": "IN"})
    assert response.status_code == 201 and response.get_json()["parent_id"] == world["mine"].parent_id


def test_sub_admin_gets_only_what_was_delegated(world, reseller, reseller_admin, make_user, console, api):
    from kassa.services import users
    from kassa.services.errors import Forbidden

    sub = make_user(reseller, "reseller_subadmin", privileges=["orgs.view"], actor=reseller_admin)
    c = console(sub)
    assert c.get("/organisations").status_code == 200
    assert c.get("/organisations/new").status_code == 403
    assert api(sub).post("/api/v1/organisations", json={"name": "X", "country": "IN"}).status_code == 403
    with pytest.raises(Forbidden):  # nobody delegates what they do not hold
        users.set_privileges(sub, sub, ["orgs.view", "orgs.manage"])
    users.set_privileges(reseller_admin, sub, ["orgs.view", "orgs.manage"])
    assert c.get("/organisations/new").status_code == 200


def test_gstin_is_checked_and_its_state_must_match(db, admin, provider, api):
    from kassa.services import plugin_settings

    plugin_settings.set_enabled(admin, "tax_india_gst", True)
    client = api(admin)
    bad = client.post("/api/v1/organisations", json={"name": "X", "country": "IN", "state": "Karnataka",
                                                     "tax_id": "27AAPFU0939F1ZX"})
    assert bad.status_code == 422 and "tax_id" in bad.get_json()["error"]["fields"]
    wrong_state = client.post("/api/v1/organisations", json={"name": "X", "country": "IN", "state": "Karnataka",
                                                             "tax_id": "27aapfu0939f1zv"})
    assert wrong_state.status_code == 422
    assert "Maharashtra" in wrong_state.get_json()["error"]["fields"]["state"]
    ok = client.post("/api/v1/organisations", json={"name": "X", "country": "IN", "state": "MH",
                                                    "tax_id": "27aapfu0939f1zv"}).get_json()
    assert ok["tax_id"] == "27AAPFU0939F1ZV"
    filled = client.post("/api/v1/organisations", json={"name": "Y", "country": "IN",
                                                        "tax_id": "27AAPFU0939F1ZV"}).get_json()
    assert filled["state"] == "Maharashtra"
