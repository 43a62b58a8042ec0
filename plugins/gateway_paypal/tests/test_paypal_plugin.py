from kassa.plugins import host
from kassa.services import plugin_settings


def test_registers_and_lists_the_paypal_gateway_for_usd(app, db, provider, admin):
    plugin_settings.set_enabled(admin, "gateway_paypal", True)
    host().forget_cache()
    paypal = next(g for g in host().listing("kassa_gateways", provider.id) if g.id == "paypal")
    assert paypal.currencies == ("USD",) and paypal.hosted_redirect


def test_paypal_settings_keep_the_client_secret_encrypted(app, db, provider, admin):
    plugin_settings.save_settings(admin, "gateway_paypal", {"client_id": "AXY", "client_secret": "s3cr3t-value-xyz",
                                                            "sandbox": "y"})
    assert "client_secret" not in plugin_settings.settings_for(provider.id, "gateway_paypal")
    assert plugin_settings.masked_secrets(provider.id, "gateway_paypal")["client_secret"].endswith("-xyz")
