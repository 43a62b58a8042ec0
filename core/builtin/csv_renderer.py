"""CSV invoices: the same invoice view as the PDF, one row per line, then the tax breakup and the totals.

Every row has the same columns. ``record`` says what the row is: ``line``,
``tax`` (one per component of the breakup: ``description`` is its name, ``rate``
its percentage, ``tax`` its amount) or ``total`` (``description`` is Subtotal,
Tax, Total, Amount paid or Amount due; the value is in ``amount``). Amounts are
plain decimals in the invoice currency at the places the PDF prints them with;
text a spreadsheet would run as a formula is quoted.
"""
from __future__ import annotations

import csv
import io

from ..contracts import RenderedDocument, RendererInfo
from ..hookspecs import hookimpl
from ..money import plain

RENDERER = RendererInfo(id="csv", name="CSV", media_type="text/csv", extension="csv")
DOCUMENT_VERSION = "1"
COLUMNS = ("record", "invoice_number", "issue_date", "due_date", "status", "currency", "position", "description",
           "tax_code", "period_start", "period_end", "quantity", "unit_price", "amount", "tax", "rate")


@hookimpl(trylast=True)
def kassa_renderers():
    return [RENDERER]


@hookimpl(trylast=True)
def kassa_render_invoice(renderer, invoice, context, ctx):
    if renderer != RENDERER.id:
        return None
    from ..services.documents import safe_filename

    return RenderedDocument(content=render_csv(invoice).encode("utf-8"), media_type="text/csv; charset=utf-8",
                            filename=safe_filename(invoice.number, RENDERER.extension))


def render_csv(invoice) -> str:
    from ..services.documents import amount_due, amount_places, last_day, price_places
    from ..services.export import neutralise

    places = amount_places(invoice)
    status = "cancelled" if invoice.cancelled else invoice.status
    head = [neutralise(invoice.number), invoice.issue_date.isoformat(), invoice.due_date.isoformat(), status,
            invoice.currency]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)

    def row(record, position="", description="", tax_code="", start=None, end=None, quantity="", unit_price="",
            amount="", tax="", rate=""):
        writer.writerow([record, *head, position, neutralise(description), neutralise(tax_code),
                         start.isoformat() if start else "", end.isoformat() if end else "",
                         quantity, unit_price, amount, tax, rate])

    for position, line in enumerate(invoice.lines, start=1):
        row("line", position, line.description, line.tax_code, line.period_start, last_day(line.period_end),
            plain(line.quantity, 0), plain(line.unit_price, price_places(line.unit_price, places)),
            plain(line.amount, places), plain(line.tax, places))
    for component in invoice.tax_breakup:
        row("tax", description=component.name, tax=plain(component.amount, places), rate=plain(component.rate, 0))
    for label, value in (("Subtotal", invoice.subtotal), ("Tax", invoice.tax_total), ("Total", invoice.total),
                         ("Amount paid", invoice.amount_paid), ("Amount due", amount_due(invoice))):
        row("total", description=label, amount=plain(value, places))
    return out.getvalue()
