"""Invoice documents through the renderer hooks (the invoice documents issue adds the PDF renderer)."""
from __future__ import annotations

from ..extensions import db
from ..models import Invoice
from ..plugins import host
from .context import provider_context
from .errors import NotFound


def renderers(provider_id: int):
    return {r.id: r for r in host().listing("kassa_renderers", provider_id)}


def context_for(invoice: Invoice, invoice_view) -> dict:
    ctx = provider_context(invoice.provider_id)
    merged: dict = {}
    for block in host().hooks(invoice.provider_id).kassa_invoice_context(invoice=invoice_view, ctx=ctx):
        if block:
            merged.update(block)
    return merged


def render(invoice: Invoice, renderer: str):
    from . import invoicing

    if renderer not in renderers(invoice.provider_id):
        raise NotFound(f"No renderer {renderer!r} is enabled.")
    invoice_view = invoicing.view(invoice)
    document = host().hooks(invoice.provider_id).kassa_render_invoice(
        renderer=renderer, invoice=invoice_view, context=context_for(invoice, invoice_view),
        ctx=provider_context(invoice.provider_id))
    if document is None:
        raise NotFound(f"Renderer {renderer!r} produced nothing.")
    return document


def email_attachments(invoice_id: int) -> list[tuple[str, bytes, str, str]]:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or "pdf" not in renderers(invoice.provider_id):
        return []
    document = render(invoice, "pdf")
    maintype, _, subtype = document.media_type.partition("/")
    return [(document.filename, document.content, maintype, subtype)]
