"""Stateful behaviour the stateless Prism mock cannot show: the whole hosted flow,
declines, an expired token, timeouts and webhook signatures. A small PayPal on
127.0.0.1 keeps orders the way PayPal documents them and verifies webhook
signatures with PayPal's algorithm (SHA256withRSA over
``transmission_id|transmission_time|webhook_id|crc32(body)``)."""
import json
import time
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kassa.contracts import ChargeRequest, ContractError, GatewayUnavailable, RefundRequest, WebhookSignatureError
from kassa.testing.peers import PeerServer, stalled_server
from paypal_sandbox import CERT_URL, WEBHOOK_ID, FakePayPal


@pytest.fixture
def paypal(oauth):
    fake = FakePayPal(oauth)
    with fake.server:
        yield fake


def _charge(buyer, key="inv-31-attempt-1", amount="49.90", currency="USD", return_url="https://billing.example/r"):
    return ChargeRequest(idempotency_key=key, amount=Decimal(amount), currency=currency, org=buyer,
                         description="Invoice INV-31", invoice_number="INV-31", return_url=return_url)


def test_the_hosted_flow_from_order_to_capture_to_refund(hooks, paypal, paypal_settings, buyer):
    s = paypal_settings(paypal.server.url)
    started = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer))
    order_id = started.reference
    assert started.status == "requires_action" and order_id in paypal.orders
    assert started.redirect_url == f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
    assert (started.amount, started.currency) == (Decimal("49.90"), "USD")
    paypal.approve(order_id)  # the buyer approves on PayPal's page and comes back with ?token=...&PayerID=...
    done = hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference=order_id,
                                        params={"token": order_id, "PayerID": "QYR5Z8XDVJNXQ"})
    assert (done.status, done.reference, done.amount, done.raw_status) == \
        ("succeeded", order_id, Decimal("49.90"), "COMPLETED/COMPLETED")
    assert hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="inv-31-attempt-1",
                                      reference=order_id).status == "succeeded"
    refund = hooks.kassa_gateway_refund(gateway="paypal", settings=s, refund=RefundRequest(
        idempotency_key="refund-31-1", charge_reference=order_id, amount=Decimal("9.90"), currency="USD"))
    assert (refund.status, refund.amount) == ("succeeded", Decimal("9.90"))
    assert list(paypal.refunds.values())[0]["capture"] == f"3C6{order_id[4:]}"


def test_a_repeated_charge_carries_the_same_request_id_and_gets_the_same_order(hooks, paypal, paypal_settings, buyer):
    s = paypal_settings(paypal.server.url)
    first = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer))
    again = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer))
    assert first.reference == again.reference and len(paypal.orders) == 1
    creates = [r for r in paypal.server.requests if r.path == "/v2/checkout/orders"]
    assert [r.header("paypal-request-id") for r in creates] == ["inv-31-attempt-1"] * 2


def test_complete_before_approval_or_with_a_declined_instrument_is_declined(hooks, paypal, paypal_settings, buyer):
    s = paypal_settings(paypal.server.url)
    order_id = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer)).reference
    early = hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference=order_id, params={})
    assert early.status == "declined" and "not approved" in early.decline_reason
    paypal.approve(order_id)
    paypal.decline_next_capture = True
    declined = hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference=order_id, params={})
    assert declined.status == "declined" and declined.raw_status == "INSTRUMENT_DECLINED"
    assert declined.decline_reason.startswith("The instrument presented was either declined")


def test_a_second_complete_reads_the_captured_order(hooks, paypal, paypal_settings, buyer):
    s = paypal_settings(paypal.server.url)
    order_id = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer)).reference
    paypal.approve(order_id)
    assert hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference=order_id, params={}).status == \
        "succeeded"
    again = hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference=order_id, params={})
    assert again.status == "succeeded" and again.amount == Decimal("49.90")
    assert [r.method for r in paypal.server.requests if order_id in r.path][-2:] == ["POST", "GET"]


def test_a_cancelled_or_foreign_return_captures_nothing(hooks, paypal, paypal_settings):
    s = paypal_settings(paypal.server.url)
    cancelled = hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference="5O190000TN364715T",
                                             params={"token": "5O190000TN364715T", "cancelled": "1"})
    assert cancelled.status == "declined" and "cancelled" in cancelled.decline_reason
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference="5O190000TN364715T",
                                     params={"token": "9ZZ99999AA999999B", "PayerID": "X"})
    assert paypal.server.requests == []


