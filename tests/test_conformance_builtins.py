"""The conformance kit against the built-in plugins: the PDF and CSV renderers and
the tax-rules engine (with rules for the buyers' countries)."""
from dataclasses import dataclass

import pytest

from kassa.contracts import Party
from kassa.testing.conformance import RendererConformance, TaxEngineConformance


class TestPdfRendererConformance(RendererConformance):
    plugin_name = "builtin.pdf"
    renderer_id = "pdf"


class TestCsvRendererConformance(RendererConformance):
    plugin_name = "builtin.csv"
    renderer_id = "csv"


@dataclass
class RulesSandbox:
    seller: Party
    buyers: list
    currency: str = "EUR"
    settings: dict = None


class TestTaxRulesConformance(TaxEngineConformance):
    plugin_name = "builtin.tax_rules"
    tax_engine_id = "tax_rules"

    @pytest.fixture
    def tax_sandbox(self, db, admin):
        from kassa.services import tax_rules

        for name, country, rate in (("VAT", "DE", "19"), ("GST", "AU", "10"), ("State tax", "US", "4.4375"),
                                    ("Local tax", "US", "2.25")):
            tax_rules.save_rule(admin, {"name": name, "country": country, "rate": rate})
        seller = Party(org_id=admin.org_id, kind="provider", name="Cloud7 Test", country="IN")
        buyers = [Party(org_id=10 + i, kind="customer", name=f"Buyer {c}", country=c)
                  for i, c in enumerate(("DE", "AU", "US", "JP"))]  # JP: no rule, no tax
        return RulesSandbox(seller=seller, buyers=buyers, settings={})
