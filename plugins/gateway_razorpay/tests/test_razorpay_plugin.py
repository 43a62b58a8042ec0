"""The Razorpay plugin with the real razorpay SDK against a small Razorpay on 127.0.0.1
(Razorpay publishes no OpenAPI document to serve with Prism; razorpay_sandbox.py). The fake keeps Payment
Links, payments and refunds with the shapes and rules Razorpay documents (basic
auth, amounts in paise of at least ₹1, unique reference_id, unknown fields refused)
and signs callbacks and webhooks with Razorpay's HMAC-SHA256 scheme, which the
plugin checks with the SDK's own utility."""
import hashlib
import json
import time
from decimal import Decimal

import pytest
import razorpay

from kassa.contracts import ChargeRequest, ContractError, GatewayUnavailable, RefundRequest, WebhookSignatureError
from kassa.testing.peers import PeerServer, stalled_server
from kassa_gateway_razorpay.plugin import reference_id
from razorpay_sandbox import KEY_ID, KEY_SECRET, WEBHOOK_SECRET, FakeRazorpay, hmac_hex


@pytest.fixture
def rzp():
    fake = FakeRazorpay()
    with fake.server:
        yield fake


def _charge(buyer, key="inv-000044-attempt-1", amount="1180.00", currency="INR", return_url="https://b.example/r"):
    return ChargeRequest(idempotency_key=key, amount=Decimal(amount), currency=currency, org=buyer,
                         description="Invoice INV-000044", invoice_number="INV-000044", return_url=return_url)


def _posts(rzp):
    return [r for r in rzp.server.requests if r.method == "POST"]


# ---------------------------------------------------------------- charge and complete


def test_charge_creates_a_payment_link_and_sends_the_buyer_to_it(hooks, rzp, razorpay_settings, buyer):
    result = hooks.kassa_gateway_charge(gateway="razorpay", settings=razorpay_settings(rzp.server.url),
                                        charge=_charge(buyer))
    (link_id,) = rzp.links
    assert (result.status, result.reference, result.redirect_url) == ("requires_action", link_id,
                                                                      "https://rzp.io/i/k0")
    assert (result.amount, result.currency) == (Decimal("1180.00"), "INR")
    lookup, create = rzp.server.requests
    assert (lookup.method, lookup.query) == ("GET", {"reference_id": [reference_id("inv-000044-attempt-1")]})
    body = create.json()
    assert body["amount"] == 118000 and body["currency"] == "INR" and body["accept_partial"] is False
    assert body["reference_id"] == reference_id("inv-000044-attempt-1") and len(body["reference_id"]) <= 40
    assert body["callback_url"] == "https://b.example/r" and body["callback_method"] == "get"
    assert body["notes"]["kassa_idempotency_key"] == "inv-000044-attempt-1"
    assert body["notes"]["kassa_invoice_number"] == "INV-000044"
    assert body["customer"] == {"name": "Chennai Cloud Works", "email": "accounts@ccw.example"}
    assert "Kassa/0.1.0" in create.header("user-agent")


def test_repeating_a_charge_returns_the_same_link(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    first = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer))
    again = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer))
    other = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer, key="attempt-2"))
    assert first.reference == again.reference != other.reference
    assert len(_posts(rzp)) == 2


def test_a_link_created_meanwhile_is_found_after_the_duplicate_error(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    first = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer))
    answers = iter([{"payment_links": []}])  # the first lookup misses the link another call just made
    rzp.server.route("GET", "/v1/payment_links", lambda r: (200, next(answers, None) or rzp.list_links(r)[1]))
    again = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer))
    assert again.reference == first.reference and again.status == "requires_action"
    assert [r.method for r in rzp.server.requests][-3:] == ["GET", "POST", "GET"]


def test_razorpay_refusals_fail_with_razorpays_words(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    small = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer, amount="0.50"))
    assert small.status == "failed" and small.decline_reason == "The amount must be atleast INR 1.00"
    usd = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer, currency="USD"))
    assert usd.status == "failed" and "INR" in usd.decline_reason
    with pytest.raises(ContractError):
        hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer, amount="10.005"))
    with pytest.raises(ContractError):
        hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer, return_url=""))
    assert len(_posts(rzp)) == 1


