"""The console shell: the seed's menu, every entry working for every role, escaping."""
import re

import pytest

from kassa.testing.pytest_plugin import TEST_PASSWORD


@pytest.fixture
def people(db, provider, admin, reseller, reseller_admin, customer, customer_admin, make_user):
    return {
        "cloud_admin": admin,
        "staff": make_user(provider, "staff", privileges=["billing.view", "orgs.view"], actor=admin),
        "reseller_admin": reseller_admin,
        "reseller_subadmin": make_user(reseller, "reseller_subadmin", privileges=["orgs.view"], actor=reseller_admin),
        "customer_admin": customer_admin,
    }


def _menu_links(page: str) -> list[str]:
    nav = page[page.index('aria-label="Main menu"'):page.index("</nav>", page.index('aria-label="Main menu"'))]
    return re.findall(r'href="([^"]+)"', nav)


def test_admin_menu_follows_the_seed(people, console):
    page = console(people["cloud_admin"]).get("/").get_data(as_text=True)
    assert "Billing &amp; Reports » Customer Billing" in page
    for label in ("Billing Configurations", "Plugins", "Organisations", "Users", "Audit log"):
        assert f">{label}</a>" in page


@pytest.mark.parametrize("role", ["cloud_admin", "staff", "reseller_admin", "reseller_subadmin", "customer_admin"])
def test_every_menu_entry_works_for_every_role(people, console, role):
    c = console(people[role])
    links = _menu_links(c.get("/").get_data(as_text=True))
    assert "/" in links
    for link in links:
        assert c.get(link).status_code == 200, f"{role}: {link}"


def test_staff_sees_only_what_it_holds(people, console):
    page = console(people["staff"]).get("/").get_data(as_text=True)
    assert ">Organisations</a>" in page
    assert ">Plugins</a>" not in page and ">Billing Configurations</a>" not in page


def test_names_are_escaped(people, console, admin):
    from kassa.services import orgs

    orgs.create_org(admin, kind="customer", name="<script>alert(1)</script>", country="IN")
    page = console(admin).get("/organisations").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_create_organisation_from_the_console(people, console, admin):
    c = console(admin)
    response = c.post("/organisations/new", {"kind": "customer", "parent_id": str(admin.org_id), "name": "",
                                             "country": ""})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "This field is required." in page and "Choose a country." in page
    response = c.post("/organisations/new", {"kind": "customer", "parent_id": str(admin.org_id), "name": "Zeta Ltd",
                                             "country": "IN", "email": "a@zeta.example", "timezone": "Asia/Kolkata"})
    assert response.status_code == 302
    page = c.get(response.headers["Location"]).get_data(as_text=True)
    assert "Zeta Ltd" in page and "Asia/Kolkata" in page


def test_reseller_creates_sub_admin_with_limited_privileges(people, console, reseller_admin, reseller):
    c = console(reseller_admin)
    response = c.post(f"/organisations/{reseller.id}/users/new", {
        "name": "Tech Admin", "email": "tech@reseller.example", "password": "long-enough-pass",
        "role": "reseller_subadmin", "privileges": ["orgs.view"]})
    assert response.status_code == 302, response.get_data(as_text=True)
    sub = console()
    assert sub.login("tech@reseller.example", "long-enough-pass").status_code == 302
    assert sub.get("/organisations").status_code == 200
    assert sub.get("/organisations/new").status_code == 403
    assert sub.get("/users").status_code == 403


def test_dates_shown_in_the_organisation_time_zone(people, console, admin, clock):
    from kassa.services import orgs

    orgs.update_org(admin, admin.org, timezone="Asia/Kolkata")  # 09:00 UTC is 14:30 in India
    c = console(admin)
    c.post("/billing/configurations", {"currency": "INR", "precision": "2", "invoice_prefix": "A-",
                                       "payment_terms_days": "15"})
    assert "2026-01-05 14:30" in c.get("/audit").get_data(as_text=True)


def test_every_post_route_demands_csrf(app, people, console):
    c = console(people["cloud_admin"])
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and not rule.rule.startswith(("/api/", "/webhooks/")):
            url = re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule)
            response = c.raw_post(url, data={})
            assert response.status_code == 400, f"POST {rule.rule} accepted without a CSRF token"
