"""Console: Billing & Reports » Customer Billing (invoices, billing runs, tax rules,
transaction logs, wallets)."""
from __future__ import annotations

from datetime import date

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context,
                   url_for)
from flask_login import current_user
from sqlalchemy import select

from ..clock import today
from ..extensions import db
from ..money import plain
from ..models import BillingRun, LedgerTransaction, Organisation, Subscription
from ..services import (billing_run, export, invoice_queries, invoicing, manual_invoices, notifications, payments,
                        scope, settings, tax_rules, wallet)
from ..services.errors import ServiceError
from .forms import EmptyForm
from .guard import refuse_own, require

bp = Blueprint("billing", __name__, url_prefix="/billing")
PER_PAGE = 50


def _flash_error(exc: ServiceError) -> None:
    details = "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items())
    flash(exc.message + (f" ({details})" if details else ""), "error")


def _org_choices():
    return db.session.execute(select(Organisation.id, Organisation.name, Organisation.kind).where(
        scope.visible_orgs_clause(current_user), Organisation.kind != "provider").order_by(Organisation.name)).all()


# ------------------------------------------------------------ invoices


@bp.get("/invoices")
@require("billing.view")
def invoices():
    try:
        f = invoice_queries.parse_filter(request.args)
        rows, cursor = invoice_queries.page(current_user, f, request.args.get("after"), PER_PAGE)
    except ServiceError as exc:
        _flash_error(exc)
        f, rows, cursor = invoice_queries.InvoiceFilter(), [], None
    bs = settings.billing_settings(current_user.org.provider_id)
    runs = []
    if current_user.org.kind == "provider":
        runs = db.session.scalars(select(BillingRun).where(BillingRun.provider_id == current_user.org_id)
                                  .order_by(BillingRun.id.desc()).limit(3)).all()
    return render_template("billing/invoices.html", rows=invoice_queries.with_status(rows), f=f, cursor=cursor,
                           names=invoice_queries.org_names(rows), orgs=_org_choices(), statuses=invoicing.STATUS_LABELS,
                           bs=bs, runs=runs, form=EmptyForm(), first_page=not request.args.get("after"))


@bp.get("/invoices/export.csv")
@require("billing.view")
def invoices_csv():
    f = invoice_queries.parse_filter(request.args)
    return Response(stream_with_context(export.rows(current_user, f)), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=invoices-{today().isoformat()}.csv"})


@bp.get("/invoices/<int:invoice_id>")
@require("billing.view")
def invoice(invoice_id: int):
    inv = invoice_queries.get(current_user, invoice_id)
    txns = db.session.scalars(select(LedgerTransaction).where(LedgerTransaction.invoice_id == inv.id)
                              .order_by(LedgerTransaction.id)).all()
    from ..services import cards

    return render_template("billing/invoice.html", inv=inv, status=invoicing.status(inv), card=cards.active_card(inv.org_id),
                           due=invoicing.amount_due(inv), paid=invoicing.amount_paid(inv), txns=txns,
                           org=db.session.get(Organisation, inv.org_id), form=EmptyForm())


def _invoice_action(invoice_id: int, action):
    inv = invoice_queries.get(current_user, invoice_id)
    EmptyForm().validate_on_submit()
    try:
        message = action(inv)
        flash(message, "success")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("billing.invoice", invoice_id=inv.id))


@bp.post("/invoices/<int:invoice_id>/cancel")
@require("invoices.manage")
def invoice_cancel(invoice_id: int):
    def act(inv):
        refuse_own(inv.org_id)
        invoicing.cancel(current_user, inv, request.form.get("reason", ""))
        return f"Invoice {inv.number} cancelled; its number stays used."
    return _invoice_action(invoice_id, act)


@bp.post("/invoices/<int:invoice_id>/adjust-offline")
@require("invoices.manage")
def invoice_adjust_offline(invoice_id: int):
    def act(inv):
        refuse_own(inv.org_id)
        payments.adjust_offline(current_user, inv, mark_as_paid=bool(request.form.get("mark_as_paid")),
                                reference=request.form.get("reference", ""),
                                description=request.form.get("description", ""), amount=request.form.get("amount"))
        return f"Offline payment recorded on {inv.number}."
    return _invoice_action(invoice_id, act)


@bp.post("/invoices/<int:invoice_id>/resend")
@require("invoices.manage")
def invoice_resend(invoice_id: int):
    def act(inv):
        message = notifications.invoice_message(inv, template="invoice_resend")
        return f"Invoice {inv.number} sent again to {message.to_email}."
    return _invoice_action(invoice_id, act)


