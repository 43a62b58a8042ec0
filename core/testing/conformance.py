"""Conformance kit: ready-made tests for the contract of each plugin kind.

A plugin author subclasses one class in the plugin's own test suite::

    from kassa.testing.conformance import GatewayConformance

    class TestConformance(GatewayConformance):
        plugin_name = "gateway_example"
        gateway_id = "example"

        @pytest.fixture
        def gateway_sandbox(self):
            with ExampleSandbox() as sandbox:
                yield sandbox

The base classes carry no ``Test`` prefix, so pytest collects only the subclass.
The tests use the ``kassa.testing`` fixtures (app, db, provider, admin), enable
``plugin_name`` for the provider and call hooks through
``kassa.plugins.host().hooks(provider.id)``, exactly as the core does.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

import pytest

from ..contracts import (DunningCase, DunningPhase, GatewayEvent, GatewayInfo, GatewayResult, InvoiceLineView,
                         InvoiceView, Party, RenderedDocument, RefundRequest, ChargeRequest, TaxComponent, TaxDraft,
                         TaxDraftLine, TaxEngineInfo, TaxQuote, UnknownCountryError, VerifyResult,
                         WebhookSignatureError)


@runtime_checkable
class GatewaySandbox(Protocol):
    """A stateful stand-in for the gateway's API that the real plugin code talks to."""

    #: The plugin's settings as the core passes them (secrets in clear), pointing at the sandbox.
    settings: dict
    #: A currency this gateway takes (e.g. "USD").
    currency: str

    def approved_method(self) -> str:
        """A saved payment-method reference a charge succeeds with ("" for hosted gateways)."""

    def declined_method(self) -> str:
        """A saved payment-method reference the gateway declines ("" for hosted gateways)."""

    def approve(self, result: GatewayResult) -> dict:
        """Hosted gateways: the params the buyer's browser brings back to ``kassa_gateway_complete``
        after paying for ``result`` (card gateways may raise NotImplementedError)."""

    def decline(self, result: GatewayResult) -> dict:
        """Hosted gateways: the params brought back after the payment for ``result`` failed."""

    def charges_taken(self, idempotency_key: str) -> int:
        """How many times money was really taken at the sandbox for that key."""

    def signed_webhook(self) -> tuple[dict, bytes]:
        """Headers and body of one event the gateway signed (the kit tampers with it)."""


@runtime_checkable
class TaxSandbox(Protocol):
    """What a tax engine is quoted for: a seller and the buyers the engine covers.
    Optional: ``tax_codes``, classifications (SAC, HSN, ...) the kit puts on lines."""

    seller: Party
    #: Buyers the engine covers (domestic, inter-state, export, business/consumer, ...).
    buyers: list[Party]
    #: The billing currency the quotes are in.
    currency: str
    #: The plugin's settings as the provider saved them.
    settings: dict


# ---------------------------------------------------------------- shared helpers

#: Settings fields whose name looks like a secret must be SecretField (encrypted at rest).
SECRET_NAME = re.compile(r"secret|password|passphrase|private|token|api_?key|signing", re.I)
#: Contract fields that carry money or a rate: Decimal (or None), never int or float.
MONEY_FIELDS = frozenset({"amount", "rate", "overdue_amount", "subtotal", "tax_total", "total", "amount_paid",
                          "unit_price", "tax", "quantity", "units"})
SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def float_paths(value, path: str = "result") -> list[str]:
    """Where a float hides in ``value`` (dataclasses, mappings, sequences, walked
    recursively), and money fields that are not Decimal: ``["result.amount: float 1.5"]``."""
    found: list[str] = []
    if isinstance(value, float):
        found.append(f"{path}: float {value!r}")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name in MONEY_FIELDS and item is not None and not isinstance(item, Decimal):
                found.append(f"{path}.{f.name}: {type(item).__name__} {item!r}, not Decimal")
            else:
                found += float_paths(item, f"{path}.{f.name}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found += float_paths(key, f"{path}[key {key!r}]") + float_paths(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            found += float_paths(item, f"{path}[{i}]")
    return found


def assert_no_float(value, what: str) -> None:
    bad = float_paths(value, what)
    assert not bad, "Money must be Decimal, never float: " + "; ".join(bad)


def _enable(admin, provider, plugin_name: str, settings: dict | None = None):
    """Enable ``plugin_name`` for the provider (and save its settings) as an admin
    does; return the hook relay the core calls for that provider."""
    from ..plugins import host
    from ..services import plugin_settings

    record = host().records.get(plugin_name)
    assert record is not None, f"No plugin registered as {plugin_name!r} (entry-point group 'kassa')."
    assert not record.broken, f"Plugin {plugin_name!r} is broken: {record.error}"
    plugin_settings.set_enabled(admin, plugin_name, True)
    if settings:
        plugin_settings.save_settings(admin, plugin_name, settings)
    host().forget_cache()
    return host().hooks(provider.id)


def _own(hook_name: str, plugin_name: str) -> list:
    from ..plugins import host

    return [items for _, items in host().call_each(hook_name, {plugin_name})]


def _mutate(text: str, at: int) -> str:
    """``text`` with the first letter or digit from ``at`` on replaced by another of its kind."""
    for i in list(range(at, len(text))) + list(range(0, at)):
        ch = text[i]
        if ch.isdigit():
            return text[:i] + str((int(ch) + 1) % 10) + text[i + 1:]
        if ch.isascii() and ch.isalpha():
            nxt = chr((ord(ch.lower()) - 97 + 1) % 26 + 97)
            return text[:i] + (nxt.upper() if ch.isupper() else nxt) + text[i + 1:]
    raise AssertionError(f"nothing to tamper with in {text!r}")


def _amount(minor: int, currency: str) -> Decimal:
    from ..money import minor_units

    return Decimal(minor).scaleb(-minor_units(currency))


# ---------------------------------------------------------------- gateways


class GatewayConformance:
    """The gateway contract. Subclass with ``plugin_name``, ``gateway_id`` and a
    ``gateway_sandbox`` fixture yielding a :class:`GatewaySandbox`."""

    plugin_name: str = ""
    gateway_id: str = ""
    #: where hosted gateways send the buyer back (the plugin must carry it to the gateway)
    return_url = "https://billing.example/pay/return"

    # ------------------------------------------------------------ fixtures
    @pytest.fixture
    def gateway_sandbox(self):
        raise NotImplementedError(f"{type(self).__name__} must define a gateway_sandbox fixture.")

    @pytest.fixture
    def gateway_hooks(self, gateway_sandbox, app, db, provider, admin):
        """The hooks as the core calls them, with the plugin enabled for the provider."""
        return _enable(admin, provider, self.plugin_name)

    @pytest.fixture
    def gateway_info(self, gateway_hooks) -> GatewayInfo:
        infos = [i for items in _own("kassa_gateways", self.plugin_name) for i in items or ()]
        matching = [i for i in infos if getattr(i, "id", None) == self.gateway_id]
        assert matching, f"{self.plugin_name} lists gateways {[getattr(i, 'id', i) for i in infos]}, " \
                         f"not {self.gateway_id!r}."
        return matching[0]

    @pytest.fixture
    def buyer(self, gateway_info) -> Party:
        country = gateway_info.countries[0] if gateway_info.countries else "US"
        return Party(org_id=4242, kind="customer", name="Conformance Buyer Ltd", country=country,
                     email="billing@conformance.example", city="Springfield", postal_code="10001",
                     address_line1="1 Test Road")

    # ------------------------------------------------------------ helpers
    def charge_request(self, sandbox, buyer, key: str, minor: int = 12550, method: str | None = None):
        return ChargeRequest(idempotency_key=key, amount=_amount(minor, sandbox.currency), currency=sandbox.currency,
                             org=buyer, description=f"Conformance charge {key}", invoice_number="CONF-1",
                             payment_method=sandbox.approved_method() if method is None else method,
                             return_url=self.return_url)

    def charge(self, hooks, sandbox, request) -> GatewayResult:
        result = hooks.kassa_gateway_charge(gateway=self.gateway_id, settings=dict(sandbox.settings), charge=request)
        assert isinstance(result, GatewayResult), f"kassa_gateway_charge returned {result!r}, not a GatewayResult."
        return result

    def complete(self, hooks, sandbox, result: GatewayResult, params: dict) -> GatewayResult:
        done = hooks.kassa_gateway_complete(gateway=self.gateway_id, settings=dict(sandbox.settings),
                                            reference=result.reference, params=params)
        assert isinstance(done, GatewayResult), f"kassa_gateway_complete returned {done!r}, not a GatewayResult."
        return done

    def pay(self, hooks, sandbox, info, request) -> tuple[GatewayResult, GatewayResult]:
        """Charge, and for a hosted gateway let the buyer approve and come back: (first, final)."""
        first = self.charge(hooks, sandbox, request)
        if not info.hosted_redirect or first.status == "succeeded":
            return first, first
        assert first.status in ("requires_action", "pending"), \
            f"A hosted charge must send the buyer to the gateway, not answer {first.status!r} " \
            f"({first.decline_reason})."
        assert first.reference, "A hosted charge must carry the gateway's reference."
        return first, self.complete(hooks, sandbox, first, sandbox.approve(first))

    # ------------------------------------------------------------ tests
    def test_plugin_is_registered_and_lists_the_gateway(self, gateway_info, gateway_sandbox):
        assert isinstance(gateway_info, GatewayInfo)
        assert gateway_info.name.strip(), "The gateway needs a display name."
        if gateway_info.currencies:
            assert gateway_sandbox.currency in gateway_info.currencies, \
                f"The sandbox currency {gateway_sandbox.currency} is not one the gateway lists."

    def test_settings_form_keeps_secrets_in_secret_fields(self, gateway_hooks, gateway_sandbox):
        from ..forms_api import SecretField

        forms = [f for f in _own("kassa_settings_form", self.plugin_name) if f is not None]
        assert forms, f"{self.plugin_name} has no settings form (kassa_settings_form)."
        form = forms[0]()
        names = {field.name for field in form}
        exposed = [field.name for field in form if SECRET_NAME.search(field.name) and "public" not in field.name
                   and not isinstance(field, SecretField)]
        assert not exposed, f"Secret-looking settings stored in clear (make them SecretField): {exposed}"
        unknown = sorted(set(gateway_sandbox.settings) - names)
        assert not unknown, f"The plugin reads settings its form does not have, so no one can set them: {unknown}"

    def test_every_hook_leaves_other_gateways_alone(self, gateway_hooks, gateway_sandbox, buyer):
        from ..plugins import host

        other = f"not-{self.gateway_id}"
        settings = dict(gateway_sandbox.settings)
        request = self.charge_request(gateway_sandbox, buyer, "conf-other-1")
        arguments = {
            "kassa_gateway_save_method": {"request": None},
            "kassa_gateway_charge": {"charge": request},
            "kassa_gateway_refund": {"refund": RefundRequest(idempotency_key="conf-other-r", charge_reference="x",
                                                             amount=request.amount, currency=request.currency)},
            "kassa_gateway_complete": {"reference": "x", "params": {}},
            "kassa_gateway_lookup": {"idempotency_key": "conf-other-1", "reference": "x"},
            "kassa_gateway_verify": {},
            "kassa_gateway_webhook": {"headers": {}, "body": b"{}"},
        }
        answered = []
        for hook_name, extra in arguments.items():
            for impl in getattr(host().pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name == self.plugin_name:
                    result = impl.function(gateway=other, settings=settings, **extra)
                    if result is not None:
                        answered.append(f"{hook_name} -> {result!r}")
        assert not answered, f"Hooks must return None for another gateway's id ({other!r}): {answered}"

    def test_a_charge_succeeds_for_its_amount_and_currency(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        request = self.charge_request(gateway_sandbox, buyer, "conf-charge-1")
        first, final = self.pay(gateway_hooks, gateway_sandbox, gateway_info, request)
        if gateway_info.hosted_redirect and first is not final:
            assert first.redirect_url.startswith(("https://", "http://")), \
                f"A hosted charge must give the buyer a URL to pay at, not {first.redirect_url!r}."
        assert final.status == "succeeded", f"Expected a succeeded charge, got {final.status!r}: {final.decline_reason}"
        assert final.reference, "A succeeded charge must carry the gateway's reference."
        if final.amount is not None or not gateway_info.hosted_redirect:
            assert final.amount == request.amount, f"Charged {final.amount!r}, asked for {request.amount!r}."
        if final.currency or not gateway_info.hosted_redirect:
            assert final.currency.upper() == request.currency, f"Charged in {final.currency!r}, not {request.currency}."
        assert gateway_sandbox.charges_taken(request.idempotency_key) == 1

    def test_the_same_idempotency_key_twice_is_one_charge(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        request = self.charge_request(gateway_sandbox, buyer, "conf-idem-1")
        _, final = self.pay(gateway_hooks, gateway_sandbox, gateway_info, request)
        assert final.status == "succeeded", final.decline_reason
        again = self.charge(gateway_hooks, gateway_sandbox, request)
        assert again.reference == final.reference, \
            f"The same key answered with another payment ({again.reference!r} after {final.reference!r})."
        if again.status != "succeeded" and gateway_info.hosted_redirect:
            again = self.complete(gateway_hooks, gateway_sandbox, again, gateway_sandbox.approve(again))
        assert (again.status, again.reference) == (final.status, final.reference), \
            f"The repeated key must give the first result: {again!r} after {final!r}."
        known = {a for a in (again.amount, final.amount) if a is not None}
        assert known <= {request.amount}, f"The repeated key answered another amount: {again!r} after {final!r}."
        assert gateway_sandbox.charges_taken(request.idempotency_key) == 1, \
            "Money was taken more than once for one idempotency key."

    def test_two_keys_are_two_charges(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        one = self.pay(gateway_hooks, gateway_sandbox, gateway_info,
                       self.charge_request(gateway_sandbox, buyer, "conf-two-a"))[1]
        two = self.pay(gateway_hooks, gateway_sandbox, gateway_info,
                       self.charge_request(gateway_sandbox, buyer, "conf-two-b", minor=4990))[1]
        assert (one.status, two.status) == ("succeeded", "succeeded")
        assert one.reference != two.reference, "Two idempotency keys must be two payments."
        assert two.amount in (None, _amount(4990, gateway_sandbox.currency))
        assert gateway_sandbox.charges_taken("conf-two-a") == 1 and gateway_sandbox.charges_taken("conf-two-b") == 1

    def test_a_decline_says_why(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        key = "conf-decline-1"
        if gateway_info.hosted_redirect:
            started = self.charge(gateway_hooks, gateway_sandbox,
                                  self.charge_request(gateway_sandbox, buyer, key, method=""))
            result = self.complete(gateway_hooks, gateway_sandbox, started, gateway_sandbox.decline(started))
        else:
            result = self.charge(gateway_hooks, gateway_sandbox, self.charge_request(
                gateway_sandbox, buyer, key, method=gateway_sandbox.declined_method()))
        assert result.status == "declined", f"A declined payment must be 'declined', not {result.status!r}."
        assert result.decline_reason.strip(), "A decline must say why (decline_reason), for the buyer to act on."
        assert gateway_sandbox.charges_taken(key) == 0, "A declined payment took money."

    def test_a_signed_webhook_verifies_into_events(self, gateway_hooks, gateway_sandbox):
        headers, body = gateway_sandbox.signed_webhook()
        events = gateway_hooks.kassa_gateway_webhook(gateway=self.gateway_id, settings=dict(gateway_sandbox.settings),
                                                     headers=dict(headers), body=body)
        assert isinstance(events, list), f"kassa_gateway_webhook returned {events!r}, not a list."
        assert events, "The sandbox's signed event gave no GatewayEvent."
        for event in events:
            assert isinstance(event, GatewayEvent) and event.event_id, f"Not an identified GatewayEvent: {event!r}"
        assert_no_float(events, "events")

    @pytest.mark.parametrize("tamper", ["tampered body", "wrong signature", "no signature"])
    def test_a_webhook_that_does_not_verify_is_refused(self, gateway_hooks, gateway_sandbox, tamper):
        headers, body = gateway_sandbox.signed_webhook()
        headers = dict(headers)
        signature_headers = [name for name in headers if "sig" in name.lower()]
        assert signature_headers, f"The signed webhook has no signature header: {sorted(headers)}"
        if tamper == "tampered body":
            text = body.decode("utf-8")
            body = _mutate(text, len(text) // 2).encode("utf-8")
        elif tamper == "wrong signature":
            for name in signature_headers:
                headers[name] = _mutate(headers[name], len(headers[name]) // 2)
        else:
            headers = {k: v for k, v in headers.items() if k not in signature_headers}
        with pytest.raises(WebhookSignatureError):
            gateway_hooks.kassa_gateway_webhook(gateway=self.gateway_id, settings=dict(gateway_sandbox.settings),
                                                headers=headers, body=body)

    def test_no_float_in_anything_returned(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        returned = list(self.pay(gateway_hooks, gateway_sandbox, gateway_info,
                                 self.charge_request(gateway_sandbox, buyer, "conf-float-1", minor=1999)))
        returned.append(gateway_hooks.kassa_gateway_lookup(gateway=self.gateway_id,
                                                           settings=dict(gateway_sandbox.settings),
                                                           idempotency_key="conf-float-1",
                                                           reference=returned[-1].reference))
        returned.append(gateway_hooks.kassa_gateway_verify(gateway=self.gateway_id,
                                                           settings=dict(gateway_sandbox.settings)))
        headers, body = gateway_sandbox.signed_webhook()
        returned.append(gateway_hooks.kassa_gateway_webhook(gateway=self.gateway_id,
                                                            settings=dict(gateway_sandbox.settings),
                                                            headers=dict(headers), body=body))
        assert_no_float(returned, "returned")
        if not gateway_info.hosted_redirect:
            assert isinstance(returned[0].amount, Decimal), "A succeeded card charge must say its amount (Decimal)."

    def test_verify_accepts_the_sandbox_credentials(self, gateway_hooks, gateway_sandbox):
        result = gateway_hooks.kassa_gateway_verify(gateway=self.gateway_id, settings=dict(gateway_sandbox.settings))
        assert isinstance(result, VerifyResult), f"kassa_gateway_verify returned {result!r}."
        assert result.ok and result.message.strip(), f"Verify refused the sandbox credentials: {result.message}"

    def test_lookup_finds_the_charge(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        request = self.charge_request(gateway_sandbox, buyer, "conf-lookup-1")
        _, final = self.pay(gateway_hooks, gateway_sandbox, gateway_info, request)
        settings = dict(gateway_sandbox.settings)
        found = gateway_hooks.kassa_gateway_lookup(gateway=self.gateway_id, settings=settings,
                                                   idempotency_key=request.idempotency_key, reference=final.reference)
        assert isinstance(found, GatewayResult), f"Lookup of a charge it made returned {found!r}."
        assert (found.status, found.reference, found.amount) == ("succeeded", final.reference, request.amount)
        by_key = gateway_hooks.kassa_gateway_lookup(gateway=self.gateway_id, settings=settings,
                                                    idempotency_key=request.idempotency_key, reference="")
        assert by_key is None or by_key.reference == final.reference, \
            f"Lookup by key found another payment: {by_key!r}"
        unknown = gateway_hooks.kassa_gateway_lookup(gateway=self.gateway_id, settings=settings,
                                                     idempotency_key="conf-never-charged", reference="")
        assert unknown is None, f"Lookup of a key never charged must be None, not {unknown!r}."

    def test_a_refund_with_a_key_is_made_once(self, gateway_hooks, gateway_sandbox, gateway_info, buyer):
        from ..plugins import host

        if not any(i.plugin_name == self.plugin_name for i in host().pm.hook.kassa_gateway_refund.get_hookimpls()):
            pytest.skip(f"{self.plugin_name} does not refund.")
        request = self.charge_request(gateway_sandbox, buyer, "conf-refund-charge")
        _, final = self.pay(gateway_hooks, gateway_sandbox, gateway_info, request)
        part = _amount(1050, gateway_sandbox.currency)
        refund = RefundRequest(idempotency_key="conf-refund-1", charge_reference=final.reference, amount=part,
                               currency=request.currency, reason="requested_by_customer")
        settings = dict(gateway_sandbox.settings)
        first = gateway_hooks.kassa_gateway_refund(gateway=self.gateway_id, settings=settings, refund=refund)
        if first is None:
            pytest.skip(f"{self.gateway_id} does not refund.")
        assert isinstance(first, GatewayResult) and first.status in ("succeeded", "pending"), \
            f"The refund failed: {first!r}"
        assert first.amount in (None, part) and first.reference
        again = gateway_hooks.kassa_gateway_refund(gateway=self.gateway_id, settings=settings, refund=refund)
        assert again.reference == first.reference, "The same refund key refunded twice."
        assert_no_float([first, again], "refunds")


# ---------------------------------------------------------------- tax engines


class TaxEngineConformance:
    """The tax engine contract. Subclass with ``plugin_name``, ``tax_engine_id`` and
    a ``tax_sandbox`` fixture yielding a :class:`TaxSandbox`. A sandbox may also give
    ``tax_codes`` (classifications to put on lines; default: none)."""

    plugin_name: str = ""
    tax_engine_id: str = ""
    #: the quote of a line does not depend on the other lines (line-level rounding)
    line_order_independent: bool = True
    unknown_countries = ("XX", "ZZ", "", "India")

    @pytest.fixture
    def tax_sandbox(self):
        raise NotImplementedError(f"{type(self).__name__} must define a tax_sandbox fixture.")

    @pytest.fixture
    def tax_hooks(self, tax_sandbox, app, db, provider, admin):
        return _enable(admin, provider, self.plugin_name, dict(tax_sandbox.settings))

    @pytest.fixture
    def tax_ctx(self, tax_hooks, tax_sandbox, provider):
        from ..money import minor_units
        from ..services.context import provider_context

        return dataclasses.replace(provider_context(provider.id), currency=tax_sandbox.currency,
                                   precision=minor_units(tax_sandbox.currency))

    # ------------------------------------------------------------ helpers
    def draft(self, sandbox, ctx, amounts, codes=None, taxable=None) -> TaxDraft:
        tax_codes = list(getattr(sandbox, "tax_codes", None) or [""])
        lines = tuple(TaxDraftLine(key=f"line-{i}", description=f"Line {i} — ₹ ünïcode",
                                   amount=_amount(minor, sandbox.currency),
                                   taxable=True if taxable is None else taxable[i],
                                   tax_code=tax_codes[(codes[i] if codes else i) % len(tax_codes)])
                      for i, minor in enumerate(amounts))
        return TaxDraft(currency=sandbox.currency, precision=ctx.precision, issue_date=date(2026, 1, 10), lines=lines)

    def quote(self, hooks, sandbox, ctx, draft, buyer) -> TaxQuote:
        result = hooks.kassa_tax_quote(draft=draft, seller=sandbox.seller, buyer=buyer, ctx=ctx)
        assert isinstance(result, TaxQuote), f"kassa_tax_quote returned {result!r} for {buyer.country}."
        assert result.engine == self.tax_engine_id, \
            f"The quote for a {buyer.country} buyer came from {result.engine!r}, not {self.tax_engine_id!r}."
        return result

    def check_quote(self, draft: TaxDraft, quote: TaxQuote, buyer: Party) -> None:
        assert_no_float(quote, "quote")
        keys = [line.key for line in quote.lines]
        assert sorted(keys) == sorted(line.key for line in draft.lines), \
            f"The quote's lines {keys} are not the draft's, each once."
        by_key = {line.key: line for line in draft.lines}
        unit = Decimal(1).scaleb(-draft.precision)
        total = Decimal(0)
        for line in quote.lines:
            net = by_key[line.key].amount
            line_tax = Decimal(0)
            for c in line.components:
                assert isinstance(c, TaxComponent) and c.name.strip(), f"Not a named TaxComponent: {c!r}"
                assert isinstance(c.amount, Decimal) and isinstance(c.rate, Decimal)
                assert c.rate >= 0 and c.amount.is_finite()
                assert c.amount == c.amount.quantize(unit), \
                    f"{c.name} on {line.key} is {c.amount}, not rounded to {draft.precision} places ({draft.currency})."
                expected = net * c.rate / 100
                assert abs(c.amount - expected) <= unit, \
                    f"{c.name} at {c.rate}% of {net} is {c.amount}; {c.rate}% of it is {expected} " \
                    f"(buyer in {buyer.country})."
                line_tax += c.amount
            assert line.tax == line_tax, f"The components of {line.key} add up to {line_tax}, the line says {line.tax}."
            if not by_key[line.key].taxable:
                assert line_tax == 0, f"Non-taxable {line.key} was taxed {line_tax}."
            total += line.tax
        assert quote.total == total, f"The lines' taxes add up to {total}, the quote says {quote.total}."

    # ------------------------------------------------------------ tests
    def test_lists_the_tax_engine(self, tax_hooks):
        infos = [i for items in _own("kassa_tax_engines", self.plugin_name) for i in items or ()]
        assert [i.id for i in infos if isinstance(i, TaxEngineInfo)].count(self.tax_engine_id) == 1, \
            f"{self.plugin_name} lists tax engines {infos}, not {self.tax_engine_id!r} once."

    def test_quotes_are_decimal_and_add_up(self, tax_hooks, tax_sandbox, tax_ctx):
        assert tax_sandbox.buyers, "The tax sandbox names no buyers."
        draft = self.draft(tax_sandbox, tax_ctx, [123457, 99999, 50000, 50, 1], taxable=[True, True, False, True, True])
        taxed = Decimal(0)
        for buyer in tax_sandbox.buyers:
            quote = self.quote(tax_hooks, tax_sandbox, tax_ctx, draft, buyer)
            self.check_quote(draft, quote, buyer)
            taxed += quote.total
        assert taxed > 0, "No buyer was charged any tax: the sandbox shows nothing of the engine."

    def test_quotes_are_deterministic(self, tax_hooks, tax_sandbox, tax_ctx):
        from hypothesis import HealthCheck, given, settings, strategies as st

        line = st.tuples(st.integers(min_value=1, max_value=1000), st.integers(min_value=1, max_value=2_000_000),
                         st.integers(min_value=0, max_value=7), st.booleans())

        def same_in_any_order(draft, first, buyer, shuffle):
            if not self.line_order_independent:
                return
            for reordered in (list(reversed(draft.lines)), shuffle.sample(list(draft.lines), len(draft.lines))):
                moved = self.quote(tax_hooks, tax_sandbox, tax_ctx, dataclasses.replace(draft, lines=tuple(reordered)),
                                   buyer)
                assert {l.key: l for l in moved.lines} == {l.key: l for l in first.lines}, \
                    "A line's tax changed with the order of the lines."

        import random

        fixed = self.draft(tax_sandbox, tax_ctx, [12347, 99999, 50, 1, 333, 7777, 15, 4])
        for buyer in tax_sandbox.buyers:  # amounts whose taxes leave rounding remainders
            first = self.quote(tax_hooks, tax_sandbox, tax_ctx, fixed, buyer)
            assert first == self.quote(tax_hooks, tax_sandbox, tax_ctx, fixed, buyer), \
                "The same draft twice gave two quotes."
            same_in_any_order(fixed, first, buyer, random.Random(7))

        @settings(max_examples=30, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(lines=st.lists(line, min_size=1, max_size=6), buyer_index=st.integers(min_value=0, max_value=50),
               shuffle=st.randoms(use_true_random=False))
        def check(lines, buyer_index, shuffle):
            buyer = tax_sandbox.buyers[buyer_index % len(tax_sandbox.buyers)]
            amounts = [quantity * unit_minor for quantity, unit_minor, _, _ in lines]  # quantity x unit price
            draft = self.draft(tax_sandbox, tax_ctx, amounts, codes=[c for _, _, c, _ in lines],
                               taxable=[t for *_, t in lines])
            first = self.quote(tax_hooks, tax_sandbox, tax_ctx, draft, buyer)
            second = self.quote(tax_hooks, tax_sandbox, tax_ctx, draft, buyer)
            assert first == second, "The same draft twice gave two quotes."
            self.check_quote(draft, first, buyer)
            same_in_any_order(draft, first, buyer, shuffle)

        check()

    @pytest.mark.parametrize("index", range(4))
    def test_an_unknown_country_is_refused_clearly(self, tax_hooks, tax_sandbox, tax_ctx, index):
        country = self.unknown_countries[index]
        buyer = dataclasses.replace(tax_sandbox.buyers[0], country=country)
        draft = self.draft(tax_sandbox, tax_ctx, [10000])
        with pytest.raises(UnknownCountryError) as refused:
            tax_hooks.kassa_tax_quote(draft=draft, seller=tax_sandbox.seller, buyer=buyer, ctx=tax_ctx)
        assert refused.value.country == country
        assert (repr(country) if country else "country") in str(refused.value), \
            f"The refusal must name the country: {refused.value}"


# ---------------------------------------------------------------- renderers

SAMPLE_SELLER = Party(org_id=1, kind="provider", name="Cloud7 Infra Pvt Ltd", country="IN", state="Tamil Nadu",
                      city="Chennai", address_line1="12 Anna Salai", postal_code="600002",
                      email="billing@cloud7.example", tax_id="33AABCC1234D1ZI")
SAMPLE_BUYER = Party(org_id=2, kind="customer", name="<script>alert('x')</script> Zoë & Søn ₹ Ltd", country="DE",
                     city="München", address_line1="Straße 1", postal_code="80331", email="ap@zoe.example")


def sample_invoice(currency: str = "INR") -> InvoiceView:
    """An issued invoice with what breaks careless renderers: unicode, ₹, markup in names, a slash in the number."""
    lines = (
        InvoiceLineView(description="Compute — 2 vCPU ✓ (₹ pricing) <b>bold?</b>", quantity=Decimal("744"),
                        unit_price=Decimal("1.2500"), amount=Decimal("930.00"), tax=Decimal("167.40"),
                        tax_code="998315", period_start=date(2026, 1, 1), period_end=date(2026, 2, 1)),
        InvoiceLineView(description="日本語のサポート", quantity=Decimal("1"), unit_price=Decimal("70.00"),
                        amount=Decimal("70.00"), tax=Decimal("12.60")),
    )
    return InvoiceView(id=987654, number="INV/2026/0001", status="issued", currency=currency,
                       issue_date=date(2026, 2, 1), due_date=date(2026, 2, 15), seller=SAMPLE_SELLER,
                       buyer=SAMPLE_BUYER, lines=lines, subtotal=Decimal("1000.00"), tax_total=Decimal("180.00"),
                       total=Decimal("1180.00"), amount_paid=Decimal("100.00"),
                       tax_breakup=(TaxComponent(name="VAT", rate=Decimal("18"), amount=Decimal("180.00")),),
                       period_start=date(2026, 1, 1), period_end=date(2026, 2, 1),
                       notes="Thank you — धन्यवाद <i>really</i>", tax_engine="tax_rules")


class RendererConformance:
    """The invoice renderer contract. Subclass with ``plugin_name`` and ``renderer_id``."""

    plugin_name: str = ""
    renderer_id: str = ""

    @pytest.fixture
    def renderer_hooks(self, app, db, provider, admin):
        return _enable(admin, provider, self.plugin_name)

    def render(self, hooks, provider, renderer: str, invoice: InvoiceView):
        from ..services.context import provider_context
        from ..services.documents import merged_context

        return hooks.kassa_render_invoice(renderer=renderer, invoice=invoice,
                                          context=merged_context(provider.id, invoice),
                                          ctx=provider_context(provider.id))

    def test_lists_the_renderer(self, renderer_hooks):
        infos = [i for items in _own("kassa_renderers", self.plugin_name) for i in items or ()]
        matching = [i for i in infos if i.id == self.renderer_id]
        assert len(matching) == 1, f"{self.plugin_name} lists renderers {infos}, not {self.renderer_id!r} once."
        assert "/" in matching[0].media_type and matching[0].extension.isalnum()

    def test_renders_the_sample_invoice(self, renderer_hooks, provider):
        info = next(i for items in _own("kassa_renderers", self.plugin_name) for i in items or ()
                    if i.id == self.renderer_id)
        invoice = sample_invoice()
        document = self.render(renderer_hooks, provider, self.renderer_id, invoice)
        assert isinstance(document, RenderedDocument), f"Rendering returned {document!r}."
        assert isinstance(document.content, bytes) and document.content, "The document is empty."
        assert document.media_type.split(";")[0].strip() == info.media_type, \
            f"Rendered as {document.media_type!r}; the renderer declares {info.media_type!r}."
        assert SAFE_FILENAME.match(document.filename) and ".." not in document.filename, \
            f"Unsafe filename for a download: {document.filename!r}"
        assert document.filename.endswith("." + info.extension)

    def test_an_unknown_renderer_id_is_none(self, renderer_hooks, provider):
        from ..plugins import host

        for impl in host().pm.hook.kassa_render_invoice.get_hookimpls():
            if impl.plugin_name == self.plugin_name:
                result = impl.function(renderer=f"not-{self.renderer_id}", invoice=sample_invoice(), context={},
                                       ctx=None)
                assert result is None, f"Rendered another renderer's id: {result!r}"


# ---------------------------------------------------------------- dunning


class DunningConformance:
    """The dunning phases contract. Subclass with ``plugin_name``."""

    plugin_name: str = ""

    @pytest.fixture
    def dunning_hooks(self, app, db, provider, admin):
        return _enable(admin, provider, self.plugin_name)

    @pytest.fixture
    def phases(self, dunning_hooks) -> list[DunningPhase]:
        found = [p for items in _own("kassa_dunning_phases", self.plugin_name) for p in items or ()]
        assert found, f"{self.plugin_name} declares no dunning phases."
        assert all(isinstance(p, DunningPhase) for p in found), f"Not DunningPhase objects: {found}"
        return found

    def test_phase_keys_and_orders_are_unique_and_sensible(self, phases, provider):
        from ..plugins import host

        keys = [p.key for p in phases]
        assert len(set(keys)) == len(keys), f"Duplicate phase keys: {keys}"
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in keys), f"Keys must be identifiers: {keys}"
        everyone = [p.key for p in host().listing("kassa_dunning_phases", provider.id)]
        assert all(everyone.count(k) == 1 for k in keys), f"A key is also another plugin's: {everyone}"
        orders = [p.order for p in phases]
        assert all(isinstance(o, int) and o >= 0 for o in orders) and len(set(orders)) == len(orders), \
            f"Orders must be distinct non-negative integers: {orders}"
        for p in phases:
            assert p.name.strip(), f"Phase {p.key} has no name."
            assert isinstance(p.default_days, int) and 1 <= p.default_days <= 365, f"{p.key}: default_days {p.default_days}"

    def test_declared_effects_are_valid(self, phases, app):
        from jinja2 import TemplateNotFound

        ordered = sorted(phases, key=lambda p: p.order)
        for p in ordered:
            assert isinstance(p.email_every_days, int) and p.email_every_days >= 0
            assert not p.email_every_days or p.email_template, f"{p.key} repeats an e-mail it does not name."
            if p.email_template:
                for suffix in ("txt", "html"):
                    try:
                        app.jinja_env.get_template(f"email/{p.email_template}.{suffix}")
                    except TemplateNotFound:
                        pytest.fail(f"{p.key}: e-mail template email/{p.email_template}.{suffix} does not exist.")
        terminating = [p.key for p in ordered if p.terminate_on_exit]
        assert terminating in ([], [ordered[-1].key]), \
            f"Only the last phase may terminate on exit (phases after it would never run): {terminating}"
        suspended = [p.suspend for p in ordered]
        assert suspended == sorted(suspended), "A phase after a suspending one lifts the suspension."

    def test_entering_each_phase_does_not_raise(self, dunning_hooks, phases, provider):
        from ..services.context import provider_context

        ctx = provider_context(provider.id)
        for p in phases:
            case = DunningCase(org=SAMPLE_BUYER, phase=p.key, overdue_amount=Decimal("1180.00"), currency="INR",
                               oldest_due_date=date(2026, 1, 1), entered_on=date(2026, 1, 20),
                               invoice_numbers=("INV/2026/0001",))
            dunning_hooks.kassa_dunning_enter_phase(phase=p.key, case=case, ctx=ctx)
