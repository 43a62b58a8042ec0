"""A payment gateway for tests, through the real hook contract: it honours
idempotency keys like a real gateway (the same key returns the first result and
charges once), and can be told to decline, to time out after charging, or to
take the buyer to a "hosted page". Register it with the ``register_plugin``
fixture, or use the ``fake_gateway`` fixture. :class:`FakeGatewaySandbox` drives it
for the conformance kit (:mod:`kassa.testing.conformance`)."""
from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

from wtforms import Form, StringField

from ..contracts import (GatewayInfo, GatewayResult, GatewayUnavailable, GatewayEvent, SavedMethod,
                         VerifyResult, WebhookSignatureError)
from ..forms_api import SecretField
from ..hookspecs import hookimpl


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeGatewaySettings(Form):
    api_key = SecretField("API key")
    webhook_secret = SecretField("Webhook secret")
    label = StringField("Label", default="Fake gateway")


class FakeGateway:
    """Gateway ``fakepay`` (cards on file) and ``fakehosted`` (a hosted page)."""

    CARD, HOSTED = "fakepay", "fakehosted"
    #: a saved card the fake always declines
    DECLINED_METHOD = "pm_tok_declined_0002"

    def __init__(self):
        self.results: dict[str, GatewayResult] = {}  # idempotency key -> first answer
        self.charges: list[tuple[str, Decimal]] = []  # money actually taken: (key, amount)
        self.refunds: list[tuple[str, Decimal]] = []
        self.refund_results: dict[str, GatewayResult] = {}  # refund idempotency key -> first answer
        self.requests: dict[str, Decimal] = {}  # idempotency key -> amount asked for
        self.calls: list[tuple[str, str]] = []
        self._declines: list[str] = []
        self._timeouts = 0

    # ------------------------------------------------------------ programming the fake
    def decline_next(self, times: int = 1, reason: str = "Your card was declined.") -> None:
        self._declines += [reason] * times

    def time_out_next(self, times: int = 1) -> None:
        """The next charges are taken at the gateway but the answer never arrives."""
        self._timeouts += times

    # ------------------------------------------------------------ hooks
    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id=self.CARD, name="FakePay", card_brands=("visa", "mastercard")),
                GatewayInfo(id=self.HOSTED, name="FakeHosted", saves_cards=False, hosted_redirect=True)]

    @hookimpl
    def kassa_settings_form(self):
        return FakeGatewaySettings

    @hookimpl
    def kassa_gateway_save_method(self, gateway, settings, request):
        if gateway != self.CARD:
            return None
        self.calls.append(("save", request.idempotency_key))
        brand, _, last4 = request.token.removeprefix("tok_").partition("_")
        if not last4.isdigit():
            raise ValueError(f"unknown test token {request.token!r}")
        return SavedMethod(reference=f"pm_{request.token}", brand=brand, last4=last4[-4:], exp_month=12, exp_year=2030,
                           customer_reference=request.customer_reference or f"cus_{request.org.org_id}",
                           fingerprint=f"fp_{brand}_{last4}")

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        if gateway not in (self.CARD, self.HOSTED):
            return None
        self.calls.append(("charge", charge.idempotency_key))
        if charge.idempotency_key in self.results:
            return self.results[charge.idempotency_key]
        self.requests[charge.idempotency_key] = charge.amount
        if gateway == self.HOSTED:
            result = GatewayResult(status="requires_action", reference=f"order_{len(self.results) + 1}",
                                   redirect_url=f"http://127.0.0.1/fakehosted/{len(self.results) + 1}")
        elif self._declines or charge.payment_method == self.DECLINED_METHOD:
            result = GatewayResult(status="declined", reference=f"ch_{len(self.results) + 1}",
                                   decline_reason=self._declines.pop(0) if self._declines else "Your card was declined.")
        else:
            self.charges.append((charge.idempotency_key, charge.amount))
            result = GatewayResult(status="succeeded", reference=f"ch_{len(self.results) + 1}", amount=charge.amount,
                                   currency=charge.currency)
        self.results[charge.idempotency_key] = result
        if self._timeouts:
            self._timeouts -= 1
            raise GatewayUnavailable("read timed out")
        return result

    @hookimpl
    def kassa_gateway_complete(self, gateway, settings, reference, params):
        if gateway != self.HOSTED:
            return None
        secret = settings.get("webhook_secret") or "fake"
        if not hmac.compare_digest(params.get("signature", ""), sign(secret, reference.encode())):
            raise WebhookSignatureError("bad signature on the return")
        key = next(k for k, r in self.results.items() if r.reference == reference)
        if params.get("status") != "paid":
            result = GatewayResult(status="declined", reference=reference, decline_reason=params.get("reason", "Cancelled"))
        else:
            self.charges.append((key, Decimal(params["amount"])))
            result = GatewayResult(status="succeeded", reference=reference, amount=Decimal(params["amount"]))
        self.results[key] = result
        return result

    @hookimpl
    def kassa_gateway_refund(self, gateway, settings, refund):
        if gateway != self.CARD:
            return None
        if refund.idempotency_key not in self.refund_results:  # the same key refunds once
            self.refunds.append((refund.idempotency_key, refund.amount))
            self.refund_results[refund.idempotency_key] = GatewayResult(
                status="succeeded", reference=f"re_{len(self.refunds)}", amount=refund.amount, currency=refund.currency)
        return self.refund_results[refund.idempotency_key]

    @hookimpl
    def kassa_gateway_lookup(self, gateway, settings, idempotency_key, reference):
        if gateway not in (self.CARD, self.HOSTED):
            return None
        self.calls.append(("lookup", idempotency_key))
        return self.results.get(idempotency_key)

    @hookimpl
    def kassa_gateway_verify(self, gateway, settings):
        if gateway not in (self.CARD, self.HOSTED):
            return None
        ok = settings.get("api_key") == "good-key"
        return VerifyResult(ok=ok, message="Connected to FakePay." if ok else "FakePay refused the API key.")

    @hookimpl
    def kassa_gateway_webhook(self, gateway, settings, headers, body):
        if gateway not in (self.CARD, self.HOSTED):
            return None
        secret = settings.get("webhook_secret") or ""
        given = {k.lower(): v for k, v in headers.items()}.get("x-fake-signature", "")
        if not secret or not hmac.compare_digest(given, sign(secret, body)):
            raise WebhookSignatureError("signature mismatch")
        payload = json.loads(body)
        return [GatewayEvent(event_id=e["id"], type=e["type"], reference=e.get("reference", ""),
                             idempotency_key=e.get("key", ""), decline_reason=e.get("reason", ""))
                for e in payload["events"]]


