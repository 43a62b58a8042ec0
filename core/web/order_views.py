"""Console: Orders (seed 004 "Create Invoice": a reseller or the provider orders
services for a new customer) and the e-mailed invoice link ("Pay Invoice")."""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db, login_manager
from ..models import Order, Organisation
from ..permissions import can
from ..services import charges, invoice_queries, invoicing, orders, settings
from ..services.errors import ServiceError
from .forms import EmptyForm, country_choices
from .guard import require

bp = Blueprint("orders", __name__)
PER_PAGE = 50
EMPTY_ROWS = 5
MAX_ROWS = 100
_ITEM_KEY = re.compile(r"^items-(\d+)-(service_id|units)$")


def _form_items(form) -> list[dict]:
    """The service rows as posted, at their row numbers (errors are keyed by row)."""
    rows: dict[int, dict] = {}
    for key in form:
        match = _ITEM_KEY.match(key)
        if match and int(match.group(1)) < MAX_ROWS:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = form.get(key, "")
    if not rows:
        return []
    return [rows.get(i, {"service_id": "", "units": ""}) for i in range(max(rows) + 1)]


def _form_data(form) -> dict:
    data = {name: form.get(name, "") for name in orders.FIELDS}
    data["items"] = _form_items(form)
    return data


def _step_two(data: dict, errors: dict, status: int = 200, extra_rows: int = 0):
    provider_id = current_user.org.provider_id
    currency = settings.currency_for(provider_id, data.get("country"))
    items = list(data.get("items") or [])
    rows = max(len(items), EMPTY_ROWS) + extra_rows  # empty rows: the form works without JavaScript
    items += [{"service_id": "", "units": ""} for _ in range(rows - len(items))]
    return render_template("orders/new.html", step=2, data=data, items=items[:MAX_ROWS], errors=errors,
                           currency=currency, services=orders.services_for(provider_id, currency),
                           country_name=dict(country_choices()).get(data.get("country"), data.get("country")),
                           countries=country_choices()), status


def _step_one(data: dict, errors: dict, status: int = 200):
    return render_template("orders/new.html", step=1, data=data, items=data.get("items") or [], errors=errors,
                           countries=country_choices()), status


@bp.get("/orders")
@require("orgs.view", kinds=("provider", "reseller"))
def order_list():
    page = db.paginate(orders.orders_query(current_user), per_page=PER_PAGE, error_out=False)
    invoice_ids = [o.invoice_id for o in page.items if o.invoice_id]
    due = invoicing.due_amounts(invoice_ids)
    invoices = {i.id: i for i in db.session.scalars(select(invoicing.Invoice).where(
        invoicing.Invoice.id.in_(invoice_ids)))} if invoice_ids else {}
    states = {i: invoicing.status_of(inv, due[i]) for i, inv in invoices.items()}
    return render_template("orders/list.html", page=page, invoices=invoices, states=states,
                           can_order=orders.can_order(current_user))


@bp.route("/orders/new", methods=["GET", "POST"])
@require("orgs.manage", kinds=("provider", "reseller"))
def order_new():
    if not orders.can_order(current_user):
        abort(403)
    if request.method == "GET":
        return _step_one({}, {})
    EmptyForm().validate_on_submit()
    data = _form_data(request.form)
    action = request.form.get("action", "add")
    if action == "back":
        return _step_one(data, {})
    if action == "next":
        _, errors = orders.clean_customer(current_user, data)
        if errors:
            flash("Please correct the highlighted fields.", "error")
            return _step_one(data, dict(errors), 422)
        return _step_two(data, {})
    if action == "add_row":  # the "+" button without JavaScript: the page comes back with one row more
        return _step_two(data, {}, extra_rows=1)
    try:
        order = orders.place(current_user, data)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        errors = dict(exc.field_errors)
        if any(not k.startswith("items") for k in errors):
            return _step_one(data, errors, exc.status)
        return _step_two(data, errors, exc.status)
    flash(f"Order {order.number} created. The invoice, its link and the sign-in details were e-mailed to "
          f"{order.contact_email}.", "success")
    return redirect(url_for("orders.order", order_id=order.id))


@bp.get("/orders/<int:order_id>")
@require("orgs.view", kinds=("provider", "reseller"))
def order(order_id: int):
    o = orders.get_order(current_user, order_id)
    return render_template("orders/order.html", order=o, summary=orders.invoice_summary(o),
                           ordering_org=db.session.get(Organisation, o.ordering_org_id), form=EmptyForm())


@bp.post("/orders/<int:order_id>/activate")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def order_activate(order_id: int):
    o = orders.get_order(current_user, order_id)
    EmptyForm().validate_on_submit()
    try:
        orders.retry_activation(current_user, o)
        flash(f"Order {o.number} is active.", "success")
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("orders.order", order_id=o.id))


# ------------------------------------------------------------ the e-mailed invoice link


def _linked(token: str):
    """The order and invoice of a link, for the signed-in user (404 outside their scope)."""
    order_id, invoice_id = orders.open_link(token)
    invoice = invoice_queries.get(current_user, invoice_id)
    found = db.session.get(Order, order_id)
    if found is None or found.invoice_id != invoice.id:
        abort(404)
    return found, invoice


@bp.get("/orders/invoice/<token>")
def invoice_link(token: str):
    """The link checks first (a wrong or expired one says so), then asks to sign in."""
    orders.open_link(token)
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not can(current_user, "billing.view"):
        abort(403)
    o, invoice = _linked(token)
    return render_template("orders/invoice.html", order=o, inv=invoice, summary=orders.invoice_summary(o),
                           provider=db.session.get(Organisation, invoice.provider_id), token=token, form=EmptyForm())


@bp.post("/orders/invoice/<token>/pay")
@require("billing.view")
def invoice_link_pay(token: str):
    """"Click here to pay": the gateway for the invoice's currency and the buyer's country
    (the Indian gateway for INR, PayPal for USD); below the online minimum, support."""
    o, invoice = _linked(token)
    EmptyForm().validate_on_submit()
    summary = orders.invoice_summary(o)
    back = redirect(url_for("orders.invoice_link", token=token))
    if summary["due"] <= 0:
        flash(f"Invoice {invoice.number} is already paid.", "info")
        return back
    if not summary["online"]:
        flash(f"Online payment is available for amounts of {summary['minimum']} {invoice.currency} or more: "
              f"please contact support to pay this invoice.", "error")
        return back
    try:
        payment = charges.pay_hosted(current_user, invoice, url_for(
            "payments.pay_return", payment_id=0, _external=True).replace("/0/", "/PAYMENT_ID/"))
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return back
    if payment.status == "requires_action" and payment.redirect_url:
        from .payment_views import to_gateway

        return to_gateway(payment)
    return redirect(url_for("payments.payment_result", payment_id=payment.id))


__all__ = ["bp"]
