"""Collecting money through gateways: capture, auto-deduction, hosted payment
pages, card validation, and reconciliation of calls whose outcome is unknown.

Every attempt is a :class:`Payment` row written — with the idempotency key it
sends — *before* the gateway is called, under a lock on the invoice, so two
clicks or twenty workers find the pending attempt and charge nothing more. A
timeout leaves the attempt pending; the reconcile job asks the gateway and
never charges again blindly. Outcomes, whichever way they arrive (the call's
answer, a webhook, a reconcile), go through :func:`settle`, which is idempotent.

A gateway plugin that raises something else than the contract's exceptions
(:class:`~kassa.plugins.PluginFailure`) may have crashed before or after the
gateway took the money: the attempt stays ``pending`` like a timeout (no second
attempt can charge again) and is not counted as a card decline; reconcile settles
it, and fails it once the gateway has had no record of it for a day.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from ..clock import utcnow_naive
from ..contracts import (ChargeRequest, ContractError, GatewayDeclined, GatewayResult, GatewayUnavailable,
                         WebhookSignatureError)
from ..extensions import db
from ..models import Invoice, Organisation, Payment, PaymentMethod, Subscription
from ..plugins import PluginFailure
from . import audit, cards, gateways, invoicing, ledger, settings
from .context import party
from .errors import Conflict, ServiceError
from .uow import atomic

log = logging.getLogger(__name__)
FINAL = ("succeeded", "declined", "failed")
#: a pending attempt the gateway still does not know after this long never reached it
UNKNOWN_AFTER = timedelta(days=1)
OPEN = ("pending", "requires_action")


def _new_payment(*, invoice: Invoice | None, org: Organisation, gateway: str, amount: Decimal, currency: str,
                 purpose: str, key: str, attempt: int, method: PaymentMethod | None, actor) -> Payment:
    now = utcnow_naive()
    payment = Payment(provider_id=org.provider_id, org_id=org.id, invoice_id=invoice.id if invoice else None,
                      method_id=method.id if method else None, purpose=purpose, gateway=gateway, amount=amount,
                      currency=currency, idempotency_key=key, attempt=attempt, status="pending",
                      actor_id=getattr(actor, "id", None), created_at=now, updated_at=now)
    db.session.add(payment)
    db.session.flush()
    return payment


def _open_attempt(invoice: Invoice, *, gateway: str, method: PaymentMethod | None, actor) -> Payment:
    """Lock the invoice, refuse if it is paid or an attempt is under way, and write
    the next attempt (pending) with its idempotency key: invoice + attempt number."""
    with atomic():
        db.session.scalar(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
        due = invoicing.amount_due(invoice)
        if invoice.cancelled_at is not None:
            raise Conflict(f"Invoice {invoice.number} is cancelled.")
        if due <= 0:
            raise Conflict(f"Invoice {invoice.number} is already paid.")
        busy = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id, Payment.status.in_(OPEN)))
        if busy is not None and not (busy.status == "requires_action" and busy.gateway == gateway and method is None):
            raise Conflict(f"A payment of invoice {invoice.number} is already in progress (attempt {busy.attempt}).")
        if busy is not None:
            return busy  # the buyer comes back to the same hosted page
        attempt = (db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) or 0) + 1
        org = db.session.get(Organisation, invoice.org_id)
        return _new_payment(invoice=invoice, org=org, gateway=gateway, amount=due, currency=invoice.currency,
                            purpose="invoice", key=f"invoice:{invoice.id}:attempt:{attempt}", attempt=attempt,
                            method=method, actor=actor)


def _charge(payment: Payment, org: Organisation, method: PaymentMethod | None, description: str,
            return_url: str = "", invoice_number: str = "", raise_failure: bool = True) -> GatewayResult | None:
    request = ChargeRequest(idempotency_key=payment.idempotency_key, amount=payment.amount, currency=payment.currency,
                            org=party(org), description=description, payment_method=method.reference if method else "",
                            customer_reference=method.customer_reference if method else "",
                            invoice_number=invoice_number, return_url=return_url,
                            metadata={"kassa_payment": str(payment.id)})
    try:
        return gateways.call(org.provider_id, "kassa_gateway_charge", payment.gateway, charge=request)
    except GatewayUnavailable as exc:
        log.warning("payment %s: gateway %s unavailable (%s); left pending for reconciliation",
                    payment.id, payment.gateway, exc)
        return None
    except (GatewayDeclined, ContractError, ValueError) as exc:  # refused before any money moved
        return GatewayResult(status="failed", reference=payment.reference, decline_reason=str(exc)[:500] or
                             type(exc).__name__)
    except PluginFailure:  # logged and recorded by the plugin host; the outcome is unknown
        if raise_failure:
            raise
        return None


def capture(actor, invoice: Invoice) -> Payment:
    """Seed 000 "Capture Payment": charge the due amount to the organisation's card."""
    org = db.session.get(Organisation, invoice.org_id)
    method = cards.active_card(org.id)
    if method is None:
        raise Conflict(f"{org.name} has no card configured.")
    if method.status == "blocked":
        raise Conflict(f"The card of {org.name} is blocked after repeated declines; it must be updated first.")
    payment = _open_attempt(invoice, gateway=method.gateway, method=method, actor=actor)
    result = _charge(payment, org, method, description=f"Invoice {invoice.number}", invoice_number=invoice.number)
    if result is not None:
        settle(payment.id, result)
    payment = db.session.get(Payment, payment.id, populate_existing=True)
    if actor is not None:
        with atomic():
            audit.record(actor, "payment.capture", payment, org_id=org.id, provider_id=org.provider_id,
                         summary=f"{invoice.number}: {payment.status} {payment.decline_reason}".strip())
    return payment


