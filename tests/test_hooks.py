"""Every hook spec, called through the host the way the core calls it: by keyword,
firstresult where documented, built-ins last, disabled plugins left out."""
import ast
from dataclasses import replace
import textwrap
import re
import inspect
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from kassa import hookspecs
from kassa.contracts import (ChargeRequest, ContractError, DunningCase, DunningPhase, ExportInfo, GatewayEvent,
                             GatewayInfo,
                             GatewayResult, InvoiceView, Party, PaymentView, ProviderContext, RefundRequest,
                             RenderedDocument, RendererInfo, ResourceView, SavedMethod, SaveMethodRequest,
                             ScheduledJob, SubscriptionView, TaxComponent, TaxDraft, TaxDraftLine, TaxEngineInfo,
                             TaxIdCheck, TaxLineQuote, TaxQuote, VerifyResult, WebhookSignatureError)
from kassa.hookspecs import hookimpl
from kassa.plugins import host

BUYER = Party(org_id=2, kind="customer", name="Buyer", country="DE")
SELLER = Party(org_id=1, kind="provider", name="Seller", country="IN", state="Tamil Nadu")
CTX = ProviderContext(provider_id=1, currency="INR", precision=2, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
INVOICE = InvoiceView(id=1, number="INV-1", status="unpaid", currency="INR", issue_date=date(2026, 1, 1),
                      due_date=date(2026, 1, 16), seller=SELLER, buyer=BUYER, lines=(), subtotal=Decimal("10"),
                      tax_total=Decimal("0"), total=Decimal("10"))


class Everything:
    """A fake plugin implementing every hook; it records the calls it gets."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id="fake", name="Fake", currencies=("INR",))]

    @hookimpl
    def kassa_gateway_save_method(self, gateway, settings, request):
        if gateway != "fake":
            return None
        return SavedMethod(reference="pm_1", brand="visa", last4="4242")

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        if gateway != "fake":
            return None
        self.calls.append(("charge", charge.idempotency_key))
        return GatewayResult(status="succeeded", reference="ch_1", amount=charge.amount, currency=charge.currency)

    @hookimpl
    def kassa_gateway_refund(self, gateway, settings, refund):
        if gateway != "fake":
            return None
        return GatewayResult(status="succeeded", reference="re_1", amount=refund.amount, currency=refund.currency)

    @hookimpl
    def kassa_gateway_complete(self, gateway, settings, reference, params):
        if gateway != "fake":
            return None
        if params.get("approved") != "yes":
            return GatewayResult(status="declined", reference=reference, decline_reason="buyer cancelled")
        return GatewayResult(status="succeeded", reference=reference)

    @hookimpl
    def kassa_gateway_lookup(self, gateway, settings, idempotency_key, reference):
        if gateway != "fake":
            return None
        return GatewayResult(status="pending", reference=reference)

    @hookimpl
    def kassa_gateway_verify(self, gateway, settings):
        if gateway != "fake":
            return None
        return VerifyResult(ok=settings.get("key") == "good", message="checked")

    @hookimpl
    def kassa_gateway_webhook(self, gateway, settings, headers, body):
        if gateway != "fake":
            return None
        if headers.get("X-Sig") != "ok":
            raise WebhookSignatureError("bad signature")
        return [GatewayEvent(event_id="evt_1", type="charge.succeeded", reference="ch_1")]

    @hookimpl
    def kassa_tax_engines(self):
        return [TaxEngineInfo(id="fake-tax", name="Fake tax", countries=("DE",))]

    @hookimpl
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        if buyer.country != "DE":
            return None
        return TaxQuote(engine="fake-tax", lines=tuple(
            TaxLineQuote(key=l.key, components=(TaxComponent(name="VAT", rate=Decimal("19"),
                                                              amount=l.amount * Decimal("0.19")),))
            for l in draft.lines))

    @hookimpl
    def kassa_tax_id_check(self, country, tax_id):
        if country != "DE":
            return None
        return TaxIdCheck(valid=tax_id.startswith("DE"), normalized=tax_id)

    @hookimpl
    def kassa_renderers(self):
        return [RendererInfo(id="txt", name="Text", media_type="text/plain", extension="txt")]

    @hookimpl
    def kassa_invoice_context(self, invoice, ctx):
        return {"fake": {"number_upper": invoice.number.upper()}}

    @hookimpl
    def kassa_render_invoice(self, renderer, invoice, context, ctx):
        if renderer != "txt":
            return None
        return RenderedDocument(content=invoice.number.encode(), media_type="text/plain", filename="x.txt")

    @hookimpl
    def kassa_invoice_exports(self):
        return [ExportInfo(id="numbers", name="Invoice numbers", media_type="text/plain", extension="txt")]

    @hookimpl
    def kassa_export_invoices(self, export, invoices, period_start, period_end, ctx):
        if export != "numbers":
            return None
        text = f"{period_start}..{period_end}: " + ",".join(i.number for i in invoices)
        return RenderedDocument(content=text.encode(), media_type="text/plain", filename="numbers.txt")

    @hookimpl
    def kassa_dunning_phases(self):
        return [DunningPhase(key="fake-phase", name="Fake", order=99, default_days=1)]

    @hookimpl
    def kassa_dunning_enter_phase(self, phase, case, ctx):
        self.calls.append(("enter", phase, case.org.name))

    @hookimpl
    def kassa_dunning_resolved(self, case, reason, ctx):
        self.calls.append(("resolved", reason))

    @hookimpl
    def kassa_blueprints(self):
        return []

    @hookimpl
    def kassa_settings_form(self):
        from wtforms import Form, StringField

        class F(Form):
            key = StringField("Key")

        return F

    @hookimpl
    def kassa_migrations(self):
        return None

    @hookimpl
    def kassa_scheduled_jobs(self):
        return [ScheduledJob(id="fake-job", func="kassa.jobs.tasks.prune_login_attempts", every_minutes=60)]

    @hookimpl
    def kassa_invoice_issued(self, invoice, ctx):
        self.calls.append(("issued", invoice.number))

    @hookimpl
    def kassa_payment_recorded(self, payment, ctx):
        self.calls.append(("paid", payment.amount))

    @hookimpl
    def kassa_subscription_terminated(self, subscription, ctx):
        self.calls.append(("terminated", subscription.id))

    @hookimpl
    def kassa_resource_terminate(self, resource, ctx):
        self.calls.append(("release", resource.service_code))


@pytest.fixture
def fake(app, db, provider, register_plugin):
    plugin = Everything()
    register_plugin(plugin, "everything", enable_for=provider.id)
    host().forget_cache()
    return plugin


def test_gateway_hooks(fake, provider):
    hooks = host().hooks(provider.id)
    charge = ChargeRequest(idempotency_key="inv-1-attempt-1", amount=Decimal("10.00"), currency="INR", org=BUYER,
                           description="INV-1")
    assert {g.id for gs in hooks.kassa_gateways() for g in gs} >= {"fake", "offline"}
    assert hooks.kassa_gateway_charge(gateway="fake", settings={}, charge=charge).reference == "ch_1"
    assert hooks.kassa_gateway_charge(gateway="unknown", settings={}, charge=charge) is None
    assert fake.calls == [("charge", "inv-1-attempt-1")]
    assert hooks.kassa_gateway_refund(gateway="fake", settings={}, refund=RefundRequest(
        idempotency_key="r1", charge_reference="ch_1", amount=Decimal("1"), currency="INR")).status == "succeeded"
    assert hooks.kassa_gateway_save_method(gateway="fake", settings={}, request=SaveMethodRequest(
        idempotency_key="s1", org=BUYER, token="tok")).last4 == "4242"
    assert hooks.kassa_gateway_complete(gateway="fake", settings={}, reference="o_1",
                                        params={"approved": "yes"}).status == "succeeded"
    assert hooks.kassa_gateway_complete(gateway="fake", settings={}, reference="o_1",
                                        params={}).decline_reason == "buyer cancelled"
    assert hooks.kassa_gateway_lookup(gateway="fake", settings={}, idempotency_key="k",
                                      reference="ch_1").status == "pending"
    assert hooks.kassa_gateway_verify(gateway="fake", settings={"key": "good"}).ok
    assert hooks.kassa_gateway_webhook(gateway="fake", settings={}, headers={"X-Sig": "ok"},
                                       body=b"{}")[0].event_id == "evt_1"
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_webhook(gateway="fake", settings={}, headers={}, body=b"{}")


def test_tax_hooks(fake, provider, admin):
    from kassa.services import plugin_settings

    assert "india_gst" not in {e.id for es in host().hooks(provider.id).kassa_tax_engines() for e in es}
    plugin_settings.set_enabled(admin, "tax_india_gst", True)
    hooks = host().hooks(provider.id)
    draft = TaxDraft(currency="EUR", precision=2, issue_date=date(2026, 1, 1),
                     lines=(TaxDraftLine(key="1", description="VM", amount=Decimal("100.00")),))
    quote = hooks.kassa_tax_quote(draft=draft, seller=SELLER, buyer=BUYER, ctx=CTX)
    assert quote.total == Decimal("19.0000")
    us_seller = replace(SELLER, country="US", state="CA")
    fallback = hooks.kassa_tax_quote(draft=draft, seller=us_seller, buyer=us_seller, ctx=CTX)
    assert fallback.engine == "tax_rules" and fallback.total == 0  # the built-in engine answers last
    assert {e.id for es in hooks.kassa_tax_engines() for e in es} >= {"fake-tax", "india_gst"}
    assert hooks.kassa_tax_id_check(country="DE", tax_id="DE123").valid
    # the India GST plugin answers for India, the fake one does not
    assert hooks.kassa_tax_id_check(country="IN", tax_id="27AAPFU0939F1ZV").valid


def test_renderer_hooks(fake, provider):
    hooks = host().hooks(provider.id)
    assert "txt" in {r.id for rs in hooks.kassa_renderers() for r in rs}
    blocks = [b for b in hooks.kassa_invoice_context(invoice=INVOICE, ctx=CTX) if b]
    assert {"fake": {"number_upper": "INV-1"}} in blocks
    doc = hooks.kassa_render_invoice(renderer="txt", invoice=INVOICE, context={}, ctx=CTX)
    assert doc.content == b"INV-1"


def test_invoice_export_hooks(fake, provider, admin, customer, api):
    from kassa.services import manual_invoices

    hooks = host().hooks(provider.id)
    assert [e.id for es in hooks.kassa_invoice_exports() for e in es] == ["numbers"]
    doc = hooks.kassa_export_invoices(export="numbers", invoices=[INVOICE], period_start=date(2026, 1, 1),
                                      period_end=date(2026, 2, 1), ctx=CTX)
    assert doc.content == b"2026-01-01..2026-02-01: INV-1"
    manual_invoices.create(admin, {"org_id": customer.id, "issue_date": "2026-01-05", "due_date": "2026-01-20",
                                   "period_from": "2026-01-01", "period_to": "2026-01-31",
                                   "items": [{"description": "x", "quantity": "1", "unit_price": "1"}]})
    client = api(admin)
    assert client.get("/api/v1/exports").get_json()["items"][0]["id"] == "numbers"
    body = client.get("/api/v1/exports/numbers?month=2026-01").get_data(as_text=True)
    assert body == "2026-01-01..2026-02-01: INV-000001"
    assert client.get("/api/v1/exports/numbers?month=jan").status_code == 422
    assert client.get("/api/v1/exports/nope?month=2026-01").status_code == 404


def test_dunning_hooks(fake, provider):
    hooks = host().hooks(provider.id)
    assert {p.key for ps in hooks.kassa_dunning_phases() for p in ps} == {"fake-phase"}
    # every installed plugin, enabled or not, when asked without a provider (start-up checks)
    keys = {p.key for ps in host().pm.hook.kassa_dunning_phases() for p in ps}
    assert {"fake-phase", "grace", "warning", "suspension", "delete_notice"} <= keys
    case = DunningCase(org=BUYER, phase="grace", overdue_amount=Decimal("5"), currency="INR",
                       oldest_due_date=date(2026, 1, 1), entered_on=date(2026, 1, 2))
    hooks.kassa_dunning_enter_phase(phase="grace", case=case, ctx=CTX)
    hooks.kassa_dunning_resolved(case=case, reason="paid", ctx=CTX)
    assert ("enter", "grace", "Buyer") in fake.calls and ("resolved", "paid") in fake.calls


def test_app_hooks(fake, provider):
    assert host().pm.hook.kassa_blueprints() is not None
    assert any(f.__name__ == "F" for _, f in host().call_each("kassa_settings_form", {"everything"}))
    assert None in host().pm.hook.kassa_migrations() or host().pm.hook.kassa_migrations() == []
    jobs = [j.id for js in host().pm.hook.kassa_scheduled_jobs() for j in js]
    assert "fake-job" in jobs and "prune-login-attempts" in jobs


def test_event_hooks(fake, provider):
    hooks = host().hooks(provider.id)
    hooks.kassa_invoice_issued(invoice=INVOICE, ctx=CTX)
    hooks.kassa_payment_recorded(payment=PaymentView(id=1, org=BUYER, amount=Decimal("10"), currency="INR",
                                                     gateway="fake", reference="ch_1"), ctx=CTX)
    resource = ResourceView(subscription_id=3, item_id=4, service_code="vm.small", description="VM",
                            units=Decimal("2"))
    hooks.kassa_subscription_terminated(subscription=SubscriptionView(id=3, org=BUYER, status="cancelled",
                                                                      resources=(resource,)), ctx=CTX)
    hooks.kassa_resource_terminate(resource=resource, ctx=CTX)
    assert [c[0] for c in fake.calls] == ["issued", "paid", "terminated", "release"]


def test_disabled_plugin_is_left_out_of_calls(fake, provider, admin):
    from kassa.services import plugin_settings

    plugin_settings.set_enabled(admin, "everything", False)
    host().forget_cache()
    hooks = host().hooks(provider.id)
    hooks.kassa_invoice_issued(invoice=INVOICE, ctx=CTX)
    assert fake.calls == []
    assert host().hooks(provider.id).kassa_gateway_verify(gateway="fake", settings={}) is None


def test_contracts_refuse_floats_and_declines_without_reason():
    with pytest.raises(ContractError):
        ChargeRequest(idempotency_key="k", amount=10.0, currency="INR", org=BUYER, description="x")
    with pytest.raises(ContractError):
        GatewayResult(status="declined")
    with pytest.raises(ContractError):
        GatewayResult(status="maybe")


def test_hook_calls_must_be_keyword(fake, provider):
    with pytest.raises(TypeError):
        host().hooks(provider.id).kassa_gateway_verify("fake", {})


# ---------------------------------------------------------------- meta-tests


def _test_sources() -> str:
    root = Path(__file__).resolve().parent.parent
    files = list((root / "tests").glob("test_*.py")) + list((root / "plugins").glob("*/tests/test_*.py"))
    return "\n".join(f.read_text() for f in files if f.name != "test_meta.py")


@pytest.mark.parametrize("hook", hookspecs.all_hook_names())
def test_every_hook_has_a_test(hook):
    """A hook counts as tested when some test calls it (an implementation alone does not count)."""
    called = re.search(rf"(?<!def )\b{hook}\b(?!\w)", _test_sources().replace(f"def {hook}(", ""))
    assert called, f"{hook} is not called by any test"


@pytest.mark.parametrize("hook", hookspecs.all_hook_names())
def test_every_hook_is_documented(hook):
    spec = next(getattr(cls, hook) for cls in hookspecs.SPEC_CLASSES if hasattr(cls, hook))
    doc = inspect.getdoc(spec)
    assert doc and len(doc) > 20, f"{hook} needs a docstring"
    tree = ast.parse(textwrap.dedent(inspect.getsource(spec)))
    body = tree.body[0].body
    assert len(body) == 1, f"{hook}: a spec is a docstring only"
