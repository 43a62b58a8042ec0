"""API: cards, Credit Card Settings and Status, capture, hosted payments, gateways."""
from __future__ import annotations

from flask import abort, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..models import Organisation, Payment
from ..money import plain
from ..services import cards, charges, gateways, invoice_queries, scope, settings
from ..services.errors import ValidationError
from .api import AMOUNT_PATTERN, allow, bp, json_body
from .openapi import doc

MONEY = {"type": "string", "pattern": AMOUNT_PATTERN}


def card_json(status: cards.CardStatus) -> dict:
    return {"org_id": status.org.id, "organisation": status.org.name,
            "billing_profile_status": "Configured" if status.configured else "Not Configured",
            "credit_card_status": status.status if status.configured else None, "brand": status.brand,
            "last4": status.last4, "gateway": status.gateway}


def payment_json(p: Payment) -> dict:
    return {"id": p.id, "invoice_id": p.invoice_id, "org_id": p.org_id, "purpose": p.purpose, "gateway": p.gateway,
            "amount": plain(p.amount, settings.config(p.provider_id).precision), "currency": p.currency,
            "status": p.status, "attempt": p.attempt, "reference": p.reference, "redirect_url": p.redirect_url or None,
            "decline_reason": p.decline_reason or None, "idempotency_key": p.idempotency_key}


CARD_SETTINGS = {"type": "object", "properties": {
    "enforce_card": {"type": "boolean"}, "except_trial": {"type": "boolean"},
    "exemptions": {"type": "array", "items": {"type": "integer"}}, "link_multiple_accounts": {"type": "boolean"},
    "validity_deduction": {"type": "boolean"}, "validity_amount": MONEY,
    "max_declines": {"type": "integer", "minimum": 1, "maximum": 20}}}


def _card_settings_json(provider_id: int) -> dict:
    cs = cards.card_settings(provider_id)
    return {"enforce_card": cs.enforce_card, "except_trial": cs.except_trial,
            "exemptions": sorted(cards.exemption_ids(provider_id)), "link_multiple_accounts": cs.link_multiple_accounts,
            "validity_deduction": cs.validity_deduction,
            "validity_amount": plain(cs.validity_amount, settings.config(provider_id).precision),
            "max_declines": cs.max_declines}


@bp.get("/billing/card-settings")
@allow("billing.view", kinds=("provider",))
@doc("Credit Card Settings", response=CARD_SETTINGS)
def card_settings_get():
    return jsonify(_card_settings_json(current_user.org_id))


@bp.put("/billing/card-settings")
@allow("billing.configure", kinds=("provider",))
@doc("Change Credit Card Settings", body=CARD_SETTINGS, response=CARD_SETTINGS)
def card_settings_put():
    data = _card_settings_json(current_user.org_id) | json_body()
    cards.update_card_settings(current_user, data)
    return jsonify(_card_settings_json(current_user.org_id))


@bp.get("/cards")
@allow("billing.view", kinds=("provider", "reseller"))
@doc("Credit Card Status of every organisation in your scope")
def cards_list():
    return jsonify({"items": [card_json(s) for s in cards.statuses(current_user)]})


@bp.get("/organisations/<int:org_id>/card")
@allow("billing.view")
@doc("An organisation's card: brand and last four digits only")
def card_get(org_id: int):
    return jsonify(card_json(cards.status_of(scope.get_org(current_user, org_id))))


@bp.put("/organisations/<int:org_id>/card")
@allow("payments.capture")
@doc("Add or replace the card with the gateway's token (never a card number)",
     body={"type": "object", "required": ["token"], "properties": {"token": {"type": "string"},
                                                                   "gateway": {"type": "string"}}},
     errors=(401, 403, 404, 409, 422))
def card_put(org_id: int):
    org = scope.get_org(current_user, org_id)
    data = json_body()
    cards.add_card(current_user, org, data.get("token", ""), data.get("gateway"))
    return jsonify(card_json(cards.status_of(org)))


@bp.delete("/organisations/<int:org_id>/card")
@allow("payments.capture")
@doc("Remove the card", status=204)
def card_delete(org_id: int):
    cards.remove_card(current_user, scope.get_org(current_user, org_id))
    return "", 204


@bp.post("/invoices/<int:invoice_id>/capture")
@allow("payments.capture")
@doc("Capture Payment: charge the amount due to the organisation's card (one attempt at a time)",
     errors=(401, 403, 404, 409), status=201)
def invoice_capture(invoice_id: int):
    payment = charges.capture(current_user, invoice_queries.get(current_user, invoice_id))
    return jsonify(payment_json(payment)), 201


@bp.post("/invoices/<int:invoice_id>/pay")
@allow("billing.view")
@doc("Start an online payment on the gateway's page; follow redirect_url",
     body={"type": "object", "required": ["return_url"], "properties": {"return_url": {"type": "string"}}},
     errors=(401, 403, 404, 409, 422), status=201)
def invoice_pay(invoice_id: int):
    return_url = json_body().get("return_url", "")
    if not isinstance(return_url, str) or not return_url.startswith(("http://", "https://")):
        raise ValidationError("return_url is an absolute URL.", {"return_url": "https://…"})
    payment = charges.pay_hosted(current_user, invoice_queries.get(current_user, invoice_id), return_url)
    return jsonify(payment_json(payment)), 201


def _payment(payment_id: int) -> Payment:
    payment = db.session.get(Payment, payment_id)
    visible = set(db.session.scalars(select(Organisation.id).where(scope.visible_orgs_clause(current_user))))
    if payment is None or payment.org_id not in visible:
        abort(404)
    return payment


@bp.get("/payments/<int:payment_id>")
@allow("billing.view")
@doc("A payment attempt")
def payment_get(payment_id: int):
    return jsonify(payment_json(_payment(payment_id)))


@bp.post("/payments/<int:payment_id>/complete")
@allow("billing.view")
@doc("Finish a hosted payment with what the gateway sent back to the return URL",
     body={"type": "object", "additionalProperties": {"type": "string"}})
def payment_complete(payment_id: int):
    payment = charges.complete_hosted(_payment(payment_id), {k: str(v) for k, v in json_body().items()})
    return jsonify(payment_json(payment))


@bp.get("/gateways")
@allow("plugins.manage", kinds=("provider",))
@doc("Enabled payment gateways")
def gateways_list():
    return jsonify({"items": [{"id": g.id, "name": g.name, "currencies": list(g.currencies),
                               "card_brands": list(g.card_brands), "countries": list(g.countries),
                               "saves_cards": g.saves_cards, "hosted_redirect": g.hosted_redirect}
                              for g in gateways.enabled(current_user.org_id).values()]})


@bp.post("/gateways/<gateway_id>/verify")
@allow("plugins.manage", kinds=("provider",))
@doc("Verify the gateway's credentials with the gateway", errors=(401, 403, 404, 422))
def gateway_verify(gateway_id: str):
    if gateway_id not in gateways.enabled(current_user.org_id):
        abort(404)
    result = gateways.call(current_user.org_id, "kassa_gateway_verify", gateway_id)
    return jsonify({"ok": result.ok, "message": result.message})
