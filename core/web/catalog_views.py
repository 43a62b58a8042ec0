"""Console: the service catalogue and resource subscriptions."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..money import plain
from ..models import CATEGORIES, CYCLES, Organisation, Subscription
from ..services import catalog, invoice_queries, scope, settings, subscriptions
from ..services.errors import NotFound, ServiceError
from .forms import EmptyForm
from .guard import refuse_own, require

bp = Blueprint("catalog", __name__)


def _flash_error(exc: ServiceError) -> None:
    flash(exc.message, "error")


@bp.get("/catalogue")
@require("catalog.manage", kinds=("provider",))
def services():
    rows = db.session.scalars(catalog.services_query(current_user.org_id)).all()
    return render_template("catalog/services.html", services=rows, bs=settings.billing_settings(current_user.org_id))


@bp.route("/catalogue/new", methods=["GET", "POST"])
@bp.route("/catalogue/<int:service_id>/edit", methods=["GET", "POST"])
@require("catalog.manage", kinds=("provider",))
def service_edit(service_id: int | None = None):
    service = catalog.get_service(current_user.org_id, service_id) if service_id else None
    bs = settings.billing_settings(current_user.org_id)
    errors, status = {}, 200
    data = {}
    if request.method == "POST":
        EmptyForm().validate_on_submit()
        data = {k: request.form.get(k, "") for k in ("code", "name", "category", "unit", "description", "tax_code")}
        data["taxable"] = bool(request.form.get("taxable"))
        data["active"] = bool(request.form.get("active"))
        data["prices"] = {bs.currency: request.form.get("price", "")}
        try:
            catalog.save_service(current_user, data, service)
            flash("Service saved.", "success")
            return redirect(url_for("catalog.services"))
        except ServiceError as exc:
            db.session.rollback()
            errors, status = exc.field_errors, exc.status
            _flash_error(exc)
    elif service is not None:
        data = {k: getattr(service, k) for k in ("code", "name", "category", "unit", "description", "tax_code",
                                                 "taxable", "active")}
        price = service.price(bs.currency)
        data["prices"] = {bs.currency: plain(price, bs.precision) if price is not None else ""}
    else:
        data = {"taxable": True, "active": True, "prices": {}}
    return render_template("catalog/service_form.html", service=service, data=data, errors=errors, bs=bs,
                           categories=CATEGORIES, form=EmptyForm()), status


@bp.get("/subscriptions")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_list():
    query = subscriptions.subscriptions_query(current_user)
    org_id = request.args.get("org_id", "")
    if org_id.isdigit():
        query = query.where(Subscription.org_id == int(org_id))
    status = request.args.get("status", "")
    if status:
        query = query.where(Subscription.status == status)
    page = db.paginate(query.order_by(Subscription.id.desc()), per_page=50, error_out=False)
    names = dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_({s.org_id for s in page.items}))).all()) if page.items else {}
    return render_template("catalog/subscriptions.html", page=page, names=names, org_id=org_id, status=status,
                           orgs=_orgs())


def _orgs():
    return db.session.execute(select(Organisation.id, Organisation.name).where(
        scope.visible_orgs_clause(current_user), Organisation.kind != "provider").order_by(Organisation.name)).all()


def _service_choices():
    return db.session.scalars(catalog.services_query(current_user.org.provider_id, active_only=True)).all()


@bp.route("/subscriptions/new", methods=["GET", "POST"])
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_new():
    errors, data, status = {}, {}, 200
    if request.method == "POST":
        EmptyForm().validate_on_submit()
        items = []
        for i in range(20):
            if f"items-{i}-service_id" not in request.form:
                break
            if request.form.get(f"items-{i}-service_id"):
                items.append({"service_id": request.form.get(f"items-{i}-service_id"),
                              "units": request.form.get(f"items-{i}-units")})
        data = {k: request.form.get(k, "") for k in ("org_id", "name", "cycle", "start_date", "trial_days")}
        data["auto_deduction"] = bool(request.form.get("auto_deduction"))
        data["items"] = items
        try:
            org = scope.get_org(current_user, data["org_id"])
            refuse_own(org.id)
            sub = subscriptions.create(current_user, org, data)
            flash(f"Subscription {sub.name} created.", "success")
            return redirect(url_for("catalog.subscription", subscription_id=sub.id))
        except NotFound:
            errors, status = {"org_id": "Choose an organisation."}, 422
            flash("Choose an organisation.", "error")
        except ServiceError as exc:
            db.session.rollback()
            errors, status = exc.field_errors, exc.status
            _flash_error(exc)
    return render_template("catalog/subscription_new.html", orgs=_orgs(), services=_service_choices(), data=data,
                           errors=errors, cycles=CYCLES, form=EmptyForm(), rows=range(5)), status


@bp.get("/subscriptions/<int:subscription_id>")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription(subscription_id: int):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    f = invoice_queries.InvoiceFilter(subscription_id=sub.id)
    invoices, _ = invoice_queries.page(current_user, f, None, 12)
    return render_template("catalog/subscription.html", sub=sub, services=_service_choices(), form=EmptyForm(),
                           invoices=invoice_queries.with_status(invoices))


def _sub_action(subscription_id: int, action):
    sub = subscriptions.get_subscription(current_user, subscription_id)
    refuse_own(sub.org_id)
    EmptyForm().validate_on_submit()
    try:
        flash(action(sub), "success")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("catalog.subscription", subscription_id=sub.id))


@bp.post("/subscriptions/<int:subscription_id>/items/<int:item_id>")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_units(subscription_id: int, item_id: int):
    def act(sub):
        item = next((i for i in sub.items if i.id == item_id), None)
        if item is None:
            raise NotFound("Item not found")
        change = subscriptions.change_units(current_user, item, request.form.get("units"))
        return (f"Units changed from {change.effective_on}; the change is prorated on this period's invoice."
                if change else "Units unchanged.")
    return _sub_action(subscription_id, act)


@bp.post("/subscriptions/<int:subscription_id>/items")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_add_item(subscription_id: int):
    def act(sub):
        subscriptions.add_item(current_user, sub, request.form.get("service_id"), request.form.get("units"))
        return "Service added from today (prorated)."
    return _sub_action(subscription_id, act)


@bp.post("/subscriptions/<int:subscription_id>/status")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_status(subscription_id: int):
    def act(sub):
        action = request.form.get("action", "")
        subscriptions.set_status(current_user, sub, action)
        return f"Subscription {action}: now {sub.status}."
    return _sub_action(subscription_id, act)


@bp.post("/subscriptions/<int:subscription_id>/auto-deduction")
@require("subscriptions.manage", kinds=("provider", "reseller"))
def subscription_auto_deduction(subscription_id: int):
    def act(sub):
        subscriptions.set_auto_deduction(current_user, sub, request.form.get("enabled") == "1")
        return f"Auto-deduction {'on' if sub.auto_deduction else 'off'}."
    return _sub_action(subscription_id, act)


__all__ = ["bp"]
