"""Stateful behaviour the stateless Prism mock cannot show: declines, network
failures, retries, reconciliation and signed webhooks. A PeerServer on 127.0.0.1
answers with the response bodies Stripe documents; the stripe SDK is the real one."""
import json
import time
from decimal import Decimal

import pytest
import stripe

from kassa.contracts import ChargeRequest, GatewayUnavailable, RefundRequest, SaveMethodRequest, \
    WebhookSignatureError
from kassa.testing.peers import PeerServer, stalled_server

WEBHOOK_SECRET = "whsec_kassatestsecret"


def _intent(status, **extra):
    body = {"id": "pi_3Kassa", "object": "payment_intent", "amount": 2500, "amount_received": 0, "currency": "usd",
            "status": status, "metadata": {"kassa_idempotency_key": "inv-9-attempt-1"}, "last_payment_error": None,
            "next_action": None, "cancellation_reason": None}
    body.update(extra)
    return body


def _charge(buyer, key="inv-9-attempt-1", amount="25.00"):
    return ChargeRequest(idempotency_key=key, amount=Decimal(amount), currency="USD", org=buyer,
                         description="Invoice INV-9", payment_method="pm_1", customer_reference="cus_1",
                         invoice_number="INV-9")


@pytest.fixture
def server():
    with PeerServer() as peer:
        yield peer


def test_a_succeeded_payment_intent_is_a_succeeded_charge(hooks, server, stripe_settings, buyer):
    server.route("POST", "/v1/payment_intents", lambda r: (200, _intent("succeeded", amount_received=2500)))
    result = hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(server.url), charge=_charge(buyer))
    assert (result.status, result.reference, result.amount, result.currency) == \
        ("succeeded", "pi_3Kassa", Decimal("25.00"), "USD")
    assert isinstance(result.amount, Decimal)


def test_a_card_decline_is_declined_with_stripes_message(hooks, server, stripe_settings, buyer):
    error = {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                       "message": "Your card has insufficient funds.", "charge": "ch_3Kassa",
                       "payment_intent": _intent("requires_payment_method")}}
    server.route("POST", "/v1/payment_intents", lambda r: (402, error))
    result = hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(server.url), charge=_charge(buyer))
    assert result.status == "declined" and result.decline_reason == "Your card has insufficient funds."
    assert result.reference == "pi_3Kassa" and result.raw_status == "insufficient_funds"
    assert len(server.requests) == 1  # a decline is an answer: never retried


def test_processing_is_pending_and_requires_action_carries_the_redirect(hooks, server, stripe_settings, buyer):
    answers = iter([_intent("processing"), _intent("requires_action", next_action={
        "type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/abc", "return_url": ""}})])
    server.route("POST", "/v1/payment_intents", lambda r: (200, next(answers)))
    s = stripe_settings(server.url)
    assert hooks.kassa_gateway_charge(gateway="stripe", settings=s, charge=_charge(buyer)).status == "pending"
    action = hooks.kassa_gateway_charge(gateway="stripe", settings=s, charge=_charge(buyer, key="k2"))
    assert action.status == "requires_action" and action.redirect_url == "https://hooks.stripe.com/3ds/abc"


def test_an_invalid_request_fails_with_stripes_message(hooks, server, stripe_settings, buyer):
    error = {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "payment_method",
                       "message": "No such PaymentMethod: 'pm_1'"}}
    server.route("POST", "/v1/payment_intents", lambda r: (400, error))
    result = hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(server.url), charge=_charge(buyer))
    assert (result.status, result.decline_reason) == ("failed", "No such PaymentMethod: 'pm_1'")


def test_a_server_error_is_retried_once_with_the_same_key_then_unavailable(hooks, server, stripe_settings, buyer):
    server.route("POST", "/v1/payment_intents", lambda r: (500, {"error": {"type": "api_error",
                                                                           "message": "Something went wrong"}}))
    with pytest.raises(GatewayUnavailable):
        hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(server.url), charge=_charge(buyer))
    assert [r.header("idempotency-key") for r in server.requests] == ["inv-9-attempt-1", "inv-9-attempt-1"]


