"""India GST: CGST + SGST or IGST by place of supply, exports under LUT, GSTIN
checks, the GST block of invoice documents, e-invoice JSON and GSTR-1."""
from kassa.contracts import (ExportInfo, RenderedDocument, RendererInfo, TaxEngineInfo, TaxIdCheck,
                             require_country)
from kassa.hookspecs import hookimpl

from . import einvoice, gstr1
from .context import invoice_context
from .engine import ENGINE_ID, quote
from .gstin import check
from .settings import PLUGIN_NAME, GstSettings, rate_table
from .views import is_gst

#: Part of the document cache key (kassa.services.documents): bump when the e-invoice output changes.
DOCUMENT_VERSION = "1"

EINVOICE = RendererInfo(id="gst_einvoice", name="GST e-invoice JSON (INV-01 v1.1)", media_type="application/json",
                        extension="json")
GSTR1 = ExportInfo(id="gstr1", name="GSTR-1 (outward supplies) CSV", media_type="text/csv", extension="csv",
                   description="B2B, B2CL, B2CS, EXP and nil-rated/exempt supplies of the month, with totals.")


def _is_india(party) -> bool:
    return (party.country or "").strip().upper() == "IN"


@hookimpl
def kassa_tax_engines():
    return [TaxEngineInfo(id=ENGINE_ID, name="India GST (CGST + SGST / IGST)", countries=("IN",))]


@hookimpl
def kassa_tax_quote(draft, seller, buyer, ctx):
    if not _is_india(seller):
        return None
    require_country(buyer.country)  # an unknown country is no export: refuse it rather than zero-rate it
    return quote(draft, seller, buyer, rate_table(ctx.plugin_settings(PLUGIN_NAME)))


@hookimpl
def kassa_tax_id_check(country, tax_id):
    if (country or "").strip().upper() != "IN":
        return None
    result = check(tax_id)
    return TaxIdCheck(valid=result.valid, normalized=result.normalized,
                      message=result.message if result.valid else f"Not a valid GSTIN: {result.message}",
                      details=result.details)


@hookimpl
def kassa_settings_form():
    return GstSettings


@hookimpl
def kassa_invoice_context(invoice, ctx):
    if not is_gst(invoice):
        return None
    return invoice_context(invoice, ctx.precision)


@hookimpl
def kassa_renderers():
    return [EINVOICE]


@hookimpl
def kassa_render_invoice(renderer, invoice, context, ctx):
    if renderer != EINVOICE.id or not is_gst(invoice):
        return None
    content = einvoice.render(invoice, ctx.precision)
    if content is None:
        return None
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in invoice.number)
    return RenderedDocument(content=content, media_type=EINVOICE.media_type,
                            filename=f"{name}-einvoice.{EINVOICE.extension}")


@hookimpl
def kassa_invoice_exports():
    return [GSTR1]


@hookimpl
def kassa_export_invoices(export, invoices, period_start, period_end, ctx):
    if export != GSTR1.id:
        return None
    text, gstin = gstr1.build(list(invoices), period_start, period_end, ctx.precision)
    filename = f"GSTR1_{gstin or 'outward-supplies'}_{period_start:%m%Y}.{GSTR1.extension}"
    return RenderedDocument(content=text.encode("utf-8"), media_type=GSTR1.media_type, filename=filename)