class FakeGatewaySandbox:
    """The :class:`~kassa.testing.conformance.GatewaySandbox` of a :class:`FakeGateway`
    (``gateway_id``: ``fakepay`` or ``fakehosted``)."""

    currency = "USD"

    def __init__(self, gateway: FakeGateway, gateway_id: str = FakeGateway.CARD):
        self.gateway, self.gateway_id = gateway, gateway_id
        self.settings = {"api_key": "good-key", "webhook_secret": "whsec_fake", "label": "Fake gateway"}
        self._events = 0

    def approved_method(self) -> str:
        return "pm_tok_visa_4242" if self.gateway_id == FakeGateway.CARD else ""

    def declined_method(self) -> str:
        return FakeGateway.DECLINED_METHOD if self.gateway_id == FakeGateway.CARD else ""

    def _key(self, result: GatewayResult) -> str:
        return next(k for k, r in self.gateway.results.items() if r.reference == result.reference)

    def _signed(self, reference: str) -> str:
        return sign(self.settings["webhook_secret"], reference.encode())

    def approve(self, result: GatewayResult) -> dict:
        if self.gateway_id != FakeGateway.HOSTED:
            raise NotImplementedError("fakepay charges saved cards; there is no page to approve on")
        amount = self.gateway.requests[self._key(result)]
        return {"status": "paid", "amount": str(amount), "signature": self._signed(result.reference)}

    def decline(self, result: GatewayResult) -> dict:
        if self.gateway_id != FakeGateway.HOSTED:
            raise NotImplementedError("fakepay charges saved cards; there is no page to decline on")
        return {"status": "failed", "reason": "The buyer's bank refused the payment.",
                "signature": self._signed(result.reference)}

    def charges_taken(self, idempotency_key: str) -> int:
        return sum(1 for key, _ in self.gateway.charges if key == idempotency_key)

    def signed_webhook(self) -> tuple[dict, bytes]:
        self._events += 1
        body = json.dumps({"events": [{"id": f"evt_conf_{self._events}", "type": "charge.succeeded",
                                       "reference": "ch_1", "key": "conf-webhook-1"}]}).encode()
        return {"X-Fake-Signature": sign(self.settings["webhook_secret"], body)}, body
