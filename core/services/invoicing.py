"""Issuing, reading and cancelling invoices.

``issue`` is the one path by which an invoice comes to exist (billing run and
manual invoices alike): it rounds each line once, asks the tax-engine hook for
the tax, takes the next number of the provider's gapless sequence in the same
transaction, posts the ledger transaction and, after commit, fires
``kassa_invoice_issued``. The invoice's paid amount and status are derived from
the ledger, never stored.
"""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, event, func, select
from sqlalchemy.orm import Session

from ..clock import utcnow_naive
from ..contracts import InvoiceLineView, InvoiceView, Party, TaxComponent
from ..extensions import db
from ..models import Account, Invoice, InvoiceLine, InvoiceTax, LedgerEntry, LedgerTransaction, Organisation
from . import audit, issuing, ledger, settings
from .context import party
from .errors import Conflict, ServiceError, ValidationError
from .issuing import DraftLine
from .uow import atomic

log = logging.getLogger(__name__)
UNPAID, PARTIALLY_PAID, PAID, CANCELLED = "unpaid", "partially_paid", "paid", "cancelled"
STATUSES = (UNPAID, PARTIALLY_PAID, PAID, CANCELLED)
STATUS_LABELS = {UNPAID: "Unpaid", PARTIALLY_PAID: "Partially paid", PAID: "Paid", CANCELLED: "Cancelled"}
MUTABLE_AFTER_ISSUE = {"cancelled_at", "cancelled_by_id", "cancel_reason"}


def issue(*, provider: Organisation, buyer: Organisation, lines: list[DraftLine], issue_date: date,
          due_date: date | None = None, period_start: date | None = None, period_end: date | None = None,
          subscription_id: int | None = None, kind: str = "recurring", billing_key: str | None = None,
          notes: str = "", actor=None) -> Invoice:
    """Issue one invoice (manual invoices, single subscriptions): the batch path with a batch of one."""
    draft = issuing.Draft(seller=party(provider), buyer=party(buyer), lines=list(lines), issue_date=issue_date,
                          due_date=due_date, period_start=period_start, period_end=period_end,
                          subscription_id=subscription_id, kind=kind, billing_key=billing_key, notes=notes,
                          actor_id=getattr(actor, "id", None))
    with atomic():
        priced = issuing.prepare(draft)
        issuing.write([priced])
        invoice = db.session.get(Invoice, priced.invoice_id)
        if actor is not None:
            audit.record(actor, "invoice.issue", invoice, org_id=buyer.id, provider_id=provider.id,
                         summary=f"{invoice.number} {invoice.total} {invoice.currency}")
    return invoice


def view_of_priced(p: "issuing.Priced") -> InvoiceView:
    """The view of a just-issued invoice, from what the issuer already holds (no queries)."""
    d = p.draft
    return InvoiceView(
        id=p.invoice_id, number=p.number, status=PAID if p.total - p.paid <= 0 else
        (UNPAID if p.paid == 0 else PARTIALLY_PAID), currency=settings.config(d.seller.org_id).currency,
        issue_date=d.issue_date, due_date=d.due_date, seller=d.seller, buyer=d.buyer,
        lines=tuple(InvoiceLineView(description=l.description, quantity=l.quantity, unit_price=l.unit_price,
                                    amount=l.amount, tax=t, tax_code=l.tax_code, period_start=l.period_start,
                                    period_end=l.period_end) for l, t in zip(d.lines, p.line_tax)),
        subtotal=p.subtotal, tax_total=p.tax_total, total=p.total, amount_paid=p.paid,
        tax_breakup=tuple(TaxComponent(name=n, rate=r, amount=a) for (n, r), (_, a) in p.breakup.items()),
        period_start=d.period_start, period_end=d.period_end, notes=d.notes, tax_note=p.note,
        tax_engine=p.engine, tax_details=dict(p.details), kind=d.kind)


# ------------------------------------------------------------------ status, derived from the ledger


def due_subquery():
    """Correlated: what is still owed on ``Invoice`` (receivable entries tagged with it)."""
    return (select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .join(Account, Account.id == LedgerEntry.account_id)
            .where(LedgerTransaction.invoice_id == Invoice.id, Account.code == "receivable")
            .correlate(Invoice).scalar_subquery())


def status_clause(status: str):
    due = due_subquery()
    live = Invoice.cancelled_at.is_(None)
    if status == CANCELLED:
        return Invoice.cancelled_at.is_not(None)
    if status == PAID:
        return and_(live, due <= 0)
    if status == UNPAID:
        return and_(live, due > 0, due >= Invoice.total)
    if status == PARTIALLY_PAID:
        return and_(live, due > 0, due < Invoice.total)
    raise ValidationError("Unknown status.", {"status": "One of " + ", ".join(STATUSES) + "."})


