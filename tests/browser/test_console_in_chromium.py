"""The console in a real browser (Chromium): signing in as every role, the admin's
billing work (Currency Settings, tax rules, a billing run, capture, Adjust Offline,
CSV and PDF exports), delegation to a reseller sub-admin, a customer paying on the
gateway's hosted page, confirmation dialogs, escaping, the suspended console, and
labels on every form field."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from kassa.testing.billing import rule, service, subscribe
from kassa.testing.fake_gateway import sign
from kassa.testing.pytest_plugin import TEST_PASSWORD

def invoice_for(admin, org, amount="118", due="2026-01-20", issued="2026-01-05"):
    from kassa.services import manual_invoices

    return manual_invoices.create(admin, {"org_id": org.id, "for": org.kind, "issue_date": issued,
                                          "due_date": due, "period_from": "2026-01-01",
                                          "period_to": "2026-01-31",
                                          "items": [{"description": "Hosting", "quantity": "1", "unit_price": amount}]})


def fresh(obj):
    from kassa.extensions import db

    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def invoice_status(inv) -> str:
    from kassa.services import invoicing

    return invoicing.status(fresh(inv))


def menu(ui) -> list[str]:
    return [t.strip() for t in ui.page.get_by_role("navigation", name="Main menu").get_by_role("link").all_inner_texts()]


# ------------------------------------------------------------------ signing in


ROLE_MENUS = {
    # role: (menu entries it must see, entries it must not see)
    "cloud_admin": (["Billing Configurations", "Invoices", "Organisations", "Catalogue", "Users", "Plugins"],
                    ["Billing profile"]),
    "staff": (["Invoices", "Organisations", "Transaction Logs"],
              ["Billing Configurations", "Plugins", "Users", "Catalogue", "Subscriptions"]),
    "reseller_admin": (["Invoices", "Organisations", "Subscriptions", "Users", "Billing profile"],
                       ["Billing Configurations", "Catalogue", "Plugins", "Exports"]),
    "reseller_subadmin": (["Invoices", "Organisations"], ["Users", "Subscriptions", "Audit log"]),
    "customer_admin": (["Invoices", "Users", "Billing profile"], ["Organisations", "Subscriptions", "Orders"]),
    "customer_user": (["Invoices", "Billing profile"], ["Users", "Organisations"]),
}


@pytest.fixture
def people(db, provider, admin, reseller, reseller_admin, customer, customer_admin, make_user):
    return {
        "cloud_admin": admin,
        "staff": make_user(provider, "staff", privileges=["billing.view", "orgs.view"], actor=admin),
        "reseller_admin": reseller_admin,
        "reseller_subadmin": make_user(reseller, "reseller_subadmin", privileges=["orgs.view", "billing.view"],
                                       actor=reseller_admin),
        "customer_admin": customer_admin,
        "customer_user": make_user(customer, "customer_user", privileges=["billing.view"], actor=customer_admin),
    }


@pytest.mark.parametrize("role", list(ROLE_MENUS))
def test_sign_in_as_each_role(ui, people, role):
    from kassa.permissions import ROLE_LABELS

    user = people[role]
    ui.sign_in(user.email)
    page = ui.page
    assert page.url == ui.url("/")
    topbar = page.locator("header.topbar")
    assert user.org.name in topbar.inner_text() and ROLE_LABELS[role] in topbar.inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == user.org.name
    shown, hidden = ROLE_MENUS[role]
    entries = menu(ui)
    assert set(shown) <= set(entries), entries
    assert not set(hidden) & set(entries), entries
    for entry in entries:  # every entry opens a page (no error page)
        page.get_by_role("navigation", name="Main menu").get_by_role("link", name=entry, exact=True).click()
        assert page.get_by_role("heading", level=1).count() == 1
        assert not page.get_by_role("heading", name=re.compile(r"^(403|404|500)$")).count(), entry
    ui.goto("/")
    ui.snap("dashboard")
    ui.sign_out()
    assert "You are signed out." in ui.flash()


def test_sign_in_with_the_keyboard_and_a_wrong_password(ui, admin):
    page = ui.page
    ui.goto("/login")
    assert page.evaluate("document.activeElement.name") == "email"  # autofocus
    page.keyboard.type(admin.email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type("not the password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.startswith(ui.url("/login"))
    error = page.locator(".has-error").get_by_role("alert")
    assert error.count() == 1 and error.inner_text()
    ui.snap("refused")
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    page.wait_for_url(ui.url("/"))
    assert admin.org.name in page.locator("header.topbar").inner_text()


# ------------------------------------------------------------------ the admin's billing work


def test_admin_saves_currency_settings(ui, admin):
    from kassa.extensions import db
    from kassa.services import settings

    ui.sign_in(admin.email)
    ui.goto("/billing/configurations")
    section = ui.page.locator("#currency-settings")
    section.get_by_label("Invoice number prefix").fill("KS-")
    section.get_by_label("Payment terms (days)").fill("30")
    section.get_by_label("Billing Precision").fill("2")
    ui.submit(section.get_by_role("button", name="Save"))
    assert "Currency settings saved." in ui.flash()
    assert section.get_by_label("Invoice number prefix").input_value() == "KS-"
    db.session.expire_all()
    bs = settings.billing_settings(admin.org_id)
    assert (bs.invoice_prefix, bs.payment_terms_days, bs.currency) == ("KS-", 30, "INR")
    # a wrong value is refused on the page, next to its field
    section.get_by_label("Payment terms (days)").fill("1000")
    ui.submit(section.get_by_role("button", name="Save"))
    assert section.locator(".has-error").get_by_label("Payment terms (days)").count() == 1
    db.session.expire_all()
    assert settings.billing_settings(admin.org_id).payment_terms_days == 30
    ui.snap("refused")


def test_admin_adds_a_tax_rule(ui, admin):
    from kassa.extensions import db
    from kassa.models import TaxRule

    ui.sign_in(admin.email)
    ui.goto("/billing/configurations")
    ui.page.locator("#tax-rule").get_by_role("link", name="Edit").click()
    ui.page.get_by_role("link", name="Create Rule").click()
    ui.page.get_by_label("Rule Name").fill("VAT")
    ui.page.get_by_label("Country").select_option("DE")
    ui.page.get_by_label("Tax Rate %").fill("19")
    ui.page.get_by_label("Status").select_option("active")
    ui.submit(ui.page.get_by_role("button", name="Save"))
    assert "Tax rule saved." in ui.flash()
    row = ui.page.get_by_role("row").filter(has_text="VAT")
    assert row.get_by_role("cell").all_inner_texts()[:4] == ["VAT", "DE", "19", "Active"]
    db.session.expire_all()
    assert [(r.name, r.country, r.rate) for r in db.session.scalars(select(TaxRule))] == [("VAT", "DE", Decimal(19))]


def test_admin_runs_billing_and_sees_the_result(ui, admin, customer):
    svc = service(admin)
    rule(admin)  # GST 18%
    subscribe(admin, customer, [(svc, 3)], start=date(2025, 12, 5), name="Ended period")  # its month ended today
    ui.sign_in(admin.email)
    ui.goto("/billing/invoices")
    assert ui.page.get_by_text("No invoices match.").is_visible()
    ui.page.get_by_role("button", name="Run billing now").click()
    assert ui.dialogs == [("confirm", "Invoice every subscription whose period has ended?")]
    ui.page.wait_for_url(re.compile(r"/billing/runs/\d+$"))
    heading = ui.page.get_by_role("heading", level=1).inner_text()
    assert re.match(r"Billing run #\d+ finished", heading), heading
    assert re.search(r"\b1 invoices? issued", ui.page.locator("main").inner_text())
    ui.snap("run")
    ui.page.get_by_role("link", name="See the invoices").click()
    rows = ui.page.locator("table.list tbody tr")
    assert rows.count() == 1 and customer.name in rows.inner_text() and "₹354.00" in rows.inner_text()


def test_admin_captures_a_payment_after_confirming(ui, admin, customer, fake_gateway):
    from kassa.services import cards

    cards.add_card(admin, customer, "tok_visa_4242")
    inv = invoice_for(admin, customer)
    ui.sign_in(admin.email)
    ui.goto(f"/billing/invoices/{inv.id}")
    capture = ui.page.get_by_role("button", name="Capture Payment")
    ui.accept_dialogs = False  # "Cancel" in the confirmation: nothing is charged
    capture.click()
    assert ui.dialogs == [("confirm", "Charge ₹118.00 to VISA •••• 4242?")]
    ui.page.wait_for_timeout(300)
    assert fake_gateway.charges == [] and invoice_status(inv) == "unpaid"
    ui.accept_dialogs = True
    ui.submit(capture)
    assert f"Payment of {inv.number} captured." in ui.flash()
    assert ui.page.locator("h1 + .status, .head .status").first.inner_text() == "Paid"
    assert fake_gateway.charges == [(f"invoice:{inv.id}:attempt:1", Decimal("118.00"))]
    assert invoice_status(inv) == "paid"


def test_admin_adjusts_an_invoice_offline(ui, admin, customer):
    inv = invoice_for(admin, customer)
    ui.sign_in(admin.email)
    ui.goto(f"/billing/invoices/{inv.id}")
    form = ui.page.locator("#adjust-offline")
    assert form.get_by_label("Mark as Paid").is_checked()
    form.get_by_label("Transaction Reference").fill("CHQ-778899")
    form.get_by_label("Description").fill("Cheque received at the office")
    ui.submit(form.get_by_role("button", name="Save"))
    assert f"Offline payment recorded on {inv.number}." in ui.flash()
    assert invoice_status(inv) == "paid"
    ledger = ui.page.locator("section.card", has=ui.page.get_by_role("heading", name="Ledger"))
    assert "CHQ-778899" in ledger.inner_text()
    assert not ui.page.locator("#adjust-offline").count()  # nothing is due any more


def _download(ui, trigger):
    with ui.page.expect_download() as info:
        trigger.click()
    download = info.value
    assert download.failure() is None
    return download, open(download.path(), "rb").read()


def test_admin_exports_csv_and_pdf(ui, admin, customer, make_org):
    other = make_org("customer", parent=admin.org, name="Second Customer Ltd")
    first, second = invoice_for(admin, customer), invoice_for(admin, other, amount="250")
    ui.sign_in(admin.email)
    ui.goto("/billing/invoices")
    link = ui.page.get_by_role("link", name="Export CSV")
    download, content = _download(ui, link)
    assert download.suggested_filename == "invoices-2026-01-05.csv"
    text = content.decode("utf-8-sig")
    assert text.splitlines()[0].lower().startswith(("number", "invoice"))
    assert first.number in text and second.number in text and "Second Customer Ltd" in text
    head = ui.page.request.get(link.get_attribute("href"))
    assert head.status == 200 and head.headers["content-type"].startswith("text/csv")

    ui.goto(f"/billing/invoices/{first.id}")
    link = ui.page.get_by_role("link", name="Export Invoice")
    download, content = _download(ui, link)
    assert download.suggested_filename.endswith(".pdf") and first.number.replace("/", "_") in \
        download.suggested_filename.replace("/", "_")
    assert content.startswith(b"%PDF-") and len(content) > 2000
    head = ui.page.request.get(link.get_attribute("href"))
    assert head.status == 200 and head.headers["content-type"] == "application/pdf"
    assert int(head.headers.get("content-length", len(head.body()))) == len(content)


# ------------------------------------------------------------------ delegation


def test_reseller_delegates_to_a_sub_admin_who_is_refused_the_rest(ui, reseller_admin, reseller):
    from kassa.extensions import db
    from kassa.models import User

    ui.sign_in(reseller_admin.email)
    ui.page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Users").click()
    ui.page.get_by_role("link", name=f"Add user to {reseller.name}").click()
    page = ui.page
    page.get_by_label("Name").fill("Tech Admin")
    page.get_by_label("E-mail").fill("tech@reseller.example")
    page.get_by_label("Initial password").fill("long-enough-pass")
    page.get_by_label("Role").select_option(label="Reseller sub-admin")
    page.get_by_label("View organisations").check()
    page.get_by_label("View invoices, transaction logs and card status").check()
    ui.snap("form")
    ui.submit(page.get_by_role("button", name="Create"))
    assert "tech@reseller.example created." in ui.flash()
    db.session.expire_all()
    sub = db.session.scalar(select(User).filter_by(email="tech@reseller.example"))
    assert sub.role == "reseller_subadmin" and sorted(sub.privileges) == ["billing.view", "orgs.view"]

    ui.sign_out()
    ui.sign_in("tech@reseller.example", "long-enough-pass")
    entries = menu(ui)
    assert "Organisations" in entries and "Invoices" in entries
    assert not {"Users", "Subscriptions", "Audit log"} & set(entries), entries
    for path in ("/subscriptions", "/users", "/organisations/new", "/audit"):
        response = ui.goto(path)
        assert response.status == 403, path
        assert ui.page.get_by_text("You do not have permission to do this.").is_visible()
    ui.snap("refused")
    assert ui.goto("/organisations").status == 200


# ------------------------------------------------------------------ the customer pays


def _route_hosted_gateway(ui, app, amount="118.00", status="paid"):
    """The fake gateway's hosted page (http://127.0.0.1/fakehosted/N, where nothing listens):
    answered by the browser itself, with a link back to Kassa carrying the gateway's signature."""
    from kassa.extensions import db
    from kassa.models import Payment

    def page(route, request):
        with app.app_context():  # Playwright calls this on its own greenlet: no context of the test's
            payment = db.session.scalar(select(Payment).where(Payment.redirect_url == request.url))
            back = (f"{ui.base_url}/pay/return/{payment.id}/?status={status}&amount={amount}"
                    f"&signature={sign('whsec_fake', payment.reference.encode())}")
        route.fulfill(content_type="text/html; charset=utf-8", body=f"""<!doctype html><html lang="en"><head>
            <meta charset="utf-8"><title>FakeHosted</title>
            </head><body><h1>FakeHosted checkout</h1><p>Pay {payment.amount:.2f} {payment.currency} to Cloud7</p>
            <a id="pay" href="{back}">Pay ₹{amount}</a></body></html>""")

    ui.page.route(re.compile(r"^http://127\.0\.0\.1/fakehosted/\d+$"), page)


