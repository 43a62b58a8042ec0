"""A small stateful Stripe on 127.0.0.1 for the conformance kit and behaviour tests.

It keeps PaymentIntents and refunds the way Stripe documents them: bearer secret
key, form-encoded bodies, amounts in minor units, the test payment methods
``pm_card_visa`` (succeeds) and ``pm_card_chargeDeclined`` (a 402 card_error
carrying the PaymentIntent left in ``requires_payment_method``), lists newest
first with ``starting_after`` paging, and the ``Idempotency-Key`` header: a repeated
key replays the first response, and the same key with other parameters is refused
with an ``idempotency_error``. Webhooks are signed with Stripe's scheme (the SDK's
own ``WebhookSignature``)."""
from __future__ import annotations

import json
import threading
from collections import Counter

import stripe

from kassa.testing.peers import PeerServer

SECRET = "sk_test_51KassaContractTests"
WEBHOOK_SECRET = "whsec_kassatestsecret"
APPROVED, DECLINED = "pm_card_visa", "pm_card_chargeDeclined"
META_KEY = "metadata[kassa_idempotency_key]"


def _error(status, kind, message, **extra):
    return status, {"error": {"type": kind, "message": message, **extra}}


def _metadata(form: dict) -> dict:
    return {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}


class StripeSandbox:
    """Satisfies :class:`kassa.testing.conformance.GatewaySandbox` for gateway ``stripe``."""

    currency = "USD"

    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.taken: Counter = Counter()  # kassa idempotency key -> times money was taken
        self.replays: dict[str, tuple[dict, tuple]] = {}  # Idempotency-Key -> (params, first answer)
        self._lock = threading.Lock()
        self._events = 0
        self.server = PeerServer()
        for method, path, handler in (
                ("POST", "/v1/payment_intents", self.create_intent), ("GET", "/v1/payment_intents", self.list_intents),
                ("GET", r"/v1/payment_intents/([^/]+)", self.retrieve_intent),
                ("POST", "/v1/refunds", self.create_refund), ("GET", "/v1/refunds", self.list_refunds),
                ("GET", r"/v1/refunds/([^/]+)", self.retrieve_refund), ("GET", "/v1/balance", self.balance)):
            self.server.route(method, path, self._guarded(handler))

    # ------------------------------------------------------------ GatewaySandbox
    @property
    def settings(self) -> dict:
        return {"secret_key": SECRET, "public_key": "pk_test_51KassaContractTests", "webhook_secret": WEBHOOK_SECRET,
                "api_base": self.server.url, "timeout": 5}

    def approved_method(self) -> str:
        return APPROVED

    def declined_method(self) -> str:
        return DECLINED

    def approve(self, result):
        raise NotImplementedError("Stripe charges saved cards off-session: there is no page to approve on")

    decline = approve

    def charges_taken(self, idempotency_key: str) -> int:
        return self.taken[idempotency_key]

    def signed_webhook(self) -> tuple[dict, bytes]:
        self._events += 1
        intent = {"id": "pi_3KassaHook", "object": "payment_intent", "amount": 2500, "amount_received": 2500,
                  "currency": "usd", "status": "succeeded", "metadata": {"kassa_idempotency_key": "conf-webhook-1"},
                  "last_payment_error": None, "next_action": None, "cancellation_reason": None}
        payload = json.dumps({"id": f"evt_1Kassa{self._events:04d}", "object": "event", "api_version": "2023-08-16",
                              "created": 1767600000, "type": "payment_intent.succeeded", "livemode": False,
                              "pending_webhooks": 1, "data": {"object": intent}})
        header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
        return {"Stripe-Signature": header}, payload.encode()

    # ------------------------------------------------------------ server
    def __enter__(self) -> "StripeSandbox":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def _guarded(self, handler):
        def guarded(request):
            if request.header("authorization") != f"Bearer {SECRET}":
                return _error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
            if request.method != "POST":
                return handler(request)
            key, params = request.header("idempotency-key"), request.form()
            with self._lock:
                if key and key in self.replays:
                    first_params, answer = self.replays[key]
                    if first_params != params:
                        return _error(400, "idempotency_error",
                                      "Keys for idempotent requests can only be used with the same parameters "
                                      "they were first used with. Try using a key other than "
                                      f"'{key}' if you meant to execute a different request.")
                    return answer[0], answer[1], {**answer[2], "Idempotent-Replayed": "true"}
                status, body = handler(request)
                if key:
                    self.replays[key] = (params, (status, body, {}))
                return status, body
        return guarded

    def _intent(self, form, status):
        intent_id = f"pi_3Kassa{len(self.intents):06d}"
        amount = int(form["amount"])
        self.intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": amount,
            "amount_received": amount if status == "succeeded" else 0, "currency": form["currency"],
            "customer": form.get("customer"), "description": form.get("description"), "status": status,
            "payment_method": form.get("payment_method"), "metadata": _metadata(form), "latest_charge": None,
            "last_payment_error": None, "next_action": None, "cancellation_reason": None, "livemode": False,
            "created": 1767600000 + len(self.intents)}
        return self.intents[intent_id]

    def create_intent(self, request):
        form = request.form()
        if not form.get("amount", "").isdigit() or int(form["amount"]) < 50:
            return _error(400, "invalid_request_error", "Amount must be at least $0.50 usd", param="amount",
                          code="amount_too_small")
        method = form.get("payment_method", "")
        if method not in (APPROVED, DECLINED):
            return _error(400, "invalid_request_error", f"No such PaymentMethod: '{method}'", param="payment_method",
                          code="resource_missing")
        if form.get("confirm") != "true":
            return 200, self._intent(form, "requires_confirmation")
        if method == DECLINED:
            intent = self._intent(form, "requires_payment_method")
            intent["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                            "decline_code": "generic_decline", "message": "Your card was declined."}
            return _error(402, "card_error", "Your card was declined.", code="card_declined",
                          decline_code="generic_decline", payment_intent=intent)
        intent = self._intent(form, "succeeded")
        intent["latest_charge"] = f"ch_3Kassa{len(self.intents):06d}"
        self.taken[intent["metadata"].get("kassa_idempotency_key", "")] += 1
        return 200, intent

    def _page(self, request, items, url):
        items = sorted(items, key=lambda i: i["created"], reverse=True)
        after = request.query.get("starting_after", [None])[0]
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        limit = int(request.query.get("limit", ["10"])[0])
        return 200, {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]}

    def list_intents(self, request):
        return self._page(request, self.intents.values(), "/v1/payment_intents")

    def retrieve_intent(self, request):
        intent = self.intents.get(request.match.group(1))
        if intent is None:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{request.match.group(1)}'",
                          code="resource_missing")
        return 200, intent

    def create_refund(self, request):
        form = request.form()
        intent = self.intents.get(form.get("payment_intent", "")) or next(
            (i for i in self.intents.values() if i["latest_charge"] and i["latest_charge"] == form.get("charge")), None)
        if intent is None or intent["status"] != "succeeded":
            return _error(400, "invalid_request_error", "No such charge or payment_intent to refund.",
                          code="resource_missing")
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
        amount = int(form.get("amount") or intent["amount_received"] - refunded)
        if amount > intent["amount_received"] - refunded:
            return _error(400, "invalid_request_error", "Refund amount is greater than unrefunded amount on charge",
                          code="amount_too_large")
        refund_id = f"re_3Kassa{len(self.refunds):06d}"
        self.refunds[refund_id] = {"id": refund_id, "object": "refund", "amount": amount,
                                   "currency": intent["currency"], "payment_intent": intent["id"],
                                   "charge": intent["latest_charge"], "reason": form.get("reason"),
                                   "metadata": _metadata(form), "status": "succeeded",
                                   "created": 1767700000 + len(self.refunds)}
        return 200, self.refunds[refund_id]

    def list_refunds(self, request):
        return self._page(request, self.refunds.values(), "/v1/refunds")

    def retrieve_refund(self, request):
        refund = self.refunds.get(request.match.group(1))
        if refund is None:
            return _error(404, "invalid_request_error", f"No such refund: '{request.match.group(1)}'",
                          code="resource_missing")
        return 200, refund

    def balance(self, request):
        return 200, {"object": "balance", "livemode": False,
                     "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
                     "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]}
