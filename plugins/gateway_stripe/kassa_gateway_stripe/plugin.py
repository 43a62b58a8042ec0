"""Stripe gateway: settings per seed 000 "Configure Stripe"; cards saved on a Stripe
Customer and charged off-session with PaymentIntents through the official SDK.

Every call that creates something carries an idempotency key derived from the
request's own key, so the core may repeat any call after a timeout: Stripe then
answers with the original result instead of charging again.
"""
from __future__ import annotations

from decimal import Decimal

import stripe
from kassa.contracts import (header, GatewayDeclined, ContractError, GatewayEvent, GatewayInfo, GatewayResult, GatewayUnavailable,
                             SavedMethod, VerifyResult, WebhookSignatureError)
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from kassa.money import is_rounded, minor_units
from wtforms import BooleanField, Form, IntegerField, StringField
from wtforms.validators import URL, NumberRange, Optional, Regexp

GATEWAY_ID = "stripe"
CARD_BRANDS = (("visa", "VISA"), ("mastercard", "Master Card"), ("amex", "American Express"),
               ("discover", "Discover"), ("diners", "Diners Club"), ("jcb", "JCB"), ("unionpay", "UnionPay"))
DEFAULT_TIMEOUT = 15
#: Stripe repeats a request that failed on the network once, with the same idempotency key.
NETWORK_RETRIES = 1
META_KEY = "kassa_idempotency_key"
META_INVOICE = "kassa_invoice_number"
META_ORG = "kassa_org_id"
#: how many recent objects a lookup by idempotency key reads (Stripe lists 100 a page)
LOOKUP_PAGES = 3
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class StripeSettings(Form):
    public_key = StringField("Public Key", validators=[Optional(), Regexp(r"^pk_(test|live)_\w+$",
                                                                         message="Starts with pk_test_ or pk_live_.")])
    secret_key = SecretField("Secret Key", validators=[Optional(), Regexp(r"^(sk|rk)_(test|live)_\w+$",
                                                                          message="Starts with sk_test_ or sk_live_.")])
    webhook_secret = SecretField("Webhook signing secret", validators=[Optional(), Regexp(r"^whsec_\w+$",
                                                                                            message="Starts with whsec_.")])
    security_badge = BooleanField("Security Badge (\"Protected by Stripe\" on the billing profile)", default=True)
    api_base = StringField("API base URL (leave empty for Stripe's own)",
                           validators=[Optional(), URL(require_tld=False)])
    timeout = IntegerField("Network timeout (seconds)", default=DEFAULT_TIMEOUT,
                           validators=[Optional(), NumberRange(min=1, max=120)])


for _brand, _label in CARD_BRANDS:
    setattr(StripeSettings, f"brand_{_brand}", BooleanField(_label, default=_brand in ("visa", "mastercard", "amex",
                                                                                          "discover")))


class StripeMethodError(GatewayDeclined):
    """Stripe refused to save a payment method (a declined or invalid card); the message is Stripe's."""


@hookimpl
def kassa_gateways():
    return [GatewayInfo(id=GATEWAY_ID, name="Stripe", card_brands=tuple(b for b, _ in CARD_BRANDS))]


@hookimpl
def kassa_settings_form():
    return StripeSettings


# ---------------------------------------------------------------- helpers


class _NotConfigured(Exception):
    pass


def _client(settings) -> stripe.StripeClient:
    secret = (settings.get("secret_key") or "").strip()
    if not secret:
        raise _NotConfigured("Stripe is not configured: enter the Secret Key.")
    base = (settings.get("api_base") or "").strip().rstrip("/")
    timeout = int(settings.get("timeout") or DEFAULT_TIMEOUT)
    return stripe.StripeClient(
        secret,
        base_addresses={"api": base} if base else None,
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def _unreachable(exc: stripe.StripeError) -> bool:
    """The outcome of the call is unknown: Stripe could not be reached, or failed on its side."""
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    status = getattr(exc, "http_status", None)
    return isinstance(exc, stripe.APIError) and (status is None or status >= 500)


def _message(exc: stripe.StripeError) -> str:
    return exc.user_message or str(exc) or type(exc).__name__


def _to_minor(amount: Decimal, currency: str) -> int:
    places = minor_units(currency)
    if not isinstance(amount, Decimal) or not is_rounded(amount, places):
        raise ContractError(f"{amount!r} {currency} is not an amount in whole {currency} minor units.")
    return int(amount.scaleb(places))


def _to_major(minor, currency: str) -> Decimal | None:
    if minor is None:
        return None
    return Decimal(int(minor)).scaleb(-minor_units(currency))


def _data(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})


