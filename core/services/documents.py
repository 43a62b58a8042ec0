"""Invoice documents through the renderer hooks: context, rendering, the cache,
and a provider's own invoice template.

Context (``kassa_invoice_context``): every enabled plugin may return a block.
The generic keys below are concatenated across plugins (core first, then the
others), so several plugins can add lines to the same place of the document;
any other key is kept as the plugin returned it (namespace your own keys, e.g.
``{"tax_india_gst": {...}}``):

``seller_lines``  list of str, printed under the seller's address
``buyer_lines``   list of str, printed under the buyer's address
``notes``         list of str, printed after the totals
``sections``      list of ``{"title": str, "rows": [[label, value], ...]}``, small tables after the notes

Cache: an issued invoice never changes, so each document is rendered once per
invoice, renderer, printed payment status and template version and kept in
``invoice_documents``. The payment status is part of the key because it is
printed (a partial payment's amount too); the template version covers the
provider's template (bumped on every upload and reset), the renderer's own
version and settings, and which context plugins are enabled.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from babel import Locale
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..clock import today, utcnow_naive
from ..contracts import InvoiceLineView, InvoiceView, Party, RenderedDocument, TaxComponent
from ..extensions import db
from ..models import DocumentTemplate, Invoice, InvoiceDocument, Organisation
from ..money import minor_units, plain
from ..plugins import host
from . import audit
from .context import party, provider_context
from .errors import NotFound, ValidationError
from .uow import atomic, in_atomic

log = logging.getLogger(__name__)

LIST_KEYS = ("seller_lines", "buyer_lines", "notes", "sections")
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_LOGO_BYTES = 1024 * 1024
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
              b"GIF89a": "image/gif"}


# ------------------------------------------------------------------ renderers and context


def renderers(provider_id: int):
    return {r.id: r for r in host().listing("kassa_renderers", provider_id)}


def context_for(invoice: Invoice, invoice_view) -> dict:
    return merged_context(invoice.provider_id, invoice_view)


def merged_context(provider_id: int, invoice_view: InvoiceView) -> dict:
    """Every enabled plugin's block: the generic list keys concatenated, other keys as returned."""
    h = host()
    ctx = provider_context(provider_id)
    merged: dict = {key: [] for key in LIST_KEYS}
    for plugin, block in h.call_each("kassa_invoice_context", h.enabled_names(provider_id),
                                     invoice=invoice_view, ctx=ctx):
        if not block:
            continue
        if not isinstance(block, Mapping):
            log.warning("plugin %s returned a %s from kassa_invoice_context, not a mapping; ignored",
                        plugin, type(block).__name__)
            continue
        for key, value in block.items():
            if key in LIST_KEYS:
                merged[key].extend(_clean(key, value, plugin))
            else:
                merged[key] = value
    return merged


