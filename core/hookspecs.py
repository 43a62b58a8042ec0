"""Every hook a Kassa plugin can implement.

Hooks are called with keyword arguments. ``firstresult`` hooks stop at the first
plugin that returns something other than ``None``; such a plugin must return
``None`` for anything that is not its own (another gateway's id, another
country). Built-in implementations are registered ``trylast`` so any installed
plugin is asked first. The reference in ``docs/plugins.md`` is generated from
these docstrings.

A plugin may raise only the exceptions its hook documents (``GatewayDeclined``,
``GatewayUnavailable``, ``WebhookSignatureError``, ``UnknownCountryError``:
``kassa.plugins.CONTRACT_EXCEPTIONS``). Anything else, a ``ContractError`` from
building a malformed result included, is a plugin failure: it is logged with
the plugin's name and shown as "Failing" on the Plugins page, and then

* ``firstresult`` hooks are actions (charge, tax quote, render, export, ...):
  the action fails with ``PluginFailure`` naming the plugin; its transaction
  rolls back, a billing run records that subscription as failed and goes on;
* every other hook collects (``kassa_gateways``, ``kassa_invoice_context``,
  ``kassa_settings_form``, ...) or notifies (events, dunning phases): the
  failing plugin is skipped, as if it had returned ``None``, and the others
  still run. A listing hook that raises at start-up marks the plugin broken.
"""
from __future__ import annotations

import pluggy

PROJECT = "kassa"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class GatewayHooks:
    """Payment gateways. The core never talks to a gateway except through these."""

    @hookspec
    def kassa_gateways(self):
        """Return a list of :class:`GatewayInfo` this plugin provides; ids must be unique across plugins."""

    @hookspec(firstresult=True)
    def kassa_gateway_save_method(self, gateway, settings, request):
        """Attach the payment method in ``request`` (:class:`SaveMethodRequest`) and return a :class:`SavedMethod`."""

    @hookspec(firstresult=True)
    def kassa_gateway_charge(self, gateway, settings, charge):
        """Charge ``charge`` (:class:`ChargeRequest`, carrying its idempotency key); return a :class:`GatewayResult`, or raise :class:`GatewayUnavailable` when the outcome is unknown."""

    @hookspec(firstresult=True)
    def kassa_gateway_refund(self, gateway, settings, refund):
        """Refund ``refund`` (:class:`RefundRequest`, carrying its idempotency key); return a :class:`GatewayResult`."""

    @hookspec(firstresult=True)
    def kassa_gateway_complete(self, gateway, settings, reference, params):
        """Finish a hosted payment when the buyer comes back from the gateway's page (``params``: what the gateway sent back, which the plugin verifies); return a :class:`GatewayResult`."""

    @hookspec(firstresult=True)
    def kassa_gateway_lookup(self, gateway, settings, idempotency_key, reference):
        """Ask the gateway what became of an earlier call (reconciliation); return a :class:`GatewayResult` or ``None`` if unknown."""

    @hookspec(firstresult=True)
    def kassa_gateway_verify(self, gateway, settings):
        """Check the credentials in ``settings`` against the gateway; return a :class:`VerifyResult`."""

    @hookspec(firstresult=True)
    def kassa_gateway_webhook(self, gateway, settings, headers, body):
        """Verify a webhook's signature and return its :class:`GatewayEvent` list; raise :class:`WebhookSignatureError` if it does not verify."""


class TaxHooks:
    """Tax engines: the built-in rule table, or a country's own engine."""

    @hookspec
    def kassa_tax_engines(self):
        """Return a list of :class:`TaxEngineInfo` this plugin provides; ids must be unique across plugins."""

    @hookspec(firstresult=True)
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        """Return a :class:`TaxQuote` for ``draft`` sold by ``seller`` to ``buyer`` (:class:`Party`), or ``None`` if this engine does not cover them.

        Amounts are ``Decimal`` rounded to ``draft.precision``; the same arguments give the same quote. A buyer whose
        country is not an ISO 3166-1 alpha-2 code ("XX", "") is refused with :class:`UnknownCountryError` (see
        :func:`kassa.contracts.require_country`), never taxed as a foreign buyer; other data the engine cannot tax
        (a state that is not one of the country's) is refused with a ``ValueError`` saying what to fix."""

    @hookspec(firstresult=True)
    def kassa_tax_id_check(self, country, tax_id):
        """Validate a tax id (GSTIN, VAT number) of ``country``; return a :class:`TaxIdCheck` or ``None`` for other countries."""


