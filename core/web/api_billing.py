"""API: catalogue, subscriptions, invoices, tax rules, billing runs, transactions, wallets."""
from __future__ import annotations

from datetime import date

from flask import Response, abort, jsonify, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from ..clock import today
from ..extensions import db
from ..models import BillingRun, Invoice, LedgerTransaction, Service, Subscription
from ..money import plain
from ..services import (billing_run, catalog, export, invoice_queries, invoicing, manual_invoices, notifications,
                        payments, scope, subscriptions, tax_rules, wallet)
from ..services.errors import ValidationError
from .api import AMOUNT_PATTERN, allow, bp, json_body, org_json
from .guard import refuse_own
from .openapi import doc

MONEY = {"type": "string", "pattern": AMOUNT_PATTERN, "description": "A decimal amount as a string"}


def money(value, places: int = 2) -> str | None:
    """Amounts leave the API as strings, never floats, at the billing precision or finer."""
    return plain(value, places)


# ------------------------------------------------------------------ catalogue


def service_json(s: Service) -> dict:
    return {"id": s.id, "code": s.code, "name": s.name, "category": s.category, "unit": s.unit,
            "description": s.description, "taxable": s.taxable, "tax_code": s.tax_code, "active": s.active,
            "prices": {p.currency: money(p.unit_price) for p in s.prices}}


SERVICE_INPUT = {"type": "object", "properties": {
    "code": {"type": "string"}, "name": {"type": "string"}, "category": {"type": "string"},
    "unit": {"type": "string"}, "description": {"type": "string"}, "taxable": {"type": "boolean"},
    "tax_code": {"type": "string"}, "active": {"type": "boolean"},
    "prices": {"type": "object", "additionalProperties": MONEY}}, "required": ["code", "name", "category", "unit"]}


@bp.get("/services")
@allow()
@doc("The service catalogue of your provider")
def services_list():
    rows = db.session.scalars(catalog.services_query(current_user.org.provider_id,
                                                     active_only=current_user.org.kind != "provider"))
    return jsonify({"items": [service_json(s) for s in rows]})


@bp.post("/services")
@allow("catalog.manage", kinds=("provider",))
@doc("Add a service to the catalogue", body=SERVICE_INPUT, status=201)
def service_create():
    return jsonify(service_json(catalog.save_service(current_user, json_body()))), 201


@bp.patch("/services/<int:service_id>")
@allow("catalog.manage", kinds=("provider",))
@doc("Change a service (prices per currency)", body={"type": "object", "properties": SERVICE_INPUT["properties"]})
def service_update(service_id: int):
    service = catalog.get_service(current_user.org_id, service_id)
    return jsonify(service_json(catalog.save_service(current_user, json_body(), service)))


# ------------------------------------------------------------------ subscriptions


def subscription_json(s: Subscription) -> dict:
    return {"id": s.id, "org_id": s.org_id, "name": s.name, "currency": s.currency, "cycle": s.cycle,
            "anchor_date": s.anchor_date.isoformat(), "next_period_start": s.next_period_start.isoformat(),
            "status": s.status, "trial_ends_on": s.trial_ends_on.isoformat() if s.trial_ends_on else None,
            "auto_deduction": s.auto_deduction, "cancelled_on": s.cancelled_on.isoformat() if s.cancelled_on else None,
            "items": [{"id": i.id, "service_id": i.service_id, "service": i.service.name, "units": money(i.units, 0),
                       "unit_price": money(i.unit_price)} for i in s.items]}


SUBSCRIPTION_INPUT = {"type": "object", "required": ["org_id", "name", "items"], "properties": {
    "org_id": {"type": "integer"}, "name": {"type": "string"},
    "cycle": {"type": "string", "enum": ["monthly", "quarterly", "yearly"]},
    "start_date": {"type": "string", "format": "date"}, "trial_days": {"type": "integer"},
    "auto_deduction": {"type": "boolean"}, "currency": {"type": "string"},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "service_id": {"type": "integer"}, "units": MONEY, "unit_price": MONEY}}}}}