def test_a_gateway_that_never_answers_is_unavailable_within_the_timeout(hooks, stripe_settings, buyer):
    with stalled_server() as url:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(url, timeout=1),
                                       charge=_charge(buyer))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_refund(gateway="stripe", settings=stripe_settings(url, timeout=1),
                                       refund=RefundRequest(idempotency_key="r", charge_reference="pi_1",
                                                            amount=Decimal("1.00"), currency="USD"))
    assert time.monotonic() - started < 15


def test_a_closed_port_is_unavailable_for_every_call(hooks, stripe_settings, buyer):
    with PeerServer() as gone:
        url = gone.url
    s = stripe_settings(url, timeout=1)
    with pytest.raises(GatewayUnavailable):
        hooks.kassa_gateway_charge(gateway="stripe", settings=s, charge=_charge(buyer))
    with pytest.raises(GatewayUnavailable):
        hooks.kassa_gateway_save_method(gateway="stripe", settings=s, request=SaveMethodRequest(
            idempotency_key="s", org=buyer, token="pm_card_visa"))
    with pytest.raises(GatewayUnavailable):
        hooks.kassa_gateway_lookup(gateway="stripe", settings=s, idempotency_key="k", reference="pi_1")
    verify = hooks.kassa_gateway_verify(gateway="stripe", settings=s)
    assert not verify.ok and verify.message.startswith("Could not reach Stripe")


def test_a_card_refused_on_save_raises_with_stripes_message(hooks, server, stripe_settings, buyer):
    from kassa_gateway_stripe.plugin import StripeMethodError

    server.route("POST", r"/v1/payment_methods/[^/]+/attach", lambda r: (402, {"error": {
        "type": "card_error", "code": "card_declined", "message": "Your card was declined."}}))
    with pytest.raises(StripeMethodError, match="Your card was declined."):
        hooks.kassa_gateway_save_method(gateway="stripe", settings=stripe_settings(server.url), request=SaveMethodRequest(
            idempotency_key="s", org=buyer, token="pm_card_chargeDeclined", customer_reference="cus_1"))


def test_lookup_by_key_pages_through_recent_intents_to_the_one_with_our_key(hooks, server, stripe_settings):
    others = [_intent("succeeded", id=f"pi_other{i}", metadata={}) for i in range(3)]
    pages = {None: {"object": "list", "url": "/v1/payment_intents", "has_more": True, "data": others},
             "pi_other2": {"object": "list", "url": "/v1/payment_intents", "has_more": False,
                           "data": [_intent("succeeded", amount_received=2500)]}}
    server.route("GET", "/v1/payment_intents", lambda r: (200, pages[r.query.get("starting_after", [None])[0]]))
    found = hooks.kassa_gateway_lookup(gateway="stripe", settings=stripe_settings(server.url),
                                       idempotency_key="inv-9-attempt-1", reference="")
    assert (found.status, found.reference, found.amount) == ("succeeded", "pi_3Kassa", Decimal("25.00"))
    assert [r.query.get("starting_after") for r in server.requests] == [None, ["pi_other2"]]


def test_lookup_of_an_unknown_reference_is_none(hooks, server, stripe_settings):
    server.route("GET", r"/v1/payment_intents/.+", lambda r: (404, {"error": {
        "type": "invalid_request_error", "code": "resource_missing", "message": "No such payment_intent"}}))
    assert hooks.kassa_gateway_lookup(gateway="stripe", settings=stripe_settings(server.url), idempotency_key="k",
                                      reference="pi_missing") is None


def test_verify_shows_stripes_error_for_a_wrong_key(hooks, server, stripe_settings):
    server.route("GET", "/v1/balance", lambda r: (401, {"error": {
        "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****ests"}}))
    result = hooks.kassa_gateway_verify(gateway="stripe", settings=stripe_settings(server.url))
    assert not result.ok and "Invalid API Key provided: sk_test_****ests" in result.message


def test_verify_without_the_network_when_keys_do_not_match_or_are_missing(hooks, stripe_settings, buyer):
    mixed = hooks.kassa_gateway_verify(gateway="stripe", settings=stripe_settings(public_key="pk_live_abc"))
    assert not mixed.ok and "live key" in mixed.message
    empty = hooks.kassa_gateway_verify(gateway="stripe", settings=stripe_settings(secret_key=""))
    assert not empty.ok and "Secret Key" in empty.message
    failed = hooks.kassa_gateway_charge(gateway="stripe", settings={}, charge=_charge(buyer))
    assert failed.status == "failed" and "Secret Key" in failed.decline_reason


