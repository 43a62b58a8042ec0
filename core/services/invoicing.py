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
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, event, func, select
from sqlalchemy.orm import Session

from ..clock import utcnow_naive
from ..contracts import InvoiceLineView, InvoiceView, Party, TaxComponent, TaxDraft, TaxDraftLine
from ..extensions import db
from ..models import (Account, Invoice, InvoiceLine, InvoiceSequence, InvoiceTax, LedgerEntry, LedgerTransaction,
                      Organisation)
from ..money import is_rounded
from ..plugins import host
from . import audit, ledger, settings
from .context import party, provider_context
from .errors import Conflict, ServiceError, ValidationError
from .uow import after_commit, atomic

log = logging.getLogger(__name__)
UNPAID, PARTIALLY_PAID, PAID, CANCELLED = "unpaid", "partially_paid", "paid", "cancelled"
STATUSES = (UNPAID, PARTIALLY_PAID, PAID, CANCELLED)
STATUS_LABELS = {UNPAID: "Unpaid", PARTIALLY_PAID: "Partially paid", PAID: "Paid", CANCELLED: "Cancelled"}
MUTABLE_AFTER_ISSUE = {"cancelled_at", "cancelled_by_id", "cancel_reason"}


@dataclass(frozen=True)
class DraftLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # already rounded to the billing precision
    taxable: bool = True
    tax_code: str = ""
    service_id: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    unit_change_id: int | None = None


# ------------------------------------------------------------------ issuing


def _next_number(provider_id: int, prefix: str) -> tuple[int, str]:
    """Take the next number; the row lock serialises concurrent issuers and a
    rollback returns the number, so the sequence has no gaps."""
    seq = db.session.scalar(select(InvoiceSequence).filter_by(provider_id=provider_id).with_for_update())
    if seq is None:
        seq = InvoiceSequence(provider_id=provider_id, last_number=0)
        db.session.add(seq)
    seq.last_number += 1
    db.session.flush()
    return seq.last_number, f"{prefix}{seq.last_number:06d}"


def _quote_tax(provider: Organisation, buyer: Organisation, lines: list[DraftLine], currency: str, precision: int,
               issue_date: date):
    draft = TaxDraft(currency=currency, precision=precision, issue_date=issue_date, lines=tuple(
        TaxDraftLine(key=str(i), description=l.description, amount=l.amount, taxable=l.taxable, tax_code=l.tax_code)
        for i, l in enumerate(lines)))
    quote = host().hooks(provider.id).kassa_tax_quote(draft=draft, seller=party(provider), buyer=party(buyer),
                                                      ctx=provider_context(provider.id))
    per_line: dict[str, tuple[TaxComponent, ...]] = {}
    if quote is None:
        return per_line, "", "", {}
    keys = {d.key for d in draft.lines}
    for line_quote in quote.lines:
        if line_quote.key not in keys:
            raise ServiceError(f"Tax engine {quote.engine} quoted an unknown line {line_quote.key!r}.")
        for c in line_quote.components:
            if not isinstance(c.amount, Decimal) or not is_rounded(c.amount, precision):
                raise ServiceError(f"Tax engine {quote.engine} returned {c.amount!r}, not rounded to {precision} places.")
        per_line[line_quote.key] = line_quote.components
    return per_line, quote.engine, quote.note, {str(k): str(v) for k, v in (quote.details or {}).items()}