@bp.get("/subscriptions")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Subscriptions in your scope", query={"org_id": {"type": "integer"}, "status": {"type": "string"}})
def subscriptions_list():
    query = subscriptions.subscriptions_query(current_user)
    if org_id := request.args.get("org_id"):
        query = query.where(Subscription.org_id == int(org_id) if org_id.isdigit() else False)
    if status := request.args.get("status"):
        query = query.where(Subscription.status == status)
    from .api import paged

    return paged(query.order_by(Subscription.id.desc()), subscription_json)


@bp.post("/subscriptions")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Create a subscription (contract) with its items", body=SUBSCRIPTION_INPUT, status=201)
def subscription_create():
    data = json_body()
    org = scope.get_org(current_user, data.get("org_id"))
    refuse_own(org.id)
    return jsonify(subscription_json(subscriptions.create(current_user, org, data))), 201


@bp.get("/subscriptions/<int:subscription_id>")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("One subscription")
def subscription_get(subscription_id: int):
    return jsonify(subscription_json(subscriptions.get_subscription(current_user, subscription_id)))


@bp.post("/subscriptions/<int:subscription_id>/items")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Add a service from today (prorated)", body={"type": "object", "required": ["service_id", "units"],
                                                 "properties": {"service_id": {"type": "integer"}, "units": MONEY}},
     status=201)
def subscription_add_item(subscription_id: int):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    refuse_own(sub.org_id)
    data = json_body()
    subscriptions.add_item(current_user, sub, data.get("service_id"), data.get("units"), data.get("unit_price"))
    return jsonify(subscription_json(sub)), 201


@bp.patch("/subscriptions/<int:subscription_id>/items/<int:item_id>")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Change an item's units from today (prorated to the day)",
     body={"type": "object", "required": ["units"], "properties": {"units": MONEY}})
def subscription_change_units(subscription_id: int, item_id: int):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    refuse_own(sub.org_id)
    item = next((i for i in sub.items if i.id == item_id), None)
    if item is None:
        abort(404)
    subscriptions.change_units(current_user, item, json_body().get("units"))
    return jsonify(subscription_json(sub))


@bp.post("/subscriptions/<int:subscription_id>/status")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Suspend, resume or cancel", body={"type": "object", "required": ["action"], "properties": {
    "action": {"type": "string", "enum": ["suspend", "resume", "cancel"]}}}, errors=(401, 403, 404, 409, 422))
def subscription_status(subscription_id: int):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    refuse_own(sub.org_id)
    subscriptions.set_status(current_user, sub, json_body().get("action", ""))
    return jsonify(subscription_json(sub))


@bp.put("/subscriptions/<int:subscription_id>/auto-deduction")
@allow("subscriptions.manage", kinds=("provider", "reseller"))
@doc("Turn auto-deduction on or off", body={"type": "object", "required": ["enabled"],
                                            "properties": {"enabled": {"type": "boolean"}}})
def subscription_auto_deduction(subscription_id: int):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    refuse_own(sub.org_id)
    enabled = json_body().get("enabled")
    if not isinstance(enabled, bool):
        raise ValidationError("enabled is true or false.", {"enabled": "true or false"})
    subscriptions.set_auto_deduction(current_user, sub, enabled)
    return jsonify(subscription_json(sub))


# ------------------------------------------------------------------ invoices


def invoice_json(inv: Invoice, status: str | None = None, due=None, lines: bool = False) -> dict:
    if status is None:
        status, due = invoicing.status(inv), invoicing.amount_due(inv)
    body = {"id": inv.id, "number": inv.number, "org_id": inv.org_id, "kind": inv.kind,
            "subscription_id": inv.subscription_id, "status": status, "currency": inv.currency,
            "issue_date": inv.issue_date.isoformat(), "due_date": inv.due_date.isoformat(),
            "period_start": inv.period_start.isoformat() if inv.period_start else None,
            "period_end": inv.period_end.isoformat() if inv.period_end else None,
            "subtotal": money(inv.subtotal), "tax_total": money(inv.tax_total), "total": money(inv.total),
            "amount_due": money(due), "tax_rate": inv.tax_rate_label if lines else None}
    if lines:
        body["lines"] = [{"description": l.description, "quantity": money(l.quantity, 0), "unit_price": money(l.unit_price),
                          "amount": money(l.amount), "tax": money(l.tax_amount), "tax_code": l.tax_code}
                         for l in inv.lines]
        body["taxes"] = [{"name": t.name, "rate": money(t.rate, 0), "taxable_amount": money(t.taxable_amount),
                          "amount": money(t.amount)} for t in inv.taxes]
        body["tax_note"] = inv.tax_note
    return body


