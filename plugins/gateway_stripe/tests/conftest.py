import pytest

from kassa.contracts import Party

SECRET = "sk_test_51KassaContractTests"
WEBHOOK_SECRET = "whsec_kassatestsecret"


@pytest.fixture
def hooks(app, db, provider, admin):
    """The gateway hooks as the core calls them for this provider, with Stripe enabled."""
    from kassa.plugins import host
    from kassa.services import plugin_settings

    plugin_settings.set_enabled(admin, "gateway_stripe", True)
    host().forget_cache()
    return host().hooks(provider.id)


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
