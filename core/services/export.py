"""CSV export of the invoice list, streamed in keyset batches (flat memory), with
spreadsheet formula injection neutralised."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Invoice
from ..money import plain
from . import invoice_queries, invoicing, settings

BATCH = 2000
COLUMNS = ("number", "organisation", "org_id", "kind", "issue_date", "due_date", "period_start", "period_end",
           "currency", "subtotal", "tax_rate", "tax_total", "total", "amount_due", "status")
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """Prefix text that a spreadsheet would run as a formula with a quote. Our own
    numbers (amounts, ids, dates) are written as plain values and left alone."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    return "'" + value if value.startswith(DANGEROUS) else value


def rows(user, f: invoice_queries.InvoiceFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield _drain(buffer)
    base = invoice_queries.filtered(user, f)
    cursor = None
    while True:
        query = base
        if cursor:
            query = query.where(or_(Invoice.issue_date < cursor[0],
                                    and_(Invoice.issue_date == cursor[0], Invoice.id < cursor[1])))
        batch = list(db.session.scalars(query.order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(BATCH)))
        if not batch:
            break
        names = invoice_queries.org_names(batch)
        places = settings.billing_settings(batch[0].provider_id).precision
        dues = invoicing.due_amounts(i.id for i in batch)
        tax_labels = _tax_labels(batch)
        for inv in batch:
            due = dues[inv.id] if inv.cancelled_at is None else 0
            writer.writerow([
                neutralise(inv.number), neutralise(names.get(inv.org_id, "")), inv.org_id, inv.kind,
                inv.issue_date, inv.due_date, inv.period_start or "", inv.period_end or "", inv.currency,
                plain(inv.subtotal, places), tax_labels.get(inv.id, "0%"), plain(inv.tax_total, places),
                plain(inv.total, places), plain(Decimal(due), places), invoicing.status_of(inv, dues[inv.id])])
        yield _drain(buffer)
        cursor = (batch[-1].issue_date, batch[-1].id)
        db.session.expunge_all()  # keep memory flat across batches
        if len(batch) < BATCH:
            break


def _tax_labels(batch) -> dict[int, str]:
    from ..models import InvoiceTax

    labels: dict[int, set] = {}
    for invoice_id, rate in db.session.execute(select(InvoiceTax.invoice_id, InvoiceTax.rate).where(
            InvoiceTax.invoice_id.in_([i.id for i in batch]))):
        labels.setdefault(invoice_id, set()).add(rate)
    return {k: " + ".join(f"{plain(r, 0)}%" for r in sorted(v)) for k, v in labels.items()}


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