class RendererHooks:
    """Invoice documents."""

    @hookspec
    def kassa_renderers(self):
        """Return a list of :class:`RendererInfo` this plugin provides; ids must be unique across plugins."""

    @hookspec
    def kassa_invoice_context(self, invoice, ctx):
        """Return a mapping of extra fields for the document of ``invoice`` (:class:`InvoiceView`), or ``None``; every plugin adds its own block."""

    @hookspec(firstresult=True)
    def kassa_render_invoice(self, renderer, invoice, context, ctx):
        """Render ``invoice`` with renderer id ``renderer`` and the merged ``context``; return a :class:`RenderedDocument`."""

    @hookspec
    def kassa_invoice_exports(self):
        """Return a list of :class:`ExportInfo`: reports over many invoices (a tax return, an ERP file); ids unique."""

    @hookspec(firstresult=True)
    def kassa_export_invoices(self, export, invoices, period_start, period_end, ctx):
        """Build export ``export`` from ``invoices`` (:class:`InvoiceView` list, issued in ``[period_start, period_end)``); return a :class:`RenderedDocument`."""


class DunningHooks:
    """Dunning: the phases an overdue organisation passes through."""

    @hookspec
    def kassa_dunning_phases(self):
        """Return a list of :class:`DunningPhase`; the engine runs the enabled ones in ``order``."""

    @hookspec
    def kassa_dunning_enter_phase(self, phase, case, ctx):
        """Act when ``case`` (:class:`DunningCase`) enters ``phase`` (its key), beyond the effects the phase declares."""

    @hookspec
    def kassa_dunning_resolved(self, case, reason, ctx):
        """Act when ``case`` leaves dunning: ``reason`` is ``"paid"`` or ``"terminated"``."""


class AppHooks:
    """How a plugin extends the application."""

    @hookspec
    def kassa_blueprints(self):
        """Return a list of Flask blueprints to register (their views must check permissions themselves)."""

    @hookspec
    def kassa_settings_form(self):
        """Return this plugin's WTForms ``Form`` class; fields of type ``SecretField`` are encrypted at rest."""

    @hookspec
    def kassa_migrations(self):
        """Return the path of this plugin's Alembic versions folder."""

    @hookspec
    def kassa_scheduled_jobs(self):
        """Return a list of :class:`ScheduledJob` to run on the schedule."""


class EventHooks:
    """Notifications after the core changed state; their return values are ignored."""

    @hookspec
    def kassa_invoice_issued(self, invoice, ctx):
        """An invoice (:class:`InvoiceView`) was issued."""

    @hookspec
    def kassa_payment_recorded(self, payment, ctx):
        """A payment (:class:`PaymentView`) was recorded in the ledger."""

    @hookspec
    def kassa_subscription_terminated(self, subscription, ctx):
        """A subscription (:class:`SubscriptionView`) was terminated."""

    @hookspec
    def kassa_resource_terminate(self, resource, ctx):
        """A resource (:class:`ResourceView`) of a terminated subscription must be released by provisioning integrations."""


SPEC_CLASSES = (GatewayHooks, TaxHooks, RendererHooks, DunningHooks, AppHooks, EventHooks)

#: Listing hooks whose ids must be unique across plugins: hook -> (label, id attribute).
LISTING_HOOKS = {
    "kassa_gateways": ("gateway", "id"),
    "kassa_tax_engines": ("tax engine", "id"),
    "kassa_renderers": ("renderer", "id"),
    "kassa_invoice_exports": ("invoice export", "id"),
    "kassa_dunning_phases": ("dunning phase", "key"),
}


def all_hook_names() -> list[str]:
    return sorted(
        name for cls in SPEC_CLASSES for name in vars(cls) if name.startswith(PROJECT + "_")
    )
