"""API fuzzing: schemathesis generates requests (valid and invalid) for every
operation of /api/v1/openapi.json and sends each through the WSGI app twice, with
a provider admin's token and a customer admin's. Every answer must be no 5xx (an
unhandled exception fails the test outright), a status the document lists for
that operation, with the documented content type and schema, and every error a
JSON body with a message."""
from __future__ import annotations

import os
from contextlib import contextmanager

import pytest
import schemathesis
from flask.globals import _cv_app
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

MAX_EXAMPLES = int(os.environ.get("KASSA_FUZZ_EXAMPLES", "10"))  # per operation and pass
DERANDOMIZE = os.environ.get("KASSA_FUZZ_RANDOM") != "1"  # the same examples every run unless asked


def error_is_json_with_message(ctx, response, case):
    """Errors are ``{"error": {"status": ..., "message": "..."}}``."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except Exception:
        raise AssertionError(f"{response.status_code} error is not JSON: {response.text[:200]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) or not error["message"]:
        raise AssertionError(f"{response.status_code} error without a message: {body!r}")
    if error.get("status") != response.status_code:
        raise AssertionError(f"error status {error.get('status')} in a {response.status_code} response")
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          error_is_json_with_message]


@pytest.fixture
def fuzz_world(app, db, admin, customer, customer_admin, fake_gateway):
    """Tokens of a provider admin and a customer admin, and real objects for the
    path parameters: a service, a subscription, invoices, a tax rule, a card, a
    payment, an order, a billing run."""
    from kassa.services import users
    from kassa.testing.helpers import Api

    admin_token, _ = users.create_api_token(admin, "fuzz")
    customer_token, _ = users.create_api_token(customer_admin, "fuzz")
    client = Api(app.test_client(), admin_token)

    def made(response, status=201):
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    service = made(client.post("/api/v1/services", json={"code": "vm", "name": "VM", "category": "Compute",
                                                         "unit": "month", "prices": {"INR": "100"}}))
    sub = made(client.post("/api/v1/subscriptions", json={"org_id": customer.id, "name": "Fuzz", "items": [
        {"service_id": service["id"], "units": "2"}]}))
    invoices = [made(client.post("/api/v1/invoices", json={
        "org_id": customer.id, "due_date": "2026-02-01", "period_from": "2026-01-01", "period_to": "2026-01-31",
        "items": [{"description": "Setup", "quantity": "1", "unit_price": "50"}]})) for _ in range(3)]
    rule = made(client.post("/api/v1/tax-rules", json={"name": "VAT", "country": "DE", "rate": "19"}))
    made(client.put(f"/api/v1/organisations/{customer.id}/card", json={"token": "tok_visa_4242"}), 200)
    payment = made(client.post(f"/api/v1/invoices/{invoices[0]['id']}/capture"))
    order = made(client.post("/api/v1/orders", json={
        "organization_name": "Fuzz Order Ltd", "contact_name": "Fuzz", "address_line1": "1 MG Road",
        "address_line2": "Floor 2", "city": "Chennai", "state": "Tamil Nadu", "country": "IN",
        "postal_code": "600001", "mobile": "+91-9382126757", "contact_email": "fuzz@order.example",
        "items": [{"service_id": service["id"], "units": 1}]}))
    run = made(client.post("/api/v1/billing/runs"), 202)
    ids = {"org_id": customer.id, "invoice_id": invoices[1]["id"], "subscription_id": sub["id"],
           "service_id": service["id"], "item_id": sub["items"][0]["id"], "rule_id": rule["id"],
           "payment_id": payment["id"], "order_id": order["id"], "run_id": run["id"], "name": "fakegateway",
           "gateway_id": "fakepay"}
    return {"tokens": {"admin": admin_token, "customer": customer_token}, "ids": ids}


@contextmanager
def _own_context():
    """Requests run in their own app context, as in production (the test's is hidden)."""
    from kassa.extensions import db

    token = _cv_app.set(None)
    try:
        yield
    finally:
        _cv_app.reset(token)
        db.session.rollback()


def _isolated_call(case, app, headers):
    with _own_context():
        return case.call(headers=headers, app=app)


def _fuzz(operation, mode, app, tokens, path_parameters=None) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case):
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            response = _isolated_call(case, app, headers)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as exc:
                exc.add_note(f"as the {role}")
                raise

    run()


def _describe(exc: BaseException, depth: int = 0) -> str:
    """The failure with its notes (the request to reproduce it) and, for a group, each failure."""
    lines = [f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", ())]
    text = "\n".join(lines)
    if isinstance(exc, BaseExceptionGroup) and depth < 3:
        text += "".join("\n  - " + _describe(sub, depth + 1).replace("\n", "\n    ") for sub in exc.exceptions)
    return text


def test_api_fuzz(app, fuzz_world):
    """Every operation, valid and invalid input, and valid input on real objects
    (the path parameters naming the fixture's objects), both roles. One test over all
    operations (the data is set up once); every operation's failure is reported."""
    tokens, ids = fuzz_world["tokens"], fuzz_world["ids"]
    with _own_context():
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = [p.name for p in operation.path_parameters]
        passes = [(GenerationMode.POSITIVE, None, "positive"), (GenerationMode.NEGATIVE, None, "negative")]
        if names and all(n in ids for n in names):
            passes.append((GenerationMode.POSITIVE, {n: ids[n] for n in names}, "positive, real ids"))
        for mode, path_parameters, label in passes:
            try:
                _fuzz(operation, mode, app, tokens, path_parameters)
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together below
                failures.append(f"{operation.label} ({label}): {_describe(exc)[:4000]}")
    assert operations >= 50, f"only {operations} operations in the document"
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)


