"""Issue 10, isolation: a plugin that raises does not break a billing run or a page."""
import logging
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa import create_app
from kassa.contracts import GatewayDeclined, GatewayInfo, GatewayResult
from kassa.hookspecs import hookimpl
from kassa.models import (AuditEvent, BillingRun, Invoice, LedgerTransaction, Payment, PaymentMethod,
                          PluginFailureLog)
from kassa.plugins import PluginFailure, host
from kassa.services import (billing_run, cards, charges, invoicing, manual_invoices, plugin_health, plugin_settings,
                            subscriptions)
from kassa.services.ledger import unbalanced_transactions
from kassa.services.errors import Conflict
from kassa.services.uow import atomic
from kassa.testing.billing import service, subscribe
from kassa.testing.fake_gateway import FakeGateway

D = Decimal


class AcmeTax:
    """A tax engine whose code breaks for some buyers."""

    def __init__(self, victims):
        self.victims = set(victims)

    @hookimpl(tryfirst=True)
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        if buyer.org_id in self.victims:
            raise ArithmeticError("boom <script>")
        return None

    @hookimpl
    def kassa_tax_id_check(self, country, tax_id):
        raise KeyError(tax_id)


def _run(admin, clock, day=date(2026, 2, 5)):
    clock.set(datetime(day.year, day.month, day.day, 6, 0, tzinfo=timezone.utc))
    started = billing_run.start(admin, admin.org.provider_id)
    return billing_run.db.session.get(BillingRun, started.id)


def _rows(db, plugin):
    return db.session.scalars(select(PluginFailureLog).filter_by(plugin=plugin)).all()


def test_failing_tax_plugin_costs_only_its_subscriptions(db, clock, admin, make_org, register_plugin, console,
                                                         caplog):
    svc = service(admin)
    orgs = [make_org("customer", parent=admin.org, name=f"C{i}") for i in range(4)]
    subs = [subscribe(admin, org, [(svc, 1)]) for org in orgs]
    register_plugin(AcmeTax({orgs[1].id, orgs[2].id}), "acme_tax", enable_for=admin.org_id)
    with caplog.at_level(logging.ERROR, logger="kassa.plugins"):
        result = _run(admin, clock)
    assert (result.status, result.invoices_created, result.failed) == ("finished", 2, 2)
    failed = {e.subscription_id: e.error for e in result.errors}
    assert set(failed) == {subs[1].id, subs[2].id}
    assert all(e.startswith("Plugin 'acme_tax' failed in kassa_tax_quote: ArithmeticError: boom") for e in failed.values())
    numbers = db.session.scalars(select(Invoice.number).order_by(Invoice.sequence)).all()
    assert numbers == ["INV-000001", "INV-000002"]  # gapless: the failed ones used no number
    assert {i.org_id for i in db.session.scalars(select(Invoice))} == {orgs[0].id, orgs[3].id}
    assert unbalanced_transactions() == []
    assert [r.getMessage() for r in caplog.records if r.name == "kassa.plugins"] == [
        "plugin acme_tax failed in kassa_tax_quote"] * 2
    [row] = _rows(db, "acme_tax")
    assert (row.provider_id, row.hook, row.count, row.resolved_at) == (admin.org_id, "kassa_tax_quote", 2, None)
    assert row.error == "ArithmeticError: boom <script>"

    c = console(admin)
    page = c.get(f"/billing/runs/{result.id}").get_data(as_text=True)
    assert f"Subscription #{subs[1].id}:" in page
    assert "Plugin &#39;acme_tax&#39; failed in kassa_tax_quote: ArithmeticError: boom &lt;script&gt;" in page
    plugins_page = c.get("/plugins").get_data(as_text=True)
    row_html = plugins_page.split('id="plugin-acme_tax"')[1].split("</tr>")[0]
    assert "Failing" in row_html and "kassa_tax_quote" in row_html and "2 times in the last 24 h" in row_html
    assert "boom &lt;script&gt;" in row_html and "<script>" not in row_html
    other = plugins_page.split('id="plugin-builtin-offline"')[1].split("</tr>")[0]
    assert "Failing" not in other


