"""CSV export of the invoice list, streamed in keyset batches (flat memory), with
spreadsheet formula injection neutralised."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Invoice, Organisation
from ..money import plain
from . import invoice_queries, invoicing, settings

BATCH = 5000
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
    """The CSV, one batch of plain rows (no ORM objects) at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield _drain(buffer)
    base = invoice_queries.filtered(user, f).with_only_columns(
        Invoice.id, Invoice.number, Organisation.name, Invoice.org_id, Invoice.kind, Invoice.issue_date,
        Invoice.due_date, Invoice.period_start, Invoice.period_end, Invoice.currency, Invoice.subtotal,
        Invoice.tax_total, Invoice.total, Invoice.cancelled_at, Invoice.provider_id,
    ).join(Organisation, Organisation.id == Invoice.org_id)
    cursor = None
    places = None
    while True:
        query = base
        if cursor:
            query = query.where(or_(Invoice.issue_date < cursor[0],
                                    and_(Invoice.issue_date == cursor[0], Invoice.id < cursor[1])))
        batch = db.session.execute(query.order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(BATCH)).all()
        if not batch:
            break
        if places is None:
            places = settings.config(batch[0].provider_id).precision
        ids = [r.id for r in batch]
        dues = invoicing.due_amounts(ids)
        tax_labels = _tax_labels(ids)
        money = f".{places}f"  # amounts are already rounded to the precision: formatting changes nothing
        for r in batch:
            due = dues[r.id]
            status = invoicing.status_for(r.cancelled_at, r.total, due)
            writer.writerow([
                neutralise(r.number), neutralise(r.name), r.org_id, r.kind, r.issue_date, r.due_date,
                r.period_start or "", r.period_end or "", r.currency, format(r.subtotal, money),
                tax_labels.get(r.id, "0%"), format(r.tax_total, money), format(r.total, money),
                format(due if r.cancelled_at is None else Decimal(0), money), status])
        yield _drain(buffer)
        cursor = (batch[-1].issue_date, batch[-1].id)
        if len(batch) < BATCH:
            break


def _tax_labels(ids) -> dict[int, str]:
    from ..models import InvoiceTax

    labels: dict[int, set] = {}
    for invoice_id, rate in db.session.execute(select(InvoiceTax.invoice_id, InvoiceTax.rate).where(
            InvoiceTax.invoice_id.in_(ids))):
        labels.setdefault(invoice_id, set()).add(rate)
    return {k: " + ".join(f"{plain(r, 0)}%" for r in sorted(v)) for k, v in labels.items()}


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