def test_customer_pays_on_the_hosted_page_and_downloads_the_pdf(ui, app, admin, customer, customer_admin,
                                                                 fake_gateway):
    inv = invoice_for(admin, customer)
    _route_hosted_gateway(ui, app)
    ui.sign_in(customer_admin.email)
    ui.page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Invoices").click()
    ui.page.get_by_role("link", name=inv.number).click()
    pay = ui.page.locator("#pay")
    assert "Pay ₹118.00 online" in pay.inner_text()
    pay.get_by_role("button", name="Click here to pay").click()
    ui.page.wait_for_url(re.compile(r"^http://127\.0\.0\.1/fakehosted/\d+$"))
    assert ui.page.get_by_role("heading", name="FakeHosted checkout").is_visible()
    ui.snap("gateway")
    ui.page.get_by_role("link", name="Pay ₹118.00").click()
    ui.page.wait_for_url(re.compile(r"/payments/\d+$"))
    assert ui.page.get_by_role("heading", name="Payment successful").is_visible()
    assert "₹118.00 received through fakehosted" in ui.page.locator("main").inner_text()
    ui.snap("paid")
    assert invoice_status(inv) == "paid"
    ui.page.get_by_role("link", name="Back to the invoice").click()
    assert ui.page.locator(".head .status").inner_text() == "Paid"
    assert not ui.page.locator("#pay").count()
    download, content = _download(ui, ui.page.get_by_role("link", name="Export Invoice"))
    assert content.startswith(b"%PDF-") and len(content) > 2000 and download.suggested_filename.endswith(".pdf")