def test_failure_is_recorded_although_the_transaction_rolled_back(db, admin, provider, register_plugin):
    register_plugin(AcmeTax(()), "acme_tax", enable_for=provider.id)
    with pytest.raises(PluginFailure) as failure:
        with atomic():
            db.session.add(AuditEvent(provider_id=provider.id, action="test.marker", object_type="", object_id="",
                                      summary="", details={}, at=datetime(2026, 1, 5)))
            db.session.flush()
            host().hooks(provider.id).kassa_tax_id_check(country="IN", tax_id="29ABCDE1234F1Z5")
    assert str(failure.value) == "Plugin 'acme_tax' failed in kassa_tax_id_check: KeyError: '29ABCDE1234F1Z5'"
    assert isinstance(failure.value.__cause__, KeyError) and failure.value.plugin == "acme_tax"
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="test.marker")) == 0
    [row] = _rows(db, "acme_tax")  # the relay knew the provider although the hook has no ctx
    assert (row.provider_id, row.hook, row.count) == (provider.id, "kassa_tax_id_check", 1)


def test_recording_a_failure_never_replaces_the_plugins_error(db, provider, register_plugin, monkeypatch):
    register_plugin(AcmeTax(()), "acme_tax", enable_for=provider.id)

    def broken_write(pending):
        raise RuntimeError("database gone")

    monkeypatch.setattr(plugin_health, "_write", broken_write)
    with pytest.raises(PluginFailure, match="KeyError"):
        host().hooks(provider.id).kassa_tax_id_check(country="IN", tax_id="x")
    assert _rows(db, "acme_tax") == []


def test_failing_event_hook_does_not_stop_the_other_plugins(db, clock, admin, customer, register_plugin):
    seen = []

    class Listener:
        @hookimpl
        def kassa_invoice_issued(self, invoice, ctx):
            seen.append(invoice.number)

    class Crasher:
        @hookimpl
        def kassa_invoice_issued(self, invoice, ctx):
            raise RuntimeError("webhook endpoint down")

    # registered after the listener, so pluggy calls the crasher first
    register_plugin(Listener(), "listener", enable_for=admin.org_id)
    register_plugin(Crasher(), "crasher", enable_for=admin.org_id)
    subscribe(admin, customer, [(service(admin), 1)])
    result = _run(admin, clock)
    assert (result.invoices_created, result.failed) == (1, 0)
    assert seen == ["INV-000001"]
    [row] = _rows(db, "crasher")
    assert row.hook == "kassa_invoice_issued" and row.error == "RuntimeError: webhook endpoint down"