def _clean(key: str, value, plugin: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        log.warning("plugin %s: %r must be a list, not %s; ignored", plugin, key, type(value).__name__)
        return []
    if key != "sections":
        return [str(item) for item in value if item is not None]
    sections = []
    for section in value:
        rows = section.get("rows") if isinstance(section, Mapping) else None
        if not isinstance(rows, (list, tuple)) or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
            log.warning("plugin %s: a section must be {'title': str, 'rows': [[label, value], ...]}; ignored", plugin)
            continue
        sections.append({"title": str(section.get("title") or ""),
                         "rows": [[str(label), "" if v is None else str(v)] for label, v in rows]})
    return sections


# ------------------------------------------------------------------ what the renderers share


def amount_places(invoice: InvoiceView) -> int:
    """Decimal places to print amounts with: the currency's, or more if the invoice's
    amounts carry more (a billing precision finer than the currency's)."""
    places = minor_units(invoice.currency)
    amounts = [invoice.subtotal, invoice.tax_total, invoice.total, invoice.amount_paid]
    amounts += [a for line in invoice.lines for a in (line.amount, line.tax)]
    amounts += [c.amount for c in invoice.tax_breakup]
    return max([places] + [_decimals(a) for a in amounts])


def price_places(amount: Decimal, places: int) -> int:
    """Unit prices may be finer than the billing precision (0.0125 per GB)."""
    return max(places, _decimals(amount))


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def amount_due(invoice: InvoiceView) -> Decimal:
    return Decimal(0) if invoice.cancelled else invoice.amount_due


def last_day(end: date | None) -> date | None:
    """Periods are stored with an exclusive end; documents print the last day."""
    return end - timedelta(days=1) if end else None


def printed_status(invoice: InvoiceView) -> str:
    """The payment state a document prints, as its cache key: a partially paid
    invoice prints how much was paid, so that amount is part of it."""
    if invoice.status == "partially_paid":
        return f"{invoice.status}:{plain(invoice.amount_paid, amount_places(invoice))}"
    return invoice.status


def document_locale(invoice: InvoiceView) -> str:
    """The buyer's locale; without a territory, the seller's country (en -> en_IN: ₹ and Indian grouping)."""
    language = "en"
    org = db.session.get(Organisation, invoice.buyer.org_id) if invoice.buyer.org_id else None
    if org is not None and org.locale:
        try:
            parsed = Locale.parse(org.locale.replace("-", "_"))
        except Exception:  # an unknown or malformed locale: fall back to the seller's country
            parsed = None
        if parsed is not None:
            if parsed.territory:
                return str(parsed)
            language = parsed.language
    try:
        return str(Locale.parse(f"{language}_{invoice.seller.country}"))
    except Exception:
        return language


def safe_filename(number: str, extension: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in number).strip(".-") or "invoice"
    return f"{stem}.{extension}"


# ------------------------------------------------------------------ rendering and the cache


def template_version(provider_id: int, renderer: str) -> str:
    """Everything besides the invoice and its status that decides a document's content."""
    h = host()
    owner = h.owner("kassa_renderers", renderer) or ""
    row = template_row(provider_id)
    enabled = h.enabled_names(provider_id)
    contributors = sorted({impl.plugin_name for impl in h.pm.hook.kassa_invoice_context.get_hookimpls()} & enabled)
    basis = {
        "renderer": renderer, "owner": owner,
        "own_version": str(getattr(h.plugin_object(owner), "DOCUMENT_VERSION", "")) if owner else "",
        "settings": dict(provider_context(provider_id).plugin_settings(owner)) if owner else {},
        "context_plugins": contributors,
        "template": row.version if row else 0,
    }
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"t{basis['template']}-{digest}"


def render(invoice: Invoice, renderer: str) -> RenderedDocument:
    """The document of ``invoice`` by ``renderer``, from the cache when it was rendered before."""
    from . import invoicing

    if renderer not in renderers(invoice.provider_id):
        raise NotFound(f"No renderer {renderer!r} is enabled.")
    invoice_view = invoicing.view(invoice)
    key = {"invoice_id": invoice.id, "renderer": renderer, "status": printed_status(invoice_view),
           "template_version": template_version(invoice.provider_id, renderer)}
    cached = db.session.scalar(select(InvoiceDocument).filter_by(**key))
    if cached is not None:
        return RenderedDocument(content=cached.content, media_type=cached.media_type, filename=cached.filename)
    document = render_view(invoice.provider_id, invoice_view, renderer)
    _store(invoice, key, document)
    return document


def render_view(provider_id: int, invoice_view: InvoiceView, renderer: str) -> RenderedDocument:
    """Render without the cache (a sample invoice, a benchmark)."""
    document = host().hooks(provider_id).kassa_render_invoice(
        renderer=renderer, invoice=invoice_view, context=merged_context(provider_id, invoice_view),
        ctx=provider_context(provider_id))
    if document is None:
        raise NotFound(f"Renderer {renderer!r} produced nothing.")
    return document


def _store(invoice: Invoice, key: dict, document: RenderedDocument) -> None:
    nested = in_atomic()
    try:
        with atomic():
            # documents of an earlier status or template of this invoice are never served again
            db.session.execute(delete(InvoiceDocument).where(
                InvoiceDocument.invoice_id == invoice.id, InvoiceDocument.renderer == key["renderer"]))
            db.session.add(InvoiceDocument(provider_id=invoice.provider_id, media_type=document.media_type,
                                           filename=document.filename[:200], content=document.content,
                                           created_at=utcnow_naive(), **key))
            db.session.flush()
    except IntegrityError:
        if nested:
            raise
        # rendered at the same moment elsewhere: that copy is kept, this one is as good
        log.info("document %s of invoice %s was cached concurrently", key["renderer"], invoice.id)


def email_attachments(invoice_id: int) -> list[tuple[str, bytes, str, str]]:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or "pdf" not in renderers(invoice.provider_id):
        return []
    document = render(invoice, "pdf")
    maintype, _, subtype = document.media_type.partition("/")
    return [(document.filename, document.content, maintype, subtype)]


# ------------------------------------------------------------------ the provider's invoice template


def template_row(provider_id: int) -> DocumentTemplate | None:
    return db.session.get(DocumentTemplate, provider_id)


def provider_template(provider_id: int) -> tuple[str, bytes | None, str]:
    """(custom HTML or "" for the built-in template, logo bytes or None, logo media type)."""
    row = template_row(provider_id)
    if row is None:
        return "", None, ""
    return row.html or "", row.logo, row.logo_media_type or ""


def logo_media_type(data: bytes) -> str:
    for magic, media_type in LOGO_TYPES.items():
        if data.startswith(magic):
            return media_type
    raise ValidationError("The logo is not an image Kassa can print.",
                          {"logo": "Upload a PNG, JPEG or GIF image."})


def save_template(actor, *, html: bytes | str | None = None, logo: bytes | None = None,
                  remove_logo: bool = False) -> DocumentTemplate:
    """Store the provider's invoice template and/or logo after checking that the
    template compiles and renders a sample invoice; bumps the template version."""
    from ..builtin import pdf_renderer

    provider_id = actor.org.provider_id
    if actor.org.kind != "provider":
        raise NotFound("Not found")
    if html is None and logo is None and not remove_logo:
        raise ValidationError("Nothing to change.", {"template": "Choose an HTML template or a logo to upload."})
    current_html, current_logo, current_type = provider_template(provider_id)
    source = current_html
    if html is not None:
        source = _decode_template(html)
    new_logo, new_type = current_logo, current_type
    if remove_logo:
        new_logo, new_type = None, ""
    if logo is not None:
        if len(logo) > MAX_LOGO_BYTES:
            raise ValidationError("The logo is too large.", {"logo": "At most 1 MB."})
        new_logo, new_type = logo, logo_media_type(logo)
    problem = pdf_renderer.check_template(source or None, sample_invoice(provider_id), new_logo, new_type,
                                          provider_id=provider_id)
    if problem:
        raise ValidationError("The template does not render.", {"template": problem})
    with atomic():
        row = template_row(provider_id) or DocumentTemplate(provider_id=provider_id, html="", version=0)
        row.html = source
        row.logo, row.logo_media_type = new_logo, new_type
        row.version = (row.version or 0) + 1
        row.updated_by_id = getattr(actor, "id", None)
        row.updated_at = utcnow_naive()
        db.session.add(row)
        changed = [name for name, yes in (("template", html is not None), ("logo", logo is not None),
                                          ("logo removed", remove_logo)) if yes]
        audit.record(actor, "invoice_template.update", row, provider_id=provider_id,
                     summary=f"Invoice template version {row.version}: {', '.join(changed)}")
    return row


def reset_template(actor) -> DocumentTemplate | None:
    """Back to the built-in template (the logo stays); bumps the version."""
    if actor.org.kind != "provider":
        raise NotFound("Not found")
    provider_id = actor.org.provider_id
    row = template_row(provider_id)
    if row is None or not row.html:
        return row
    with atomic():
        row.html = ""
        row.version += 1
        row.updated_by_id = getattr(actor, "id", None)
        row.updated_at = utcnow_naive()
        audit.record(actor, "invoice_template.reset", row, provider_id=provider_id,
                     summary=f"Invoice template reset to the built-in one (version {row.version})")
    return row


def _decode_template(html: bytes | str) -> str:
    data = html.encode() if isinstance(html, str) else html
    if not data.strip():
        raise ValidationError("The template is empty.", {"template": "The uploaded file is empty."})
    if len(data) > MAX_TEMPLATE_BYTES:
        raise ValidationError("The template is too large.", {"template": "At most 256 KB."})
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The template is not UTF-8 text.",
                              {"template": "Save the template as UTF-8 HTML."}) from None