INVOICE_FILTERS = {"org_id": {"type": "integer"}, "status": {"type": "string", "enum": list(invoicing.STATUSES)},
                   "date_from": {"type": "string", "format": "date"}, "date_to": {"type": "string", "format": "date"},
                   "number": {"type": "string"}, "subscription_id": {"type": "integer"}}


@bp.get("/invoices")
@allow("billing.view")
@doc("Invoices, newest first, with filters; pass `next` back as `after` for the next page",
     query=INVOICE_FILTERS | {"after": {"type": "string"}, "limit": {"type": "integer", "maximum": 200}})
def invoices_list():
    f = invoice_queries.parse_filter(request.args)
    try:
        limit = min(200, max(1, int(request.args.get("limit", 50))))
    except ValueError:
        raise ValidationError("limit is a whole number.", {"limit": "1 to 200"}) from None
    rows, cursor = invoice_queries.page(current_user, f, request.args.get("after"), limit)
    return jsonify({"items": [invoice_json(i, s, d) for i, s, d in invoice_queries.with_status(rows)],
                    "next": cursor})


@bp.get("/invoices/export.csv")
@allow("billing.view")
@doc("The filtered invoice list as CSV (streamed)", query=INVOICE_FILTERS,
     response={"type": "string", "format": "binary"}, media_types=("text/csv",))
def invoices_export():
    f = invoice_queries.parse_filter(request.args)
    return Response(stream_with_context(export.rows(current_user, f)), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=invoices-{today().isoformat()}.csv"})


MANUAL_INVOICE = {"type": "object", "required": ["org_id", "due_date", "period_from", "period_to"], "properties": {
    "for": {"type": "string", "enum": ["customer", "reseller"]}, "org_id": {"type": "integer"},
    "subscription_id": {"type": "integer"}, "status": {"type": "string", "enum": ["paid", "unpaid"]},
    "issue_date": {"type": "string", "format": "date"}, "due_date": {"type": "string", "format": "date"},
    "period_from": {"type": "string", "format": "date"}, "period_to": {"type": "string", "format": "date"},
    "items_from_contract": {"type": "boolean"}, "currency": {"type": "string"}, "notes": {"type": "string"},
    "reference": {"type": "string"},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "description": {"type": "string"}, "quantity": MONEY, "unit_price": MONEY, "taxable": {"type": "boolean"},
        "tax_code": {"type": "string"}}}}}}


@bp.post("/invoices")
@allow("invoices.manage")
@doc("Create a manual invoice", body=MANUAL_INVOICE, status=201)
def invoice_create():
    refuse_own(json_body().get("org_id"))
    return jsonify(invoice_json(manual_invoices.create(current_user, json_body()), lines=True)), 201


@bp.get("/invoices/<int:invoice_id>")
@allow("billing.view")
@doc("One invoice with lines and tax breakup")
def invoice_get(invoice_id: int):
    return jsonify(invoice_json(invoice_queries.get(current_user, invoice_id), lines=True))


@bp.post("/invoices/<int:invoice_id>/cancel")
@allow("invoices.manage")
@doc("Cancel an unpaid invoice (ledger reversal; the number stays used)",
     body={"type": "object", "properties": {"reason": {"type": "string"}}}, errors=(401, 403, 404, 409, 422))
def invoice_cancel(invoice_id: int):
    inv = invoice_queries.get(current_user, invoice_id)
    refuse_own(inv.org_id)
    data = request.get_json(silent=True) or {}
    invoicing.cancel(current_user, inv, str(data.get("reason", "")))
    return jsonify(invoice_json(inv, lines=True))