def test_charges_paypal_refuses_before_calling(hooks, paypal, paypal_settings, buyer):
    s = paypal_settings(paypal.server.url)
    inr = hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer, currency="INR"))
    assert inr.status == "failed" and "USD" in inr.decline_reason
    with pytest.raises(ContractError):
        hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer, amount="49.905"))
    with pytest.raises(ContractError):
        hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer, return_url=""))
    assert paypal.server.requests == []


def test_lookup_of_an_unknown_order_is_none(hooks, paypal, paypal_settings):
    s = paypal_settings(paypal.server.url)
    assert hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="NOPE") is None
    assert hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="") is None


def test_an_expired_token_is_renewed_once(hooks, paypal, paypal_settings, oauth):
    s = paypal_settings(paypal.server.url)
    assert hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="X") is None
    paypal.revoked.add(oauth.issued[-1])
    assert hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="X") is None
    assert len(oauth.issued) == 2


def test_timeouts_and_server_errors_are_unavailable(hooks, paypal_settings, buyer, oauth):
    with stalled_server() as url:
        s = paypal_settings(url, timeout=1)
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_complete(gateway="paypal", settings=s, reference="5O19", params={})
        assert time.monotonic() - started < 10
    with PeerServer() as broken:
        broken.route("POST", "/v1/oauth2/token", oauth)
        broken.route("POST", "/v2/checkout/orders", lambda r: (503, {"name": "SERVICE_UNAVAILABLE"}))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_charge(gateway="paypal", settings=paypal_settings(broken.url), charge=_charge(buyer))


def test_verify_gets_a_token_and_shows_paypals_error(hooks, paypal, paypal_settings):
    good = hooks.kassa_gateway_verify(gateway="paypal", settings=paypal_settings(paypal.server.url))
    assert good.ok and good.message.startswith("Connected to PayPal")
    bad = hooks.kassa_gateway_verify(gateway="paypal", settings=paypal_settings(paypal.server.url,
                                                                                 client_secret="wrong"))
    assert not bad.ok and bad.message == "PayPal refused the credentials: Client Authentication failed"
    empty = hooks.kassa_gateway_verify(gateway="paypal", settings=paypal_settings(paypal.server.url, client_id=""))
    assert not empty.ok and "Client ID" in empty.message
    with PeerServer() as gone:
        url = gone.url
    down = hooks.kassa_gateway_verify(gateway="paypal", settings=paypal_settings(url))
    assert not down.ok and "could not be reached" in down.message


def test_the_sandbox_flag_picks_paypals_host_when_no_base_is_set(hooks, paypal_settings):
    from kassa_gateway_paypal.plugin import LIVE_API, SANDBOX_API, _PayPal

    assert _PayPal(paypal_settings()).base == SANDBOX_API
    assert _PayPal(paypal_settings(sandbox=False)).base == LIVE_API
    assert _PayPal(paypal_settings("http://127.0.0.1:1/", sandbox=False)).base == "http://127.0.0.1:1"


# ---------------------------------------------------------------- webhooks

CAPTURE_EVENT = ('{"id":"WH-58D329510W468432D-8HN650336L201105X","event_version":"1.0",'
                 '"create_time":"2026-01-05T09:01:00.000Z","resource_type":"capture",'
                 '"event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed for $ 49.90 USD",'
                 '"resource":{"id":"3C60001TN364715T","status":"COMPLETED",'
                 '"amount":{"currency_code":"USD","value":"49.90"},"custom_id":"inv-31-attempt-1",'
                 '"invoice_id":"INV-31","final_capture":true,'
                 '"supplementary_data":{"related_ids":{"order_id":"5O190000TN364715T"}}}}')


def _headers(paypal, body: bytes, **override):
    headers = {"PAYPAL-AUTH-ALGO": "SHA256withRSA", "PAYPAL-CERT-URL": CERT_URL,
               "PAYPAL-TRANSMISSION-ID": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
               "PAYPAL-TRANSMISSION-TIME": "2026-01-05T09:01:01Z"}
    headers["PAYPAL-TRANSMISSION-SIG"] = paypal.sign(headers["PAYPAL-TRANSMISSION-ID"],
                                                     headers["PAYPAL-TRANSMISSION-TIME"], body)
    headers.update(override)
    return headers


