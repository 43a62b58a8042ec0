"""The plugin host: loading, broken plugins, conflicts, per-provider enabling, settings."""
import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from wtforms import Form, IntegerField, StringField
from wtforms.validators import NumberRange

from kassa import create_app
from kassa.contracts import GatewayInfo
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from kassa.models import PluginState
from kassa.plugins import PluginConflictError, host
from kassa.services import plugin_settings
from kassa.services.errors import Conflict


class FakeEntryPoint:
    def __init__(self, name, plugin=None, error=None, dist="kassa-fake"):
        self.name, self.value = name, f"{name}.plugin"
        self._plugin, self._error = plugin, error
        self.dist = SimpleNamespace(name=dist, version="9.9")

    def load(self):
        if self._error:
            raise self._error
        return self._plugin


def _app_with_entrypoints(monkeypatch, kassa_config, *eps):
    monkeypatch.setattr("kassa.plugins.entry_points", lambda group: list(eps))
    return create_app(dict(kassa_config))


class StripeClone:
    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id="stripe", name="Another Stripe")]


class Misspelt:
    @hookimpl
    def kassa_gateway_chrage(self, gateway, settings, charge):
        return None


def test_installed_plugins_are_listed(app, db):
    names = set(host().records)
    assert {"builtin.offline", "builtin.maintenance", "gateway_stripe", "gateway_paypal", "tax_india_gst",
            "dunning"} <= names
    stripe = host().records["gateway_stripe"]
    assert stripe.distribution == "kassa-gateway-stripe" and stripe.version == "0.1.0"
    assert "kassa_gateways" in stripe.hooks


def test_plugin_that_fails_to_import_is_shown_broken(monkeypatch, kassa_config, db, provider, admin, console):
    app = _app_with_entrypoints(monkeypatch, kassa_config,
                                FakeEntryPoint("exploding", error=ImportError("No module named 'nope'")))
    record = app.extensions["kassa_plugins"].records["exploding"]
    assert record.broken and "No module named 'nope'" in record.error
    assert "builtin.offline" in app.extensions["kassa_plugins"].records  # nothing else affected
    client = app.test_client()
    from kassa.testing.helpers import Console
    c = Console(client)
    assert c.login(admin.email, "correct-horse-battery").status_code == 302
    page = c.get("/plugins").get_data(as_text=True)
    assert "exploding" in page and "Broken" in page and "No module named" in page
    with app.app_context():
        with pytest.raises(Conflict, match="broken"):
            from kassa.models import User
            from kassa.extensions import db as _db
            plugin_settings.set_enabled(_db.session.get(User, admin.id), "exploding", True)


def test_duplicate_gateway_id_refuses_startup_naming_both(monkeypatch, kassa_config):
    with pytest.raises(PluginConflictError) as err:
        _app_with_entrypoints(monkeypatch, kassa_config,
                              FakeEntryPoint("gateway_stripe", plugin=__import__(
                                  "kassa_gateway_stripe.plugin", fromlist=["x"]), dist="kassa-gateway-stripe"),
                              FakeEntryPoint("stripe_clone", plugin=StripeClone()))
    assert "'stripe'" in str(err.value)
    assert "gateway_stripe" in str(err.value) and "stripe_clone" in str(err.value)


def test_misspelt_hook_marks_plugin_broken(monkeypatch, kassa_config):
    app = _app_with_entrypoints(monkeypatch, kassa_config, FakeEntryPoint("misspelt", plugin=Misspelt()))
    record = app.extensions["kassa_plugins"].records["misspelt"]
    assert record.broken and "kassa_gateway_chrage" in record.error
    app.extensions["kassa_plugins"].pm.check_pending()  # nothing left without a spec


class Toggle:
    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id="toggle-pay", name="Toggle Pay")]


def test_enable_disable_takes_effect_without_restart(app, db, provider, admin, register_plugin, console):
    register_plugin(Toggle(), "toggle")
    ids = lambda: {g.id for g in host().listing("kassa_gateways", provider.id)}  # noqa: E731
    assert "toggle-pay" not in ids()  # third-party plugins start disabled
    c = console(admin)
    assert c.post("/plugins/toggle/toggle", {"enabled": "1"}).status_code == 302
    host().forget_cache()
    assert "toggle-pay" in ids()
    assert [g.id for gs in host().hooks(provider.id).kassa_gateways() for g in gs].count("toggle-pay") == 1
    c.post("/plugins/toggle/toggle", {"enabled": "0"})
    host().forget_cache()
    assert "toggle-pay" not in ids()
    assert not any(g.id == "toggle-pay" for gs in host().hooks(provider.id).kassa_gateways() for g in gs)