# ---------------------------------------------------------------- webhooks


def _event(kind, obj, event_id="evt_1Kassa"):
    return json.dumps({"id": event_id, "object": "event", "api_version": "2023-08-16", "created": 1767600000,
                       "type": kind, "livemode": False, "pending_webhooks": 1,
                       "data": {"object": obj}})


def _signed(payload, secret=WEBHOOK_SECRET, timestamp=None):
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)}


def test_a_signed_payment_intent_event_becomes_a_charge_event(hooks, stripe_settings):
    payload = _event("payment_intent.succeeded", _intent("succeeded", amount_received=2500))
    (event,) = hooks.kassa_gateway_webhook(gateway="stripe", settings=stripe_settings(), headers=_signed(payload),
                                           body=payload.encode())
    assert (event.event_id, event.type, event.reference, event.status) == \
        ("evt_1Kassa", "charge.succeeded", "pi_3Kassa", "succeeded")
    assert (event.amount, event.currency, event.idempotency_key) == (Decimal("25.00"), "USD", "inv-9-attempt-1")


def test_failed_payment_and_refund_events(hooks, stripe_settings):
    failed = _event("payment_intent.payment_failed", _intent("requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "message": "Your card was declined."}), "evt_2")
    refund = _event("refund.updated", {"id": "re_9", "object": "refund", "amount": 500, "currency": "usd",
                                       "status": "succeeded", "payment_intent": "pi_3Kassa",
                                       "metadata": {"kassa_idempotency_key": "refund-9-1"}}, "evt_3")
    s = stripe_settings()
    (f,) = hooks.kassa_gateway_webhook(gateway="stripe", settings=s, headers=_signed(failed), body=failed.encode())
    (r,) = hooks.kassa_gateway_webhook(gateway="stripe", settings=s, headers={"stripe-signature": _signed(refund)[
        "Stripe-Signature"]}, body=refund.encode())
    assert (f.type, f.reference, f.decline_reason) == ("charge.failed", "pi_3Kassa", "Your card was declined.")
    assert (r.type, r.reference, r.amount, r.idempotency_key) == ("refund.succeeded", "re_9", Decimal("5.00"),
                                                                  "refund-9-1")


def test_an_event_kassa_does_not_use_is_verified_and_ignored(hooks, stripe_settings):
    payload = _event("customer.created", {"id": "cus_1", "object": "customer"})
    assert hooks.kassa_gateway_webhook(gateway="stripe", settings=stripe_settings(), headers=_signed(payload),
                                       body=payload.encode()) == []


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "no header", "too old", "no secret configured"])
def test_a_webhook_that_does_not_verify_is_refused(hooks, stripe_settings, case):
    payload = _event("payment_intent.succeeded", _intent("succeeded", amount_received=2500))
    headers, body, s = _signed(payload), payload.encode(), stripe_settings()
    if case == "wrong secret":
        headers = _signed(payload, secret="whsec_someoneelse")
    elif case == "tampered body":
        body = payload.replace('"amount": 2500', '"amount": 1').encode()
        assert body != payload.encode()
    elif case == "no header":
        headers = {}
    elif case == "too old":
        headers = _signed(payload, timestamp=int(time.time()) - 3600)
    else:
        s = stripe_settings(webhook_secret="")
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_webhook(gateway="stripe", settings=s, headers=headers, body=body)


def test_every_gateway_hook_leaves_other_gateways_alone(stripe_settings, buyer):
    from kassa_gateway_stripe import plugin

    s = stripe_settings("http://127.0.0.1:9")
    assert plugin.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer)) is None
    assert plugin.kassa_gateway_save_method(gateway="paypal", settings=s, request=None) is None
    assert plugin.kassa_gateway_refund(gateway="paypal", settings=s, refund=None) is None
    assert plugin.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="r") is None
    assert plugin.kassa_gateway_verify(gateway="paypal", settings=s) is None
    assert plugin.kassa_gateway_webhook(gateway="paypal", settings=s, headers={}, body=b"{}") is None
