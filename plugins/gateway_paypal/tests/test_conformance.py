"""The Kassa conformance kit against the real PayPal plugin and a stateful PayPal sandbox."""
import pytest

from kassa.testing.conformance import GatewayConformance
from paypal_sandbox import PayPalSandbox


class TestPayPalConformance(GatewayConformance):
    plugin_name = "gateway_paypal"
    gateway_id = "paypal"

    @pytest.fixture
    def gateway_sandbox(self):
        with PayPalSandbox() as sandbox:
            yield sandbox