def _metadata(key: str, invoice_number: str = "", org_id=None, extra=None) -> dict[str, str]:
    meta = {}
    for k, v in (extra or {}).items():  # Stripe: at most 50 keys of 40 characters, values of 500
        if len(meta) < 45 and k and len(str(k)) <= 40:
            meta[str(k)] = str(v)[:500]
    meta[META_KEY] = key
    if invoice_number:
        meta[META_INVOICE] = invoice_number
    if org_id is not None:
        meta[META_ORG] = str(org_id)
    return meta


def _error_object(exc: stripe.StripeError, name: str) -> dict:
    body = exc.json_body if isinstance(getattr(exc, "json_body", None), dict) else {}
    value = (body.get("error") or {}).get(name)
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- results


def _intent_result(pi: dict) -> GatewayResult:
    status = pi.get("status") or ""
    currency = (pi.get("currency") or "").upper()
    received = pi.get("amount_received")
    amount = _to_major(received if status == "succeeded" and received else pi.get("amount"), currency) \
        if currency else None
    common = dict(reference=pi.get("id") or "", amount=amount, currency=currency, raw_status=status)
    error = pi.get("last_payment_error") or {}
    if status == "succeeded":
        return GatewayResult(status="succeeded", **common)
    if status in ("processing", "requires_capture"):
        return GatewayResult(status="pending", **common)
    if status == "requires_action":
        redirect = ((pi.get("next_action") or {}).get("redirect_to_url") or {}).get("url") or ""
        return GatewayResult(status="requires_action", redirect_url=redirect, **common)
    if status == "requires_payment_method":
        return GatewayResult(status="declined", decline_reason=error.get("message")
                             or "The card was declined (the payment needs another payment method).", **common)
    if status == "canceled":
        return GatewayResult(status="failed", decline_reason="The payment was canceled"
                             + (f" ({pi['cancellation_reason']})." if pi.get("cancellation_reason") else "."),
                             **common)
    return GatewayResult(status="failed", decline_reason=f"Stripe left the payment in status {status!r}.", **common)


def _refund_result(refund: dict) -> GatewayResult:
    status = refund.get("status") or ""
    currency = (refund.get("currency") or "").upper()
    common = dict(reference=refund.get("id") or "", currency=currency, raw_status=status,
                  amount=_to_major(refund.get("amount"), currency) if currency else None)
    if status == "succeeded":
        return GatewayResult(status="succeeded", **common)
    if status == "pending":
        return GatewayResult(status="pending", **common)
    if status == "requires_action":
        return GatewayResult(status="requires_action", **common)
    return GatewayResult(status="failed", decline_reason=f"Stripe refund {status or 'failed'}"
                         + (f": {refund['failure_reason']}" if refund.get("failure_reason") else "."), **common)


# ---------------------------------------------------------------- hooks


@hookimpl
def kassa_gateway_save_method(gateway, settings, request):
    if gateway != GATEWAY_ID:
        return None
    try:
        client = _client(settings)
    except _NotConfigured as exc:
        raise StripeMethodError(str(exc)) from None
    key = request.idempotency_key
    org = request.org
    try:
        customer = request.customer_reference
        if not customer:
            params = {"name": org.name, "metadata": {META_ORG: str(org.org_id)}}
            if org.email:
                params["email"] = org.email
            address = {k: v for k, v in (("line1", org.address_line1), ("line2", org.address_line2),
                                         ("city", org.city), ("state", org.state),
                                         ("postal_code", org.postal_code), ("country", org.country)) if v}
            if address:
                params["address"] = address
            customer = client.v1.customers.create(params=params, options={"idempotency_key": f"{key}:customer"}).id
        method = client.v1.payment_methods.attach(request.token, params={"customer": customer},
                                                  options={"idempotency_key": f"{key}:attach"})
        client.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": method.id}},
                                   options={"idempotency_key": f"{key}:default"})
    except stripe.StripeError as exc:
        if _unreachable(exc):
            raise GatewayUnavailable(f"Stripe could not be reached: {_message(exc)}") from exc
        raise StripeMethodError(_message(exc)) from exc
    pm = _data(method)
    card = pm.get("card") or {}
    return SavedMethod(reference=pm["id"], brand=card.get("brand") or pm.get("type") or "",
                       last4=card.get("last4") or "", exp_month=int(card.get("exp_month") or 0),
                       exp_year=int(card.get("exp_year") or 0), customer_reference=customer,
                       fingerprint=card.get("fingerprint") or "")


