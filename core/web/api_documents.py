"""API: invoice documents (the PDF or CSV of one invoice)."""
from __future__ import annotations

from flask import Response, request
from flask_login import current_user

from ..services import documents, invoice_queries
from ..services.errors import ValidationError
from .api import allow, bp
from .openapi import doc


@bp.get("/invoices/<int:invoice_id>/document")
@allow("billing.view")
@doc("The invoice as a document: its PDF (format=pdf, the default) or CSV (format=csv), or another "
     "enabled renderer's format; the body is the file itself",
     query={"format": {"type": "string", "description": "A renderer id: pdf, csv, or a plugin's"}},
     response={"type": "string", "format": "binary"}, media_types=("application/pdf", "text/csv", "*/*"))
def invoice_document(invoice_id: int):
    invoice = invoice_queries.get(current_user, invoice_id)
    renderer = request.args.get("format", "pdf")
    available = documents.renderers(invoice.provider_id)
    if renderer not in available:
        raise ValidationError(f"No document format {renderer!r}.",
                              {"format": "One of " + ", ".join(sorted(available)) + "."})
    document = documents.render(invoice, renderer)
    return Response(document.content, mimetype=document.media_type, headers={
        "Content-Disposition": f'attachment; filename="{document.filename}"', "Cache-Control": "private, no-store"})
