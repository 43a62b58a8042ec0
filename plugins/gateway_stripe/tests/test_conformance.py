"""The Kassa conformance kit against the real Stripe plugin and a stateful Stripe sandbox."""
import pytest

from kassa.testing.conformance import GatewayConformance
from stripe_sandbox import StripeSandbox


class TestStripeConformance(GatewayConformance):
    plugin_name = "gateway_stripe"
    gateway_id = "stripe"

    @pytest.fixture
    def gateway_sandbox(self):
        with StripeSandbox() as sandbox:
            yield sandbox