def test_failing_invoice_context_still_renders_the_document(db, clock, admin, customer, register_plugin, console):
    class BadContext:
        @hookimpl
        def kassa_invoice_context(self, invoice, ctx):
            return {"x": 1 / 0}

    register_plugin(BadContext(), "bad_context", enable_for=admin.org_id)
    subscribe(admin, customer, [(service(admin), 1)])
    _run(admin, clock)
    invoice = db.session.scalar(select(Invoice))
    c = console(admin)
    page = c.get(f"/billing/invoices/{invoice.id}")
    assert page.status_code == 200
    pdf = c.get(f"/billing/invoices/{invoice.id}/export?format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    [row] = _rows(db, "bad_context")
    assert row.hook == "kassa_invoice_context" and "ZeroDivisionError" in row.error


class BreakingGateway(FakeGateway):
    """The fake gateway, whose charge hook can be made to crash or decline outright."""

    mode = "ok"
    crash_orgs: set = set()  # empty: every organisation

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        if gateway == self.CARD and self.mode == "crash" and (
                not self.crash_orgs or charge.org.org_id in self.crash_orgs):
            raise RuntimeError("NoneType has no attribute 'id'")
        if gateway == self.CARD and self.mode == "refuse":
            raise GatewayDeclined("Card reported stolen")
        return super().kassa_gateway_charge(gateway, settings, charge)

    @hookimpl
    def kassa_gateway_verify(self, gateway, settings):
        raise RuntimeError("verify crashed")


@pytest.fixture
def breaking_gateway(app, provider, admin, register_plugin):
    gateway = BreakingGateway()
    register_plugin(gateway, "fakegateway", enable_for=provider.id)
    plugin_settings.save_settings(admin, "fakegateway", {"api_key": "good-key", "webhook_secret": "whsec_fake"})
    app.extensions["kassa_plugins"].forget_cache()
    return gateway


def _invoice(admin, org):
    return manual_invoices.create(admin, {"org_id": org.id, "for": org.kind, "issue_date": "2026-01-05",
                                          "due_date": "2026-01-20", "period_from": "2026-01-01",
                                          "period_to": "2026-01-31",
                                          "items": [{"description": "Hosting", "quantity": "1", "unit_price": "118"}]})


def test_crashing_gateway_fails_the_capture_cleanly(db, clock, admin, customer, breaking_gateway, console, api):
    inv = _invoice(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    breaking_gateway.mode = "crash"
    page = console(admin).post(f"/billing/invoices/{inv.id}/capture")
    assert page.status_code == 502
    text = page.get_data(as_text=True)
    assert "The plugin fakegateway failed; the administrator can see the error on the Plugins page." in text
    assert "NoneType" not in text  # the plugin's own error text is for the Plugins page only
    db.session.expire_all()
    [attempt] = db.session.scalars(select(Payment)).all()
    # the plugin may have crashed after the gateway took the money: pending, like a timeout
    assert attempt.status == "pending"
    method = db.session.scalar(select(PaymentMethod))
    assert method.declines == 0 and method.status == "active"  # a plugin bug is not the card's decline
    assert db.session.scalar(select(func.count()).select_from(LedgerTransaction).filter_by(kind="payment")) == 0
    assert breaking_gateway.charges == []
    with pytest.raises(Conflict):  # no second attempt while the first one's outcome is unknown
        charges.capture(admin, inv)

    breaking_gateway.mode = "ok"  # fixed: reconcile asks the gateway, which never saw the attempt ...
    assert charges.reconcile(0) == 0  # ... so it waits (the gateway may still report it) ...
    clock.advance(days=1, minutes=1)
    assert charges.reconcile(0) == 1  # ... and after a day gives up on it, without a card decline
    db.session.expire_all()
    assert (attempt.status, attempt.decline_reason) == ("failed", "The gateway has no record of this payment.")
    assert db.session.scalar(select(PaymentMethod)).declines == 0
    assert charges.capture(admin, inv).status == "succeeded"  # the next attempt charges once, under a new key
    assert breaking_gateway.charges == [(f"invoice:{inv.id}:attempt:2", D("118.00"))]
    [row] = _rows(db, "fakegateway")
    assert row.hook == "kassa_gateway_charge" and row.provider_id == admin.org_id

    verify = api(admin).post("/api/v1/gateways/fakepay/verify")
    assert verify.status_code == 502
    assert verify.get_json()["error"] == {
        "status": 502, "plugin": "fakegateway",
        "message": "The plugin fakegateway failed; the administrator can see the error on the Plugins page."}


def test_a_declined_charge_is_a_decline_not_a_failure(db, admin, customer, breaking_gateway):
    inv = _invoice(admin, customer)
    cards.add_card(admin, customer, "tok_visa_4242")
    breaking_gateway.mode = "refuse"
    payment = charges.capture(admin, inv)
    assert payment.status == "failed" and payment.decline_reason == "Card reported stolen"
    assert _rows(db, "fakegateway") == []


def test_auto_deduction_goes_on_after_a_crashing_gateway(db, clock, admin, customer, make_org, breaking_gateway):
    other = make_org("customer", parent=admin.org, name="Other")
    subs = {}
    for org, token in ((customer, "tok_visa_4242"), (other, "tok_mastercard_5555")):
        cards.add_card(admin, org, token)
        subs[org.id] = subscribe(admin, org, [(service(admin, f"vm{org.id}"), 1)])
        subscriptions.set_auto_deduction(admin, subs[org.id], True)
    breaking_gateway.mode, breaking_gateway.crash_orgs = "crash", {customer.id}
    result = _run(admin, clock)  # the run's auto-deduction job charges both
    assert (result.invoices_created, result.failed) == (2, 0)
    db.session.rollback()
    status = {i.org_id: invoicing.status(i) for i in db.session.scalars(select(Invoice))}
    assert status == {customer.id: "unpaid", other.id: "paid"}
    assert [p.status for p in db.session.scalars(select(Payment).filter_by(org_id=customer.id))] == ["pending"]
    again = charges.auto_deduct([i.id for i in db.session.scalars(select(Invoice).order_by(Invoice.id))])
    assert again == {"succeeded": 0, "declined": 0, "skipped": 2, "failed": 0}  # paid, and in progress


def test_mark_as_resolved_clears_the_badge_until_the_next_failure(db, admin, provider, register_plugin, console,
                                                                   api, clock):
    register_plugin(AcmeTax(()), "acme_tax", enable_for=provider.id)
    with pytest.raises(PluginFailure):
        host().hooks(provider.id).kassa_tax_id_check(country="IN", tax_id="x")
    listing = {p["name"]: p for p in api(admin).get("/api/v1/plugins").get_json()["items"]}
    assert listing["acme_tax"]["failing"]["hook"] == "kassa_tax_id_check"
    assert listing["acme_tax"]["failing"]["count_24h"] == 1 and listing["builtin.offline"]["failing"] is None
    c = console(admin)
    assert c.raw_post("/plugins/acme_tax/resolve").status_code == 400  # no CSRF token
    assert "Failing" in c.get("/plugins").get_data(as_text=True)
    assert c.post("/plugins/acme_tax/resolve").status_code == 302
    assert "Failing" not in c.get("/plugins").get_data(as_text=True)
    audit = db.session.scalar(select(AuditEvent).filter_by(action="plugin.resolve"))
    assert audit.actor_id == admin.id and "acme_tax" in audit.summary
    assert plugin_health.failing(provider.id) == {}

    clock.advance(minutes=5)
    with pytest.raises(PluginFailure):
        host().hooks(provider.id).kassa_tax_id_check(country="IN", tax_id="y")
    health = plugin_health.failing(provider.id)["acme_tax"]
    assert health.count_24h == 2 and health.error == "KeyError: 'y'"
    assert "Failing" in c.get("/plugins").get_data(as_text=True)


def test_failures_are_counted_per_hour_and_pruned_after_a_week(db, provider, register_plugin, clock):
    register_plugin(AcmeTax(()), "acme_tax", enable_for=provider.id)
    hooks = host().hooks(provider.id)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    for minutes in (0, 10, 70, 60 * 30):
        clock.set(start + timedelta(minutes=minutes))
        with pytest.raises(PluginFailure):
            hooks.kassa_tax_id_check(country="IN", tax_id=str(minutes))
    assert sorted(r.count for r in _rows(db, "acme_tax")) == [1, 1, 2]
    assert plugin_health.failing(provider.id)["acme_tax"].count_24h == 1  # 30 h later: the earlier ones are older
    clock.set(start + timedelta(days=9))
    with pytest.raises(PluginFailure):
        hooks.kassa_tax_id_check(country="IN", tax_id="late")
    assert [r.count for r in _rows(db, "acme_tax")] == [1]


class ListingCrash:
    @hookimpl
    def kassa_gateways(self):
        raise RuntimeError("cannot read my config")

    @hookimpl
    def kassa_invoice_issued(self, invoice, ctx):
        raise AssertionError("a broken plugin must not be called")


class GoodGateway:
    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id="goodpay", name="GoodPay")]


