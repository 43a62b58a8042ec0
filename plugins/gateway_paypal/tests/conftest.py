import os
import sys

import pytest

from kassa.contracts import Party

sys.path.insert(0, os.path.dirname(__file__))  # the sandbox module beside the tests

from paypal_sandbox import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, oauth_handler  # noqa: E402


@pytest.fixture
def hooks(plugin_hooks):
    """The gateway hooks as the core calls them for this provider, with PayPal enabled."""
    return plugin_hooks("gateway_paypal")


@pytest.fixture
def buyer():
    return Party(org_id=77, kind="customer", name="Globex LLC", country="US", email="ap@globex.example")


@pytest.fixture
def paypal_settings():
    """``paypal_settings(api_base, **more)``: the settings dict the core passes (secrets decrypted)."""

    def make(api_base="", **extra):
        values = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": WEBHOOK_ID,
                  "sandbox": True, "api_base": api_base, "timeout": 5}
        values.update(extra)
        return values

    return make


@pytest.fixture
def oauth():
    """PayPal's OAuth token endpoint handler; ``oauth.issued`` lists the tokens it gave.
    The plugin's token cache starts empty: a fake server of an earlier test may have had
    this test's port, and its token would be reused without a call to this handler."""
    from kassa_gateway_paypal import plugin

    with plugin._tokens_lock:
        plugin._tokens.clear()
    return oauth_handler()