def pay_hosted(actor, invoice: Invoice, return_url: str) -> Payment:
    """Seed 004 "Pay Invoice": start a payment on the gateway's own page (the Indian
    gateway for INR, PayPal for USD); the buyer is sent to ``payment.redirect_url``."""
    org = db.session.get(Organisation, invoice.org_id)
    due = invoicing.amount_due(invoice)
    if due > 0 and not settings.online_payment_allowed(org.provider_id, invoice.currency, due):
        minimum = settings.online_minimum(org.provider_id, invoice.currency)
        raise Conflict(f"Online payment is possible from {minimum} {invoice.currency}; for smaller amounts "
                       f"please contact support.")
    info = gateways.hosted_gateway(org.provider_id, invoice.currency, org.country)
    if info is None:
        raise ServiceError(f"No online payment gateway takes {invoice.currency} from {org.country}.")
    payment = _open_attempt(invoice, gateway=info.id, method=None, actor=actor)
    if payment.status == "requires_action" and payment.redirect_url:
        return payment
    result = _charge(payment, org, None, description=f"Invoice {invoice.number}",
                     return_url=return_url.replace("PAYMENT_ID", str(payment.id)), invoice_number=invoice.number)
    if result is not None:
        settle(payment.id, result)
    return db.session.get(Payment, payment.id, populate_existing=True)


def complete_hosted(payment: Payment, params: dict) -> Payment:
    """The buyer is back from the gateway's page: let the gateway confirm (it checks its own signature)."""
    if payment.status in FINAL:
        return payment
    try:
        result = gateways.call(payment.provider_id, "kassa_gateway_complete", payment.gateway,
                               reference=payment.reference, params=dict(params))
    except WebhookSignatureError:
        raise ServiceError(f"The answer from {payment.gateway} does not carry a valid signature; "
                           f"the payment was not changed.") from None
    except GatewayUnavailable as exc:
        raise ServiceError(f"{payment.gateway} could not be reached to confirm the payment ({exc}); "
                           f"it will be checked again shortly.") from None
    settle(payment.id, result)
    return db.session.get(Payment, payment.id, populate_existing=True)


def validate_card(actor, method: PaymentMethod, amount: Decimal) -> Payment:
    """Charge the validity deduction; on success credit it to the organisation's wallet."""
    org = db.session.get(Organisation, method.org_id)
    currency = settings.config(org.provider_id).currency
    with atomic():
        payment = _new_payment(invoice=None, org=org, gateway=method.gateway, amount=amount, currency=currency,
                               purpose="validation", key=f"validation:{method.id}", attempt=1, method=method,
                               actor=actor)
    result = _charge(payment, org, method, description="Card validation", raise_failure=False)
    if result is not None:
        settle(payment.id, result)
    return db.session.get(Payment, payment.id, populate_existing=True)


def settle(payment_id: int, result: GatewayResult) -> Payment:
    """Apply a gateway's answer to an attempt, once: a final attempt never changes again."""
    with atomic():
        # the invoice first, as _open_attempt does: an attempt is never opened between reading
        # what is due and seeing the attempts (READ COMMITTED gives each statement a new snapshot)
        invoice_id = db.session.scalar(select(Payment.invoice_id).where(Payment.id == payment_id))
        if invoice_id is not None:
            db.session.scalar(select(Invoice.id).where(Invoice.id == invoice_id).with_for_update())
        payment = db.session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
        if payment.status in FINAL:
            return payment
        payment.reference = result.reference or payment.reference
        payment.updated_at = utcnow_naive()
        method = db.session.get(PaymentMethod, payment.method_id) if payment.method_id else None
        if result.status == "succeeded":
            payment.status = "succeeded"
            _book(payment)
            if method is not None:
                method.declines = 0
        elif result.status in ("declined", "failed"):
            payment.status = result.status
            payment.decline_reason = result.decline_reason[:500]
            if method is not None and payment.purpose == "invoice" and cards.record_decline(method):
                _card_blocked(method, payment.decline_reason)
        else:  # pending or requires_action: the outcome comes later
            payment.status = result.status
            payment.redirect_url = (result.redirect_url or payment.redirect_url)[:1000]
    return payment