def test_listing_hook_raising_at_start_up_marks_the_plugin_broken(kassa_config, caplog):
    config = dict(kassa_config, KASSA_EXTRA_PLUGINS=[(ListingCrash(), "listing_crash"), (GoodGateway(), "good")])
    with caplog.at_level(logging.ERROR, logger="kassa.plugins"):
        app = create_app(config)  # starts
    h = app.extensions["kassa_plugins"]
    record = h.records["listing_crash"]
    assert record.broken and record.error == ("Failed at start-up in kassa_gateways: "
                                              "RuntimeError: cannot read my config")
    assert h.pm.get_plugin("listing_crash") is None and not h.records["good"].broken
    assert "plugin listing_crash failed in kassa_gateways" in caplog.text
    with app.app_context():
        assert "goodpay" in {g.id for g in h.listing("kassa_gateways")}


def test_guard_keeps_pluggy_argument_names_and_leaves_built_ins_alone(app):
    impls = {i.plugin_name: i for i in app.extensions["kassa_plugins"].pm.hook.kassa_tax_quote.get_hookimpls()}
    assert "builtin.tax_rules" in impls and not hasattr(impls["builtin.tax_rules"].function, "__wrapped__")
    guarded = [i for i in impls.values() if hasattr(i.function, "__wrapped__")]
    assert guarded, "installed plugins' implementations are guarded"
    assert all(i.argnames == ("draft", "seller", "buyer", "ctx") for i in guarded)


def test_result_of_a_failing_action_hook_is_not_a_contract_error_in_disguise(db, provider, register_plugin):
    class BadResult:
        @hookimpl
        def kassa_gateways(self):
            return [GatewayInfo(id="badres", name="BadRes")]

        @hookimpl
        def kassa_gateway_charge(self, gateway, settings, charge):
            return GatewayResult(status="maybe", reference="r")  # ContractError inside kassa.contracts

    register_plugin(BadResult(), "badres", enable_for=provider.id)
    with pytest.raises(PluginFailure, match="Plugin 'badres' failed in kassa_gateway_charge: ContractError"):
        host().hooks(provider.id).kassa_gateway_charge(gateway="badres", settings={}, charge=None)
