"""A small Razorpay on 127.0.0.1 (Razorpay publishes no OpenAPI document to serve
with Prism). It keeps Payment Links, payments and refunds with the shapes and rules
Razorpay documents (basic auth, amounts in paise of at least ₹1, unique
reference_id, unknown fields refused) and signs callbacks and webhooks with
Razorpay's HMAC-SHA256 scheme, which the plugin checks with the SDK's own utility."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from kassa.testing.peers import PeerServer

KEY_ID = "rzp_test_KassaKey01"
KEY_SECRET = "kassaKeySecret0123456789"
WEBHOOK_SECRET = "kassa-webhook-secret"
LINK_FIELDS = {"amount", "currency", "accept_partial", "first_min_partial_amount", "description", "customer",
               "expire_by", "reference_id", "notify", "reminder_enable", "notes", "callback_url",
               "callback_method", "upi_link", "options"}


def _bad(description, field=None):
    return 400, {"error": {"code": "BAD_REQUEST_ERROR", "description": description, "source": "business",
                           "step": "payment_initiation", "reason": "input_validation_failed", "metadata": {},
                           "field": field}}


def hmac_hex(message: str, secret: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeRazorpay:
    def __init__(self):
        self.links, self.payments, self.refunds = {}, {}, {}
        self.server = PeerServer()
        for method, path, handler in (
                ("POST", "/v1/payment_links", self.create_link), ("GET", "/v1/payment_links", self.list_links),
                ("GET", r"/v1/payment_links/([^/]+)", self.fetch_link),
                ("GET", "/v1/payments", self.list_payments), ("GET", r"/v1/payments/([^/]+)", self.fetch_payment),
                ("GET", r"/v1/payments/([^/]+)/refunds", self.list_refunds),
                ("POST", r"/v1/payments/([^/]+)/refund", self.refund)):
            self.server.route(method, path, self._authenticated(handler))

    def _authenticated(self, handler):
        expected = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()

        def guarded(request):
            if request.header("authorization") != expected:
                return 401, {"error": {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed",
                                       "source": "NA", "step": "NA", "reason": "NA", "metadata": {}}}
            return handler(request)

        return guarded

    def create_link(self, request):
        body = request.json()
        extra = sorted(set(body) - LINK_FIELDS)
        if extra:
            return _bad(f"{', '.join(extra)} is/are not required and should not be sent", extra[0])
        if not isinstance(body.get("amount"), int) or body["amount"] < 100:
            return _bad("The amount must be atleast INR 1.00", "amount")
        if body.get("currency") != "INR":
            return _bad("The currency provided is not supported", "currency")
        if len(body.get("reference_id", "")) > 40:
            return _bad("The reference id may not be greater than 40 characters.", "reference_id")
        if any(link["reference_id"] == body.get("reference_id") for link in self.links.values()):
            return _bad(f"Payment Link with reference id {body['reference_id']} already exists", "reference_id")
        if body.get("callback_method") and not body.get("callback_url"):
            return _bad("The callback url field is required when callback method is present.", "callback_url")
        link_id = f"plink_Kassa{len(self.links):09d}"
        self.links[link_id] = {
            "accept_partial": body.get("accept_partial", False), "amount": body["amount"], "amount_paid": 0,
            "callback_method": body.get("callback_method", ""), "callback_url": body.get("callback_url", ""),
            "cancelled_at": 0, "created_at": 1767603600, "currency": "INR", "customer": body.get("customer", {}),
            "description": body.get("description", ""), "expire_by": 0, "expired_at": 0,
            "first_min_partial_amount": 0, "id": link_id, "notes": body.get("notes") or [],
            "notify": body.get("notify", {}), "payments": None, "reference_id": body.get("reference_id", ""),
            "reminder_enable": body.get("reminder_enable", False), "reminders": [],
            "short_url": f"https://rzp.io/i/k{len(self.links)}", "status": "created", "updated_at": 1767603600,
            "upi_link": False, "user_id": ""}
        return 200, self.links[link_id]

    def list_links(self, request):
        wanted = request.query.get("reference_id", [None])[0]
        return 200, {"payment_links": [link for link in self.links.values()
                                       if wanted is None or link["reference_id"] == wanted]}

    def fetch_link(self, request):
        link = self.links.get(request.match.group(1))
        return (200, link) if link else _bad("The id provided does not exist", "id")

    def list_payments(self, request):
        return 200, {"entity": "collection", "count": 0, "items": []}

    def fetch_payment(self, request):
        payment = self.payments.get(request.match.group(1))
        return (200, payment) if payment else _bad("The id provided does not exist", "id")

    def list_refunds(self, request):
        items = [r for r in self.refunds.values() if r["payment_id"] == request.match.group(1)]
        return 200, {"entity": "collection", "count": len(items), "items": items}

    def refund(self, request):
        payment = self.payments.get(request.match.group(1))
        body = request.json()
        if payment is None:
            return _bad("The id provided does not exist", "id")
        if body["amount"] > payment["amount"] - payment["amount_refunded"]:
            return _bad("The refund amount provided is greater than amount captured", "amount")
        refund_id = f"rfnd_Kassa{len(self.refunds):09d}"
        payment["amount_refunded"] += body["amount"]
        self.refunds[refund_id] = {"id": refund_id, "entity": "refund", "amount": body["amount"], "currency": "INR",
                                   "payment_id": payment["id"], "notes": body.get("notes") or [],
                                   "receipt": body.get("receipt"), "acquirer_data": {"arn": None},
                                   "created_at": 1767603700, "batch_id": None, "status": "processed",
                                   "speed_processed": "normal", "speed_requested": body.get("speed", "normal")}
        return 200, self.refunds[refund_id]

    def pay(self, link_id, status="paid"):
        """The buyer pays on Razorpay's page; returns the signed callback parameters."""
        link = self.links[link_id]
        payment_id = f"pay_Kassa{len(self.payments):010d}"
        self.payments[payment_id] = {"id": payment_id, "entity": "payment", "amount": link["amount"],
                                     "currency": "INR", "status": "captured", "method": "upi",
                                     "amount_refunded": 0, "notes": link["notes"], "error_description": None}
        link.update(status=status, amount_paid=link["amount"] if status == "paid" else 0,
                    payments=[{"amount": link["amount"], "created_at": 1767603650, "method": "upi",
                               "payment_id": payment_id, "plink_id": link_id, "status": "captured",
                               "updated_at": 1767603650}])
        return self._callback(link_id, status, payment_id)

    def _callback(self, link_id, status, payment_id):
        """The parameters Razorpay adds to the callback URL, signed with the Key Secret."""
        link = self.links[link_id]
        message = f"{link_id}|{link['reference_id']}|{status}|{payment_id}"
        return {"razorpay_payment_id": payment_id, "razorpay_payment_link_id": link_id,
                "razorpay_payment_link_reference_id": link["reference_id"],
                "razorpay_payment_link_status": status, "razorpay_signature": hmac_hex(message, KEY_SECRET)}