def issue(*, provider: Organisation, buyer: Organisation, lines: list[DraftLine], issue_date: date,
          due_date: date | None = None, period_start: date | None = None, period_end: date | None = None,
          subscription_id: int | None = None, kind: str = "recurring", billing_key: str | None = None,
          notes: str = "", actor=None) -> Invoice:
    bs = settings.billing_settings(provider.id)
    currency, precision = bs.currency, bs.precision
    if not lines:
        raise ValidationError("An invoice needs at least one line.", {"lines": "Add at least one item."})
    for line in lines:
        if not isinstance(line.amount, Decimal) or not is_rounded(line.amount, precision):
            raise ServiceError(f"Line amount {line.amount!r} is not rounded to {precision} places.")
    due_date = due_date or date.fromordinal(issue_date.toordinal() + bs.payment_terms_days)
    if due_date < issue_date:
        raise ValidationError("The due date is before the issue date.", {"due_date": "On or after the issue date."})
    with atomic():
        tax_by_line, engine, note, tax_details = _quote_tax(provider, buyer, lines, currency, precision, issue_date)
        subtotal = sum((l.amount for l in lines), Decimal(0))
        breakup: dict[tuple[str, Decimal], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        line_tax: list[Decimal] = []
        for i, line in enumerate(lines):
            components = tax_by_line.get(str(i), ())
            line_tax.append(sum((c.amount for c in components), Decimal(0)))
            for c in components:
                breakup[(c.name, c.rate)][0] += line.amount
                breakup[(c.name, c.rate)][1] += c.amount
        tax_total = sum(line_tax, Decimal(0))
        total = subtotal + tax_total
        sequence, number = _next_number(provider.id, bs.invoice_prefix)
        invoice = Invoice(
            provider_id=provider.id, org_id=buyer.id, subscription_id=subscription_id, sequence=sequence,
            number=number, kind=kind, billing_key=billing_key, currency=currency, issue_date=issue_date,
            due_date=due_date, period_start=period_start, period_end=period_end, subtotal=subtotal,
            tax_total=tax_total, total=total, tax_engine=engine, tax_note=note[:500], tax_details=tax_details,
            notes=notes[:1000],
            seller_snapshot=_snapshot(party(provider)), buyer_snapshot=_snapshot(party(buyer)),
            created_by_id=getattr(actor, "id", None), created_at=utcnow_naive(),
        )
        db.session.add(invoice)
        for position, (line, tax) in enumerate(zip(lines, line_tax), start=1):
            db.session.add(InvoiceLine(
                invoice=invoice, position=position, service_id=line.service_id, description=line.description[:300],
                quantity=line.quantity, unit_price=line.unit_price, amount=line.amount, tax_amount=tax,
                tax_code=line.tax_code, taxable=line.taxable, period_start=line.period_start,
                period_end=line.period_end, unit_change_id=line.unit_change_id))
        for (name, rate), (taxable, amount) in breakup.items():
            db.session.add(InvoiceTax(invoice=invoice, name=name, rate=rate, taxable_amount=taxable, amount=amount))
        db.session.flush()
        _post_issue(invoice, precision, actor)
        if bs.apply_wallet and total > 0:
            _apply_wallet(invoice, precision, actor)
        if actor is not None:
            audit.record(actor, "invoice.issue", invoice, org_id=buyer.id, provider_id=provider.id,
                         summary=f"{number} {total} {currency}")
        invoice_id = invoice.id
        after_commit(lambda: _announce(invoice_id))
    return invoice


def _snapshot(p: Party) -> dict:
    return {k: getattr(p, k) for k in p.__dataclass_fields__}


def _post_issue(invoice: Invoice, precision: int, actor) -> None:
    if invoice.total == 0 and invoice.tax_total == 0:
        return
    receivable = ledger.account(invoice.provider_id, invoice.org_id, "receivable", invoice.currency)
    revenue = ledger.account(invoice.provider_id, invoice.provider_id, "revenue", invoice.currency)
    tax = ledger.account(invoice.provider_id, invoice.provider_id, "tax_payable", invoice.currency)
    ledger.post(provider_id=invoice.provider_id, kind="invoice", currency=invoice.currency, precision=precision,
                entries=[(receivable, invoice.total), (revenue, -invoice.subtotal), (tax, -invoice.tax_total)],
                direction="internal", amount=abs(invoice.total), org_id=invoice.org_id, reference=invoice.number,
                description=f"Invoice {invoice.number}", invoice_id=invoice.id, actor=actor,
                idempotency_key=f"invoice:{invoice.id}")


def _apply_wallet(invoice: Invoice, precision: int, actor) -> None:
    available = ledger.wallet_balance(invoice.org_id, invoice.currency)
    amount = min(available, invoice.total)
    if amount <= 0:
        return
    wallet = ledger.account(invoice.provider_id, invoice.org_id, "wallet", invoice.currency)
    receivable = ledger.account(invoice.provider_id, invoice.org_id, "receivable", invoice.currency)
    ledger.post(provider_id=invoice.provider_id, kind="wallet_applied", currency=invoice.currency,
                precision=precision, entries=[(wallet, amount), (receivable, -amount)], direction="internal",
                amount=amount, org_id=invoice.org_id, reference=invoice.number,
                description=f"Wallet balance applied to {invoice.number}", invoice_id=invoice.id, actor=actor)


def _announce(invoice_id: int) -> None:
    """After commit: the invoice-issued hook and the e-mail to the primary contact."""
    from . import notifications

    invoice = db.session.get(Invoice, invoice_id)
    try:
        notifications.invoice_message(invoice, template="invoice_issued")
    except ValidationError as exc:
        log.warning("invoice %s issued without e-mail: %s", invoice.number, exc.message)
    host().hooks(invoice.provider_id).kassa_invoice_issued(invoice=view(invoice),
                                                           ctx=provider_context(invoice.provider_id))


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
    if invoice.cancelled_at is not None:
        return CANCELLED
    if due <= 0:
        return PAID
    return UNPAID if due >= invoice.total else PARTIALLY_PAID


def amount_due(invoice: Invoice) -> Decimal:
    return due_amounts([invoice.id])[invoice.id] if invoice.cancelled_at is None else Decimal(0)


def amount_paid(invoice: Invoice) -> Decimal:
    """Paid = total less what is still owed (a cancelled invoice was never paid)."""
    if invoice.cancelled_at is not None:
        return Decimal(0)
    return invoice.total - due_amounts([invoice.id])[invoice.id]


def status(invoice: Invoice) -> str:
    return status_of(invoice, due_amounts([invoice.id])[invoice.id])


def view(invoice: Invoice) -> InvoiceView:
    """The contract form of an invoice that plugins and renderers see."""
    return InvoiceView(
        id=invoice.id, number=invoice.number, status=status(invoice), currency=invoice.currency,
        issue_date=invoice.issue_date, due_date=invoice.due_date, seller=Party(**invoice.seller_snapshot),
        buyer=Party(**invoice.buyer_snapshot),
        lines=tuple(InvoiceLineView(description=l.description, quantity=l.quantity, unit_price=l.unit_price,
                                    amount=l.amount, tax=l.tax_amount, tax_code=l.tax_code,
                                    period_start=l.period_start, period_end=l.period_end) for l in invoice.lines),
        subtotal=invoice.subtotal, tax_total=invoice.tax_total, total=invoice.total,
        amount_paid=amount_paid(invoice),
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
    bs = settings.billing_settings(invoice.provider_id)
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
