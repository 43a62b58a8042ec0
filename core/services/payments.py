"""Payments against invoices. Every payment is a ledger transaction tagged with
the invoice: cash (or the wallet) up, the organisation's receivable down."""
from __future__ import annotations

from decimal import Decimal

from ..contracts import PaymentView
from ..extensions import db
from ..models import Invoice, Organisation
from ..plugins import host
from . import audit, invoicing, ledger, settings
from .context import party, provider_context
from .errors import Conflict
from .uow import after_commit, atomic
from .validate import Errors, decimal_field, text_field


def record_payment(*, invoice: Invoice, amount: Decimal, gateway: str, reference: str, description: str = "",
                   actor=None, idempotency_key: str | None = None):
    """Record money received for ``invoice`` through ``gateway`` (``offline`` for cheques)."""
    bs = settings.billing_settings(invoice.provider_id)
    with atomic():
        due = invoicing.amount_due(invoice)
        if invoice.cancelled_at is not None:
            raise Conflict(f"Invoice {invoice.number} is cancelled.")
        if amount <= 0 or amount > due:
            raise Conflict(f"Invoice {invoice.number} has {due} {invoice.currency} to pay; {amount} cannot be "
                           f"applied.", {"amount": f"At most {due}."})
        cash = ledger.account(invoice.provider_id, invoice.provider_id, f"cash:{gateway}", invoice.currency)
        receivable = ledger.account(invoice.provider_id, invoice.org_id, "receivable", invoice.currency)
        txn = ledger.post(provider_id=invoice.provider_id, kind="payment", currency=invoice.currency,
                          precision=bs.precision, entries=[(cash, amount), (receivable, -amount)], direction="inbound",
                          amount=amount, org_id=invoice.org_id, reference=reference,
                          description=description or f"Payment of {invoice.number} ({gateway})",
                          invoice_id=invoice.id, actor=actor, idempotency_key=idempotency_key)
        txn_id, org_id = txn.id, invoice.org_id
        after_commit(lambda: _announce(txn_id, org_id, gateway, invoice.number))
        invoice_id = invoice.id
        after_commit(lambda: _activate_order(invoice_id))  # a paid order's subscription, created once
        after_commit(lambda: _dunning_reevaluate(org_id))  # an organisation in dunning: from what is still owed
    return txn


def _announce(txn_id: int, org_id: int, gateway: str, number: str) -> None:
    from ..models import LedgerTransaction

    txn = db.session.get(LedgerTransaction, txn_id)
    org = db.session.get(Organisation, org_id)
    host().hooks(txn.provider_id).kassa_payment_recorded(
        payment=PaymentView(id=txn.id, org=party(org), amount=txn.amount, currency=txn.currency, gateway=gateway,
                            reference=txn.reference, invoice_number=number),
        ctx=provider_context(txn.provider_id))


def _activate_order(invoice_id: int) -> None:
    from . import orders

    orders.activate_for_invoice(invoice_id)


def _dunning_reevaluate(org_id: int) -> None:
    from . import dunning

    dunning.payment_recorded(org_id)


def adjust_offline(actor, invoice: Invoice, *, mark_as_paid: bool, reference: str, description: str = "",
                   amount=None):
    """Seed 000 "Adjust Offline": record an offline payment (cheque number, transfer id)."""
    errors = Errors()
    reference = text_field(errors, "reference", reference, max_length=200)
    description = text_field(errors, "description", description, required=False, max_length=500)
    if not mark_as_paid and amount in (None, ""):
        errors["mark_as_paid"] = "Tick Mark as Paid, or enter the amount received."
    value = None
    if amount not in (None, ""):
        value = decimal_field(errors, "amount", amount, positive=True,
                              places=settings.billing_settings(invoice.provider_id).precision)
    errors.raise_if_any()
    with atomic():
        if value is None:
            value = invoicing.amount_due(invoice)
        txn = record_payment(invoice=invoice, amount=value, gateway="offline", reference=reference,
                             description=description or f"Offline payment of {invoice.number}", actor=actor)
        audit.record(actor, "invoice.adjust_offline", invoice, org_id=invoice.org_id,
                     summary=f"{invoice.number}: {value} {invoice.currency} ref {reference}")
    return txn