def sample_invoice(provider_id: int) -> InvoiceView:
    """A made-up invoice of the provider, to check and preview a template with."""
    from . import settings

    provider = db.session.get(Organisation, provider_id)
    bs = settings.billing_settings(provider_id)
    currency, places = bs.currency, bs.precision
    q = Decimal(1).scaleb(-places)
    start = today().replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    prices = (Decimal("1450"), Decimal("6.5"), Decimal("0.0125"))
    quantities = (Decimal("2"), Decimal("100"), Decimal("5000"))
    names = ("Virtual machine, 4 vCPU / 16 GB", "Block storage (GB-month)", "Outbound traffic (GB)")
    lines, breakup = [], []
    rate = Decimal("18")
    for name, price, quantity in zip(names, prices, quantities):
        amount = (price * quantity).quantize(q)
        lines.append(InvoiceLineView(description=name, quantity=quantity, unit_price=price, amount=amount,
                                     tax=(amount * rate / 100).quantize(q), tax_code="998315",
                                     period_start=start, period_end=end))
    subtotal = sum((line.amount for line in lines), Decimal(0))
    tax = sum((line.tax for line in lines), Decimal(0))
    breakup.append(TaxComponent(name="Tax", rate=rate, amount=tax))
    buyer = Party(org_id=0, kind="customer", name="Sample Customer Pvt Ltd", country=provider.country,
                  state=provider.state, city="Bengaluru", address_line1="12 Sample Road", postal_code="560001",
                  email="accounts@customer.example", tax_id="SAMPLE-TAX-ID")
    return InvoiceView(id=0, number=f"{bs.invoice_prefix}SAMPLE", status="unpaid", currency=currency,
                       issue_date=today(), due_date=today() + timedelta(days=bs.payment_terms_days),
                       seller=party(provider), buyer=buyer, lines=tuple(lines), subtotal=subtotal, tax_total=tax,
                       total=subtotal + tax, tax_breakup=tuple(breakup), period_start=start, period_end=end,
                       notes="This is a sample invoice.")


def preview(provider_id: int) -> RenderedDocument:
    """The sample invoice as a PDF with the provider's current template."""
    from ..builtin import pdf_renderer

    view = sample_invoice(provider_id)
    content = pdf_renderer.render_pdf(view, merged_context(provider_id, view), provider_context(provider_id))
    return RenderedDocument(content=content, media_type="application/pdf", filename="invoice-template-preview.pdf")