def test_a_forged_return_from_the_gateway_changes_nothing(ui, app, admin, customer, customer_admin,
                                                          fake_gateway):
    from kassa.extensions import db
    from kassa.models import Payment

    inv = invoice_for(admin, customer)
    _route_hosted_gateway(ui, app)
    ui.sign_in(customer_admin.email)
    ui.goto(f"/billing/invoices/{inv.id}")
    ui.page.get_by_role("button", name="Click here to pay").click()
    ui.page.wait_for_url(re.compile(r"/fakehosted/\d+$"))
    db.session.expire_all()
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == inv.id))
    ui.goto(f"/pay/return/{payment.id}/?status=paid&amount=118.00&signature=forged")
    assert "does not carry a valid signature" in ui.flash()
    assert ui.page.get_by_role("heading", name="Payment in progress").is_visible()
    assert invoice_status(inv) == "unpaid"


# ------------------------------------------------------------------ confirmation dialogs and escaping


def test_cancelling_an_invoice_asks_first(ui, admin, customer):
    inv = invoice_for(admin, customer)
    ui.sign_in(admin.email)
    ui.goto(f"/billing/invoices/{inv.id}")
    ui.page.get_by_label("Reason for cancelling").fill("Billed twice")
    button = ui.page.get_by_role("button", name="Cancel Invoice")
    ui.accept_dialogs = False
    button.click()
    message = f"Cancel invoice {inv.number}? Its number stays used and it cannot be reissued."
    assert ui.dialogs == [("confirm", message)]
    ui.page.wait_for_timeout(300)
    assert fresh(inv).cancelled_at is None
    ui.accept_dialogs = True
    ui.submit(button)
    assert f"Invoice {inv.number} cancelled" in ui.flash()
    assert ui.page.locator(".head .status").inner_text() == "Cancelled"
    assert fresh(inv).cancel_reason == "Billed twice"
    assert len(ui.dialogs) == 2