class RazorpaySandbox(FakeRazorpay):
    """Satisfies :class:`kassa.testing.conformance.GatewaySandbox` for gateway ``razorpay``."""

    currency = "INR"

    def __init__(self):
        super().__init__()
        self._events = 0

    def __enter__(self) -> "RazorpaySandbox":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def settings(self) -> dict:
        return {"key_id": KEY_ID, "key_secret": KEY_SECRET, "webhook_secret": WEBHOOK_SECRET,
                "api_base": self.server.url, "timeout": 5}

    def approved_method(self) -> str:
        return ""

    declined_method = approved_method

    def approve(self, result) -> dict:
        """The buyer pays on the link's page; Razorpay redirects with signed parameters."""
        link = self.links[result.reference]
        if link["status"] == "paid":  # paid already: the redirect repeats the first payment's parameters
            payment_id = link["payments"][-1]["payment_id"]
            return self._callback(result.reference, "paid", payment_id)
        return self.pay(result.reference)

    def decline(self, result) -> dict:
        """The link is cancelled unpaid; the buyer comes back with a signed, unpaid status."""
        link = self.links[result.reference]
        link["status"] = "cancelled"
        return self._callback(result.reference, "cancelled", "")

    def charges_taken(self, idempotency_key: str) -> int:
        return sum(1 for p in self.payments.values()
                   if p["status"] == "captured" and isinstance(p["notes"], dict)
                   and p["notes"].get("kassa_idempotency_key") == idempotency_key)

    def signed_webhook(self) -> tuple[dict, bytes]:
        self._events += 1
        link = {"id": "plink_Kassa000000000", "amount": 118000, "amount_paid": 118000, "currency": "INR",
                "status": "paid", "reference_id": "kassa-conformance", "notes": {"kassa_idempotency_key": "conf-1"}}
        body = json.dumps({"entity": "event", "account_id": "acc_KassaTest01", "event": "payment_link.paid",
                           "contains": ["payment_link"], "payload": {"payment_link": {"entity": link}},
                           "created_at": 1767603660}).encode()
        return {"X-Razorpay-Signature": hmac_hex(body.decode(), WEBHOOK_SECRET),
                "X-Razorpay-Event-Id": f"KassaEvt{self._events:06d}"}, body
