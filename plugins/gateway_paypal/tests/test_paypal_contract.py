"""Contract tests: the plugin's real REST calls, served by Prism from PayPal's published
Orders v2 document. A recording PeerServer sits in front of Prism and answers the
endpoints that document does not hold (OAuth, capture refunds); every Orders call
is checked against the document's JSON schemas, which Prism 5 does not enforce for
this document."""
from decimal import Decimal

import pytest

from kassa.contracts import ChargeRequest, RefundRequest
from kassa.testing.peers import PAYPAL_SPEC, PeerServer, spec_path, spec_violations


@pytest.fixture
def peer(paypal_peer, oauth):
    refund = {"id": "1JU08902781691411", "status": "COMPLETED",
              "amount": {"value": "10.00", "currency_code": "USD"}, "custom_id": "refund-5-1"}
    with PeerServer(upstream=paypal_peer) as server:
        server.route("POST", "/v1/oauth2/token", oauth)
        server.route("POST", r"/v2/payments/captures/[^/]+/refund", lambda r: (201, refund))
        yield server
    spec = spec_path(PAYPAL_SPEC)
    orders = [r for r in server.requests if r.path.startswith("/v2/checkout/")]
    assert orders, "no Orders call reached the peer"
    for request in orders:
        assert spec_violations(spec, request) == [], f"{request.method} {request.path} breaks PayPal's contract"
        assert request.header("authorization") == f"Bearer {oauth.issued[-1]}"


def _orders(peer):
    return [r for r in peer.requests if r.path.startswith("/v2/")]


def test_charge_creates_a_capture_order_with_the_request_id(hooks, peer, paypal_settings, buyer):
    charge = ChargeRequest(idempotency_key="inv-000031-attempt-1", amount=Decimal("49.90"), currency="USD",
                           org=buyer, description="Invoice INV-000031", invoice_number="INV-000031",
                           return_url="https://billing.example/pay/31/return")
    result = hooks.kassa_gateway_charge(gateway="paypal", settings=paypal_settings(peer.url), charge=charge)
    # Prism answers with schema placeholders: an order "string" in status CREATED whose only link is not "approve"
    assert (result.reference, result.raw_status) == ("string", "CREATED")
    assert result.status == "failed" and "approval link" in result.decline_reason
    (sent,) = _orders(peer)
    assert (sent.method, sent.path) == ("POST", "/v2/checkout/orders")
    assert sent.header("paypal-request-id") == "inv-000031-attempt-1"
    body = sent.json()
    unit = body["purchase_units"][0]
    assert body["intent"] == "CAPTURE" and unit["amount"] == {"currency_code": "USD", "value": "49.90"}
    assert unit["invoice_id"] == "INV-000031" and unit["custom_id"] == "inv-000031-attempt-1"
    context = body["payment_source"]["paypal"]["experience_context"]
    assert context["return_url"] == "https://billing.example/pay/31/return"
    assert context["cancel_url"] == "https://billing.example/pay/31/return?cancelled=1"


def test_complete_captures_the_order_with_a_request_id_from_the_reference(hooks, peer, paypal_settings):
    result = hooks.kassa_gateway_complete(gateway="paypal", settings=paypal_settings(peer.url),
                                          reference="5O190127TN364715T",
                                          params={"token": "5O190127TN364715T", "PayerID": "QYR5Z8XDVJNXQ"})
    assert result.reference == "string" and result.raw_status == "CREATED"  # Prism's placeholder order
    (sent,) = _orders(peer)
    assert (sent.method, sent.path) == ("POST", "/v2/checkout/orders/5O190127TN364715T/capture")
    assert sent.header("paypal-request-id") == "capture-5O190127TN364715T" and sent.json() == {}


def test_lookup_shows_the_order(hooks, peer, paypal_settings):
    result = hooks.kassa_gateway_lookup(gateway="paypal", settings=paypal_settings(peer.url), idempotency_key="k",
                                        reference="5O190127TN364715T")
    assert result.reference == "string" and result.raw_status == "CREATED"
    assert [(r.method, r.path) for r in _orders(peer)] == [("GET", "/v2/checkout/orders/5O190127TN364715T")]


def test_refund_of_an_order_refunds_its_capture_with_the_request_id(hooks, peer, paypal_settings):
    refund = RefundRequest(idempotency_key="refund-5-1", charge_reference="5O190127TN364715T",
                           amount=Decimal("10.00"), currency="USD", reason="Duplicate payment")
    result = hooks.kassa_gateway_refund(gateway="paypal", settings=paypal_settings(peer.url), refund=refund)
    assert (result.status, result.reference, result.amount, result.currency) == \
        ("succeeded", "1JU08902781691411", Decimal("10.00"), "USD")
    show, post = _orders(peer)
    assert (show.method, show.path) == ("GET", "/v2/checkout/orders/5O190127TN364715T")
    # the capture id is read from the order's real shape: purchase_units[].payments.captures[].id
    assert (post.method, post.path) == ("POST", "/v2/payments/captures/string/refund")
    assert post.header("paypal-request-id") == "refund-5-1"
    assert post.json() == {"amount": {"currency_code": "USD", "value": "10.00"}, "custom_id": "refund-5-1",
                           "note_to_payer": "Duplicate payment"}


def test_the_token_is_fetched_once_and_reused(hooks, peer, paypal_settings, oauth):
    s = paypal_settings(peer.url)
    for _ in range(3):
        hooks.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="5O190127TN364715T")
    assert len(oauth.issued) == 1 and len([r for r in peer.requests if r.path == "/v1/oauth2/token"]) == 1


def test_prism_refuses_a_call_without_the_bearer_token(paypal_peer):
    """What the peer enforces itself: PayPal's OAuth2 security scheme."""
    import requests

    response = requests.post(f"{paypal_peer}/v2/checkout/orders", json={"intent": "CAPTURE"}, timeout=10)
    assert response.status_code == 401 and response.json()["name"] == "AUTHENTICATION_FAILURE"


def test_the_contract_check_catches_a_body_prism_lets_through(paypal_peer):
    import requests

    with PeerServer(upstream=paypal_peer) as server:
        response = requests.post(f"{server.url}/v2/checkout/orders", headers={"Authorization": "Bearer x"},
                                 json={"intent": "SALE", "purchase_units": []}, timeout=10)
    assert response.status_code in (200, 201)  # Prism 5 does not validate this document's bodies
    problems = spec_violations(spec_path(PAYPAL_SPEC), server.requests[0])
    assert any("'SALE' is not one of" in p for p in problems) and any("purchase_units" in p for p in problems)