@bp.route("/invoices/new", methods=["GET", "POST"])
@require("invoices.manage")
def invoice_new():
    orgs = _org_choices()
    contracts = db.session.execute(select(Subscription.id, Subscription.name, Subscription.org_id).where(
        Subscription.org_id.in_(scope.visible_org_ids(current_user)), Subscription.status != "cancelled")
        .order_by(Subscription.name)).all()
    errors, data, status = {}, {}, 200
    if request.method == "POST":
        EmptyForm().validate_on_submit()
        refuse_own(request.form.get("org_id"))
        data = _manual_invoice_data(request.form)
        try:
            inv = manual_invoices.create(current_user, data)
            flash(f"Invoice {inv.number} created.", "success")
            return redirect(url_for("billing.invoice", invoice_id=inv.id))
        except ServiceError as exc:
            db.session.rollback()
            errors, status = exc.field_errors, exc.status
            flash(exc.message, "error")
    return render_template("billing/invoice_new.html", orgs=orgs, contracts=contracts, errors=errors, data=data,
                           today=today(), form=EmptyForm(), rows=range(5)), status


def _manual_invoice_data(form) -> dict:
    items = []
    for i in range(20):
        if f"items-{i}-description" not in form:
            break
        items.append({"description": form.get(f"items-{i}-description"), "quantity": form.get(f"items-{i}-quantity"),
                      "unit_price": form.get(f"items-{i}-unit_price"), "tax_code": form.get(f"items-{i}-tax_code"),
                      "taxable": bool(form.get(f"items-{i}-taxable"))})
    return {"for": form.get("for"), "org_id": form.get("org_id"), "subscription_id": form.get("subscription_id"),
            "status": form.get("status"), "issue_date": form.get("issue_date"), "due_date": form.get("due_date"),
            "period_from": form.get("period_from"), "period_to": form.get("period_to"),
            "items_from_contract": bool(form.get("items_from_contract")), "items": items,
            "notes": form.get("notes"), "reference": form.get("reference")}


# ------------------------------------------------------------ exports


@bp.get("/exports")
@require("billing.view", kinds=("provider",))
def export_list():
    from ..services import exports

    return render_template("billing/exports.html", exports=exports.available(current_user.org_id),
                           month=today().strftime("%Y-%m"))


@bp.get("/exports/<export_id>")
@require("billing.view", kinds=("provider",))
def export_download(export_id: str):
    from ..services import exports

    try:
        document = exports.run(current_user.org_id, export_id, request.args.get("month", ""))
    except ServiceError as exc:
        _flash_error(exc)
        return redirect(url_for("billing.export_list"))
    return Response(document.content, mimetype=document.media_type,
                    headers={"Content-Disposition": f"attachment; filename={document.filename}"})


# ------------------------------------------------------------ billing runs


@bp.post("/runs")
@require("invoices.manage", kinds=("provider",))
def run_start():
    EmptyForm().validate_on_submit()
    try:
        run = billing_run.start(current_user, current_user.org_id)
    except ServiceError as exc:
        _flash_error(exc)
        return redirect(url_for("billing.invoices"))
    return redirect(url_for("billing.run", run_id=run.id))


@bp.get("/runs/<int:run_id>")
@require("billing.view", kinds=("provider",))
def run(run_id: int):
    r = db.session.get(BillingRun, run_id)
    if r is None or r.provider_id != current_user.org_id:
        abort(404)
    return render_template("billing/run.html", run=r, jobs=billing_run.progress(r.id)["jobs"])


@bp.post("/runs/<int:run_id>/resume")
@require("invoices.manage", kinds=("provider",))
def run_resume(run_id: int):
    """Bill again what the run has not finished (a worker died, jobs were lost); safe to repeat."""
    r = db.session.get(BillingRun, run_id)
    if r is None or r.provider_id != current_user.org_id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    from redis.exceptions import RedisError

    try:
        done = billing_run.resume(run_id)
    except ServiceError as exc:
        _flash_error(exc)
    except RedisError as exc:
        flash(f"The job queue cannot be reached ({exc}). Try again when it is back: resuming is safe to repeat.",
              "error")
    else:
        flash(f"Resumed: {done.remaining} subscriptions still due, {done.busy} of them in a running chunk.", "success")
    return redirect(url_for("billing.run", run_id=run_id))


# ------------------------------------------------------------ tax rules