def test_the_buyer_returns_paid_and_complete_verifies_the_signature(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    link_id = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer)).reference
    params = rzp.pay(link_id)
    # the fake signs the way Razorpay documents it: the SDK's own check agrees
    assert razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility.verify_payment_link_signature({
        "payment_link_id": link_id, "payment_link_reference_id": params["razorpay_payment_link_reference_id"],
        "payment_link_status": "paid", "razorpay_payment_id": params["razorpay_payment_id"],
        "razorpay_signature": params["razorpay_signature"]})
    done = hooks.kassa_gateway_complete(gateway="razorpay", settings=s, reference=link_id, params=params)
    assert (done.status, done.reference, done.raw_status) == ("succeeded", link_id, "paid")


def test_a_signed_callback_that_is_not_paid_is_declined(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    link_id = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer)).reference
    params = rzp.pay(link_id, status="partially_paid")
    result = hooks.kassa_gateway_complete(gateway="razorpay", settings=s, reference=link_id, params=params)
    assert result.status == "declined" and "partially_paid" in result.decline_reason


@pytest.mark.parametrize("case", ["forged signature", "status changed", "another link", "no signature",
                                  "signed with another secret"])
def test_a_callback_that_does_not_verify_is_refused(hooks, rzp, razorpay_settings, buyer, case):
    s = razorpay_settings(rzp.server.url)
    link_id = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer)).reference
    params = rzp.pay(link_id, status="expired")
    reference = link_id
    if case == "forged signature":
        params["razorpay_signature"] = "0" * 64
    elif case == "status changed":
        params["razorpay_payment_link_status"] = "paid"
    elif case == "another link":
        reference = "plink_SomeoneElse01"
    elif case == "no signature":
        del params["razorpay_signature"]
    else:
        s = razorpay_settings(rzp.server.url, key_secret="not-the-key-secret")
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_complete(gateway="razorpay", settings=s, reference=reference, params=params)


# ---------------------------------------------------------------- lookup and refund


def test_lookup_by_link_payment_or_idempotency_key(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    assert hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="inv-000044-attempt-1",
                                      reference="") is None  # never sent: safe to charge
    link_id = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer)).reference
    assert hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="inv-000044-attempt-1",
                                      reference="").status == "requires_action"
    payment_id = rzp.pay(link_id)["razorpay_payment_id"]
    paid = hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="k", reference=link_id)
    assert (paid.status, paid.amount) == ("succeeded", Decimal("1180.00"))
    payment = hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="k", reference=payment_id)
    assert (payment.status, payment.reference, payment.raw_status) == ("succeeded", payment_id, "captured")
    assert hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="k",
                                      reference="plink_Unknown") is None


def test_refund_of_a_link_refunds_its_payment_once_per_key(hooks, rzp, razorpay_settings, buyer):
    s = razorpay_settings(rzp.server.url)
    link_id = hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer)).reference
    payment_id = rzp.pay(link_id)["razorpay_payment_id"]
    request = RefundRequest(idempotency_key="refund-44-1", charge_reference=link_id, amount=Decimal("180.00"),
                            currency="INR", reason="Downgrade credit")
    first = hooks.kassa_gateway_refund(gateway="razorpay", settings=s, refund=request)
    again = hooks.kassa_gateway_refund(gateway="razorpay", settings=s, refund=request)
    assert (first.status, first.amount, first.currency) == ("succeeded", Decimal("180.00"), "INR")
    assert again.reference == first.reference and len(rzp.refunds) == 1
    (post,) = [r for r in _posts(rzp) if r.path.endswith("/refund")]
    assert post.path == f"/v1/payments/{payment_id}/refund"
    assert post.json() == {"amount": 18000, "speed": "normal", "receipt": reference_id("refund-44-1"),
                           "notes": {"kassa_idempotency_key": "refund-44-1", "kassa_reason": "Downgrade credit"}}
    too_much = hooks.kassa_gateway_refund(gateway="razorpay", settings=s, refund=RefundRequest(
        idempotency_key="refund-44-2", charge_reference=payment_id, amount=Decimal("1100.00"), currency="INR"))
    assert too_much.status == "failed" and "greater than amount captured" in too_much.decline_reason


# ---------------------------------------------------------------- failures and verify


