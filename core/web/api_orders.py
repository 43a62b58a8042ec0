"""API: orders (seed 004 "Create Invoice"): a new customer, its contact and the invoice
of the ordered services in one call."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from ..models import Order
from ..money import plain
from ..services import orders, settings
from .api import AMOUNT_PATTERN, allow, bp, json_body, paged
from .openapi import doc

MONEY = {"type": "string", "pattern": AMOUNT_PATTERN, "description": "A decimal amount as a string"}

ORDER_INPUT = {"type": "object", "required": [f for f in orders.REQUIRED] + ["items"], "properties": {
    "organization_name": {"type": "string", "maxLength": 200},
    "contact_name": {"type": "string", "maxLength": 200, "description": "The contact person (Name)"},
    "address_line1": {"type": "string"}, "address_line2": {"type": "string"}, "city": {"type": "string"},
    "state": {"type": "string"},
    "country": {"type": "string", "description": "ISO 3166-1 alpha-2; decides tax and currency"},
    "postal_code": {"type": "string", "description": "PIN code (India: 6 digits) or ZIP"},
    "mobile": {"type": "string", "pattern": r"^\+\d{1,3}-\d{4,14}$", "example": "+91-9382126757"},
    "contact_email": {"type": "string", "format": "email"},
    "kyc_id": {"type": "string", "description": "Optional; the GSTIN in India (its state must be the state)"},
    "technical_admin": {"type": "string", "format": "email",
                        "description": "Optional; an active sub-admin of your organisation"},
    "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["service_id", "units"],
                                                        "properties": {"service_id": {"type": "integer"},
                                                                       "units": {"type": "integer", "minimum": 1}}}}}}

ORDER_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "number": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "active"]},
    "org_id": {"type": "integer"}, "organization_name": {"type": "string"}, "ordering_org_id": {"type": "integer"},
    "contact_name": {"type": "string"}, "contact_email": {"type": "string"}, "mobile": {"type": "string"},
    "technical_admin": {"type": "string", "nullable": True}, "currency": {"type": "string"},
    "lines": {"type": "array", "items": {"type": "object", "properties": {
        "service_id": {"type": "integer"}, "service": {"type": "string"}, "units": MONEY, "unit_price": MONEY}}},
    "invoice": {"type": "object", "properties": {
        "id": {"type": "integer"}, "number": {"type": "string"}, "total": MONEY, "amount_due": MONEY,
        "status": {"type": "string"}, "online_payment": {"type": "boolean"},
        "online_minimum": {"allOf": [MONEY], "nullable": True}}},
    "subscription_id": {"type": "integer", "nullable": True},
    "activation_error": {"type": "string", "nullable": True},
    "created_at": {"type": "string"}, "activated_at": {"type": "string", "nullable": True}}}


def order_json(o: Order) -> dict:
    precision = settings.config(o.provider_id).precision
    summary = orders.invoice_summary(o)
    invoice = summary["invoice"]
    return {"id": o.id, "number": o.number, "status": o.status, "org_id": o.org_id,
            "organization_name": o.org.name, "ordering_org_id": o.ordering_org_id, "contact_name": o.contact_name,
            "contact_email": o.contact_email, "mobile": o.mobile,
            "technical_admin": o.technical_admin.email if o.technical_admin else None, "currency": o.currency,
            "lines": [{"service_id": line.service_id, "service": line.service.name, "units": plain(line.units, 0),
                       "unit_price": plain(line.unit_price, precision)} for line in o.lines],
            "invoice": {"id": invoice.id, "number": invoice.number, "total": plain(invoice.total, precision),
                        "amount_due": plain(summary["due"], precision), "status": summary["status"],
                        "online_payment": summary["online"],
                        "online_minimum": plain(summary["minimum"], precision) if summary["minimum"] is not None
                        else None},
            "subscription_id": o.subscription_id, "activation_error": o.activation_error or None,
            "created_at": o.created_at.isoformat() + "Z",
            "activated_at": o.activated_at.isoformat() + "Z" if o.activated_at else None}


@bp.post("/orders")
@allow("orgs.manage", kinds=("provider", "reseller"))
@doc("Place an order for a new customer: the organisation, its contact (a customer admin), the order and its "
     "invoice, e-mailed with a link and the sign-in details; the invoice's payment activates the order",
     body=ORDER_INPUT, response=ORDER_SCHEMA, status=201)
def order_create():
    return jsonify(order_json(orders.place(current_user, json_body()))), 201


@bp.get("/orders")
@allow("orgs.view", kinds=("provider", "reseller"))
@doc("Orders for the customers in your scope, newest first", query={
    "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1, "maximum": 200}},
     response={"type": "object", "properties": {"items": {"type": "array", "items": ORDER_SCHEMA}}})
def order_list():
    return paged(orders.orders_query(current_user), order_json)


@bp.get("/orders/<int:order_id>")
@allow("orgs.view", kinds=("provider", "reseller"))
@doc("One order, with its invoice's status and whether it can be paid online", response=ORDER_SCHEMA)
def order_get(order_id: int):
    return jsonify(order_json(orders.get_order(current_user, order_id)))