@bp.get("/tax-rules")
@require("billing.configure", kinds=("provider",))
def tax_rule_list():
    rules = db.session.scalars(tax_rules.rules_query(current_user.org_id)).all()
    return render_template("billing/tax_rules.html", rules=rules, form=EmptyForm())


@bp.route("/tax-rules/new", methods=["GET", "POST"])
@bp.route("/tax-rules/<int:rule_id>/edit", methods=["GET", "POST"])
@require("billing.configure", kinds=("provider",))
def tax_rule_edit(rule_id: int | None = None):
    from .forms import TaxRuleForm

    rule = tax_rules.get_rule(current_user.org_id, rule_id) if rule_id else None
    form = TaxRuleForm(obj=rule)
    if rule is not None and request.method == "GET":
        form.status.data = rule.status
        form.rate.data = plain(rule.rate, 0)
    status = 200
    if form.validate_on_submit():
        try:
            tax_rules.save_rule(current_user, {"name": form.name.data, "country": form.country.data,
                                               "rate": form.rate.data, "status": form.status.data}, rule)
            flash("Tax rule saved.", "success")
            return redirect(url_for("billing.tax_rule_list"))
        except ServiceError as exc:
            db.session.rollback()
            for name, message in exc.field_errors.items():
                getattr(form, name).errors = list(getattr(form, name).errors) + [message]
            status = exc.status
    elif request.method == "POST":
        status = 422
    return render_template("billing/tax_rule_form.html", form=form, rule=rule), status


@bp.post("/tax-rules/<int:rule_id>/delete")
@require("billing.configure", kinds=("provider",))
def tax_rule_delete(rule_id: int):
    rule = tax_rules.get_rule(current_user.org_id, rule_id)
    EmptyForm().validate_on_submit()
    tax_rules.delete_rule(current_user, rule)
    flash("Tax rule deleted.", "success")
    return redirect(url_for("billing.tax_rule_list"))


# ------------------------------------------------------------ transaction logs and wallets


TRANSACTION_KINDS = {"invoice": "Invoice issued", "invoice_cancel": "Invoice cancelled", "payment": "Payment",
                     "wallet_applied": "Wallet applied to invoice", **wallet.LABELS}


@bp.get("/transactions")
@require("billing.view")
def transaction_logs():
    query = select(LedgerTransaction).where(LedgerTransaction.provider_id == current_user.org.provider_id)
    if current_user.org.kind != "provider":
        query = query.where(LedgerTransaction.org_id.in_(scope.visible_org_ids(current_user)))
    kind, direction, org_id = request.args.get("kind", ""), request.args.get("direction", ""), request.args.get("org_id")
    if kind:
        query = query.where(LedgerTransaction.kind == kind)
    if direction in ("inbound", "outbound", "internal"):
        query = query.where(LedgerTransaction.direction == direction)
    if org_id and org_id.isdigit():
        query = query.where(LedgerTransaction.org_id == int(org_id))
    for arg, op in (("date_from", lambda d: LedgerTransaction.occurred_at >= d),
                    ("date_to", lambda d: LedgerTransaction.occurred_at < date.fromordinal(d.toordinal() + 1))):
        value = request.args.get(arg)
        if value:
            try:
                query = query.where(op(date.fromisoformat(value)))
            except ValueError:
                flash(f"{arg.replace('_', ' ')}: use a date like 2026-01-31.", "error")
    after = request.args.get("after", "")
    if after.isdigit():
        query = query.where(LedgerTransaction.id < int(after))
    rows = db.session.scalars(query.order_by(LedgerTransaction.id.desc()).limit(PER_PAGE + 1)).all()
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    names = dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_({r.org_id for r in rows if r.org_id}))).all()) if rows else {}
    return render_template("billing/transactions.html", rows=rows, names=names, kinds=TRANSACTION_KINDS,
                           orgs=_org_choices(), cursor=rows[-1].id if more else None, args=request.args)


@bp.post("/wallet/<int:org_id>")
@require("payments.capture", kinds=("provider", "reseller"))
def wallet_move(org_id: int):
    org = scope.get_org(current_user, org_id)
    refuse_own(org.id)
    EmptyForm().validate_on_submit()
    kind = request.form.get("kind", "")
    if kind == "free_credit" and current_user.org.kind != "provider":
        abort(403)
    try:
        wallet.move(current_user, org, kind, request.form.get("amount"), request.form.get("reference", ""),
                    request.form.get("description", ""))
        flash(f"{wallet.LABELS.get(kind, kind)} recorded for {org.name}.", "success")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("console.organisation", org_id=org.id))


__all__ = ["bp"]