def test_a_razorpay_that_never_answers_is_unavailable(hooks, razorpay_settings, buyer, capsys):
    with stalled_server() as url:
        s = razorpay_settings(url, timeout=1)
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_charge(gateway="razorpay", settings=s, charge=_charge(buyer))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_refund(gateway="razorpay", settings=s, refund=RefundRequest(
                idempotency_key="r", charge_reference="pay_1", amount=Decimal("1.00"), currency="INR"))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_lookup(gateway="razorpay", settings=s, idempotency_key="k", reference="plink_1")
        assert time.monotonic() - started < 10


def test_a_server_error_is_unavailable(hooks, razorpay_settings, buyer):
    with PeerServer() as broken:
        broken.route("GET", "/v1/payment_links", lambda r: (200, {"payment_links": []}))
        broken.route("POST", "/v1/payment_links", lambda r: (500, {"error": {
            "code": "SERVER_ERROR", "description": "The server encountered an error."}}))
        with pytest.raises(GatewayUnavailable):
            hooks.kassa_gateway_charge(gateway="razorpay", settings=razorpay_settings(broken.url),
                                       charge=_charge(buyer))


def test_verify_makes_an_authenticated_call_and_shows_razorpays_error(hooks, rzp, razorpay_settings):
    good = hooks.kassa_gateway_verify(gateway="razorpay", settings=razorpay_settings(rzp.server.url))
    assert good.ok and good.message == "Connected to Razorpay (test mode)."
    assert [(r.method, r.path, r.query) for r in rzp.server.requests] == [("GET", "/v1/payments", {"count": ["1"]})]
    bad = hooks.kassa_gateway_verify(gateway="razorpay", settings=razorpay_settings(rzp.server.url,
                                                                                     key_secret="wrong"))
    assert not bad.ok and bad.message == "Razorpay refused the keys: Authentication failed"
    empty = hooks.kassa_gateway_verify(gateway="razorpay", settings=razorpay_settings(key_id=""))
    assert not empty.ok and "Key ID" in empty.message
    with PeerServer() as gone:
        url = gone.url
    down = hooks.kassa_gateway_verify(gateway="razorpay", settings=razorpay_settings(url))
    assert not down.ok and "could not be reached" in down.message


# ---------------------------------------------------------------- webhooks


def _webhook(event, entity_name, entity):
    return json.dumps({"entity": "event", "account_id": "acc_KassaTest01", "event": event,
                       "contains": [entity_name], "payload": {entity_name: {"entity": entity}},
                       "created_at": 1767603660}).encode()


PAID_LINK = {"id": "plink_Kassa000000000", "amount": 118000, "amount_paid": 118000, "currency": "INR",
             "status": "paid", "reference_id": reference_id("inv-000044-attempt-1"),
             "notes": {"kassa_idempotency_key": "inv-000044-attempt-1"}}


def _signed(body: bytes, secret=WEBHOOK_SECRET, event_id="Gb5kMCdcAZ8jJ8"):
    headers = {"X-Razorpay-Signature": hmac_hex(body.decode(), secret)}
    if event_id:
        headers["X-Razorpay-Event-Id"] = event_id
    return headers


def test_a_signed_paid_link_webhook_becomes_a_charge_event(hooks, razorpay_settings):
    body = _webhook("payment_link.paid", "payment_link", PAID_LINK)
    (event,) = hooks.kassa_gateway_webhook(gateway="razorpay", settings=razorpay_settings(), headers=_signed(body),
                                           body=body)
    assert (event.event_id, event.type, event.reference, event.status) == \
        ("Gb5kMCdcAZ8jJ8", "charge.succeeded", "plink_Kassa000000000", "paid")
    assert (event.amount, event.currency, event.idempotency_key) == (Decimal("1180.00"), "INR",
                                                                     "inv-000044-attempt-1")


