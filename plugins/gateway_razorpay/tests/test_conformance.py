"""The Kassa conformance kit against the real Razorpay plugin and a stateful Razorpay sandbox."""
import pytest

from kassa.testing.conformance import GatewayConformance
from razorpay_sandbox import RazorpaySandbox


class TestRazorpayConformance(GatewayConformance):
    plugin_name = "gateway_razorpay"
    gateway_id = "razorpay"

    @pytest.fixture
    def gateway_sandbox(self):
        with RazorpaySandbox() as sandbox:
            yield sandbox
