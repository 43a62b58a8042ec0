import pytest

from kassa.contracts import Party

CLIENT_ID = "AXkassaClientId"
CLIENT_SECRET = "EKkassaClientSecret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"


@pytest.fixture
def hooks(app, db, provider, admin):
    """The gateway hooks as the core calls them for this provider, with PayPal enabled."""
    from kassa.plugins import host
    from kassa.services import plugin_settings

    plugin_settings.set_enabled(admin, "gateway_paypal", True)
    host().forget_cache()
    return host().hooks(provider.id)


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
    """A handler for PayPal's OAuth token endpoint (not part of the Orders document):
    client-credentials with basic auth, as PayPal documents it; counts the tokens issued."""
    import base64

    from kassa.testing.peers import PeerRequest

    issued = []

    def token(request: PeerRequest):
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.header("authorization") != expected or request.form() != {"grant_type": "client_credentials"}:
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        issued.append(f"A21AAkassa{len(issued)}")
        return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": issued[-1],
                     "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
                     "nonce": "2026-01-05T09:00:00Znonce"}

    token.issued = issued
    return token