# ------------------------------------------------------------------ what the fuzzer found, pinned


def test_numbers_beyond_the_id_columns_are_4xx_not_500(db, fuzz_world, app):
    """PostgreSQL's INTEGER is 32 bits: a larger id raised DataError (500) there, OverflowError on SQLite."""
    from kassa.testing.helpers import Api

    client = Api(app.test_client(), fuzz_world["tokens"]["admin"])
    huge = 2**31
    response = client.get(f"/api/v1/organisations/{huge}")
    assert response.status_code == 404 and response.get_json()["error"]["message"]
    response = client.post("/api/v1/organisations", json={"name": "X", "country": "IN", "parent_id": huge})
    assert response.status_code == 422 and "out of range" in response.get_json()["error"]["message"]
    response = client.get(f"/api/v1/invoices?org_id={huge}")
    assert response.status_code == 422 and "org_id" in response.get_json()["error"]["fields"]
    assert client.get(f"/api/v1/invoices?org_id={2**31 - 1}").status_code == 200


def test_wrong_json_types_are_422_with_the_field(db, fuzz_world, app):
    from kassa.testing.helpers import Api

    client = Api(app.test_client(), fuzz_world["tokens"]["admin"])
    response = client.put("/api/v1/billing/settings", json={"currency": True, "invoice_prefix": []})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"currency", "invoice_prefix"}
    invoice_id = fuzz_world["ids"]["invoice_id"]
    response = client.post(f"/api/v1/invoices/{invoice_id}/pay", json={"return_url": []})
    assert response.status_code == 422 and "return_url" in response.get_json()["error"]["fields"]
    # numbers as strings (as forms send them) still reach the services, which name the problem
    response = client.post("/api/v1/subscriptions", json={"org_id": str(fuzz_world["ids"]["org_id"]), "name": "S",
                                                          "items": [{"service_id": "999999", "units": "1"}]})
    assert response.status_code in (404, 422) and response.get_json()["error"]["message"]


def test_amounts_out_of_range_are_422(db, fuzz_world, app):
    from kassa.testing.helpers import Api

    client = Api(app.test_client(), fuzz_world["tokens"]["admin"])
    org_id = fuzz_world["ids"]["org_id"]
    response = client.post(f"/api/v1/organisations/{org_id}/wallet", json={"kind": "free_credit",
                                                                           "amount": "1" + "0" * 12})
    assert response.status_code == 422 and "amount" in response.get_json()["error"]["fields"]
    response = client.post("/api/v1/invoices", json={
        "org_id": org_id, "due_date": "2026-02-01", "period_from": "2026-01-01", "period_to": "2026-01-31",
        "items": [{"description": "Big", "quantity": "999999999999", "unit_price": "999999999999"}]})
    assert response.status_code == 422 and response.get_json()["error"]["message"]


def test_wallet_idempotency_keys_are_per_organisation_and_empty_is_none(db, fuzz_world, app, make_org, provider):
    from kassa.testing.helpers import Api

    client = Api(app.test_client(), fuzz_world["tokens"]["admin"])
    org_id = fuzz_world["ids"]["org_id"]
    other = make_org("customer", parent=provider, name="Other Ltd")
    url = "/api/v1/organisations/{}/wallet"
    first = client.post(url.format(org_id), json={"kind": "free_credit", "amount": "5", "idempotency_key": ""})
    second = client.post(url.format(org_id), json={"kind": "free_credit", "amount": "5", "idempotency_key": ""})
    assert first.status_code == second.status_code == 201
    assert first.get_json()["transaction"]["id"] != second.get_json()["transaction"]["id"]
    mine = client.post(url.format(org_id), json={"kind": "free_credit", "amount": "7", "idempotency_key": "k1"})
    again = client.post(url.format(org_id), json={"kind": "free_credit", "amount": "7", "idempotency_key": "k1"})
    theirs = client.post(url.format(other.id), json={"kind": "free_credit", "amount": "9", "idempotency_key": "k1"})
    assert mine.get_json()["transaction"]["id"] == again.get_json()["transaction"]["id"]
    assert theirs.status_code == 201 and theirs.get_json()["transaction"]["org_id"] == other.id
    assert theirs.get_json()["transaction"]["amount"] == "9.00"


def test_unknown_gateway_verify_is_404(db, fuzz_world, app):
    from kassa.testing.helpers import Api

    client = Api(app.test_client(), fuzz_world["tokens"]["admin"])
    assert client.post("/api/v1/gateways/nope/verify").status_code == 404
    assert client.post("/api/v1/gateways/fakepay/verify").status_code == 200


def test_document_declares_media_types_and_empty_204(db, app):
    from kassa.testing.helpers import isolated

    paths = isolated(app.test_client().get, "/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/api/v1/invoices/export.csv"]["get"]["responses"]["200"]["content"]) == {"text/csv"}
    assert "application/pdf" in paths["/api/v1/invoices/{invoice_id}/document"]["get"]["responses"]["200"]["content"]
    assert "content" not in paths["/api/v1/tax-rules/{rule_id}"]["delete"]["responses"]["204"]
    assert "201" in paths["/api/v1/invoices/{invoice_id}/capture"]["post"]["responses"]
