"""PayPal gateway: Orders v2 with the hosted approval page, for USD payments from abroad.

Plain REST with ``requests``. The charge creates an order (intent CAPTURE) and sends
the buyer to PayPal's approval page; when the buyer comes back,
``kassa_gateway_complete`` captures it. The PayPal order id is the payment's
reference throughout (charge, complete, lookup, webhooks); a refund of an order
finds its capture. Every order and refund call carries ``PayPal-Request-Id`` so a
repeated call returns the first result instead of paying twice.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from decimal import Decimal

import requests
from kassa.contracts import (header, ContractError, GatewayEvent, GatewayInfo, GatewayResult, GatewayUnavailable,
                             VerifyResult, WebhookSignatureError)
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from kassa.money import MoneyError, is_rounded, to_decimal
from wtforms import BooleanField, Form, IntegerField, StringField
from wtforms.validators import URL, NumberRange, Optional

GATEWAY_ID = "paypal"
CURRENCY = "USD"
LIVE_API = "https://api-m.paypal.com"
SANDBOX_API = "https://api-m.sandbox.paypal.com"
DEFAULT_TIMEOUT = 15
APPROVE_RELS = ("payer-action", "approve")
WEBHOOK_HEADERS = {"auth_algo": "PAYPAL-AUTH-ALGO", "cert_url": "PAYPAL-CERT-URL",
                   "transmission_id": "PAYPAL-TRANSMISSION-ID", "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
                   "transmission_time": "PAYPAL-TRANSMISSION-TIME"}


class PayPalSettings(Form):
    client_id = StringField("Client ID")
    client_secret = SecretField("Client Secret")
    webhook_id = StringField("Webhook ID")
    sandbox = BooleanField("Sandbox", default=True)
    api_base = StringField("API base URL (leave empty for PayPal's own)", validators=[Optional(), URL(require_tld=False)])
    timeout = IntegerField("Network timeout (seconds)", default=DEFAULT_TIMEOUT,
                           validators=[Optional(), NumberRange(min=1, max=120)])


@hookimpl
def kassa_gateways():
    return [GatewayInfo(id=GATEWAY_ID, name="PayPal", currencies=(CURRENCY,), saves_cards=False, hosted_redirect=True)]


@hookimpl
def kassa_settings_form():
    return PayPalSettings


# ---------------------------------------------------------------- the REST client


class _Refused(Exception):
    """PayPal answered, and refused (credentials, a bad request)."""


_tokens: dict[tuple, tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class _PayPal:
    def __init__(self, settings):
        self.base = ((settings.get("api_base") or "").strip().rstrip("/")
                     or (SANDBOX_API if settings.get("sandbox", True) else LIVE_API))
        self.client_id = (settings.get("client_id") or "").strip()
        self.secret = settings.get("client_secret") or ""
        seconds = int(settings.get("timeout") or DEFAULT_TIMEOUT)
        self.timeout = (seconds, seconds)
        self.webhook_id = (settings.get("webhook_id") or "").strip()

    def _send(self, method, path, **kwargs) -> requests.Response:
        try:
            return requests.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GatewayUnavailable(f"PayPal could not be reached: {exc}") from exc

    def token(self, fresh: bool = False) -> str:
        if not self.client_id or not self.secret:
            raise _Refused("PayPal is not configured: enter the Client ID and the Client Secret.")
        key = (self.base, self.client_id, hashlib.sha256(self.secret.encode()).hexdigest())
        with _tokens_lock:
            cached = _tokens.get(key)
        if cached and not fresh and cached[1] > time.monotonic():
            return cached[0]
        response = self._send("POST", "/v1/oauth2/token", auth=(self.client_id, self.secret),
                              data={"grant_type": "client_credentials"}, headers={"Accept": "application/json"})
        if response.status_code >= 500:
            raise GatewayUnavailable(f"PayPal failed on its side (HTTP {response.status_code}).")
        body = _json(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise _Refused(body.get("error_description") or body.get("error") or _reason(response))
        expires = time.monotonic() + max(int(body.get("expires_in") or 0) - 60, 0)
        with _tokens_lock:
            _tokens[key] = (body["access_token"], expires)
        return body["access_token"]

    def call(self, method, path, payload=None, request_id: str = "", data: str | None = None) -> requests.Response:
        """An authenticated call; a token PayPal no longer accepts is renewed once."""
        for fresh in (False, True):
            headers = {"Authorization": f"Bearer {self.token(fresh)}", "Accept": "application/json"}
            if request_id:
                headers["PayPal-Request-Id"] = request_id
            if payload is not None or data is not None:
                headers["Content-Type"] = "application/json"
                if method == "POST" and path.startswith("/v2/"):
                    headers["Prefer"] = "return=representation"
            body = data if data is not None else (json.dumps(payload) if payload is not None else None)
            response = self._send(method, path, data=body, headers=headers)
            if response.status_code != 401:
                break
        if response.status_code >= 500:
            raise GatewayUnavailable(f"PayPal failed on its side (HTTP {response.status_code}): {_reason(response)}")
        return response


def _json(response: requests.Response) -> dict:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reason(response: requests.Response) -> str:
    """PayPal's own words for an error: the first detail's description, else its message."""
    body = _json(response)
    for detail in body.get("details") or ():
        if isinstance(detail, dict) and (detail.get("description") or detail.get("issue")):
            return detail.get("description") or detail["issue"]
    return body.get("message") or body.get("error_description") or body.get("name") \
        or f"PayPal answered HTTP {response.status_code}"


def _issues(response: requests.Response) -> set[str]:
    return {d.get("issue") for d in _json(response).get("details") or () if isinstance(d, dict)}


def _value(amount: Decimal) -> str:
    if not isinstance(amount, Decimal) or not is_rounded(amount, 2):
        raise ContractError(f"{amount!r} is not an amount in whole cents.")
    return f"{amount.quantize(Decimal('0.01')):f}"


def _money(node) -> tuple[Decimal | None, str]:
    node = node if isinstance(node, dict) else {}
    try:
        amount = to_decimal(node["value"]) if "value" in node else None
    except MoneyError:
        amount = None
    return amount, str(node.get("currency_code") or "")


# ---------------------------------------------------------------- results


def _unit(order: dict) -> dict:
    units = order.get("purchase_units") or [{}]
    return units[0] if isinstance(units[0], dict) else {}


def _capture(order: dict) -> dict:
    captures = (_unit(order).get("payments") or {}).get("captures") or []
    return captures[-1] if captures and isinstance(captures[-1], dict) else {}


def _approve_link(order: dict) -> str:
    for link in order.get("links") or ():
        if isinstance(link, dict) and link.get("rel") in APPROVE_RELS:
            return link.get("href") or ""
    return ""


def _order_result(order: dict) -> GatewayResult:
    status = order.get("status") or ""
    capture = _capture(order)
    amount, currency = _money(capture.get("amount") or _unit(order).get("amount"))
    common = dict(reference=order.get("id") or "", amount=amount, currency=currency, raw_status=status)
    if status == "COMPLETED":
        capture_status = capture.get("status") or "COMPLETED"
        common["raw_status"] = f"COMPLETED/{capture_status}"
        if capture_status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return GatewayResult(status="succeeded", **common)
        if capture_status == "PENDING":
            return GatewayResult(status="pending", **common)
        reason = (capture.get("status_details") or {}).get("reason") or capture_status
        return GatewayResult(status="declined", decline_reason=f"PayPal did not capture the payment: {reason}",
                             **common)
    if status in ("CREATED", "PAYER_ACTION_REQUIRED"):
        link = _approve_link(order)
        if not link:
            return GatewayResult(status="failed", decline_reason="PayPal sent no approval link for the order.",
                                 **common)
        return GatewayResult(status="requires_action", redirect_url=link, **common)
    if status == "APPROVED":  # the buyer approved; kassa_gateway_complete captures it
        return GatewayResult(status="requires_action", **common)
    if status == "SAVED":
        return GatewayResult(status="pending", **common)
    if status == "VOIDED":
        return GatewayResult(status="failed", decline_reason="PayPal voided the order.", **common)
    return GatewayResult(status="failed", decline_reason=f"PayPal left the order in status {status!r}.", **common)


def _refund_result(refund: dict) -> GatewayResult:
    status = refund.get("status") or ""
    amount, currency = _money(refund.get("amount"))
    common = dict(reference=refund.get("id") or "", amount=amount, currency=currency, raw_status=status)
    if status == "COMPLETED":
        return GatewayResult(status="succeeded", **common)
    if status == "PENDING":
        return GatewayResult(status="pending", **common)
    reason = (refund.get("status_details") or {}).get("reason") or status or "unknown"
    return GatewayResult(status="failed", decline_reason=f"PayPal did not refund: {reason}", **common)


# ---------------------------------------------------------------- hooks


@hookimpl
def kassa_gateway_charge(gateway, settings, charge):
    if gateway != GATEWAY_ID:
        return None
    if charge.currency != CURRENCY:
        return GatewayResult(status="failed", decline_reason=f"PayPal takes {CURRENCY} payments only here.")
    if not charge.return_url:
        raise ContractError("A PayPal charge needs charge.return_url: the buyer comes back there.")
    separator = "&" if "?" in charge.return_url else "?"
    unit = {"reference_id": "default", "custom_id": charge.idempotency_key[:127],
            "amount": {"currency_code": CURRENCY, "value": _value(charge.amount)}}
    if charge.description or charge.invoice_number:
        unit["description"] = (charge.description or charge.invoice_number)[:127]
    if charge.invoice_number:
        unit["invoice_id"] = charge.invoice_number[:127]
    order = {
        "intent": "CAPTURE",
        "purchase_units": [unit],
        "payment_source": {"paypal": {"experience_context": {
            "return_url": charge.return_url,
            "cancel_url": f"{charge.return_url}{separator}cancelled=1",
            "user_action": "PAY_NOW",
            "shipping_preference": "NO_SHIPPING",
        }}},
    }
    api = _PayPal(settings)
    try:
        response = api.call("POST", "/v2/checkout/orders", order, request_id=charge.idempotency_key)
    except _Refused as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    if response.status_code not in (200, 201):
        return GatewayResult(status="failed", decline_reason=_reason(response), raw_status=str(response.status_code))
    return _order_result(_json(response))


@hookimpl
def kassa_gateway_complete(gateway, settings, reference, params):
    """Capture the order the buyer approved. PayPal's return parameters are not signed:
    they must name this order, and the capture itself (server to server) decides."""
    if gateway != GATEWAY_ID:
        return None
    token = (params or {}).get("token") or ""
    if token and token != reference:
        raise WebhookSignatureError(f"The buyer came back for PayPal order {token}, not {reference}.")
    if (params or {}).get("cancelled"):
        return GatewayResult(status="declined", reference=reference, raw_status="CANCELLED",
                             decline_reason="The buyer cancelled the payment on PayPal's page.")
    api = _PayPal(settings)
    try:
        response = api.call("POST", f"/v2/checkout/orders/{reference}/capture", {},
                            request_id=f"capture-{reference}")
        if response.status_code == 422 and "ORDER_ALREADY_CAPTURED" in _issues(response):
            response = api.call("GET", f"/v2/checkout/orders/{reference}")
    except _Refused as exc:
        return GatewayResult(status="failed", reference=reference, decline_reason=str(exc))
    if response.status_code in (200, 201):
        return _order_result(_json(response))
    issues = _issues(response)
    if response.status_code == 422:
        reason = _reason(response)
        if "ORDER_NOT_APPROVED" in issues:
            reason = "The buyer has not approved the payment on PayPal's page."
        return GatewayResult(status="declined", reference=reference, decline_reason=reason,
                             raw_status=",".join(sorted(i for i in issues if i)) or "422")
    return GatewayResult(status="failed", reference=reference, decline_reason=_reason(response),
                         raw_status=str(response.status_code))


@hookimpl
def kassa_gateway_lookup(gateway, settings, idempotency_key, reference):
    """Show the order. Without an order id PayPal has nothing to search by; repeating the
    create with the same PayPal-Request-Id returns the original order."""
    if gateway != GATEWAY_ID:
        return None
    if not reference:
        return None
    try:
        response = _PayPal(settings).call("GET", f"/v2/checkout/orders/{reference}")
    except _Refused as exc:
        raise GatewayUnavailable(f"PayPal refused the lookup: {exc}") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise GatewayUnavailable(f"PayPal refused the lookup: {_reason(response)}")
    return _order_result(_json(response))


@hookimpl
def kassa_gateway_refund(gateway, settings, refund):
    if gateway != GATEWAY_ID:
        return None
    if refund.currency != CURRENCY:
        return GatewayResult(status="failed", decline_reason=f"PayPal takes {CURRENCY} payments only here.")
    api = _PayPal(settings)
    body = {"amount": {"currency_code": CURRENCY, "value": _value(refund.amount)},
            "custom_id": refund.idempotency_key[:127]}
    if refund.reason:
        body["note_to_payer"] = refund.reason[:255]
    try:
        capture_id = refund.charge_reference
        order = api.call("GET", f"/v2/checkout/orders/{refund.charge_reference}")
        if order.status_code == 200:  # the reference is the order: refund its capture
            capture_id = _capture(_json(order)).get("id") or ""
            if not capture_id:
                return GatewayResult(status="failed", decline_reason="The PayPal order has no capture to refund.")
        response = api.call("POST", f"/v2/payments/captures/{capture_id}/refund", body,
                            request_id=refund.idempotency_key)
    except _Refused as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    if response.status_code not in (200, 201):
        return GatewayResult(status="failed", decline_reason=_reason(response), raw_status=str(response.status_code))
    return _refund_result(_json(response))


@hookimpl
def kassa_gateway_verify(gateway, settings):
    if gateway != GATEWAY_ID:
        return None
    api = _PayPal(settings)
    try:
        api.token(fresh=True)
    except _Refused as exc:
        return VerifyResult(ok=False, message=f"PayPal refused the credentials: {exc}")
    except GatewayUnavailable as exc:
        return VerifyResult(ok=False, message=str(exc))
    where = "sandbox" if api.base == SANDBOX_API else ("live" if api.base == LIVE_API else api.base)
    message = f"Connected to PayPal ({where})."
    if not api.webhook_id:
        message += " Enter the Webhook ID, or PayPal's notifications will be refused."
    return VerifyResult(ok=True, message=message)


# ---------------------------------------------------------------- webhooks


@hookimpl
def kassa_gateway_webhook(gateway, settings, headers, body):
    if gateway != GATEWAY_ID:
        return None
    api = _PayPal(settings)
    if not api.webhook_id:
        raise WebhookSignatureError("No PayPal Webhook ID is configured.")
    fields = {name: header(headers, wanted) for name, wanted in WEBHOOK_HEADERS.items()}
    absent = [WEBHOOK_HEADERS[name] for name, value in fields.items() if not value]
    if absent:
        raise WebhookSignatureError("The PayPal notification lacks " + ", ".join(absent) + ".")
    try:
        text = body.decode("utf-8")
        event = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookSignatureError(f"Not a PayPal notification: {exc}") from exc
    if not isinstance(event, dict):
        raise WebhookSignatureError("Not a PayPal notification.")
    # the event goes back exactly as received: a re-serialised body would not verify
    request = json.dumps({**fields, "webhook_id": api.webhook_id})[:-1] + ', "webhook_event": ' + text + "}"
    try:
        response = api.call("POST", "/v1/notifications/verify-webhook-signature", data=request)
    except _Refused as exc:
        raise WebhookSignatureError(f"PayPal could not verify the notification: {exc}") from exc
    if response.status_code != 200:
        raise WebhookSignatureError(f"PayPal could not verify the notification: {_reason(response)}")
    status = _json(response).get("verification_status")
    if status != "SUCCESS":
        raise WebhookSignatureError(f"PayPal's signature check says {status or 'nothing'}.")
    return _events(event)


_CAPTURE_EVENTS = {"PAYMENT.CAPTURE.COMPLETED": "charge.succeeded", "PAYMENT.CAPTURE.PENDING": "charge.pending",
                   "PAYMENT.CAPTURE.DECLINED": "charge.failed", "PAYMENT.CAPTURE.DENIED": "charge.failed"}


def _events(event: dict) -> list[GatewayEvent]:
    kind = event.get("event_type") or ""
    resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
    event_id = event.get("id") or ""
    amount, currency = _money(resource.get("amount"))
    if kind in _CAPTURE_EVENTS:
        order_id = ((resource.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
        reason = ""
        if _CAPTURE_EVENTS[kind] == "charge.failed":
            reason = (resource.get("status_details") or {}).get("reason") or event.get("summary") or kind
        return [GatewayEvent(event_id=event_id, type=_CAPTURE_EVENTS[kind], reference=order_id or resource.get("id", ""),
                             status=resource.get("status") or "", amount=amount, currency=currency,
                             idempotency_key=resource.get("custom_id") or "", decline_reason=reason)]
    if kind in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"):
        return [GatewayEvent(event_id=event_id, type="refund.succeeded" if kind.endswith("REFUNDED")
                             else "charge.reversed", reference=resource.get("id") or "",
                             status=resource.get("status") or "", amount=amount, currency=currency,
                             idempotency_key=resource.get("custom_id") or "")]
    if kind == "CHECKOUT.ORDER.APPROVED":
        unit = _unit(resource)
        amount, currency = _money(unit.get("amount"))
        return [GatewayEvent(event_id=event_id, type="charge.approved", reference=resource.get("id") or "",
                             status=resource.get("status") or "", amount=amount, currency=currency,
                             idempotency_key=unit.get("custom_id") or "")]
    return []
