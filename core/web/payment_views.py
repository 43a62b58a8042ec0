"""Console: Credit Card Settings, Payment Gateways, Credit Card Status, the
billing profile (cards), Capture Payment, the hosted Pay Invoice flow, webhooks."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..extensions import csrf, db
from ..models import Organisation, Payment
from ..permissions import can
from ..plugins import host
from ..services import cards, charges, gateways, invoice_queries, plugin_settings, scope, settings, webhooks
from ..services.errors import ServiceError
from .forms import EmptyForm
from .guard import require

bp = Blueprint("payments", __name__)
hooks_bp = Blueprint("webhooks", __name__)
csrf.exempt(hooks_bp)


def _flash_error(exc: ServiceError) -> None:
    details = "; ".join(exc.field_errors.values())
    flash(exc.message + (f" {details}" if details and details not in exc.message else ""), "error")


@bp.get("/billing/credit-card-status")
@require("billing.view", kinds=("provider", "reseller"))
def credit_card_status():
    return render_template("payments/card_status.html", rows=cards.statuses(current_user))


@bp.post("/billing/card-settings")
@require("billing.configure", kinds=("provider",))
def card_settings_save():
    EmptyForm().validate_on_submit()
    data = {k: request.form.get(k) for k in ("enforce_card", "except_trial", "link_multiple_accounts",
                                             "validity_deduction", "validity_amount", "max_declines")}
    data["exemptions"] = request.form.getlist("exemptions")
    try:
        cards.update_card_settings(current_user, data)
        flash("Credit card settings saved.", "success")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("console.billing_configurations") + "#credit-card-settings")


@bp.post("/billing/gateways/<gateway_id>/verify")
@require("plugins.manage", kinds=("provider",))
def gateway_verify(gateway_id: str):
    EmptyForm().validate_on_submit()
    try:
        result = gateways.call(current_user.org_id, "kassa_gateway_verify", gateway_id)
        flash(f"{gateway_id}: {result.message}", "success" if result.ok else "error")
    except Exception as exc:  # a gateway may fail in any way; the admin sees why
        flash(f"{gateway_id}: could not verify: {exc}", "error")
    return redirect(url_for("console.billing_configurations") + "#payment-gateways")


# ------------------------------------------------------------ billing profile (cards)


def _badge(provider_id: int, gateway: str) -> bool:
    owner = host().owner("kassa_gateways", gateway) if gateway else None
    return bool(owner and plugin_settings.settings_for(provider_id, owner).get("security_badge"))


@bp.get("/billing/profile")
@require(kinds=("reseller", "customer"))
def billing_profile():
    org = current_user.org
    status = cards.status_of(org)
    card_gateway = gateways.card_gateway(org.provider_id, settings.config(org.provider_id).currency)
    return render_template("payments/profile.html", org=org, status=status, card_gateway=card_gateway,
                           required=cards.card_required(org), badge=_badge(org.provider_id, getattr(card_gateway, "id", "")),
                           form=EmptyForm(), can_manage=can(current_user, "payments.capture"))


@bp.post("/billing/profile/card")
@require("payments.capture", kinds=("reseller", "customer"))
def billing_profile_card():
    EmptyForm().validate_on_submit()
    try:
        if request.form.get("action") == "remove":
            cards.remove_card(current_user, current_user.org)
            flash("Card removed.", "success")
        else:
            method = cards.add_card(current_user, current_user.org, request.form.get("token", ""))
            flash(f"Card {method.brand} •••• {method.last4} saved.", "success")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("payments.billing_profile"))


# ------------------------------------------------------------ capture and pay


@bp.post("/billing/invoices/<int:invoice_id>/capture")
@require("payments.capture")
def invoice_capture(invoice_id: int):
    invoice = invoice_queries.get(current_user, invoice_id)
    EmptyForm().validate_on_submit()
    try:
        payment = charges.capture(current_user, invoice)
        if payment.status == "succeeded":
            flash(f"Payment of {invoice.number} captured.", "success")
        elif payment.status == "pending":
            flash("The gateway did not answer in time; the payment is pending and will be reconciled.", "warning")
        else:
            flash(f"The card was declined: {payment.decline_reason}", "error")
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
    return redirect(url_for("billing.invoice", invoice_id=invoice.id))


@bp.post("/billing/invoices/<int:invoice_id>/pay")
@require("billing.view")
def invoice_pay(invoice_id: int):
    """Pay online (an organisation pays its own invoices): with the card on file, or on the gateway's page."""
    invoice = invoice_queries.get(current_user, invoice_id)
    if invoice.org_id != current_user.org_id:
        abort(404)
    EmptyForm().validate_on_submit()
    try:
        card = cards.active_card(invoice.org_id)
        if card is not None and card.status == "active" and request.form.get("method") != "hosted":
            payment = charges.capture(current_user, invoice)
        else:
            payment = charges.pay_hosted(current_user, invoice, url_for(
                "payments.pay_return", payment_id=0, _external=True).replace("/0/", "/PAYMENT_ID/"))
            if payment.status == "requires_action" and payment.redirect_url:
                return to_gateway(payment)
        return redirect(url_for("payments.payment_result", payment_id=payment.id))
    except ServiceError as exc:
        db.session.rollback()
        _flash_error(exc)
        return redirect(url_for("billing.invoice", invoice_id=invoice.id))


def to_gateway(payment: Payment):
    """Off to the gateway's hosted page. A browser refuses to follow a form post's
    redirect to another origin (CSP ``form-action 'self'`` covers redirects), so the
    console's pay forms (field ``via=page``) get a page of ours that moves on by itself
    (meta refresh, no script) or by its link; other clients get the redirect."""
    if request.form.get("via") == "page":
        return render_template("payments/to_gateway.html", payment=payment)
    return redirect(payment.redirect_url)


def _scoped_payment(payment_id: int) -> Payment:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.org_id not in set(db.session.scalars(
            select(Organisation.id).where(scope.visible_orgs_clause(current_user)))):
        abort(404)
    return payment


@bp.get("/pay/return/<int:payment_id>/")
@require("billing.view")
def pay_return(payment_id: int):
    payment = _scoped_payment(payment_id)
    try:
        charges.complete_hosted(payment, request.args.to_dict())
    except ServiceError as exc:
        _flash_error(exc)
    return redirect(url_for("payments.payment_result", payment_id=payment.id))


@bp.get("/payments/<int:payment_id>")
@require("billing.view")
def payment_result(payment_id: int):
    payment = _scoped_payment(payment_id)
    return render_template("payments/result.html", payment=payment, form=EmptyForm())


# ------------------------------------------------------------ webhooks


@hooks_bp.post("/webhooks/<int:provider_id>/<gateway>")
def webhook(provider_id: int, gateway: str):
    try:
        result = webhooks.receive(provider_id, gateway, dict(request.headers), request.get_data())
    except ServiceError as exc:
        return jsonify({"error": {"status": exc.status, "message": exc.message}}), exc.status
    return jsonify(result)
