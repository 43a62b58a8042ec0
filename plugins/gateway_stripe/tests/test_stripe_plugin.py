from kassa.plugins import host
from kassa.services import plugin_settings


def test_registers_and_lists_the_stripe_gateway(app, db, provider, admin):
    assert "gateway_stripe" in host().records and not host().records["gateway_stripe"].broken
    plugin_settings.set_enabled(admin, "gateway_stripe", True)
    host().forget_cache()
    stripe = next(g for g in host().listing("kassa_gateways", provider.id) if g.id == "stripe")
    assert {"visa", "mastercard", "amex", "discover"} <= set(stripe.card_brands)


def test_settings_form_has_the_seed_fields_and_encrypts_the_secret(app, db, provider, admin):
    plugin_settings.save_settings(admin, "gateway_stripe", {"public_key": "pk_test_123", "secret_key":
                                                            "sk_test_51abcdefghijklmnop", "brand_visa": "y",
                                                            "security_badge": "y"})
    stored = plugin_settings.settings_for(provider.id, "gateway_stripe")
    assert stored["public_key"] == "pk_test_123" and stored["brand_visa"] is True and stored["brand_amex"] is False
    assert "secret_key" not in stored
    assert plugin_settings.settings_for(provider.id, "gateway_stripe", secrets=True)["secret_key"].startswith("sk_test")


def test_settings_form_validates_the_api_base_url_and_timeout(app, db, provider, admin):
    import pytest

    from kassa.services.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        plugin_settings.save_settings(admin, "gateway_stripe", {"secret_key": "sk_test_51abc", "api_base": "stripe",
                                                                "timeout": "500", "webhook_secret": "secret"})
    assert set(refused.value.field_errors) == {"api_base", "timeout", "webhook_secret"}
    saved = plugin_settings.save_settings(admin, "gateway_stripe", {"api_base": "http://127.0.0.1:12111",
                                                                    "timeout": "3"})
    assert saved["api_base"] == "http://127.0.0.1:12111" and saved["timeout"] == 3
    assert saved["security_badge"] is False  # a form saved without the box ticked
    defaults = plugin_settings.settings_for(provider.id, "gateway_paypal")  # never saved: the form's defaults
    assert defaults["timeout"] == 15 and not defaults["api_base"] and defaults["sandbox"] is True
