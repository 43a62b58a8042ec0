"""The conformance kit's own tests: it passes a well-behaved plugin (kassa.testing's
FakeGateway and a correct tax engine), and each deliberately broken plugin fails
the kit test for the rule it breaks. The kit runs in a pytester sub-session, as a
plugin author's suite would run it."""
from __future__ import annotations

import pytest

PLUGINS = r'''
import itertools
import json
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest

from kassa.contracts import (GatewayEvent, GatewayResult, TaxComponent, TaxEngineInfo, TaxLineQuote, TaxQuote,
                             Party, require_country)
from kassa.hookspecs import hookimpl
from kassa.money import round_money
from kassa.testing.conformance import GatewayConformance, TaxEngineConformance
from kassa.testing.fake_gateway import FakeGateway, FakeGatewaySandbox


def gateway_case(cls, plugin, gateway_id="fakepay"):
    """A kit test class for ``plugin`` (a FakeGateway, or a broken subclass)."""

    class Case(GatewayConformance):
        plugin_name = "fakegateway"

        @pytest.fixture
        def gateway_sandbox(self, register_plugin):
            gateway = plugin()
            register_plugin(gateway, "fakegateway")
            return FakeGatewaySandbox(gateway, gateway_id)

    Case.gateway_id = gateway_id
    Case.__name__ = Case.__qualname__ = cls
    return Case


class ChargesTwice(FakeGateway):
    """Ignores idempotency keys: every call takes money again."""

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        if gateway != self.CARD:
            return None
        self.results.pop(charge.idempotency_key, None)
        return super().kassa_gateway_charge(gateway=gateway, settings=settings, charge=charge)


class FloatAmount(FakeGateway):
    """Answers with a float amount, slipped past the dataclass's own check."""

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        result = super().kassa_gateway_charge(gateway=gateway, settings=settings, charge=charge)
        if result is not None and result.amount is not None:
            object.__setattr__(result, "amount", float(result.amount))
        return result


class MinorUnitAmount(FakeGateway):
    """Answers with the amount as an int of cents (no float, still not Decimal)."""

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        result = super().kassa_gateway_charge(gateway=gateway, settings=settings, charge=charge)
        if result is not None and result.amount is not None:
            object.__setattr__(result, "amount", int(result.amount * 100))
        return result


class UnsignedWebhooks(FakeGateway):
    """Takes any webhook at its word."""

    @hookimpl
    def kassa_gateway_webhook(self, gateway, settings, headers, body):
        if gateway not in (self.CARD, self.HOSTED):
            return None
        return [GatewayEvent(event_id=e["id"], type=e["type"], reference=e.get("reference", ""))
                for e in json.loads(body)["events"]]


class SilentDecline(FakeGateway):
    """Declines with a blank reason (the dataclass only refuses an empty one)."""

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        result = super().kassa_gateway_charge(gateway=gateway, settings=settings, charge=charge)
        if result is not None and result.status == "declined":
            return GatewayResult(status="declined", reference=result.reference, decline_reason=" ")
        return result


class MeddlesWithOthers(FakeGateway):
    """Verifies credentials for any gateway id."""

    @hookimpl
    def kassa_gateway_verify(self, gateway, settings):
        return super().kassa_gateway_verify(gateway=self.CARD, settings=settings)


TestFakePay = gateway_case("TestFakePay", FakeGateway)
TestFakeHosted = gateway_case("TestFakeHosted", FakeGateway, "fakehosted")
TestChargesTwice = gateway_case("TestChargesTwice", ChargesTwice)
TestFloatAmount = gateway_case("TestFloatAmount", FloatAmount)
TestMinorUnitAmount = gateway_case("TestMinorUnitAmount", MinorUnitAmount)
TestUnsignedWebhooks = gateway_case("TestUnsignedWebhooks", UnsignedWebhooks)
TestSilentDecline = gateway_case("TestSilentDecline", SilentDecline)
TestMeddlesWithOthers = gateway_case("TestMeddlesWithOthers", MeddlesWithOthers)


# ---------------------------------------------------------------- tax engines

class FlatVat:
    """A correct engine: 20 % VAT, line by line, for buyers anywhere."""

    ENGINE = "flatvat"

    @hookimpl
    def kassa_tax_engines(self):
        return [TaxEngineInfo(id=self.ENGINE, name="Flat VAT")]

    @hookimpl
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        require_country(buyer.country)
        return TaxQuote(engine=self.ENGINE, lines=tuple(
            TaxLineQuote(key=line.key, components=self.components(line, draft.precision) if line.taxable else ())
            for line in draft.lines))

    def components(self, line, precision):
        return (TaxComponent(name="VAT", rate=Decimal(20),
                             amount=round_money(line.amount * Decimal(20) / 100, precision)),)


class DoesNotAddUp(FlatVat):
    """Labels two halves at 10 % each but charges the full 20 % in both."""

    def components(self, line, precision):
        full = round_money(line.amount * Decimal(20) / 100, precision)
        return (TaxComponent(name="CGST", rate=Decimal(10), amount=full),
                TaxComponent(name="SGST", rate=Decimal(10), amount=full))


class Unrounded(FlatVat):
    def components(self, line, precision):
        return (TaxComponent(name="VAT", rate=Decimal(20), amount=line.amount * Decimal(20) / 100 + Decimal("0.001")),)


class Flaky(FlatVat):
    """Rounds half-up on one call and down on the next: each quote is fine, two differ."""

    calls = itertools.count()

    def components(self, line, precision):
        mode = ROUND_DOWN if next(self.calls) % 2 else ROUND_HALF_UP
        exact = line.amount * Decimal(20) / 100
        return (TaxComponent(name="VAT", rate=Decimal(20), amount=exact.quantize(Decimal(1).scaleb(-precision),
                                                                                 rounding=mode)),)


class RunningRemainder(FlatVat):
    """Carries rounding remainders from line to line: each line's tax depends on the lines before it."""

    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        require_country(buyer.country)
        carried, lines = Decimal(0), []
        for line in draft.lines:
            if not line.taxable:
                lines.append(TaxLineQuote(key=line.key))
                continue
            exact = line.amount * Decimal(20) / 100 + carried
            rounded = round_money(exact, draft.precision)
            carried = exact - rounded
            lines.append(TaxLineQuote(key=line.key, components=(TaxComponent(name="VAT", rate=Decimal(20),
                                                                             amount=rounded),)))
        return TaxQuote(engine=self.ENGINE, lines=tuple(lines))
    kassa_tax_quote = hookimpl(kassa_tax_quote)


class ExportsTheUnknown(FlatVat):
    """Treats any country it does not know as an export at 0 %."""

    @hookimpl
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        return TaxQuote(engine=self.ENGINE, lines=tuple(TaxLineQuote(key=line.key) for line in draft.lines))


class FloatDetails(FlatVat):
    @hookimpl
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        quote = super().kassa_tax_quote(draft=draft, seller=seller, buyer=buyer, ctx=ctx)
        return TaxQuote(engine=quote.engine, lines=quote.lines, details={"effective_rate": 0.2})


class Sandbox:
    currency = "EUR"
    settings = {}
    seller = Party(org_id=1, kind="provider", name="Seller GmbH", country="DE")
    buyers = [Party(org_id=2, kind="customer", name="Käufer AG", country="DE"),
              Party(org_id=3, kind="customer", name="Buyer Inc", country="US")]


def tax_case(cls, engine):
    class Case(TaxEngineConformance):
        plugin_name = "flatvat"
        tax_engine_id = "flatvat"

        @pytest.fixture
        def tax_sandbox(self, register_plugin):
            register_plugin(engine(), "flatvat")
            return Sandbox()

    Case.__name__ = Case.__qualname__ = cls
    return Case


TestFlatVat = tax_case("TestFlatVat", FlatVat)
TestDoesNotAddUp = tax_case("TestDoesNotAddUp", DoesNotAddUp)
TestUnrounded = tax_case("TestUnrounded", Unrounded)
TestFlaky = tax_case("TestFlaky", Flaky)
TestRunningRemainder = tax_case("TestRunningRemainder", RunningRemainder)
TestExportsTheUnknown = tax_case("TestExportsTheUnknown", ExportsTheUnknown)
TestFloatDetails = tax_case("TestFloatDetails", FloatDetails)
'''


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory):
    """Run the kit once over every plugin above; {class name: {test name: outcome}}."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("kit")
    (folder / "test_kit_cases.py").write_text(PLUGINS)
    report = folder / "report.txt"
    conftest = ("def pytest_runtest_logreport(report):\n"
                "    if report.when == 'call' or report.outcome != 'passed':\n"
                f"        open({str(report)!r}, 'a').write(f'{{report.nodeid}}\\t{{report.outcome}}\\n')\n")
    (folder / "conftest.py").write_text(conftest)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           str(folder)], cwd=folder, capture_output=True, text=True, timeout=600)
    table: dict[str, dict[str, str]] = {}
    for line in report.read_text().splitlines():
        nodeid, outcome = line.split("\t")
        _, cls, test = nodeid.split("::")
        name = test.split("[")[0] + ("[" + test.split("[")[1] if "[" in test else "")
        table.setdefault(cls, {})[name] = outcome if table.get(cls, {}).get(name) in (None, "passed") else \
            table[cls][name]
    assert table, done.stdout[-3000:] + done.stderr[-3000:]
    return table, done.stdout


def _failed(table, cls):
    return sorted(name for name, outcome in table[cls].items() if outcome == "failed")


@pytest.mark.parametrize("cls", ["TestFakePay", "TestFakeHosted", "TestFlatVat"])
def test_a_plugin_that_keeps_the_contract_passes_every_kit_test(kit_run, cls):
    table, output = kit_run
    assert table[cls] and _failed(table, cls) == [], output[-4000:]
    skipped = [n for n, o in table[cls].items() if o == "skipped"]
    assert skipped == ([] if cls != "TestFakeHosted" else ["test_a_refund_with_a_key_is_made_once"])


@pytest.mark.parametrize("cls, expected", [
    ("TestChargesTwice", ["test_the_same_idempotency_key_twice_is_one_charge"]),
    # 49.9 (a float) is not 49.90: the second amount differs too
    ("TestFloatAmount", ["test_no_float_in_anything_returned", "test_two_keys_are_two_charges"]),
    ("TestMinorUnitAmount", ["test_a_charge_succeeds_for_its_amount_and_currency", "test_lookup_finds_the_charge",
                             "test_no_float_in_anything_returned", "test_two_keys_are_two_charges",
                             "test_the_same_idempotency_key_twice_is_one_charge"]),
    ("TestUnsignedWebhooks", ["test_a_webhook_that_does_not_verify_is_refused[no signature]",
                              "test_a_webhook_that_does_not_verify_is_refused[tampered body]",
                              "test_a_webhook_that_does_not_verify_is_refused[wrong signature]"]),
    ("TestSilentDecline", ["test_a_decline_says_why"]),
    ("TestMeddlesWithOthers", ["test_every_hook_leaves_other_gateways_alone"]),
    ("TestDoesNotAddUp", ["test_quotes_are_decimal_and_add_up", "test_quotes_are_deterministic"]),
    ("TestUnrounded", ["test_quotes_are_decimal_and_add_up", "test_quotes_are_deterministic"]),
    ("TestFlaky", ["test_quotes_are_deterministic"]),
    ("TestRunningRemainder", ["test_quotes_are_deterministic"]),
    ("TestExportsTheUnknown", ["test_an_unknown_country_is_refused_clearly[0]",
                               "test_an_unknown_country_is_refused_clearly[1]",
                               "test_an_unknown_country_is_refused_clearly[2]",
                               "test_an_unknown_country_is_refused_clearly[3]",
                               "test_quotes_are_decimal_and_add_up"]),
    ("TestFloatDetails", ["test_quotes_are_decimal_and_add_up", "test_quotes_are_deterministic"]),
])
def test_a_broken_plugin_fails_exactly_the_kit_test_for_the_rule_it_breaks(kit_run, cls, expected):
    table, output = kit_run
    assert _failed(table, cls) == sorted(expected), output[-4000:]