def test_a_script_in_a_name_is_shown_as_text(ui, admin, make_user):
    from kassa.services import orgs

    name = "<script>alert(1)</script>"
    evil = orgs.create_org(admin, kind="customer", name=name, country="IN", email="x@evil.example")
    user = make_user(evil, "customer_admin", email="boss@evil.example")
    inv = invoice_for(admin, evil)
    ui.sign_in(admin.email)
    for path in ("/organisations", f"/organisations/{evil.id}", "/billing/invoices", f"/billing/invoices/{inv.id}",
                 "/billing/credit-card-status", f"/organisations/{evil.id}/users/new"):
        ui.goto(path)
        assert ui.page.locator("main").get_by_text(name).filter(visible=True).count(), path
    ui.goto(f"/organisations/{evil.id}")
    assert ui.page.get_by_role("heading", level=1).inner_text() == name
    ui.snap("organisation")
    ui.sign_out()
    ui.sign_in(user.email)  # the organisation's own user: its name in the top bar
    assert name in ui.page.locator("header.topbar").inner_text()
    assert ui.dialogs == []
    assert ui.page.evaluate("document.querySelectorAll('main script, header script').length") == 0


# ------------------------------------------------------------------ dunning: the suspended console


def _suspend(admin, customer, clock):
    """The dunning plugin's four phases; the customer's invoice due 2026-01-10 unpaid for a week."""
    from kassa.services import dunning, plugin_settings

    plugin_settings.set_enabled(admin, "dunning", True)
    plugin_settings.save_settings(admin, "dunning", {
        "grace_enabled": "y", "grace_days": "2", "warning_enabled": "y", "warning_days": "4",
        "suspension_enabled": "y", "suspension_days": "3", "delete_notice_enabled": "y", "delete_notice_days": "2"})
    subscribe(admin, customer, [(service(admin), 2)], name="Web servers")
    inv = invoice_for(admin, customer, due="2026-01-10")
    for offset in range(1, 8):
        clock.set(datetime.combine(date(2026, 1, 10) + timedelta(offset), time(6, 0), tzinfo=timezone.utc))
        dunning.sweep()
    state = dunning.state_of(customer.id)
    assert state is not None and state.restricted, state
    return inv


