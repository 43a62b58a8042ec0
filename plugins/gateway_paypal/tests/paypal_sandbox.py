"""A small PayPal on 127.0.0.1: OAuth, Orders v2, captures, refunds and webhook
verification kept in memory the way PayPal documents them (``PayPal-Request-Id``
replays the first order; captures only of approved orders). Webhooks are signed
with PayPal's algorithm (SHA256withRSA over
``transmission_id|transmission_time|webhook_id|crc32(body)``) and verified by the
``verify-webhook-signature`` endpoint, as PayPal does."""
from __future__ import annotations

import base64
import json
import zlib
from collections import Counter

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kassa.testing.peers import PeerRequest, PeerServer

CLIENT_ID = "AXkassaClientId"
CLIENT_SECRET = "EKkassaClientSecret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"
CERT_URL = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-kassa"


def oauth_handler():
    """A handler for PayPal's OAuth token endpoint (not part of the Orders document):
    client-credentials with basic auth, as PayPal documents it; counts the tokens issued."""
    issued = []

    def token(request: PeerRequest):
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.header("authorization") != expected or request.form() != {"grant_type": "client_credentials"}:
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        issued.append(f"A21AAkassa{len(issued)}")
        return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": issued[-1],
                     "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
                     "nonce": "2026-01-05T09:00:00Znonce"}

    token.issued = issued
    return token


def _error(status, name, issue, description):
    return status, {"name": name, "message": description, "debug_id": "f5a4c3e2b1a09",
                    "details": [{"issue": issue, "description": description}]}


class FakePayPal:
    """Orders, captures, refunds, OAuth and webhook verification, kept in memory."""

    def __init__(self, oauth):
        self.orders, self.by_request_id, self.refunds, self.refunds_by_request_id = {}, {}, {}, {}
        self.decline_next_capture = False
        self.revoked = set()
        self.taken = Counter()  # custom_id (Kassa's idempotency key) -> captures
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.oauth = oauth
        self.server = PeerServer()
        self.server.route("POST", "/v1/oauth2/token", oauth)
        self.server.route("POST", "/v2/checkout/orders", self.create)
        self.server.route("GET", r"/v2/checkout/orders/([^/]+)", self.show)
        self.server.route("POST", r"/v2/checkout/orders/([^/]+)/capture", self.capture)
        self.server.route("POST", r"/v2/payments/captures/([^/]+)/refund", self.refund)
        self.server.route("POST", "/v1/notifications/verify-webhook-signature", self.verify)

    def _authorised(self, request):
        token = request.header("authorization").removeprefix("Bearer ")
        return token in self.oauth.issued and token not in self.revoked

    def _guard(self, request):
        if not self._authorised(request):
            return 401, {"error": "invalid_token", "error_description": "Token signature verification failed"}
        return None

    def create(self, request):
        if denied := self._guard(request):
            return denied
        request_id = request.header("paypal-request-id")
        if request_id in self.by_request_id:
            return 200, self.orders[self.by_request_id[request_id]]
        body = request.json()
        order_id = f"5O19{len(self.orders):04d}TN364715T"
        self.orders[order_id] = {
            "id": order_id, "intent": body["intent"], "status": "PAYER_ACTION_REQUIRED",
            "purchase_units": body["purchase_units"],
            "payment_source": {"paypal": {}},
            "links": [{"href": f"https://api-m.sandbox.paypal.com/v2/checkout/orders/{order_id}", "rel": "self",
                       "method": "GET"},
                      {"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}", "rel": "payer-action",
                       "method": "GET"}]}
        self.by_request_id[request_id] = order_id
        return 200, self.orders[order_id]

    def approve(self, order_id):
        """The buyer approves on PayPal's page (only an order still waiting for the buyer)."""
        if self.orders[order_id]["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
            self.orders[order_id]["status"] = "APPROVED"

    def show(self, request):
        if denied := self._guard(request):
            return denied
        order = self.orders.get(request.match.group(1))
        if order is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID",
                          "Specified resource ID does not exist. Please check the resource ID and try again.")
        return 200, order

    def capture(self, request):
        if denied := self._guard(request):
            return denied
        order = self.orders.get(request.match.group(1))
        if order is None:
            return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        if order["status"] == "COMPLETED":
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", "Order already captured.")
        if order["status"] != "APPROVED":
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED",
                          "Payer has not yet approved the Order for payment.")
        if self.decline_next_capture:
            self.decline_next_capture = False
            return _error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED",
                          "The instrument presented was either declined by the processor or bank, or it can't be "
                          "used for this payment.")
        unit = order["purchase_units"][0]
        order["status"] = "COMPLETED"
        self.taken[unit.get("custom_id") or ""] += 1
        unit["payments"] = {"captures": [{
            "id": f"3C6{order['id'][4:]}", "status": "COMPLETED", "amount": unit["amount"],
            "custom_id": unit.get("custom_id"), "invoice_id": unit.get("invoice_id"), "final_capture": True}]}
        return 201, order

    def refund(self, request):
        if denied := self._guard(request):
            return denied
        request_id = request.header("paypal-request-id")
        if request_id and request_id in self.refunds_by_request_id:  # PayPal replays a repeated request id
            return 201, self.refunds[self.refunds_by_request_id[request_id]]
        body = request.json()
        refund = {"id": f"1JU{len(self.refunds):014d}", "status": "COMPLETED", "amount": body["amount"],
                  "custom_id": body.get("custom_id"), "capture": request.match.group(1)}
        self.refunds[refund["id"]] = refund
        if request_id:
            self.refunds_by_request_id[request_id] = refund["id"]
        return 201, refund

    def sign(self, transmission_id, transmission_time, body: bytes, webhook_id=WEBHOOK_ID, key=None):
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()
        signature = (key or self.key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def verify(self, request):
        if denied := self._guard(request):
            return denied
        text = request.body.decode()
        # the event exactly as the caller sent it: PayPal checks the CRC32 of those bytes
        start = text.index('"webhook_event"')
        start = text.index(":", start) + 1
        while text[start].isspace():
            start += 1
        _, end = json.JSONDecoder().raw_decode(text, start)
        event_bytes = text[start:end].encode()
        fields = json.loads(text)
        message = (f"{fields['transmission_id']}|{fields['transmission_time']}|{fields['webhook_id']}|"
                   f"{zlib.crc32(event_bytes)}").encode()
        try:
            self.key.public_key().verify(base64.b64decode(fields["transmission_sig"]), message, padding.PKCS1v15(),
                                         hashes.SHA256())
            ok = fields["auth_algo"] == "SHA256withRSA" and fields["cert_url"] == CERT_URL
        except Exception:
            ok = False
        return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}