def due_amounts(invoice_ids) -> dict[int, Decimal]:
    ids = list(invoice_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(LedgerTransaction.invoice_id, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(LedgerTransaction.invoice_id.in_(ids), Account.code == "receivable")
        .group_by(LedgerTransaction.invoice_id)).all()
    found = {invoice_id: amount for invoice_id, amount in rows}
    return {i: found.get(i, Decimal(0)) for i in ids}


def status_of(invoice: Invoice, due: Decimal) -> str:
    return status_for(invoice.cancelled_at, invoice.total, due)


def status_for(cancelled_at, total: Decimal, due: Decimal) -> str:
    if cancelled_at is not None:
        return CANCELLED
    if due <= 0:
        return PAID
    return UNPAID if due >= total else PARTIALLY_PAID


def amount_due(invoice: Invoice) -> Decimal:
    return due_amounts([invoice.id])[invoice.id] if invoice.cancelled_at is None else Decimal(0)


def amount_paid(invoice: Invoice) -> Decimal:
    """Paid = total less what is still owed (a cancelled invoice was never paid)."""
    if invoice.cancelled_at is not None:
        return Decimal(0)
    return invoice.total - due_amounts([invoice.id])[invoice.id]


def status(invoice: Invoice) -> str:
    return status_of(invoice, due_amounts([invoice.id])[invoice.id])


def view(invoice: Invoice, paid: Decimal | None = None) -> InvoiceView:
    """The contract form of an invoice that plugins and renderers see. Pass
    ``paid`` when it is known (at issue) to save the ledger queries."""
    if paid is None:
        paid = amount_paid(invoice)
    state = status_of(invoice, invoice.total - paid) if invoice.cancelled_at is None else CANCELLED
    return InvoiceView(
        id=invoice.id, number=invoice.number, status=state, currency=invoice.currency,
        issue_date=invoice.issue_date, due_date=invoice.due_date, seller=Party(**invoice.seller_snapshot),
        buyer=Party(**invoice.buyer_snapshot),
        lines=tuple(InvoiceLineView(description=l.description, quantity=l.quantity, unit_price=l.unit_price,
                                    amount=l.amount, tax=l.tax_amount, tax_code=l.tax_code,
                                    period_start=l.period_start, period_end=l.period_end) for l in invoice.lines),
        subtotal=invoice.subtotal, tax_total=invoice.tax_total, total=invoice.total,
        amount_paid=paid,
        tax_breakup=tuple(TaxComponent(name=t.name, rate=t.rate, amount=t.amount) for t in invoice.taxes),
        period_start=invoice.period_start, period_end=invoice.period_end, notes=invoice.notes,
        tax_engine=invoice.tax_engine, tax_note=invoice.tax_note, tax_details=dict(invoice.tax_details or {}),
        kind=invoice.kind, cancelled=invoice.cancelled_at is not None,
    )


# ------------------------------------------------------------------ cancel


def cancel(actor, invoice: Invoice, reason: str = "") -> Invoice:
    """Cancel an unpaid invoice: its ledger transaction is reversed and its number stays used."""
    if invoice.cancelled_at is not None:
        raise Conflict(f"Invoice {invoice.number} is already cancelled.")
    if amount_paid(invoice) != 0:
        raise Conflict(f"Invoice {invoice.number} has payments applied; refund or credit it instead of cancelling.")
    bs = settings.config(invoice.provider_id)
    with atomic():
        issued = db.session.scalar(select(LedgerTransaction).filter_by(invoice_id=invoice.id, kind="invoice"))
        if issued is not None:
            ledger.reverse(issued, precision=bs.precision, kind="invoice_cancel", actor=actor,
                           description=f"Cancellation of {invoice.number}")
        invoice.cancelled_at = utcnow_naive()
        invoice.cancelled_by_id = getattr(actor, "id", None)
        invoice.cancel_reason = (reason or "")[:500]
        audit.record(actor, "invoice.cancel", invoice, org_id=invoice.org_id, summary=f"{invoice.number}: {reason}")
    return invoice


# ------------------------------------------------------------------ immutability


@event.listens_for(Session, "before_flush")
def _issued_invoices_never_change(session, flush_context, instances):
    for obj in session.dirty:
        if isinstance(obj, Invoice) and session.is_modified(obj):
            changed = {attr.key for attr in db.inspect(obj).attrs if attr.history.has_changes()}
            if changed - MUTABLE_AFTER_ISSUE - {"lines", "taxes", "org"}:
                raise ServiceError(f"Issued invoices never change ({', '.join(sorted(changed))}): cancel or credit.")
        if isinstance(obj, (InvoiceLine, InvoiceTax)) and session.is_modified(obj):
            raise ServiceError("Issued invoice lines never change: cancel or credit.")
    for obj in session.deleted:
        if isinstance(obj, (Invoice, InvoiceLine, InvoiceTax)):
            raise ServiceError("Issued invoices are never deleted: cancel or credit.")


__all__ = ["DraftLine", "issue", "cancel", "view", "status", "amount_due", "amount_paid", "due_amounts",
           "status_of", "status_clause", "STATUSES", "STATUS_LABELS"]