def test_a_suspended_customer_sees_only_the_payment_prompt(ui, app, clock, admin, customer, customer_admin,
                                                          fake_gateway):
    inv = _suspend(admin, customer, clock)
    _route_hosted_gateway(ui, app)
    ui.sign_in(customer_admin.email)
    page = ui.page
    assert page.url == ui.url("/dunning/pay")
    assert page.get_by_role("heading", name="Your account is suspended").is_visible()
    assert page.locator("#dunning-banner").is_visible()
    assert menu(ui) == []  # no menu while suspended
    ui.snap("prompt")
    for path in ("/", "/billing/transactions", "/users", "/billing/invoices"):
        ui.goto(path)
        assert page.url == ui.url("/dunning/pay"), path
    page.locator("#payment-prompt").get_by_role("button", name="Pay ₹118.00").click()
    page.wait_for_url(re.compile(r"/fakehosted/\d+$"))
    page.get_by_role("link", name="Pay ₹118.00").click()
    page.wait_for_url(re.compile(r"/payments/\d+$"))
    assert page.get_by_role("heading", name="Payment successful").is_visible()
    assert invoice_status(inv) == "paid"
    ui.goto("/")  # restored at once
    assert page.url == ui.url("/") and not page.locator("#dunning-banner").count()
    assert "Invoices" in menu(ui)