def test_refund_expiry_and_unused_webhooks(hooks, razorpay_settings):
    s = razorpay_settings()
    refund = _webhook("refund.processed", "refund", {"id": "rfnd_1", "amount": 18000, "currency": "INR",
                                                     "status": "processed", "payment_id": "pay_1",
                                                     "notes": {"kassa_idempotency_key": "refund-44-1"}})
    expired = _webhook("payment_link.expired", "payment_link", {**PAID_LINK, "status": "expired", "notes": []})
    other = _webhook("order.paid", "order", {"id": "order_1"})
    (r,) = hooks.kassa_gateway_webhook(gateway="razorpay", settings=s, headers=_signed(refund), body=refund)
    (e,) = hooks.kassa_gateway_webhook(gateway="razorpay", settings=s, headers=_signed(expired, event_id=None),
                                       body=expired)
    assert (r.type, r.reference, r.amount, r.idempotency_key) == ("refund.succeeded", "rfnd_1", Decimal("180.00"),
                                                                  "refund-44-1")
    assert (e.type, e.decline_reason, e.idempotency_key) == ("charge.failed", "The payment link expired unpaid.", "")
    assert e.event_id == "sha256:" + hashlib.sha256(expired).hexdigest()  # a redelivery of the same body dedupes
    assert hooks.kassa_gateway_webhook(gateway="razorpay", settings=s, headers=_signed(other), body=other) == []


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "no signature", "no secret configured"])
def test_a_webhook_that_does_not_verify_is_refused(hooks, razorpay_settings, case):
    body = _webhook("payment_link.paid", "payment_link", PAID_LINK)
    headers, s = _signed(body), razorpay_settings()
    if case == "wrong secret":
        headers = _signed(body, secret="someone-else")
    elif case == "tampered body":
        body = body.replace(b"118000", b"1")
    elif case == "no signature":
        del headers["X-Razorpay-Signature"]
    else:
        s = razorpay_settings(webhook_secret="")
    with pytest.raises(WebhookSignatureError):
        hooks.kassa_gateway_webhook(gateway="razorpay", settings=s, headers=headers, body=body)


# ---------------------------------------------------------------- registration and settings


def test_registers_the_razorpay_gateway_for_inr_from_india(app, db, provider, admin):
    from kassa.plugins import host
    from kassa.services import plugin_settings

    record = host().records["gateway_razorpay"]
    assert record.distribution == "kassa-gateway-razorpay" and not record.broken
    assert "razorpay" not in {g.id for g in host().listing("kassa_gateways", provider.id)}
    plugin_settings.set_enabled(admin, "gateway_razorpay", True)
    host().forget_cache()
    info = next(g for g in host().listing("kassa_gateways", provider.id) if g.id == "razorpay")
    assert (info.currencies, info.countries, info.hosted_redirect, info.saves_cards) == (("INR",), ("IN",), True,
                                                                                         False)


def test_settings_validate_and_keep_both_secrets_encrypted(app, db, provider, admin):
    from kassa.services import plugin_settings
    from kassa.services.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        plugin_settings.save_settings(admin, "gateway_razorpay", {"key_id": "key_123", "api_base": "not a url",
                                                                  "timeout": "0"})
    assert set(refused.value.field_errors) == {"key_id", "api_base", "timeout"}
    plugin_settings.save_settings(admin, "gateway_razorpay", {
        "key_id": KEY_ID, "key_secret": KEY_SECRET, "webhook_secret": WEBHOOK_SECRET,
        "api_base": "http://127.0.0.1:8123", "timeout": "7"})
    public = plugin_settings.settings_for(provider.id, "gateway_razorpay")
    assert public["key_id"] == KEY_ID and public["timeout"] == 7 and public["api_base"] == "http://127.0.0.1:8123"
    assert "key_secret" not in public and "webhook_secret" not in public
    secret = plugin_settings.settings_for(provider.id, "gateway_razorpay", secrets=True)
    assert (secret["key_secret"], secret["webhook_secret"]) == (KEY_SECRET, WEBHOOK_SECRET)


def test_every_gateway_hook_leaves_other_gateways_alone(razorpay_settings, buyer):
    from kassa_gateway_razorpay import plugin

    s = razorpay_settings("http://127.0.0.1:9")
    assert plugin.kassa_gateway_charge(gateway="paypal", settings=s, charge=_charge(buyer)) is None
    assert plugin.kassa_gateway_complete(gateway="paypal", settings=s, reference="r", params={}) is None
    assert plugin.kassa_gateway_refund(gateway="paypal", settings=s, refund=None) is None
    assert plugin.kassa_gateway_lookup(gateway="paypal", settings=s, idempotency_key="k", reference="r") is None
    assert plugin.kassa_gateway_verify(gateway="paypal", settings=s) is None
    assert plugin.kassa_gateway_webhook(gateway="paypal", settings=s, headers={}, body=b"{}") is None
