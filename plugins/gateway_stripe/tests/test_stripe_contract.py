"""Contract tests: the plugin's real calls through the official stripe SDK, served by
Prism from Stripe's published OpenAPI document. Every request goes through a
recording PeerServer, so each test also checks what was sent against the document
(Prism drops unknown form parameters silently; spec_violations does not)."""
from decimal import Decimal

import pytest

from kassa.contracts import ChargeRequest, ContractError, RefundRequest, SaveMethodRequest
from kassa.testing.peers import STRIPE_SPEC, PeerServer, spec_path, spec_violations

# Stripe's own fixture values (openapi/fixtures3.json), which Prism answers with
FIXTURE_CUSTOMER = "cus_Oaxlz8kB0PJWGa"
FIXTURE_METHOD = "pm_1NnmX6GPxmnHQRkJM0z8tUaS"
FIXTURE_INTENT = "pi_1NnlpVGPxmnHQRkJNuz3w9tH"
FIXTURE_REFUND = "re_1NnmX5GPxmnHQRkJzG1txqB9"


@pytest.fixture
def peer(stripe_peer):
    with PeerServer(upstream=stripe_peer) as server:
        yield server
    spec = spec_path(STRIPE_SPEC)
    for request in server.requests:
        assert spec_violations(spec, request) == [], f"{request.method} {request.path} breaks Stripe's contract"
        assert request.header("authorization") == "Bearer sk_test_51KassaContractTests"


def _posts(peer):
    return [r for r in peer.requests if r.method == "POST"]


def test_save_method_creates_the_customer_attaches_and_defaults_the_card(hooks, peer, stripe_settings, buyer):
    saved = hooks.kassa_gateway_save_method(gateway="stripe", settings=stripe_settings(peer.url),
                                            request=SaveMethodRequest(idempotency_key="save-42-1", org=buyer,
                                                                      token="pm_card_visa"))
    assert (saved.reference, saved.brand, saved.last4, saved.exp_month, saved.exp_year) == \
        (FIXTURE_METHOD, "visa", "4242", 8, 2024)
    assert saved.customer_reference == FIXTURE_CUSTOMER and saved.fingerprint == "gK0qksXq136kiXut"
    create, attach, default = _posts(peer)
    assert create.path == "/v1/customers"
    assert create.form()["name"] == "Acme Hosting" and create.form()["email"] == "billing@acme.example"
    assert create.form()["metadata[kassa_org_id]"] == "42" and create.form()["address[country]"] == "US"
    assert attach.path == "/v1/payment_methods/pm_card_visa/attach"
    assert attach.form() == {"customer": FIXTURE_CUSTOMER}
    assert default.path == f"/v1/customers/{FIXTURE_CUSTOMER}"
    assert default.form() == {"invoice_settings[default_payment_method]": FIXTURE_METHOD}
    keys = [r.header("idempotency-key") for r in (create, attach, default)]
    assert keys == ["save-42-1:customer", "save-42-1:attach", "save-42-1:default"]


def test_save_method_for_a_known_customer_creates_no_customer(hooks, peer, stripe_settings, buyer):
    saved = hooks.kassa_gateway_save_method(gateway="stripe", settings=stripe_settings(peer.url),
                                            request=SaveMethodRequest(idempotency_key="save-42-2", org=buyer,
                                                                      token="pm_card_mastercard",
                                                                      customer_reference="cus_known"))
    assert saved.customer_reference == "cus_known"
    assert [r.path for r in _posts(peer)] == ["/v1/payment_methods/pm_card_mastercard/attach",
                                              "/v1/customers/cus_known"]


def test_charge_is_an_off_session_confirmed_payment_intent_with_the_key(hooks, peer, stripe_settings, buyer):
    charge = ChargeRequest(idempotency_key="inv-000017-attempt-1", amount=Decimal("10.99"), currency="USD",
                           org=buyer, description="Invoice INV-000017", payment_method=FIXTURE_METHOD,
                           customer_reference=FIXTURE_CUSTOMER, invoice_number="INV-000017",
                           metadata={"subscription": "sub-9"})
    result = hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(peer.url), charge=charge)
    # Stripe's fixture PaymentIntent is left in requires_payment_method: the card did not pay
    assert result.status == "declined" and result.raw_status == "requires_payment_method"
    assert result.reference == FIXTURE_INTENT and result.amount == Decimal("10.99") and result.currency == "USD"
    (sent,) = _posts(peer)
    form = sent.form()
    assert sent.path == "/v1/payment_intents" and sent.header("idempotency-key") == "inv-000017-attempt-1"
    assert (form["amount"], form["currency"], form["confirm"], form["off_session"]) == ("1099", "usd", "true", "true")
    assert form["customer"] == FIXTURE_CUSTOMER and form["payment_method"] == FIXTURE_METHOD
    assert form["metadata[kassa_idempotency_key]"] == "inv-000017-attempt-1"
    assert form["metadata[kassa_invoice_number]"] == "INV-000017" and form["metadata[subscription]"] == "sub-9"


