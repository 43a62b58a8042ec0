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


def test_paypal_settings_validate_the_api_base_url_and_timeout(app, db, provider, admin):
    import pytest

    from kassa.services.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        plugin_settings.save_settings(admin, "gateway_paypal", {"client_id": "AXY", "api_base": "paypal",
                                                                "timeout": "0"})
    assert set(refused.value.field_errors) == {"api_base", "timeout"}
    saved = plugin_settings.save_settings(admin, "gateway_paypal", {"client_id": "AXY", "webhook_id": "8PT5",
                                                                    "api_base": "http://127.0.0.1:12112"})
    assert saved["api_base"] == "http://127.0.0.1:12112" and saved["webhook_id"] == "8PT5"
    assert saved["timeout"] == 15  # not sent: the form's default
    assert plugin_settings.settings_for(provider.id, "gateway_paypal")["sandbox"] is False  # unticked box
