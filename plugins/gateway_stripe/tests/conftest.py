import os
import sys

import pytest

from kassa.contracts import Party

sys.path.insert(0, os.path.dirname(__file__))  # the sandbox module beside the tests

from stripe_sandbox import SECRET, WEBHOOK_SECRET  # noqa: E402


@pytest.fixture
def hooks(plugin_hooks):
    """The gateway hooks as the core calls them for this provider, with Stripe enabled."""
    return plugin_hooks("gateway_stripe")


@pytest.fixture
def buyer():
    return Party(org_id=42, kind="customer", name="Acme Hosting", country="US", email="billing@acme.example",
                 city="Austin", state="TX", postal_code="73301", address_line1="1 Main St")


@pytest.fixture
def stripe_settings():
    """``stripe_settings(api_base, **more)``: the settings dict the core passes (secrets decrypted)."""

    def make(api_base="", **extra):
        values = {"secret_key": SECRET, "public_key": "pk_test_51KassaContractTests",
                  "webhook_secret": WEBHOOK_SECRET, "api_base": api_base, "timeout": 5}
        values.update(extra)
        return values

    return make