def test_a_verified_capture_event_becomes_a_charge_event(hooks, paypal, paypal_settings):
    body = CAPTURE_EVENT.encode()
    (event,) = hooks.kassa_gateway_webhook(gateway="paypal", settings=paypal_settings(paypal.server.url),
                                           headers=_headers(paypal, body), body=body)
    assert (event.event_id, event.type, event.reference) == ("WH-58D329510W468432D-8HN650336L201105X",
                                                             "charge.succeeded", "5O190000TN364715T")
    assert (event.amount, event.currency, event.idempotency_key) == (Decimal("49.90"), "USD", "inv-31-attempt-1")
    (verify,) = [r for r in paypal.server.requests if r.path.endswith("verify-webhook-signature")]
    assert verify.json()["webhook_id"] == WEBHOOK_ID and CAPTURE_EVENT in verify.body.decode()


def test_refund_and_unused_events(hooks, paypal, paypal_settings):
    refund = json.dumps({"id": "WH-2", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": {
        "id": "1JU08902781691411", "status": "COMPLETED", "amount": {"value": "9.90", "currency_code": "USD"},
        "custom_id": "refund-31-1"}}, indent=2).encode()
    other = b'{"id": "WH-3", "event_type": "CUSTOMER.DISPUTE.CREATED", "resource": {}}'
    s = paypal_settings(paypal.server.url)
    (event,) = hooks.kassa_gateway_webhook(gateway="paypal", settings=s, headers=_headers(paypal, refund),
                                           body=refund)
    assert (event.type, event.reference, event.amount, event.idempotency_key) == \
        ("refund.succeeded", "1JU08902781691411", Decimal("9.90"), "refund-31-1")
    assert hooks.kassa_gateway_webhook(gateway="paypal", settings=s, headers=_headers(paypal, other),
                                       body=other) == []


@pytest.mark.parametrize("case", ["tampered body", "another key", "another webhook", "missing header",
                                  "no webhook id configured", "not json"])
def test_a_notification_that_does_not_verify_is_refused(hooks, paypal, paypal_settings, case):
    body = CAPTURE_EVENT.encode()
    headers, s = _headers(paypal, body), paypal_settings(paypal.server.url)
    if case == "tampered body":
        body = body.replace(b'"49.90"', b'"4990.00"')
    elif case == "another key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        headers["PAYPAL-TRANSMISSION-SIG"] = paypal.sign(headers["PAYPAL-TRANSMISSION-ID"],
                                                         headers["PAYPAL-TRANSMISSION-TIME"], body, key=other)
    elif case == "another webhook":
        s = paypal_settings(paypal.server.url, webhook_id="1JE4291016473214C")
    elif case == "missing header":
        del headers["PAYPAL-TRANSMISSION-SIG"]
    elif case == "no webhook id configured":
        s = paypal_settings(paypal.server.url, webhook_id="")
    else:
        body = b"<xml/>"
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_webhook(gateway="paypal", settings=s, headers=headers, body=body)


def test_a_verification_service_that_cannot_be_reached_is_unavailable(hooks, paypal, paypal_settings):
    body = CAPTURE_EVENT.encode()
    with PeerServer() as gone:
        url = gone.url
    with pytest.raises(GatewayUnavailable):
        hooks.kassa_gateway_webhook(gateway="paypal", settings=paypal_settings(url), headers=_headers(paypal, body),
                                    body=body)


def test_every_gateway_hook_leaves_other_gateways_alone(paypal_settings, buyer):
    from kassa_gateway_paypal import plugin

    s = paypal_settings("http://127.0.0.1:9")
    assert plugin.kassa_gateway_charge(gateway="stripe", settings=s, charge=_charge(buyer)) is None
    assert plugin.kassa_gateway_complete(gateway="stripe", settings=s, reference="r", params={}) is None
    assert plugin.kassa_gateway_refund(gateway="stripe", settings=s, refund=None) is None
    assert plugin.kassa_gateway_lookup(gateway="stripe", settings=s, idempotency_key="k", reference="r") is None
    assert plugin.kassa_gateway_verify(gateway="stripe", settings=s) is None
    assert plugin.kassa_gateway_webhook(gateway="stripe", settings=s, headers={}, body=b"{}") is None
