"""Stripe gateway: settings per seed 000 "Configure Stripe"."""
from kassa.contracts import GatewayInfo
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from wtforms import BooleanField, Form, StringField
from wtforms.validators import Optional, Regexp

GATEWAY_ID = "stripe"
CARD_BRANDS = (("visa", "VISA"), ("mastercard", "Master Card"), ("amex", "American Express"),
               ("discover", "Discover"), ("diners", "Diners Club"), ("jcb", "JCB"), ("unionpay", "UnionPay"))


class StripeSettings(Form):
    public_key = StringField("Public Key", validators=[Optional(), Regexp(r"^pk_(test|live)_\w+$",
                                                                         message="Starts with pk_test_ or pk_live_.")])
    secret_key = SecretField("Secret Key", validators=[Optional(), Regexp(r"^(sk|rk)_(test|live)_\w+$",
                                                                          message="Starts with sk_test_ or sk_live_.")])
    webhook_secret = SecretField("Webhook signing secret", validators=[Optional(), Regexp(r"^whsec_\w+$",
                                                                                            message="Starts with whsec_.")])
    security_badge = BooleanField("Security Badge (\"Protected by Stripe\" on the billing profile)", default=True)


for _brand, _label in CARD_BRANDS:
    setattr(StripeSettings, f"brand_{_brand}", BooleanField(_label, default=_brand in ("visa", "mastercard", "amex",
                                                                                          "discover")))


@hookimpl
def kassa_gateways():
    return [GatewayInfo(id=GATEWAY_ID, name="Stripe", card_brands=tuple(b for b, _ in CARD_BRANDS))]


@hookimpl
def kassa_settings_form():
    return StripeSettings