@bp.post("/invoices/<int:invoice_id>/adjust-offline")
@allow("invoices.manage")
@doc("Adjust Offline: record an offline payment", body={"type": "object", "required": ["reference"], "properties": {
    "mark_as_paid": {"type": "boolean"}, "reference": {"type": "string"}, "description": {"type": "string"},
    "amount": MONEY}}, errors=(401, 403, 404, 409, 422))
def invoice_adjust_offline(invoice_id: int):
    inv = invoice_queries.get(current_user, invoice_id)
    refuse_own(inv.org_id)
    data = json_body()
    payments.adjust_offline(current_user, inv, mark_as_paid=bool(data.get("mark_as_paid")),
                            reference=data.get("reference", ""), description=data.get("description", ""),
                            amount=data.get("amount"))
    return jsonify(invoice_json(inv, lines=True))


@bp.post("/invoices/<int:invoice_id>/resend")
@allow("invoices.manage")
@doc("Send the invoice again to the organisation's primary contact")
def invoice_resend(invoice_id: int):
    inv = invoice_queries.get(current_user, invoice_id)
    message = notifications.invoice_message(inv, template="invoice_resend")
    return jsonify({"queued": message.id, "to": message.to_email})


# ------------------------------------------------------------------ tax rules


def rule_json(r) -> dict:
    return {"id": r.id, "name": r.name, "country": r.country, "rate": money(r.rate, 0), "status": r.status}


RULE_INPUT = {"type": "object", "required": ["name", "country", "rate"], "properties": {
    "name": {"type": "string"}, "country": {"type": "string"}, "rate": MONEY,
    "status": {"type": "string", "enum": ["active", "suspended"]}}}


@bp.get("/tax-rules")
@allow("billing.configure", kinds=("provider",))
@doc("Tax rules")
def tax_rules_list():
    return jsonify({"items": [rule_json(r) for r in db.session.scalars(tax_rules.rules_query(current_user.org_id))]})


@bp.post("/tax-rules")
@allow("billing.configure", kinds=("provider",))
@doc("Create a tax rule", body=RULE_INPUT, status=201)
def tax_rule_create():
    return jsonify(rule_json(tax_rules.save_rule(current_user, json_body()))), 201


@bp.put("/tax-rules/<int:rule_id>")
@allow("billing.configure", kinds=("provider",))
@doc("Edit (or suspend) a tax rule", body=RULE_INPUT)
def tax_rule_update(rule_id: int):
    rule = tax_rules.get_rule(current_user.org_id, rule_id)
    return jsonify(rule_json(tax_rules.save_rule(current_user, json_body(), rule)))


@bp.delete("/tax-rules/<int:rule_id>")
@allow("billing.configure", kinds=("provider",))
@doc("Delete a tax rule", status=204)
def tax_rule_delete(rule_id: int):
    tax_rules.delete_rule(current_user, tax_rules.get_rule(current_user.org_id, rule_id))
    return "", 204


# ------------------------------------------------------------------ billing runs


def run_json(r: BillingRun) -> dict:
    return {"id": r.id, "as_of": r.as_of.isoformat(), "status": r.status, "total": r.total, "done": r.done,
            "invoices_created": r.invoices_created, "skipped": r.skipped, "failed": r.failed,
            "errors": [{"subscription_id": e.subscription_id, "error": e.error} for e in r.errors[:100]]}


@bp.post("/billing/runs")
@allow("invoices.manage", kinds=("provider",))
@doc("Start a billing run", status=202, errors=(401, 403, 404, 409))
def billing_run_start():
    return jsonify(run_json(billing_run.start(current_user, current_user.org_id))), 202


@bp.get("/billing/runs/<int:run_id>")
@allow("billing.view", kinds=("provider",))
@doc("Progress and result of a billing run")
def billing_run_get(run_id: int):
    run = db.session.get(BillingRun, run_id)
    if run is None or run.provider_id != current_user.org_id:
        abort(404)
    return jsonify(run_json(run))


# ------------------------------------------------------------------ transactions and wallets