def _book(payment: Payment) -> None:
    """The ledger side of a successful payment (idempotent by the payment's key)."""
    from . import payments

    precision = settings.config(payment.provider_id).precision
    if payment.purpose == "validation":
        cash = ledger.account(payment.provider_id, payment.provider_id, f"cash:{payment.gateway}", payment.currency)
        wallet = ledger.account(payment.provider_id, payment.org_id, "wallet", payment.currency)
        ledger.post(provider_id=payment.provider_id, kind="card_validation", currency=payment.currency,
                    precision=precision, entries=[(cash, payment.amount), (wallet, -payment.amount)],
                    direction="inbound", amount=payment.amount, org_id=payment.org_id, reference=payment.reference,
                    description="Card validation deduction, credited to the wallet",
                    idempotency_key=payment.idempotency_key)
        return
    invoice = db.session.get(Invoice, payment.invoice_id)
    due = invoicing.amount_due(invoice)
    applied = min(due, payment.amount)
    if applied > 0:
        payments.record_payment(invoice=invoice, amount=applied, gateway=payment.gateway,
                                reference=payment.reference, description=f"Payment of {invoice.number}",
                                idempotency_key=payment.idempotency_key)
    surplus = payment.amount - applied
    if surplus > 0:  # paid meanwhile by other means: the money is the customer's, in the wallet
        cash = ledger.account(payment.provider_id, payment.provider_id, f"cash:{payment.gateway}", payment.currency)
        wallet = ledger.account(payment.provider_id, payment.org_id, "wallet", payment.currency)
        ledger.post(provider_id=payment.provider_id, kind="wallet_topup", currency=payment.currency,
                    precision=precision, entries=[(cash, surplus), (wallet, -surplus)], direction="inbound",
                    amount=surplus, org_id=payment.org_id, reference=payment.reference,
                    description=f"Overpayment of {invoice.number} credited to the wallet",
                    idempotency_key=f"{payment.idempotency_key}:surplus")


def _card_blocked(method: PaymentMethod, reason: str) -> None:
    """Seed 000: the organisation is told by e-mail to update its card (queued in this transaction)."""
    from . import notifications

    org = db.session.get(Organisation, method.org_id)
    try:
        notifications.card_blocked_message(org, brand=method.brand, last4=method.last4, reason=reason,
                                           blocked_on=method.blocked_at.date() if method.blocked_at else None)
    except ServiceError as exc:
        log.warning("card of %s blocked without e-mail: %s", org.name, exc.message)


def auto_deduct(invoice_ids: list[int]) -> dict:
    """The job after a billing run: charge invoices of subscriptions with auto-deduction on."""
    done = {"succeeded": 0, "declined": 0, "skipped": 0, "failed": 0}
    for invoice_id in invoice_ids:
        invoice = db.session.get(Invoice, invoice_id)
        sub = db.session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        card = cards.active_card(invoice.org_id)
        if sub is None or not sub.auto_deduction or card is None or card.status != "active":
            done["skipped"] += 1
            continue
        try:
            payment = capture(None, invoice)
        except ServiceError:
            done["skipped"] += 1
            continue
        except PluginFailure:  # the attempt stays pending for reconcile; the next invoice is charged all the same
            done["failed"] += 1
            continue
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the database went away mid-payment (the gateway may have charged): the attempt was
            # written pending before the call, so reconcile() settles it; the next invoice goes on
            db.session.rollback()
            log.warning("invoice %s: database connection lost during the payment; left for reconciliation",
                        invoice_id)
            done["pending"] = done.get("pending", 0) + 1
            continue
        done["succeeded" if payment.status == "succeeded" else "declined"] += 1
    return done


def reconcile(older_than_minutes: int = 5) -> int:
    """Ask the gateways about attempts left pending (a timeout, a crash); return how many were settled."""
    cutoff = utcnow_naive() - timedelta(minutes=older_than_minutes)
    settled = 0
    for payment in db.session.scalars(select(Payment).where(Payment.status == "pending", Payment.created_at <= cutoff)
                                      .order_by(Payment.id).limit(500)).all():
        try:
            result = gateways.call(payment.provider_id, "kassa_gateway_lookup", payment.gateway, none_ok=True,
                                   idempotency_key=payment.idempotency_key, reference=payment.reference)
        except (GatewayUnavailable, ServiceError, PluginFailure) as exc:
            log.warning("reconcile payment %s: %s", payment.id, exc)
            continue
        if result is not None and result.status != "pending":
            settle(payment.id, result)
            settled += 1
        elif result is None and payment.created_at <= utcnow_naive() - UNKNOWN_AFTER:
            settled += _never_arrived(payment.id)
    return settled


def _never_arrived(payment_id: int) -> int:
    """A pending attempt the gateway has no record of a day later never reached it:
    ``failed``, and not the card's decline."""
    with atomic():
        payment = db.session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
        if payment.status != "pending":
            return 0
        payment.status, payment.updated_at = "failed", utcnow_naive()
        payment.decline_reason = "The gateway has no record of this payment."
    return 1