class PayPalSandbox(FakePayPal):
    """Satisfies :class:`kassa.testing.conformance.GatewaySandbox` for gateway ``paypal``."""

    currency = "USD"

    def __init__(self):
        super().__init__(oauth_handler())
        self._events = 0

    def __enter__(self) -> "PayPalSandbox":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def settings(self) -> dict:
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": WEBHOOK_ID, "sandbox": True,
                "api_base": self.server.url, "timeout": 5}

    def approved_method(self) -> str:
        return ""

    declined_method = approved_method

    def approve(self, result) -> dict:  # noqa: D102 - also FakePayPal.approve(order_id) for the behaviour tests
        if isinstance(result, str):
            return super().approve(result)
        super().approve(result.reference)
        return {"token": result.reference, "PayerID": "QYR5Z8XDVJNXQ"}

    def decline(self, result) -> dict:
        """The buyer cancels on PayPal's page: PayPal sends them to the cancel_url with the token."""
        return {"token": result.reference, "cancelled": "1"}

    def charges_taken(self, idempotency_key: str) -> int:
        return self.taken[idempotency_key]

    def signed_webhook(self) -> tuple[dict, bytes]:
        self._events += 1
        body = json.dumps({"id": f"WH-58D329510W468432D-{self._events:04d}", "event_version": "1.0",
                           "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture",
                           "summary": "Payment completed for $ 49.90 USD",
                           "resource": {"id": "3C60001TN364715T", "status": "COMPLETED",
                                        "amount": {"currency_code": "USD", "value": "49.90"},
                                        "custom_id": "conf-webhook-1", "final_capture": True,
                                        "supplementary_data": {"related_ids": {"order_id": "5O190000TN364715T"}}}})
        body = body.encode()
        headers = {"PAYPAL-AUTH-ALGO": "SHA256withRSA", "PAYPAL-CERT-URL": CERT_URL,
                   "PAYPAL-TRANSMISSION-ID": f"69cd13f0-d67a-11e5-baa3-{self._events:012d}",
                   "PAYPAL-TRANSMISSION-TIME": "2026-01-05T09:01:01Z"}
        headers["PAYPAL-TRANSMISSION-SIG"] = self.sign(headers["PAYPAL-TRANSMISSION-ID"],
                                                       headers["PAYPAL-TRANSMISSION-TIME"], body)
        return headers, body