@hookimpl
def kassa_gateway_charge(gateway, settings, charge):
    if gateway != GATEWAY_ID:
        return None
    if not charge.payment_method:
        return GatewayResult(status="failed", decline_reason="No saved card to charge.")
    try:
        client = _client(settings)
    except _NotConfigured as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    params = {
        "amount": _to_minor(charge.amount, charge.currency),
        "currency": charge.currency.lower(),
        "payment_method": charge.payment_method,
        "payment_method_types": ["card"],
        "off_session": True,
        "confirm": True,
        "description": (charge.description or charge.invoice_number or "")[:1000],
        "metadata": _metadata(charge.idempotency_key, charge.invoice_number, charge.org.org_id, charge.metadata),
    }
    if charge.customer_reference:
        params["customer"] = charge.customer_reference
    try:
        intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": charge.idempotency_key})
    except stripe.CardError as exc:
        error = exc.json_body.get("error") or {} if isinstance(exc.json_body, dict) else {}
        return GatewayResult(status="declined", reference=_error_object(exc, "payment_intent").get("id") or "",
                             decline_reason=_message(exc), amount=charge.amount, currency=charge.currency,
                             raw_status=error.get("decline_code") or exc.code or "")
    except stripe.StripeError as exc:
        if _unreachable(exc):
            raise GatewayUnavailable(f"Stripe could not be reached: {_message(exc)}") from exc
        return GatewayResult(status="failed", decline_reason=_message(exc), raw_status=exc.code or "")
    return _intent_result(_data(intent))


@hookimpl
def kassa_gateway_refund(gateway, settings, refund):
    if gateway != GATEWAY_ID:
        return None
    try:
        client = _client(settings)
    except _NotConfigured as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    target = "charge" if refund.charge_reference.startswith(("ch_", "py_")) else "payment_intent"
    params = {target: refund.charge_reference, "amount": _to_minor(refund.amount, refund.currency),
              "metadata": _metadata(refund.idempotency_key)}
    if refund.reason in REFUND_REASONS:
        params["reason"] = refund.reason
    elif refund.reason:
        params["metadata"]["kassa_reason"] = refund.reason[:500]
    try:
        result = client.v1.refunds.create(params=params, options={"idempotency_key": refund.idempotency_key})
    except stripe.StripeError as exc:
        if _unreachable(exc):
            raise GatewayUnavailable(f"Stripe could not be reached: {_message(exc)}") from exc
        return GatewayResult(status="failed", decline_reason=_message(exc), raw_status=exc.code or "")
    return _refund_result(_data(result))


@hookimpl
def kassa_gateway_lookup(gateway, settings, idempotency_key, reference):
    """By reference: the PaymentIntent (pi_...) or refund (re_...). Without one: the
    recent PaymentIntents and refunds whose metadata carries the idempotency key
    (lists are read-after-write consistent, unlike search). None: Stripe never saw
    the call, so repeating it with the same key is safe."""
    if gateway != GATEWAY_ID:
        return None
    try:
        client = _client(settings)
    except _NotConfigured:
        return None
    try:
        if reference:
            if reference.startswith(("re_", "pyr_")):
                return _refund_result(_data(client.v1.refunds.retrieve(reference)))
            return _intent_result(_data(client.v1.payment_intents.retrieve(reference)))
        if not idempotency_key:
            return None
        for service, build in ((client.v1.payment_intents, _intent_result), (client.v1.refunds, _refund_result)):
            found = _find_by_key(service, idempotency_key)
            if found is not None:
                return build(found)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise GatewayUnavailable(f"Stripe refused the lookup: {_message(exc)}") from exc
    except stripe.StripeError as exc:
        raise GatewayUnavailable(f"Stripe could not be reached: {_message(exc)}") from exc
    return None


