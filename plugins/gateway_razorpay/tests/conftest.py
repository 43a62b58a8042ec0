import pytest

from kassa.contracts import Party

KEY_ID = "rzp_test_KassaKey01"
KEY_SECRET = "kassaKeySecret0123456789"
WEBHOOK_SECRET = "kassa-webhook-secret"


@pytest.fixture
def hooks(app, db, provider, admin):
    """The gateway hooks as the core calls them for this provider, with Razorpay enabled."""
    from kassa.plugins import host
    from kassa.services import plugin_settings

    plugin_settings.set_enabled(admin, "gateway_razorpay", True)
    host().forget_cache()
    return host().hooks(provider.id)


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