# ------------------------------------------------------------------ labels


LABEL_CHECK = """() => {
  const controls = [...document.querySelectorAll('main input, main select, main textarea')]
    .filter(el => el.type !== 'hidden' && el.type !== 'submit' && el.type !== 'button' && el.offsetParent !== null);
  return controls.map((el, i) => {
    el.dataset.a11y = String(i);
    let text = el.getAttribute('aria-label') || '';
    if (!text && el.labels && el.labels.length) {
      const label = el.labels[0].cloneNode(true);
      label.querySelectorAll('input, select, textarea, option').forEach(c => c.remove());
      text = label.textContent.replace(/\\s+/g, ' ').trim();
    }
    return {i: String(i), name: el.name || el.id, text: text};
  });
}"""


def _unlabelled(ui) -> list[str]:
    """Every visible field of the page's forms, found again through its label as a screen reader
    (and Playwright's get_by_label) sees it; the names of those that cannot be."""
    problems = []
    for control in ui.page.evaluate(LABEL_CHECK):
        if not control["text"]:
            problems.append(f"{control['name']}: no label")
            continue
        found = ui.page.get_by_label(control["text"], exact=True).evaluate_all("els => els.map(e => e.dataset.a11y)")
        if control["i"] not in found:
            problems.append(f"{control['name']}: label {control['text']!r} does not lead to it")
    return problems


def test_every_field_of_the_main_forms_has_a_label(ui, admin, customer, customer_admin, reseller):
    inv = invoice_for(admin, customer)
    svc = service(admin)
    rule(admin)
    sub = subscribe(admin, customer, [(svc, 2)])
    pages = {"anonymous": ["/login"],
             admin.email: ["/billing/configurations", "/billing/tax-rules/new", "/organisations/new",
                           f"/organisations/{customer.id}", f"/organisations/{customer.id}/edit",
                           f"/organisations/{customer.id}/users/new", f"/billing/invoices/{inv.id}",
                           "/billing/invoices/new", "/billing/invoices", "/billing/transactions", "/subscriptions/new",
                           f"/subscriptions/{sub.id}", "/catalogue/new", "/profile", "/orders/new"],
             customer_admin.email: ["/billing/profile", f"/billing/invoices/{inv.id}"]}
    problems, seen = [], 0
    for who, paths in pages.items():
        if who != "anonymous":
            ui.sign_in(who)
        for path in paths:
            assert ui.goto(path).status == 200, path
            found = _unlabelled(ui)
            seen += len(ui.page.evaluate(LABEL_CHECK))
            problems += [f"{path}: {p}" for p in found]
        if who != "anonymous":
            ui.sign_out()
    assert seen > 80
    assert not problems, "fields without a usable label:\n" + "\n".join(problems)