def test_enabling_is_per_provider(app, db, provider, admin, make_org, register_plugin):
    other = make_org("provider", name="Other Provider")
    register_plugin(Toggle(), "toggle")
    plugin_settings.set_enabled(admin, "toggle", True)
    assert plugin_settings.is_enabled(provider.id, "toggle")
    host().forget_cache()
    assert not plugin_settings.is_enabled(other.id, "toggle")


def test_required_builtin_cannot_be_disabled(app, db, admin):
    with pytest.raises(Conflict, match="cannot be disabled"):
        plugin_settings.set_enabled(admin, "builtin.offline", False)


class WithSettings:
    class SettingsForm(Form):
        api_key = SecretField("API key")
        region = StringField("Region", default="ap-south-1")
        retries = IntegerField("Retries", default=3, validators=[NumberRange(0, 10)])

    @hookimpl
    def kassa_settings_form(self):
        return self.SettingsForm


def test_settings_defaults_secret_encrypted_and_masked(app, db, provider, admin, register_plugin, api):
    register_plugin(WithSettings(), "withsettings")
    assert plugin_settings.settings_for(provider.id, "withsettings") == {"region": "ap-south-1", "retries": 3}
    plugin_settings.save_settings(admin, "withsettings", {"api_key": "sk_live_abcdefghijkl1234", "region": "eu",
                                                          "retries": "5"})
    row = db.session.scalar(select(PluginState).filter_by(plugin="withsettings"))
    assert "sk_live_abcdefghijkl1234" not in json.dumps(row.settings)  # encrypted at rest
    assert plugin_settings.settings_for(provider.id, "withsettings", secrets=True)["api_key"] == \
        "sk_live_abcdefghijkl1234"
    assert "api_key" not in plugin_settings.settings_for(provider.id, "withsettings")
    masked = plugin_settings.masked_secrets(provider.id, "withsettings")["api_key"]
    assert masked.endswith("1234") and "abcdefgh" not in masked
    # an empty secret keeps the stored one
    plugin_settings.save_settings(admin, "withsettings", {"api_key": "", "region": "eu", "retries": "5"})
    assert plugin_settings.settings_for(provider.id, "withsettings", secrets=True)["api_key"].endswith("1234")
    # the API never returns the secret
    body = api(admin).get("/api/v1/plugins/withsettings/settings").get_json()
    assert "sk_live_abcdefghijkl1234" not in json.dumps(body) and body["settings"]["region"] == "eu"


def test_invalid_settings_rejected_and_nothing_written(app, db, provider, admin, register_plugin, api):
    register_plugin(WithSettings(), "withsettings")
    response = api(admin).put("/api/v1/plugins/withsettings/settings", json={"retries": 99})
    assert response.status_code == 422
    assert "retries" in response.get_json()["error"]["fields"]
    assert db.session.scalar(select(PluginState).filter_by(plugin="withsettings")) is None


def test_console_settings_form_for_a_real_plugin(app, db, provider, admin, console):
    c = console(admin)
    page = c.get("/plugins/gateway_stripe/settings").get_data(as_text=True)
    assert "Public Key" in page and "Secret Key" in page and "American Express" in page
    response = c.post("/plugins/gateway_stripe/settings", {"public_key": "pk_test_abc", "secret_key": "nope"})
    assert response.status_code == 422 and "Starts with sk_test_" in response.get_data(as_text=True)
    response = c.post("/plugins/gateway_stripe/settings", {"public_key": "pk_test_abc",
                                                           "secret_key": "sk_test_0123456789abcdef"})
    assert response.status_code == 302
    page = c.get("/plugins/gateway_stripe/settings").get_data(as_text=True)
    assert "sk_test_0123456789abcdef" not in page and "cdef" in page


def test_saving_a_builtin_plugins_settings_keeps_it_enabled(app, db, provider, admin):
    assert plugin_settings.is_enabled(provider.id, "builtin.email")
    plugin_settings.save_settings(admin, "builtin.email", {"host": "", "port": "587"})
    host().forget_cache()
    assert plugin_settings.is_enabled(provider.id, "builtin.email")
