import os
import sys

import pytest

from kassa.contracts import Party

sys.path.insert(0, os.path.dirname(__file__))  # the sandbox module beside the tests

from razorpay_sandbox import KEY_ID, KEY_SECRET, WEBHOOK_SECRET  # noqa: E402


@pytest.fixture
def hooks(plugin_hooks):
    """The gateway hooks as the core calls them for this provider, with Razorpay enabled."""
    return plugin_hooks("gateway_razorpay")


@pytest.fixture
def buyer():
    return Party(org_id=88, kind="customer", name="Chennai Cloud Works", country="IN", state="Tamil Nadu",
                 email="accounts@ccw.example")


@pytest.fixture
def razorpay_settings():
    """``razorpay_settings(api_base, **more)``: the settings dict the core passes (secrets decrypted)."""

    def make(api_base="", **extra):
        values = {"key_id": KEY_ID, "key_secret": KEY_SECRET, "webhook_secret": WEBHOOK_SECRET,
                  "api_base": api_base, "timeout": 5}
        values.update(extra)
        return values

    return make