def txn_json(t: LedgerTransaction) -> dict:
    return {"id": t.id, "kind": t.kind, "direction": t.direction, "org_id": t.org_id, "amount": money(t.amount),
            "currency": t.currency, "reference": t.reference, "description": t.description,
            "invoice_id": t.invoice_id, "at": t.occurred_at.isoformat() + "Z"}


@bp.get("/transactions")
@allow("billing.view")
@doc("Transaction logs: every inbound and outbound transaction, newest first", query={
    "kind": {"type": "string"}, "direction": {"type": "string"}, "org_id": {"type": "integer"},
    "date_from": {"type": "string", "format": "date"}, "date_to": {"type": "string", "format": "date"},
    "after": {"type": "integer"}})
def transactions_list():
    query = select(LedgerTransaction).where(LedgerTransaction.provider_id == current_user.org.provider_id)
    if current_user.org.kind != "provider":
        query = query.where(LedgerTransaction.org_id.in_(scope.visible_org_ids(current_user)))
    for key, column in (("kind", LedgerTransaction.kind), ("direction", LedgerTransaction.direction)):
        if value := request.args.get(key):
            query = query.where(column == value)
    try:
        if org_id := request.args.get("org_id"):
            query = query.where(LedgerTransaction.org_id == int(org_id))
        if value := request.args.get("date_from"):
            query = query.where(LedgerTransaction.occurred_at >= date.fromisoformat(value))
        if value := request.args.get("date_to"):
            query = query.where(LedgerTransaction.occurred_at < date.fromordinal(date.fromisoformat(value).toordinal() + 1))
        if after := request.args.get("after"):
            query = query.where(LedgerTransaction.id < int(after))
    except ValueError:
        raise ValidationError("Bad filter: dates are YYYY-MM-DD, ids whole numbers.") from None
    rows = db.session.scalars(query.order_by(LedgerTransaction.id.desc()).limit(101)).all()
    return jsonify({"items": [txn_json(t) for t in rows[:100]], "next": rows[99].id if len(rows) > 100 else None})


@bp.post("/organisations/<int:org_id>/wallet")
@allow("payments.capture", kinds=("provider", "reseller"))
@doc("Move money in or out of a wallet: top-up, free credit, refund, debit adjustment", status=201,
     body={"type": "object", "required": ["kind", "amount"], "properties": {
         "kind": {"type": "string", "enum": list(wallet.KINDS)}, "amount": MONEY, "reference": {"type": "string"},
         "description": {"type": "string"}, "idempotency_key": {"type": "string"}}},
     errors=(401, 403, 404, 409, 422))
def wallet_move(org_id: int):
    org = scope.get_org(current_user, org_id)
    refuse_own(org.id)
    data = json_body()
    if data.get("kind") == "free_credit" and current_user.org.kind != "provider":
        abort(403)
    # a key names one movement of this wallet: scoped to it, so another organisation's key never
    # answers with this one's transaction; an empty key is no key
    key = f"wallet:{org.id}:{data['idempotency_key']}" if data.get("idempotency_key") else None
    txn = wallet.move(current_user, org, data.get("kind", ""), data.get("amount"), data.get("reference", ""),
                      data.get("description", ""), key)
    return jsonify({"transaction": txn_json(txn), "wallet": money(wallet.balance(org)),
                    "organisation": org_json(org)}), 201


# ------------------------------------------------------------------ exports


@bp.get("/exports")
@allow("billing.view", kinds=("provider",))
@doc("Invoice exports the enabled plugins offer (tax returns, ERP files)")
def exports_list():
    from ..services import exports

    return jsonify({"items": [{"id": e.id, "name": e.name, "media_type": e.media_type, "extension": e.extension,
                               "description": e.description} for e in exports.available(current_user.org_id).values()]})


@bp.get("/exports/<export_id>")
@allow("billing.view", kinds=("provider",))
@doc("Download an export for a month (in the export's own media type)",
     query={"month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}},
     response={"type": "string", "format": "binary"}, media_types=("*/*",))
def export_download(export_id: str):
    from ..services import exports

    document = exports.run(current_user.org_id, export_id, request.args.get("month", ""))
    return Response(document.content, mimetype=document.media_type,
                    headers={"Content-Disposition": f"attachment; filename={document.filename}"})
