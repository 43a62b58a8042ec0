"""Exports over many invoices (a month's tax return, an ERP file), built by
plugins through ``kassa_export_invoices`` from invoice views the core gathers."""
from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from ..extensions import db
from ..models import Invoice
from ..plugins import host
from . import invoicing
from .context import provider_context
from .errors import NotFound, ValidationError


def available(provider_id: int) -> dict:
    return {e.id: e for e in host().listing("kassa_invoice_exports", provider_id)}


def month_range(month: str) -> tuple[date, date]:
    try:
        start = date.fromisoformat(f"{month}-01")
    except (TypeError, ValueError):
        raise ValidationError("Choose a month.", {"month": "Use the form 2026-01."}) from None
    return start, start + relativedelta(months=1)


def run(provider_id: int, export_id: str, month: str):
    """Build ``export_id`` for the invoices the provider issued in ``month`` (cancelled ones included,
    flagged, so a return can show them)."""
    if export_id not in available(provider_id):
        raise NotFound(f"No export {export_id!r} is enabled.")
    start, end = month_range(month)
    invoices = db.session.scalars(select(Invoice).where(
        Invoice.provider_id == provider_id, Invoice.issue_date >= start, Invoice.issue_date < end)
        .order_by(Invoice.sequence))
    views = [invoicing.view(i) for i in invoices]
    document = host().hooks(provider_id).kassa_export_invoices(
        export=export_id, invoices=views, period_start=start, period_end=end, ctx=provider_context(provider_id))
    if document is None:
        raise NotFound(f"Export {export_id!r} produced nothing.")
    return document