@pytest.mark.parametrize("amount,currency,minor", [(Decimal("500"), "JPY", "500"), (Decimal("1.234"), "BHD", "1234"),
                                                   (Decimal("2006000.50"), "INR", "200600050")])
def test_charge_amount_in_the_currency_minor_units(hooks, peer, stripe_settings, buyer, amount, currency, minor):
    charge = ChargeRequest(idempotency_key=f"k-{currency}", amount=amount, currency=currency, org=buyer,
                           description="x", payment_method=FIXTURE_METHOD, customer_reference=FIXTURE_CUSTOMER)
    hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(peer.url), charge=charge)
    assert _posts(peer)[0].form()["amount"] == minor


def test_charge_refuses_an_amount_finer_than_the_currency_and_sends_nothing(hooks, peer, stripe_settings, buyer):
    charge = ChargeRequest(idempotency_key="k", amount=Decimal("10.999"), currency="USD", org=buyer,
                           description="x", payment_method=FIXTURE_METHOD)
    with pytest.raises(ContractError):
        hooks.kassa_gateway_charge(gateway="stripe", settings=stripe_settings(peer.url), charge=charge)
    assert peer.requests == []


def test_refund_of_a_payment_intent_with_the_key(hooks, peer, stripe_settings):
    refund = RefundRequest(idempotency_key="refund-17-1", charge_reference=FIXTURE_INTENT, amount=Decimal("1.00"),
                           currency="USD", reason="requested_by_customer")
    result = hooks.kassa_gateway_refund(gateway="stripe", settings=stripe_settings(peer.url), refund=refund)
    assert (result.status, result.reference, result.amount) == ("succeeded", FIXTURE_REFUND, Decimal("1.00"))
    (sent,) = _posts(peer)
    assert sent.header("idempotency-key") == "refund-17-1"
    assert sent.form() == {"payment_intent": FIXTURE_INTENT, "amount": "100", "reason": "requested_by_customer",
                           "metadata[kassa_idempotency_key]": "refund-17-1"}


def test_refund_of_a_charge_keeps_a_free_text_reason_in_metadata(hooks, peer, stripe_settings):
    refund = RefundRequest(idempotency_key="refund-17-2", charge_reference="ch_3Nx", amount=Decimal("2.50"),
                           currency="USD", reason="Service outage credit")
    hooks.kassa_gateway_refund(gateway="stripe", settings=stripe_settings(peer.url), refund=refund)
    form = _posts(peer)[0].form()
    assert form["charge"] == "ch_3Nx" and "reason" not in form and form["metadata[kassa_reason]"] == \
        "Service outage credit"


def test_lookup_by_reference_reads_the_payment_intent_or_refund(hooks, peer, stripe_settings):
    s = stripe_settings(peer.url)
    intent = hooks.kassa_gateway_lookup(gateway="stripe", settings=s, idempotency_key="k", reference=FIXTURE_INTENT)
    refund = hooks.kassa_gateway_lookup(gateway="stripe", settings=s, idempotency_key="k", reference=FIXTURE_REFUND)
    assert (intent.reference, intent.status) == (FIXTURE_INTENT, "declined")
    assert (refund.reference, refund.status) == (FIXTURE_REFUND, "succeeded")
    assert [(r.method, r.path) for r in peer.requests] == [("GET", f"/v1/payment_intents/{FIXTURE_INTENT}"),
                                                          ("GET", f"/v1/refunds/{FIXTURE_REFUND}")]


def test_lookup_by_key_lists_recent_objects_and_finds_none_unknown(hooks, peer, stripe_settings):
    # Stripe's fixture lists hold objects without our metadata: the call was never seen
    assert hooks.kassa_gateway_lookup(gateway="stripe", settings=stripe_settings(peer.url),
                                      idempotency_key="never-sent", reference="") is None
    assert [(r.method, r.path, r.query) for r in peer.requests] == [
        ("GET", "/v1/payment_intents", {"limit": ["100"]}), ("GET", "/v1/refunds", {"limit": ["100"]})]


def test_verify_reads_the_balance(hooks, peer, stripe_settings):
    result = hooks.kassa_gateway_verify(gateway="stripe", settings=stripe_settings(peer.url))
    assert result.ok and "test mode" in result.message
    assert [(r.method, r.path) for r in peer.requests] == [("GET", "/v1/balance")]


def test_the_contract_check_catches_what_prism_lets_through(stripe_peer):
    """Prism answers 200 to an unknown form parameter; spec_violations names it."""
    import stripe

    with PeerServer(upstream=stripe_peer) as server:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url}, max_network_retries=0)
        client.v1.payment_intents.create(params={"amount": 100, "currency": "usd", "amount_in_rupees": 1})
        with pytest.raises(stripe.StripeError) as missing_amount:
            client.v1.payment_intents.create(params={"currency": "usd"})
    assert missing_amount.value.http_status == 422  # Prism itself refuses a missing required parameter
    problems = spec_violations(spec_path(STRIPE_SPEC), server.requests[0])
    assert problems == ["POST /v1/payment_intents: unknown parameter 'amount_in_rupees'"]