def _find_by_key(service, key: str) -> dict | None:
    params: dict = {"limit": 100}
    for _ in range(LOOKUP_PAGES):
        page = service.list(params=params)
        items = [_data(item) for item in page.data]
        for item in items:
            if (item.get("metadata") or {}).get(META_KEY) == key:
                return item
        if not page.has_more or not items:
            return None
        params = {"limit": 100, "starting_after": items[-1]["id"]}
    return None


@hookimpl
def kassa_gateway_verify(gateway, settings):
    if gateway != GATEWAY_ID:
        return None
    secret = settings.get("secret_key") or ""
    public = settings.get("public_key") or ""
    if secret and public:
        secret_mode = "live" if "_live_" in secret else "test"
        public_mode = "live" if "_live_" in public else "test"
        if secret_mode != public_mode:
            return VerifyResult(ok=False, message=f"The Public Key is a {public_mode} key but the Secret Key "
                                                  f"is a {secret_mode} key.")
    try:
        client = _client(settings)
        client.v1.balance.retrieve()
    except _NotConfigured as exc:
        return VerifyResult(ok=False, message=str(exc))
    except stripe.APIConnectionError as exc:
        return VerifyResult(ok=False, message=f"Could not reach Stripe: {_message(exc)}")
    except stripe.StripeError as exc:
        return VerifyResult(ok=False, message=f"Stripe refused the Secret Key: {_message(exc)}")
    mode = "live" if "_live_" in secret else "test"
    return VerifyResult(ok=True, message=f"Connected to Stripe ({mode} mode).")


# ---------------------------------------------------------------- webhooks

_INTENT_EVENTS = {
    "payment_intent.succeeded": "charge.succeeded",
    "payment_intent.payment_failed": "charge.failed",
    "payment_intent.canceled": "charge.failed",
    "payment_intent.processing": "charge.pending",
    "payment_intent.requires_action": "charge.requires_action",
}
_REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
_METHOD_EVENTS = ("payment_method.updated", "payment_method.automatically_updated", "payment_method.detached")


@hookimpl
def kassa_gateway_webhook(gateway, settings, headers, body):
    if gateway != GATEWAY_ID:
        return None
    secret = settings.get("webhook_secret") or ""
    if not secret:
        raise WebhookSignatureError("No Stripe webhook signing secret is configured.")
    try:
        event = stripe.Webhook.construct_event(body, header(headers, "Stripe-Signature"), secret)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc)) from exc
    except ValueError as exc:
        raise WebhookSignatureError(f"Not a Stripe event: {exc}") from exc
    data = _data(event)
    kind = data.get("type") or ""
    obj = (data.get("data") or {}).get("object") or {}
    event_id = data.get("id") or ""
    meta = obj.get("metadata") or {}
    currency = (obj.get("currency") or "").upper()
    if kind in _INTENT_EVENTS:
        result = _intent_result(obj)
        return [GatewayEvent(event_id=event_id, type=_INTENT_EVENTS[kind], reference=obj.get("id") or "",
                             status=result.status, amount=result.amount, currency=currency,
                             idempotency_key=meta.get(META_KEY, ""),
                             decline_reason=result.decline_reason
                             or ((obj.get("last_payment_error") or {}).get("message") or ""))]
    if kind in _REFUND_EVENTS:
        result = _refund_result(obj)
        return [GatewayEvent(event_id=event_id, type=f"refund.{result.status}", reference=obj.get("id") or "",
                             status=result.status, amount=result.amount, currency=currency,
                             idempotency_key=meta.get(META_KEY, ""), decline_reason=result.decline_reason)]
    if kind in _METHOD_EVENTS:
        return [GatewayEvent(event_id=event_id, type="method.updated" if kind != "payment_method.detached"
                             else "method.detached", reference=obj.get("id") or "", status=kind.split(".")[-1])]
    if kind == "charge.dispute.created":
        return [GatewayEvent(event_id=event_id, type="charge.disputed",
                             reference=obj.get("payment_intent") or obj.get("charge") or "",
                             status=obj.get("status") or "", amount=_to_major(obj.get("amount"), currency)
                             if currency else None, currency=currency, decline_reason=obj.get("reason") or "")]
    return []
