"""The Kassa conformance kit against the India GST engine: intra-state (CGST + SGST),
inter-state (IGST), a consumer by address and an export under LUT."""
from dataclasses import dataclass, field

import pytest

from gst_helpers import KA_GSTIN, SELLER, SETTINGS, TN_GSTIN, party
from kassa.contracts import Party
from kassa.testing.conformance import TaxEngineConformance


@dataclass
class GstSandbox:
    seller: Party = SELLER
    buyers: list = field(default_factory=lambda: [
        party("Chennai B2B", state="Tamil Nadu", tax_id=TN_GSTIN),
        party("Bengaluru B2B", tax_id=KA_GSTIN),
        party("Mysuru consumer", state="Karnataka"),
        party("Export Inc", country="US", state="CA"),
    ])
    currency: str = "INR"
    settings: dict = field(default_factory=lambda: dict(SETTINGS))
    tax_codes: tuple = ("998315", "998314", "998599", "")  # 18 %, 12 %, nil-rated, the default rate


class TestGstConformance(TaxEngineConformance):
    plugin_name = "tax_india_gst"
    tax_engine_id = "india_gst"

    @pytest.fixture
    def tax_sandbox(self):
        return GstSandbox()
