"""PayPal gateway: Orders v2 with the hosted approval page, for USD payments from abroad."""
from kassa.contracts import GatewayInfo
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from wtforms import BooleanField, Form, StringField
from wtforms.validators import Optional, URL

GATEWAY_ID = "paypal"


class PayPalSettings(Form):
    client_id = StringField("Client ID")
    client_secret = SecretField("Client Secret")
    webhook_id = StringField("Webhook ID")
    sandbox = BooleanField("Sandbox", default=True)
    api_base = StringField("API base URL (leave empty for PayPal's own)", validators=[Optional(), URL(require_tld=False)])


@hookimpl
def kassa_gateways():
    return [GatewayInfo(id=GATEWAY_ID, name="PayPal", currencies=("USD",), saves_cards=False, hosted_redirect=True)]


@hookimpl
def kassa_settings_form():
    return PayPalSettings
