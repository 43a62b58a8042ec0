"""Razorpay gateway: INR payments from India through hosted Payment Links (razorpay SDK).

The charge creates a Payment Link and sends the buyer to its short URL; Razorpay
sends the buyer back to ``charge.return_url`` with signed parameters, which
``kassa_gateway_complete`` verifies with the SDK. The Payment Link id is the
payment's reference throughout; a refund of a link refunds its captured payment.

Razorpay has no idempotency header for these calls. The link's ``reference_id``
(unique per account) is derived from the idempotency key and the create looks it
up first, so repeating a charge returns the same link; a refund looks for an
earlier refund carrying the same key in its notes before creating one.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import razorpay
import requests
from kassa.contracts import (header, ContractError, GatewayEvent, GatewayInfo, GatewayResult, GatewayUnavailable,
                             VerifyResult, WebhookSignatureError)
from kassa.forms_api import SecretField
from kassa.hookspecs import hookimpl
from kassa.money import is_rounded, minor_units
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError
from wtforms import Form, IntegerField, StringField
from wtforms.validators import URL, NumberRange, Optional, Regexp

GATEWAY_ID = "razorpay"
CURRENCY = "INR"
DEFAULT_TIMEOUT = 15
META_KEY = "kassa_idempotency_key"
META_INVOICE = "kassa_invoice_number"
META_ORG = "kassa_org_id"
NOTE_LIMIT = 256  # Razorpay: at most 15 notes of 256 characters


class RazorpaySettings(Form):
    key_id = StringField("Key ID", validators=[Optional(), Regexp(r"^rzp_(test|live)_\w+$",
                                                                  message="Starts with rzp_test_ or rzp_live_.")])
    key_secret = SecretField("Key Secret")
    webhook_secret = SecretField("Webhook Secret")
    api_base = StringField("API base URL (leave empty for Razorpay's own)",
                           validators=[Optional(), URL(require_tld=False)])
    timeout = IntegerField("Network timeout (seconds)", default=DEFAULT_TIMEOUT,
                           validators=[Optional(), NumberRange(min=1, max=120)])


@hookimpl
def kassa_gateways():
    return [GatewayInfo(id=GATEWAY_ID, name="Razorpay", currencies=(CURRENCY,), countries=("IN",),
                        saves_cards=False, hosted_redirect=True)]


@hookimpl
def kassa_settings_form():
    return RazorpaySettings


# ---------------------------------------------------------------- helpers


class _NotConfigured(Exception):
    pass


class _Api:
    """The SDK client with this provider's keys, base URL and timeout on every call."""

    def __init__(self, settings):
        key_id, secret = (settings.get("key_id") or "").strip(), settings.get("key_secret") or ""
        if not key_id or not secret:
            raise _NotConfigured("Razorpay is not configured: enter the Key ID and the Key Secret.")
        options = {}
        base = (settings.get("api_base") or "").strip().rstrip("/")
        if base:
            options["base_url"] = base
        self.client = razorpay.Client(auth=(key_id, secret), **options)
        self.client.set_app_details({"title": "Kassa", "version": "0.1.0"})
        seconds = int(settings.get("timeout") or DEFAULT_TIMEOUT)
        self.timeout = (seconds, seconds)

    def __call__(self, method, *args):
        try:
            return method(*args, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GatewayUnavailable(f"Razorpay could not be reached: {exc}") from exc
        except ServerError as exc:
            raise GatewayUnavailable(f"Razorpay failed on its side: {exc}") from exc
        except requests.RequestException as exc:  # an answer that is not Razorpay's JSON (a proxy page)
            raise GatewayUnavailable(f"Razorpay answered something unreadable: {exc}") from exc


def reference_id(idempotency_key: str) -> str:
    """The Payment Link reference_id (at most 40 characters, unique per account) for a key."""
    return "kassa-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:34]


def _paise(amount: Decimal) -> int:
    places = minor_units(CURRENCY)
    if not isinstance(amount, Decimal) or not is_rounded(amount, places):
        raise ContractError(f"{amount!r} is not an amount in whole paise.")
    return int(amount.scaleb(places))


def _rupees(paise) -> Decimal | None:
    return None if paise is None else Decimal(int(paise)).scaleb(-minor_units(CURRENCY))


def _notes(entity: dict) -> dict:
    notes = entity.get("notes")
    return notes if isinstance(notes, dict) else {}  # Razorpay sends [] for no notes


def _link_result(link: dict) -> GatewayResult:
    status = link.get("status") or ""
    currency = (link.get("currency") or CURRENCY).upper()
    common = dict(reference=link.get("id") or "", currency=currency, raw_status=status)
    if status == "paid":
        return GatewayResult(status="succeeded", amount=_rupees(link.get("amount_paid") or link.get("amount")),
                             **common)
    amount = _rupees(link.get("amount"))
    if status == "created":
        return GatewayResult(status="requires_action", amount=amount, redirect_url=link.get("short_url") or "",
                             **common)
    if status == "partially_paid":
        return GatewayResult(status="pending", amount=amount, **common)
    if status == "expired":
        return GatewayResult(status="declined", amount=amount, decline_reason="The payment link expired unpaid.",
                             **common)
    if status == "cancelled":
        return GatewayResult(status="declined", amount=amount, decline_reason="The payment link was cancelled.",
                             **common)
    return GatewayResult(status="failed", amount=amount,
                         decline_reason=f"Razorpay left the payment link in status {status!r}.", **common)


def _payment_result(payment: dict) -> GatewayResult:
    status = payment.get("status") or ""
    common = dict(reference=payment.get("id") or "", amount=_rupees(payment.get("amount")),
                  currency=(payment.get("currency") or CURRENCY).upper(), raw_status=status)
    if status in ("captured", "refunded"):
        return GatewayResult(status="succeeded", **common)
    if status in ("created", "authorized"):
        return GatewayResult(status="pending", **common)
    return GatewayResult(status="declined", decline_reason=payment.get("error_description")
                         or f"Razorpay reports the payment as {status or 'failed'}.", **common)


def _refund_result(refund: dict) -> GatewayResult:
    status = refund.get("status") or ""
    common = dict(reference=refund.get("id") or "", amount=_rupees(refund.get("amount")),
                  currency=(refund.get("currency") or CURRENCY).upper(), raw_status=status)
    if status == "processed":
        return GatewayResult(status="succeeded", **common)
    if status in ("pending", "created"):
        return GatewayResult(status="pending", **common)
    return GatewayResult(status="failed", decline_reason=f"Razorpay refund {status or 'failed'}.", **common)


def _find_link(api: _Api, idempotency_key: str) -> dict | None:
    found = api(api.client.payment_link.all, {"reference_id": reference_id(idempotency_key)})
    links = [link for link in (found or {}).get("payment_links") or () if isinstance(link, dict)]
    return links[0] if links else None


# ---------------------------------------------------------------- hooks


@hookimpl
def kassa_gateway_charge(gateway, settings, charge):
    if gateway != GATEWAY_ID:
        return None
    if charge.currency != CURRENCY:
        return GatewayResult(status="failed", decline_reason=f"Razorpay takes {CURRENCY} payments only.")
    if not charge.return_url:
        raise ContractError("A Razorpay charge needs charge.return_url: the buyer comes back there.")
    amount = _paise(charge.amount)
    try:
        api = _Api(settings)
    except _NotConfigured as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    existing = _find_link(api, charge.idempotency_key)
    if existing is not None:  # the same charge again: the link it made the first time
        return _link_result(existing)
    customer = {k: v for k, v in (("name", charge.org.name), ("email", charge.org.email)) if v}
    notes = {META_KEY: charge.idempotency_key[:NOTE_LIMIT], META_ORG: str(charge.org.org_id)}
    if charge.invoice_number:
        notes[META_INVOICE] = charge.invoice_number[:NOTE_LIMIT]
    for key, value in charge.metadata.items():
        if len(notes) < 15:
            notes.setdefault(str(key)[:NOTE_LIMIT], str(value)[:NOTE_LIMIT])
    link = {
        "amount": amount,
        "currency": CURRENCY,
        "accept_partial": False,
        "reference_id": reference_id(charge.idempotency_key),
        "description": (charge.description or charge.invoice_number)[:2048],
        "notify": {"sms": False, "email": False},
        "reminder_enable": False,
        "notes": notes,
        "callback_url": charge.return_url,
        "callback_method": "get",
    }
    if customer:
        link["customer"] = customer
    try:
        created = api(api.client.payment_link.create, link)
    except (BadRequestError, GatewayError) as exc:
        existing = _find_link(api, charge.idempotency_key)  # made by a call running at the same time
        if existing is not None:
            return _link_result(existing)
        return GatewayResult(status="failed", decline_reason=str(exc) or "Razorpay refused the payment link.")
    return _link_result(created)


@hookimpl
def kassa_gateway_complete(gateway, settings, reference, params):
    """Verify the signed parameters Razorpay adds to the callback URL (with the Key
    Secret, by the SDK's own check); a paid link succeeds, anything else is declined."""
    if gateway != GATEWAY_ID:
        return None
    params = dict(params or {})
    link_id = params.get("razorpay_payment_link_id") or ""
    if link_id != reference:
        raise WebhookSignatureError(f"The buyer came back for payment link {link_id or '(none)'}, not {reference}.")
    try:
        api = _Api(settings)
    except _NotConfigured as exc:
        raise WebhookSignatureError(str(exc)) from None
    status = params.get("razorpay_payment_link_status") or ""
    signed = {"payment_link_id": link_id,
              "payment_link_reference_id": params.get("razorpay_payment_link_reference_id") or "",
              "payment_link_status": status,
              "razorpay_payment_id": params.get("razorpay_payment_id") or "",
              "razorpay_signature": params.get("razorpay_signature") or ""}
    try:
        verified = api.client.utility.verify_payment_link_signature(signed)
    except SignatureVerificationError as exc:
        raise WebhookSignatureError(f"The Razorpay callback signature does not verify: {exc}") from exc
    if not verified:
        raise WebhookSignatureError("The Razorpay callback lacks its signed parameters.")
    if status == "paid":
        return GatewayResult(status="succeeded", reference=reference, currency=CURRENCY, raw_status=status)
    reason = (params.get("error[description]") or params.get("error_description")
              or f"Razorpay reports the payment link as {status or 'unpaid'}.")
    return GatewayResult(status="declined", reference=reference, currency=CURRENCY, raw_status=status,
                         decline_reason=reason)


@hookimpl
def kassa_gateway_lookup(gateway, settings, idempotency_key, reference):
    """By reference: the payment link (plink_), payment (pay_) or refund (rfnd_).
    Without one: the link whose reference_id derives from the idempotency key."""
    if gateway != GATEWAY_ID:
        return None
    try:
        api = _Api(settings)
    except _NotConfigured:
        return None
    try:
        if reference.startswith("plink_"):
            return _link_result(api(api.client.payment_link.fetch, reference))
        if reference.startswith("pay_"):
            return _payment_result(api(api.client.payment.fetch, reference))
        if reference.startswith("rfnd_"):
            return _refund_result(api(api.client.refund.fetch, reference))
        if idempotency_key and not reference:
            link = _find_link(api, idempotency_key)
            return _link_result(link) if link is not None else None
    except BadRequestError as exc:
        if "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
            return None
        raise GatewayUnavailable(f"Razorpay refused the lookup: {exc}") from exc
    return None


@hookimpl
def kassa_gateway_refund(gateway, settings, refund):
    if gateway != GATEWAY_ID:
        return None
    if refund.currency != CURRENCY:
        return GatewayResult(status="failed", decline_reason=f"Razorpay takes {CURRENCY} payments only.")
    amount = _paise(refund.amount)
    try:
        api = _Api(settings)
    except _NotConfigured as exc:
        return GatewayResult(status="failed", decline_reason=str(exc))
    try:
        payment_id = refund.charge_reference
        if payment_id.startswith("plink_"):
            link = api(api.client.payment_link.fetch, payment_id)
            captured = [p for p in link.get("payments") or () if isinstance(p, dict) and p.get("status") == "captured"]
            if not captured:
                return GatewayResult(status="failed", decline_reason="The payment link has no captured payment.")
            payment_id = captured[-1]["payment_id"]
        earlier = api(api.client.payment.fetch_multiple_refund, payment_id, {"count": 100})
        for item in (earlier or {}).get("items") or ():
            if isinstance(item, dict) and _notes(item).get(META_KEY) == refund.idempotency_key:
                return _refund_result(item)  # the same refund again: the one made the first time
        notes = {META_KEY: refund.idempotency_key[:NOTE_LIMIT]}
        if refund.reason:
            notes["kassa_reason"] = refund.reason[:NOTE_LIMIT]
        made = api(api.client.payment.refund, payment_id, {
            "amount": amount, "speed": "normal", "notes": notes, "receipt": reference_id(refund.idempotency_key)})
    except (BadRequestError, GatewayError) as exc:
        return GatewayResult(status="failed", decline_reason=str(exc) or "Razorpay refused the refund.")
    return _refund_result(made)


@hookimpl
def kassa_gateway_verify(gateway, settings):
    if gateway != GATEWAY_ID:
        return None
    try:
        api = _Api(settings)
        api(api.client.payment.all, {"count": 1})
    except _NotConfigured as exc:
        return VerifyResult(ok=False, message=str(exc))
    except GatewayUnavailable as exc:
        return VerifyResult(ok=False, message=str(exc))
    except (BadRequestError, GatewayError) as exc:
        return VerifyResult(ok=False, message=f"Razorpay refused the keys: {exc}")
    mode = "live" if settings.get("key_id", "").startswith("rzp_live_") else "test"
    message = f"Connected to Razorpay ({mode} mode)."
    if not settings.get("webhook_secret"):
        message += " Enter the Webhook Secret, or Razorpay's webhooks will be refused."
    return VerifyResult(ok=True, message=message)


# ---------------------------------------------------------------- webhooks

_LINK_EVENTS = {"payment_link.paid": "charge.succeeded", "payment_link.partially_paid": "charge.pending",
                "payment_link.expired": "charge.failed", "payment_link.cancelled": "charge.failed"}
_REFUND_EVENTS = {"refund.processed": "refund.succeeded", "refund.failed": "refund.failed",
                  "refund.created": "refund.pending"}


@hookimpl
def kassa_gateway_webhook(gateway, settings, headers, body):
    if gateway != GATEWAY_ID:
        return None
    secret = settings.get("webhook_secret") or ""
    if not secret:
        raise WebhookSignatureError("No Razorpay webhook secret is configured.")
    signature = header(headers, "X-Razorpay-Signature")
    if not signature:
        raise WebhookSignatureError("The Razorpay webhook has no X-Razorpay-Signature header.")
    try:
        text = body.decode("utf-8")
        razorpay.Client().utility.verify_webhook_signature(text, signature, secret)
    except UnicodeDecodeError as exc:
        raise WebhookSignatureError(f"Not a Razorpay webhook: {exc}") from exc
    except SignatureVerificationError as exc:
        raise WebhookSignatureError(f"The Razorpay webhook signature does not verify: {exc}") from exc
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise WebhookSignatureError(f"Not a Razorpay webhook: {exc}") from exc
    # Razorpay repeats X-Razorpay-Event-Id on a redelivery; the body's hash stands in without it
    event_id = header(headers, "X-Razorpay-Event-Id") or "sha256:" + hashlib.sha256(body).hexdigest()
    kind = event.get("event") or ""
    payload = event.get("payload") or {}
    if kind in _LINK_EVENTS:
        link = (payload.get("payment_link") or {}).get("entity") or {}
        result = _link_result(link)
        return [GatewayEvent(event_id=event_id, type=_LINK_EVENTS[kind], reference=link.get("id") or "",
                             status=link.get("status") or "", amount=result.amount, currency=result.currency,
                             idempotency_key=_notes(link).get(META_KEY, ""),
                             decline_reason=result.decline_reason if _LINK_EVENTS[kind] == "charge.failed" else "")]
    if kind in _REFUND_EVENTS:
        refund = (payload.get("refund") or {}).get("entity") or {}
        result = _refund_result(refund)
        return [GatewayEvent(event_id=event_id, type=_REFUND_EVENTS[kind], reference=refund.get("id") or "",
                             status=refund.get("status") or "", amount=result.amount, currency=result.currency,
                             idempotency_key=_notes(refund).get(META_KEY, ""),
                             decline_reason=result.decline_reason if kind == "refund.failed" else "")]
    return []
